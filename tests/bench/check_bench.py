#!/usr/bin/env python3
"""End-to-end test of iocx-bench (meson test suite 'bench').

Runs a short iocx-bench with --baseline, --json and --csv against the
built-in sink (through the exe wrapper, i.e. Wine, for a cross build),
then checks natively that:

  - the process exits 0 and the JSON parses, with every documented key;
  - counts add up everywhere: connects + sum(errors) = attempts, for the
    top level, the baseline, every phase and every phase's totals;
  - each phase made exactly --connects attempts, --warmup of them left out;
  - the sink accepted every connect and read every payload byte;
  - latency percentiles are ordered and non-zero;
  - the CSV has its header and at least one row per phase.

Then runs it again with --armed 2000 (each iocx phase holds 2000 extra
connects with armed timers, outside the phase's counts) and checks the
same, plus that settings and phases say armed=2000 for iocx and 0 for raw.
A third run with --rate checks that the iocx phases say the engine paced
them and the raw ones the bench's schedule, each with the achieved rate
over the asked one, equal to the phase's connects/s over --rate (how close
it comes to 1 is not checked: no timing is asserted).
Then checks that bad usage exits 2 with a one-line message, and that the
banner and a progress line per second reach a piped stderr while the run
goes on (--quiet: none), stdout keeping only the result.  No speed is
asserted.

Then runs --scale 1500 --idle 3600 (1500 connections held, each with an
idle watchdog) and checks its steps (1000 and 1500 open), that the
engine's memory was counted and all given back after destroy, that no
connection closed early and that the sink held every one.

Interruption: SIGINT after 2 s of a 30 s run must end it within 3 s with
status 130 and a complete JSON (and CSV) marked interrupted, whose counts
add up and equal the sink's; with connects that cannot finish (a listener
that never accepts), they are reported cancelled after the bounded wait,
and a second SIGINT (sent once the first one's line is seen, well inside a
60 s --interrupt-grace) quits at once without leaving a report file.  A
SIGINT during a --start-at wait exits 130 at once, saying no report
comes, and leaves no file.  The same listener for --scale: the first
SIGINT ends it within 3 s with status 130, a JSON marked interrupted
whose counts add up, and all the engine's memory given back.

usage: check_bench.py --exe PATH [--wrapper PROG]
"""
import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

CONNECTS = 500
WARMUP = 50
PAYLOAD = 64
ARMED = 2000
RATE = 2000
SCALE = 1500
TIMEOUT_S = 120
TWICE_GRACE_S = 60      # --interrupt-grace of the "twice" case

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what)


def verdict():
    """The exit status after every check: 0 when none failed."""
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


def run(cmd, **kw):
    print("running: " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, capture_output=True, text=True,
                          timeout=TIMEOUT_S, **kw)


def check_counts(obj, where):
    errors = obj["errors"]
    check(isinstance(errors, dict), where + ": errors is an object")
    check(obj["connects"] + sum(errors.values()) == obj["attempts"],
          "%s: connects %d + errors %d != attempts %d" %
          (where, obj["connects"], sum(errors.values()), obj["attempts"]))


def check_latency(lat, where):
    keys = ["min", "p50", "p90", "p99", "p999", "max"]
    for k in keys + ["mean"]:
        check(k in lat, "%s: latency_us.%s present" % (where, k))
    if all(k in lat for k in keys):
        values = [lat[k] for k in keys]
        check(values == sorted(values),
              "%s: latency percentiles ordered: %s" % (where, values))
        check(lat["min"] > 0, where + ": latency min > 0")


def check_side(side, where):
    for k in ["connects_per_sec", "connects", "attempts", "errors",
              "latency_us", "cpu_us_per_connect", "totals", "timeouts"]:
        check(k in side, "%s: key %s present" % (where, k))
    check_counts(side, where)
    check_counts(side["totals"], where + ".totals")
    check_latency(side["latency_us"], where)
    check(side["connects_per_sec"] > 0, where + ": connects_per_sec > 0")


def check_release(p, where, rate):
    """A phase's second span (start to slot release) and its open-loop
    fields.  Shape only: never a speed."""
    lat, rel = p["latency_us"], p["release_us"]
    check_latency(rel, where + " release")
    # The same connects, each released after its outcome: every
    # percentile of the release span is at least the outcome's.
    check(rel["count"] == lat["count"],
          "%s: release_us.count %d == latency_us.count %d" %
          (where, rel["count"], lat["count"]))
    for k in ("min", "p50", "p99", "max"):
        check(rel[k] >= lat[k], "%s: release_us.%s %.1f >= latency_us.%s "
              "%.1f" % (where, k, rel[k], k, lat[k]))
    check(isinstance(p["cap_hits"], int) and p["cap_hits"] >= 0,
          where + ": cap_hits a count")
    # elapsed_s is printed to the millisecond: the bounds of that.
    e, n = p["elapsed_s"], p["attempts"]
    lo = n / (e + 0.0005) - 0.1
    hi = n / (e - 0.0005) + 0.1 if e > 0.0005 else float("inf")
    check(lo <= p["starts_per_sec"] <= hi,
          "%s: starts_per_sec %.1f is attempts / elapsed_s (%d / %.3f)" %
          (where, p["starts_per_sec"], n, e))
    if not rate:
        check(p["open_loop"] is None, where + ": open_loop null without "
              "--rate")
        return
    q = p["starts_per_sec"] / rate
    want = p["cap_hits"] == 0 and abs(q - 1) <= 0.02 + 1e-4
    # The bench decides from unrounded numbers: at the edge, skip.
    if abs(abs(q - 1) - 0.02) > 1e-3:
        check(p["open_loop"] is want, "%s: open_loop %r, want %r (cap "
              "hits %d, start rate %.4f of --rate)" %
              (where, p["open_loop"], want, p["cap_hits"], q))


def median(v):
    m = sorted(v)
    return (m[len(m) // 2] if len(m) % 2
            else (m[len(m) // 2 - 1] + m[len(m) // 2]) / 2)


def check_latency_ratios(doc, phases, rounds):
    """latency_ratio_rounds: iocx round k's percentile over raw round
    k's; latency_ratio_paired: their medians (from the rounded phase
    latencies: 2 % slack)."""
    spans = {"p50": ("latency_us", "p50"), "p90": ("latency_us", "p90"),
             "p99": ("latency_us", "p99"),
             "release_p50": ("release_us", "p50")}
    by = {(p["phase"], p["round"]): p for p in phases}
    for name, (span, pct) in spans.items():
        want = [by[("iocx", k)][span][pct] / by[("raw", k)][span][pct]
                for k in rounds]
        got = doc["latency_ratio_rounds"][name]
        check(len(got) == len(want) and
              all(abs(g - w) <= 0.02 * w for g, w in zip(got, want)),
              "latency_ratio_rounds.%s %s == per-round iocx/raw %s" %
              (name, got, want))
        med = doc["latency_ratio_paired"][name]
        check(abs(med - median(got)) <= 1e-3 * median(got),
              "latency_ratio_paired.%s %s == median of its rounds" %
              (name, med))
        # Open loop: the same median over the rounds whose two phases
        # both were one (--rate only).
        lo = doc["latency_ratio_open"]
        if not doc["settings"]["rate"]:
            check(lo is None, "latency_ratio_open null without --rate")
            continue
        keep = [g for g, k in zip(got, rounds)
                if by[("iocx", k)]["open_loop"] and
                by[("raw", k)]["open_loop"]]
        check(lo["rounds"] == len(keep),
              "latency_ratio_open.rounds %d == open-loop pairs %d" %
              (lo["rounds"], len(keep)))
        want = median(keep) if keep else 0
        check(abs(lo[name] - want) <= 1e-3 * want + 1e-4,
              "latency_ratio_open.%s %s == median of the open-loop "
              "rounds %s" % (name, lo[name], want))


def check_json(doc, armed):
    check_side(doc, "top level")
    settings = doc["settings"]
    for k in ["backend", "target", "sink", "sink_threads", "connects",
              "duration_s", "concurrency", "workers", "batch", "payload",
              "fastopen", "close", "rate", "warmup_connects", "warmup_s",
              "timeout_s", "baseline", "rounds", "armed", "raw_backend"]:
        check(k in settings, "settings.%s present" % k)
    check(isinstance(settings["raw_backend"], str) and
          settings["raw_backend"].startswith("raw "),
          "settings.raw_backend names the raw loop: %r" %
          settings["raw_backend"])
    check(settings["armed"] == armed, "settings.armed == %d" % armed)
    check(settings["connects"] == CONNECTS, "settings.connects")
    check(settings["payload"] == PAYLOAD, "settings.payload")
    check(settings["baseline"] is True, "settings.baseline")
    check(doc["baseline"] is not None, "baseline object present")
    check_side(doc["baseline"], "baseline")
    check(doc["ratio"] > 0, "ratio > 0")

    phases = doc["phases"]
    check([p["phase"] for p in phases] == ["iocx", "raw", "iocx", "raw"],
          "phases alternate iocx, raw, iocx, raw")
    for p in phases:
        where = "phase %s #%d" % (p["phase"], p["round"])
        check_counts(p, where)
        check_counts(p["totals"], where + ".totals")
        check_latency(p["latency_us"], where)
        check(p["totals"]["attempts"] == CONNECTS,
              where + ": attempts == --connects")
        check(p["attempts"] == CONNECTS - WARMUP,
              where + ": measured attempts == --connects - --warmup")
        check(not p["stalled"], where + ": not stalled")
        check(not p["failed"], where + ": not failed")
        want = armed if p["phase"] == "iocx" else 0
        check(p["armed"] == want, "%s: armed %d, want %d" %
              (where, p["armed"], want))
        want = ("none" if not settings["rate"] else
                "engine" if p["phase"] == "iocx" else "schedule")
        check(p["paced_by"] == want, "%s: paced_by %s, want %s" %
              (where, p["paced_by"], want))
        check((p["rate_achieved"] > 0) == bool(settings["rate"]),
              where + ": rate_achieved > 0 exactly when --rate is given")
        # The achieved rate is compared with the asked one: the phase's
        # connects/s over --rate (to the 4 decimals printed).  Shape only.
        if settings["rate"]:
            want = p["connects_per_sec"] / settings["rate"]
            check(abs(p["rate_achieved"] - want) <= 1e-4 + 1e-3 * want,
                  "%s: rate_achieved %.4f, connects/s over --rate %.4f" %
                  (where, p["rate_achieved"], want))
        check_release(p, where, settings["rate"])

    # Round by round: iocx round k over raw round k, and their median.
    cps = {(p["phase"], p["round"]): p["connects_per_sec"] for p in phases}
    rounds = sorted({p["round"] for p in phases})
    want = [cps[("iocx", k)] / cps[("raw", k)] for k in rounds]
    got = doc["ratio_rounds"]
    check(len(got) == len(want) and
          all(abs(g - w) <= 1e-3 * w for g, w in zip(got, want)),
          "ratio_rounds %s == per-round iocx/raw %s" % (got, want))
    mid = sorted(want)
    median = (mid[len(mid) // 2] if len(mid) % 2
              else (mid[len(mid) // 2 - 1] + mid[len(mid) // 2]) / 2)
    check(abs(doc["ratio_paired"] - median) <= 1e-3 * median,
          "ratio_paired %s == median of the rounds %s" %
          (doc["ratio_paired"], median))

    check_latency_ratios(doc, phases, rounds)

    sink = doc["sink"]
    connects = sum(p["totals"]["connects"] for p in phases)
    payload = sum(p["totals"]["payload_bytes"] for p in phases)
    check(sink["accepted"] == connects,
          "sink accepted %d == client connects %d" %
          (sink["accepted"], connects))
    check(sink["payload_bytes"] == payload,
          "sink payload bytes %d == client payload bytes %d" %
          (sink["payload_bytes"], payload))
    check(payload == connects * PAYLOAD, "every connect sent its payload")
    check(sink["checked"] and sink["ok"], "sink check passed in the bench")
    check(doc["exit_status"] == 0, "exit_status 0 in the JSON")


def check_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    check(len(rows) >= 4, "CSV has a row per phase at least")
    for r in rows:
        check(r["phase"] in ("iocx", "raw"), "CSV phase column")
        check(int(r["connects_total"]) <= CONNECTS, "CSV connects_total")
        float(r["connects_per_sec"])


def check_scale(cmd, tmp):
    """--scale SCALE --idle: the steps, memory and counts add up."""
    doc = run_json(cmd, os.path.join(tmp, "scale.json"),
                   ["--scale", str(SCALE), "--idle", "3600",
                    "--concurrency", "32", "--payload", str(PAYLOAD)],
                   "scale")
    if doc is None:
        return
    try:
        settings, steps = doc["settings"], doc["steps"]
        check(doc["mode"] == "scale", "scale: mode")
        check(settings["scale"] == SCALE, "scale: settings.scale")
        check(settings["idle_s"] == 3600, "scale: settings.idle_s")
        check([s["open"] for s in steps] == [1000, SCALE],
              "scale: steps at 1000 and %d open: %s" %
              (SCALE, [s["open"] for s in steps]))
        check(sum(s["connects"] for s in steps) == SCALE,
              "scale: the steps' connects add up to --scale")
        for s in steps:
            where = "scale: step %d" % s["open"]
            check(s["failed"] == 0, where + ": nothing failed")
            check(s["engine_bytes_per_conn"] > 0,
                  where + ": engine memory per connection counted")
            check(s["engine_bytes"] >= s["open"] * 64,
                  where + ": engine memory at least 64 B a connection")
            check(s["rss_bytes"] > 0, where + ": RSS read")
            check(s["us_per_connect"] > 0 and s["latency_us"]["p50"] > 0,
                  where + ": timings present")
        check(doc["close"]["closed"] == SCALE and doc["close"]["early"] == 0,
              "scale: every connection held until closed: %s" % doc["close"])
        check(doc["engine_bytes_after_destroy"] == 0,
              "scale: the engine's memory all back after destroy")
        check(doc["connects"] == SCALE and doc["attempts"] == SCALE and
              doc["errors"] == {}, "scale: counts")
        check(doc["sink"]["accepted"] == SCALE and
              doc["sink"]["payload_bytes"] == SCALE * PAYLOAD and
              doc["sink"]["ok"], "scale: the sink held every connection")
        check(doc["exit_status"] == 0, "scale: exit_status 0 in the JSON")
    except (KeyError, TypeError) as e:
        check(False, "scale: JSON has the documented shape: %r" % e)


def check_bad_file(cmd, tmp):
    """--payload-file that cannot be used: exit 2, one message."""
    empty = os.path.join(tmp, "empty.bin")
    open(empty, "wb").close()
    for path in [os.path.join(tmp, "absent.bin"), empty]:
        r = run(cmd + ["--payload-file", path, "--connects", "10"])
        check(r.returncode == 2, "--payload-file %s: exit status %d, want 2"
              % (path, r.returncode))
        check(r.stderr.startswith("iocx-bench: --payload-file"),
              "--payload-file %s: says what is wrong" % path)


def check_bad_usage(cmd):
    bad = [["--expect-bytes", "10", "--baseline"],
           ["--payload-hex", "abc"], ["--payload", "5", "--payload-hex",
                                       "41"],
           ["--expect-until", "a\\q"], ["--concurrency", "0"], ["--bogus"], ["--target", "no_host:80"],
           ["--target", "localhost:80", "--baseline"],
           ["--resolver", "127.0.0.1:53"],
           ["--payload", "16777217"], ["--close", "maybe"],
           ["--armed", "1000001"], ["--batch-closes=1"], ["--scale", "0"],
           ["--scale", "10", "--baseline"], ["--idle", "5"],
           ["--scale", "10", "--sources", "65"],
           ["--reply-timeout", "1s"],
           ["--expect-bytes", "5", "--reply-timeout", "0"],
           ["--start-at", "tomorrow"], ["--start-at", "2026-02-30T10:00:00Z"]]
    for args in bad:
        r = run(cmd + args)
        check(r.returncode == 2, "%s: exit status %d, want 2" %
              (" ".join(args), r.returncode))
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(len(lines) >= 1 and lines[0].startswith("iocx-bench: "),
              "%s: one clear message on stderr" % " ".join(args))
        check(r.stdout == "", "%s: nothing on stdout" % " ".join(args))


def check_progress(cmd):
    """Progress lines reach a piped stderr while the run goes on."""
    args = cmd + ["--duration", "4", "--concurrency", "8", "--json"]
    print("running: " + " ".join(args), flush=True)
    p = subprocess.Popen(args, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    lines = []
    live = False
    try:
        for line in p.stderr:
            lines.append(line)
            if line.startswith("iocx #1 "):
                # The first progress line comes after 1 s of a 4 s phase.
                live = p.poll() is None
                break
        out, err = p.communicate(timeout=TIMEOUT_S)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    lines += err.splitlines(True)
    sys.stderr.write("".join(lines))
    check(p.returncode == 0, "progress run: exit status %d" % p.returncode)
    check(live, "a progress line arrived while the bench was running")
    ours = [l for l in lines if l.startswith(("iocx-bench ", "iocx #"))]
    check(len(ours) >= 4 and ours[0].startswith("iocx-bench "),
          "the banner first, then a progress line per second: %r" % ours)
    try:
        json.loads(out)
    except ValueError as e:
        check(False, "stdout holds only the JSON: %s" % e)
    r = run(cmd + ["--connects", "200", "--concurrency", "8", "--quiet"])
    check(r.returncode == 0, "--quiet run: exit status %d" % r.returncode)
    check(not [l for l in r.stderr.splitlines()
               if l.startswith(("iocx-bench ", "iocx #"))],
          "--quiet: no banner and no progress on stderr")
    check("connect/s" in r.stdout, "--quiet: the table still on stdout")


class Bench:
    """A bench run whose stderr is read line by line as it comes."""

    def __init__(self, args):
        print("running: " + " ".join(args), flush=True)
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.err = []

    def wait_line(self, pred):
        """Read stderr up to a line pred accepts; False at EOF."""
        for line in self.p.stderr:
            self.err.append(line)
            if pred(line):
                return True
        return False

    def finish(self):
        """Wait for the exit; returns (status, seconds waited, stdout)."""
        t0 = time.monotonic()
        try:
            out, err = self.p.communicate(timeout=TIMEOUT_S)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
        self.err.append(err)
        sys.stderr.write("".join(self.err))
        return self.p.returncode, time.monotonic() - t0, out


def interrupted_line(line):
    return line.startswith("iocx-bench: interrupted")


def progress_at(seconds):
    """A progress line of the first phase at `seconds` or later."""
    def pred(line):
        f = line.split()
        return (line.startswith("iocx #1 ") and len(f) > 3 and
                f[3] == "s" and float(f[2]) >= seconds)
    return pred


def black_hole():
    """A listener that never accepts: once its queue is full, SYNs are
    dropped and connects to it stay in flight."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def check_interrupt(cmd, tmp):
    """SIGINT after 2 s of a 30 s run: a complete report, in time."""
    jpath = os.path.join(tmp, "int.json")
    cpath = os.path.join(tmp, "int.csv")
    b = Bench(cmd + ["--duration", "30", "--concurrency", "8",
                     "--json=" + jpath, "--csv=" + cpath])
    check(b.wait_line(progress_at(2.0)), "a progress line at 2 s")
    b.p.send_signal(signal.SIGINT)
    rc, took, _ = b.finish()
    print("exited %.3f s after SIGINT" % took)
    check(rc == 128 + signal.SIGINT, "interrupted: exit status %d, want %d"
          % (rc, 128 + signal.SIGINT))
    check(took < 3.0, "exit within 3 s of SIGINT (took %.3f s)" % took)
    check(not os.path.exists(jpath + ".part"), "no temporary file left")
    try:
        with open(jpath) as f:
            doc = json.load(f)
        with open(cpath, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, ValueError) as e:
        check(False, "interrupted run wrote its JSON and CSV: %s" % e)
        return
    check(doc["interrupted"] is True, "JSON says interrupted")
    check(doc["exit_status"] == rc, "JSON exit_status == the process's")
    phases = doc["phases"]
    check(len(phases) == 1 and phases[0]["interrupted"],
          "one phase, marked interrupted")
    p = phases[0]
    check_counts(p, "interrupted phase")
    check_counts(p["totals"], "interrupted phase totals")
    check(2.0 <= p["elapsed_s"] < 30, "elapsed %.3f s: cut at 2 s or later"
          % p["elapsed_s"])
    check(p["totals"]["connects"] > 0, "connects were measured")
    check(doc["sink"]["accepted"] == p["totals"]["connects"] and
          doc["sink"]["ok"], "sink accepted %d == connects %d" %
          (doc["sink"]["accepted"], p["totals"]["connects"]))
    check(rows and int(rows[-1]["connects_total"]) ==
          p["totals"]["connects"], "the last CSV row's total == JSON's")


def check_interrupt_in_flight(cmd, tmp):
    """Connects that cannot finish: the first SIGINT waits a bounded
    time and reports them cancelled; a second one quits at once and
    leaves no report file at all."""
    hole = black_hole()
    target = "127.0.0.1:%d" % hole.getsockname()[1]
    try:
        jpath = os.path.join(tmp, "hole.json")
        b = Bench(cmd + ["--duration", "30", "--concurrency", "8",
                         "--target", target, "--json=" + jpath])
        check(b.wait_line(progress_at(1.0)), "a progress line at 1 s")
        b.p.send_signal(signal.SIGINT)
        rc, took, _ = b.finish()
        check(rc == 130, "in flight: exit status %d, want 130" % rc)
        check(took < 3.0, "exit within 3 s of SIGINT (took %.3f s)" % took)
        try:
            with open(jpath) as f:
                doc = json.load(f)
            p = doc["phases"][0]
            check_counts(p["totals"], "in-flight phase totals")
            check(p["totals"]["errors"].get("IOCX_E_CANCELLED", 0) > 0,
                  "connects still in flight are counted cancelled: %s" %
                  p["totals"]["errors"])
        except (OSError, ValueError, KeyError, IndexError) as e:
            check(False, "in-flight run wrote a complete JSON: %r" % e)

        # The second SIGINT must come while the first one's grace runs:
        # a grace far longer than any scheduling delay, so that seeing
        # the first one taken (its line) is all the test waits for, and
        # an exit well before the grace ends is the second one's doing.
        jpath = os.path.join(tmp, "twice.json")
        b = Bench(cmd + ["--duration", "30", "--concurrency", "8",
                         "--target", target, "--json=" + jpath,
                         "--interrupt-grace", str(TWICE_GRACE_S)])
        check(b.wait_line(progress_at(1.0)), "a progress line at 1 s")
        b.p.send_signal(signal.SIGINT)
        check(b.wait_line(interrupted_line), "the first SIGINT is seen")
        said = "".join(b.err)
        check("at most %d ms" % (TWICE_GRACE_S * 1000) in said,
              "the first SIGINT's line names the grace asked: %r" %
              said[-300:])
        b.p.send_signal(signal.SIGINT)
        rc, took, _ = b.finish()
        print("twice: exited %.3f s after the second SIGINT" % took)
        check(rc == 130, "twice: exit status %d, want 130" % rc)
        check(took < TWICE_GRACE_S / 2,
              "twice: quit before the grace ended (took %.3f s)" % took)
        check(not os.path.exists(jpath),
              "quit at once: no report, and no part of one, at PATH")
    finally:
        hole.close()


def check_interrupt_before_start(cmd, tmp):
    """SIGINT during the --start-at wait: nothing was measured, so the
    bench says so, exits 130 at once and writes no report."""
    jpath = os.path.join(tmp, "early.json")
    b = Bench(cmd + ["--duration", "1", "--json=" + jpath,
                     "--start-at", "%.3f" % (time.time() + 60)])
    check(b.wait_line(lambda l: l.startswith("iocx-bench: --start-at: "
                                             "waiting")),
          "the --start-at wait is announced")
    b.p.send_signal(signal.SIGINT)
    rc, took, _ = b.finish()
    check(rc == 130, "before start: exit status %d, want 130" % rc)
    check(took < 3.0, "exit within 3 s of SIGINT (took %.3f s)" % took)
    said = "".join(b.err)
    check("interrupted before the first connect" in said and
          "report follows" not in said,
          "stderr says no report comes: %r" % said[-300:])
    check(not os.path.exists(jpath), "no report, and no part of one")


def check_scale_interrupt(cmd, tmp):
    """--scale against a listener that never accepts: the window never
    ends by itself; SIGINT stops it, closes what it holds and reports."""
    hole = black_hole()
    target = "127.0.0.1:%d" % hole.getsockname()[1]
    try:
        jpath = os.path.join(tmp, "scale-int.json")
        b = Bench(cmd + ["--scale", str(SCALE), "--concurrency", "8",
                         "--target", target, "--json=" + jpath])
        check(b.wait_line(lambda l: l.startswith("iocx-bench: scale:")),
              "scale: the start line")
        b.p.send_signal(signal.SIGINT)
        rc, took, _ = b.finish()
        print("scale: exited %.3f s after SIGINT" % took)
        check(rc == 130, "scale interrupted: exit status %d, want 130" % rc)
        check(took < 3.0, "scale: exit within 3 s of SIGINT (took %.3f s)"
              % took)
        try:
            with open(jpath) as f:
                doc = json.load(f)
            check(doc["interrupted"] is True and doc["exit_status"] == 130,
                  "scale: JSON says interrupted, exit_status 130")
            check(doc["connects"] + sum(doc["errors"].values()) ==
                  doc["attempts"], "scale interrupted: counts add up")
            check(doc["attempts"] < SCALE,
                  "scale interrupted: stopped opening (%d attempts)" %
                  doc["attempts"])
            check(doc["close"]["closed"] == doc["connects"],
                  "scale interrupted: every held connection closed")
            check(doc["engine_bytes_after_destroy"] == 0,
                  "scale interrupted: the engine's memory all back")
        except (OSError, ValueError, KeyError, TypeError) as e:
            check(False, "scale interrupted: complete JSON: %r" % e)
    finally:
        hole.close()


class Acceptor:
    """A loopback listener on a thread of its own that accepts and
    closes, counting connections."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.count = 0
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.close()
            with self.cond:
                self.count += 1
                self.cond.notify_all()

    def wait_for(self, n, timeout):
        with self.cond:
            self.cond.wait_for(lambda: self.count >= n, timeout)
            return self.count

    def close(self):
        self.sock.close()


def check_targets_round_robin(cmd):
    """Two --target options: connects alternate between them, through
    iocx and through the raw loop."""
    a, b = Acceptor(), Acceptor()
    try:
        r = run(cmd + ["--connects", "200", "--concurrency", "4",
                       "--target", a.address, "--target", b.address,
                       "--close", "graceful", "--baseline", "--rounds",
                       "1", "--json", "--quiet"])
        check(r.returncode == 0, "two targets: exit status %d" %
              r.returncode)
        doc = json.loads(r.stdout)
        check(doc["connects"] == 200 and doc["baseline"]["connects"] == 200,
              "two targets: 200 connects through iocx and the raw loop")
        check(doc["settings"]["target"] == a.address + ", " + b.address,
              "settings.target lists both: %s" % doc["settings"]["target"])
        # Each phase alternates: 100 + 100 connects to each target.
        got = (a.wait_for(200, 30), b.wait_for(200, 30))
        check(got == (200, 200), "each target got 200 connects: %s" %
              (got,))
    except ValueError as e:
        check(False, "two targets: JSON on stdout: %s" % e)
    finally:
        a.close()
        b.close()


def tcp_queues(local_port, remote_port):
    """(send queue, receive queue) in bytes of the IPv4 TCP socket from
    local_port to remote_port, from /proc/net/tcp; None if absent."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if (int(fields[1].split(":")[1], 16) == local_port and
                    int(fields[2].split(":")[1], 16) == remote_port):
                tx, rx = fields[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def wait_consumed(server_port, client_port, limit_s=10):
    """Until the client has read all the server sent: the server's send
    queue is empty (acknowledged) and so is the client's receive queue
    (the process took the bytes).  False if that takes over limit_s."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        srv = tcp_queues(server_port, client_port)
        cli = tcp_queues(client_port, server_port)
        if srv and cli and srv[0] == 0 and cli[1] == 0:
            return True
        time.sleep(0.001)   # polls the condition, bounded by limit_s
    return False


def loopback_server(stop, handle):
    """A server on a free 127.0.0.1 port that accepts until stop and calls
    handle(conn) for each connection, on its own thread; returns the
    port and the thread."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    s.settimeout(0.2)

    def serve():
        while not stop.is_set():
            try:
                c, _ = s.accept()
            except OSError:
                continue
            handle(c)
        s.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return s.getsockname()[1], t


def split_responder(stop):
    """A server that reads a line, then answers "+PONG\\r\\n" in two
    sends, the second only once the client has read the first, so the
    string a client waits for straddles two reads and the first byte
    comes before the full reply.  The returned list counts the replies
    whose first part was not seen read within the bound (want none)."""
    unsplit = []

    def answer(c):
        with c:
            c.settimeout(10)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                got = b""
                while not got.endswith(b"\r\n"):
                    piece = c.recv(64)
                    if not piece:
                        break
                    got += piece
                c.sendall(b"+PO")
                if not wait_consumed(port, c.getpeername()[1]):
                    unsplit.append(c.getpeername())
                c.sendall(b"NG\r\n")
            except OSError:
                pass

    port, t = loopback_server(stop, answer)
    return "127.0.0.1:%d" % port, t, unsplit


def check_latency_count(lat, n, where):
    check(lat is not None and lat["count"] == n,
          "%s: %s values, want %d" % (where, lat and lat["count"], n))


def check_request_response(cmd, tmp):
    """--payload-hex/--payload-file with --expect-until/--expect-bytes
    against the sink's echo mode and a server that answers in pieces."""
    n = 300
    r = run(cmd + ["--sink", "echo", "--payload-hex", "50494e470d0a",
                   "--expect-until", "NG\\r\\n", "--connects", str(n),
                   "--concurrency", "16", "--json", "--quiet"])
    check(r.returncode == 0, "echo until: exit status %d" % r.returncode)
    try:
        doc = json.loads(r.stdout)
        check(doc["connects"] == n and doc["errors"] == {},
              "echo until: %d replies, no errors" % n)
        check(doc["settings"]["payload"] == 6 and
              doc["settings"]["expect_until"] == "NG\r\n",
              "settings: 6-byte request, expect_until NG\\r\\n")
        check(doc["sink"]["payload_bytes"] == 6 * n and doc["sink"]["ok"],
              "the sink read every request byte")
        check_latency_count(doc["ttfb_us"], n, "ttfb_us")
        check_latency_count(doc["reply_us"], n, "reply_us")
        check(doc["reply_us"]["p99"] >= doc["latency_us"]["min"],
              "replies end after connects")
    except (ValueError, KeyError, TypeError) as e:
        check(False, "echo until: JSON: %r" % e)

    body = os.path.join(tmp, "request.bin")
    with open(body, "wb") as f:
        f.write(bytes(range(256)) * 4)
    r = run(cmd + ["--sink", "echo", "--payload-file", body,
                   "--expect-bytes", "1k", "--connects", "200", "--json",
                   "--quiet"])
    check(r.returncode == 0, "echo bytes: exit status %d" % r.returncode)
    try:
        doc = json.loads(r.stdout)
        check(doc["connects"] == 200 and doc["settings"]["payload"] == 1024,
              "echo bytes: 200 replies of a 1024-byte file")
        check_latency_count(doc["reply_us"], 200, "reply_us")
    except (ValueError, KeyError, TypeError) as e:
        check(False, "echo bytes: JSON: %r" % e)

    # One byte more than the sink sends back: every reply is cut short
    # by the sink's close, and counted by its code.
    r = run(cmd + ["--sink", "echo", "--payload", "100", "--expect-bytes",
                   "101", "--connects", "100", "--json", "--quiet"])
    check(r.returncode == 1, "short replies: exit status %d, want 1" %
          r.returncode)
    try:
        doc = json.loads(r.stdout)
        check(doc["connects"] == 0 and
              doc["errors"] == {"IOCX_E_EOF": 100},
              "short replies: 100 x IOCX_E_EOF: %s" % doc["errors"])
    except (ValueError, KeyError) as e:
        check(False, "short replies: JSON: %r" % e)

    stop = threading.Event()
    target, t, unsplit = split_responder(stop)
    try:
        r = run(cmd + ["--target", target, "--payload-hex", "50494e470d0a",
                       "--expect-until", "+PONG\\r\\n", "--connects", "50",
                       "--concurrency", "4", "--json", "--quiet"])
    finally:
        stop.set()
        t.join(30)
    check(r.returncode == 0, "split reply: exit status %d" % r.returncode)
    check(not unsplit, "split reply: the client read each first part "
          "before the rest was sent (not seen for %d)" % len(unsplit))
    try:
        doc = json.loads(r.stdout)
        check(doc["connects"] == 50, "split reply: 50 replies matched")
        check_latency_count(doc["ttfb_us"], 50, "split ttfb_us")
        check(doc["reply_us"]["min"] >= doc["ttfb_us"]["min"] and
              doc["reply_us"]["max"] >= doc["ttfb_us"]["max"],
              "the full reply never comes before its first byte")
    except (ValueError, KeyError, TypeError) as e:
        check(False, "split reply: JSON: %r" % e)


def silent_server(stop):
    """A server that accepts and holds every connection, reading
    nothing and answering nothing; returns the target, the thread, and
    the accepted connections (the caller closes them)."""
    held = []
    port, t = loopback_server(stop, held.append)
    return "127.0.0.1:%d" % port, t, held


def check_reply_timeout(cmd):
    """A server that never answers: --reply-timeout ends every exchange,
    each counted IOCX_E_TIMEDOUT and as a reply timeout, and the phase
    does not stall."""
    n = 20
    stop = threading.Event()
    target, t, held = silent_server(stop)
    try:
        r = run(cmd + ["--target", target, "--payload-hex", "50494e470d0a",
                       "--expect-until", "+PONG\\r\\n", "--reply-timeout",
                       "300ms", "--connects", str(n), "--concurrency", "4",
                       "--json", "--quiet"])
    finally:
        stop.set()
        t.join(30)
        for c in held:
            c.close()
    check(r.returncode == 1, "reply timeout: exit status %d, want 1" %
          r.returncode)
    check(len(held) == n, "reply timeout: the server accepted %d of %d" %
          (len(held), n))
    try:
        doc = json.loads(r.stdout)
        check(doc["connects"] == 0 and doc["attempts"] == n and
              doc["errors"] == {"IOCX_E_TIMEDOUT": n} and
              doc["timeouts"] == n and doc["reply_timeouts"] == n,
              "reply timeout: %d x IOCX_E_TIMEDOUT, all reply timeouts: "
              "%s, reply_timeouts %s" % (n, doc["errors"],
                                         doc["reply_timeouts"]))
        check(doc["phases"][0]["reply_timeouts"] == n and
              doc["totals"]["reply_timeouts"] == n,
              "reply timeout: counted in the phase and the totals")
        check(not doc["stalled"], "reply timeout: the phase did not stall")
        check(doc["settings"]["reply_timeout_s"] == 0.3,
              "settings.reply_timeout_s is 0.3")
        check_latency_count(doc["ttfb_us"], 0, "reply timeout: ttfb_us")
    except (ValueError, KeyError, TypeError, IndexError) as e:
        check(False, "reply timeout: JSON: %r" % e)


def check_hdr_log(cmd, tmp):
    """--hdr-log, decoded by HdrHistogram's own JavaScript port: per
    phase, the intervals add up to the JSON's count and p99."""
    hpath = os.path.join(tmp, "run.hlog")
    jpath = os.path.join(tmp, "hlog.json")
    r = run(cmd + ["--duration", "2.5", "--warmup", "300ms", "--baseline",
                   "--rounds", "1", "--concurrency", "16", "--hdr-log",
                   hpath, "--json=" + jpath, "--quiet"])
    check(r.returncode == 0, "--hdr-log run: exit status %d" % r.returncode)
    try:
        with open(hpath) as f:
            head = f.read(200)
        check(head.startswith("#[Histogram log format version 1.3]\n"
                              "#[StartTime: ") and "#[BaseTime: " in head,
              "the log starts with the HistogramLogWriter header")
        logs = read_hlogs([hpath])
        with open(jpath) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        check(False, "hdr-histogram-js decodes the log: %s" % e)
        return
    print("hdr-histogram-js: %s" % logs)
    for p in doc["phases"]:
        tag = "%s.%d" % (p["phase"], p["round"])
        got = logs.get(tag)
        lat = p["latency_us"]
        if not got:
            check(False, "%s: intervals in the log" % tag)
            continue
        check(got["intervals"] >= 2, "%s: %d intervals" %
              (tag, got["intervals"]))
        check(got["count"] == p["connects"] == lat["count"],
              "%s: log count %d == JSON connects %d" %
              (tag, got["count"], p["connects"]))
        # Both are the top of the bucket holding the 99th percentile;
        # the JSON's is clamped to the exact max and rounded to 0.1 us.
        # Equal to the histogram's precision: one bucket, 1/128.
        p99 = got["p99"] / 1e3
        check(abs(p99 - lat["p99"]) <= lat["p99"] / 128 + 0.1,
              "%s: log p99 %.1f us == JSON p99 %.1f us" %
              (tag, p99, lat["p99"]))


def read_hlogs(paths):
    """Per tag: hdr-histogram-js's sums of the intervals of paths."""
    reader = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "read_hlog.js")
    d = subprocess.run(["node", reader] + paths, capture_output=True,
                       text=True, timeout=TIMEOUT_S)
    sys.stderr.write(d.stderr)
    return json.loads(d.stdout)


def check_merge(cmd, tmp):
    """Three benches side by side, each with its --hdr-log; `merge`
    gives their counts added and the percentiles of one histogram of
    every sample (hdr-histogram-js adds the same intervals)."""
    n = 3
    hlogs = [os.path.join(tmp, "part%d.hlog" % i) for i in range(n)]
    jsons = [os.path.join(tmp, "part%d.json" % i) for i in range(n)]
    procs = [Bench(cmd + ["--duration", "2", "--concurrency", "4",
                          "--quiet", "--hdr-log", hlogs[i],
                          "--json=" + jsons[i]]) for i in range(n)]
    for i, b in enumerate(procs):
        rc, _, _ = b.finish()
        check(rc == 0, "merge part %d: exit status %d" % (i, rc))
    r = run(cmd + ["merge", "--json"] + hlogs)
    check(r.returncode == 0, "merge: exit status %d" % r.returncode)
    try:
        merged = json.loads(r.stdout)
        parts = [json.load(open(j)) for j in jsons]
        js = read_hlogs(hlogs)
    except (OSError, ValueError) as e:
        check(False, "merge: outputs parse: %s" % e)
        return
    print("merge: %s" % r.stdout)
    total = sum(p["connects"] for p in parts)
    check(merged["connects"] == total == js["all"]["count"],
          "merged connects %d == sum of the runs %d" %
          (merged["connects"], total))
    lat = merged["latency_us"]
    # One histogram fed every sample: the same buckets, so the same p50
    # and p99 as hdr-histogram-js's (both the top of the bucket).
    for k in ("p50", "p99"):
        check(abs(lat[k] * 1e3 - js["all"][k]) <= 100,
              "merged %s %.1f us == hdr-histogram-js's %.1f us" %
              (k, lat[k], js["all"][k] / 1e3))
    ph = {p["tag"]: p for p in merged["phases"]}
    check(list(ph) == ["iocx.1"] and ph["iocx.1"]["connects"] == total,
          "one phase, iocx.1, with every connect")
    check(merged["overlap_s"] is not None and merged["overlap_s"] > 0 and
          merged["connects_per_sec"] > 0,
          "the runs overlapped: a combined rate over the overlap")
    r = run(cmd + ["merge", os.path.join(tmp, "absent.hlog")])
    check(r.returncode == 1 and "cannot open" in r.stderr,
          "merge of a missing file: exit 1, says so")
    # The same runs' JSON reports merge to the same report, and
    # hdr-histogram-js adding their latency_hdr fields agrees.
    r = run(cmd + ["merge", "--json"] + jsons)
    check(r.returncode == 0, "merge of JSON reports: exit status %d" %
          r.returncode)
    try:
        mj = json.loads(r.stdout)
        jj = read_hlogs(jsons)
    except ValueError as e:
        check(False, "merge of JSON reports: outputs parse: %s" % e)
        return
    for k in ("connects", "overlap_s", "connects_per_sec", "latency_us",
              "phases"):
        check(mj[k] == merged[k], "JSON merge %s %s == log merge's %s" %
              (k, mj[k], merged[k]))
    check(jj["all"]["count"] == total and
          all(abs(mj["latency_us"][k] * 1e3 - jj["all"][k]) <= 100
              for k in ("p50", "p99")),
          "JSON merge: p50/p99 those of hdr-histogram-js's sum of the "
          "reports' latency_hdr: %s" % jj["all"])
    bad = os.path.join(tmp, "cut.json")
    with open(jsons[0]) as f, open(bad, "w") as g:
        g.write(f.read()[:200])
    r = run(cmd + ["merge", bad])
    check(r.returncode == 1 and "cut.json" in r.stderr,
          "merge of a cut JSON report: exit 1, names the file")
    r = run(cmd + ["merge"])
    check(r.returncode == 2, "merge without files: exit 2")


SVG = "{http://www.w3.org/2000/svg}"


def check_svg(cmd, tmp):
    """--svg: well-formed XML, one series per phase in each chart."""
    spath = os.path.join(tmp, "run.svg")
    jpath = os.path.join(tmp, "svg.json")
    r = run(cmd + ["--duration", "2.2", "--baseline", "--concurrency", "8",
                   "--svg", spath, "--json=" + jpath, "--quiet"])
    check(r.returncode == 0, "--svg run: exit status %d" % r.returncode)
    try:
        root = ET.parse(spath).getroot()
        with open(jpath) as f:
            doc = json.load(f)
    except (OSError, ValueError, ET.ParseError) as e:
        check(False, "--svg: well-formed XML: %s" % e)
        return
    check(root.tag == SVG + "svg", "the root is an SVG element")
    want = ["%s #%d" % (p["phase"], p["round"]) for p in doc["phases"]]
    groups = {g.get("id"): g for g in root.iter(SVG + "g")}
    for gid in ("spectrum", "rate"):
        g = groups.get(gid)
        if g is None:
            check(False, "--svg: a group %s" % gid)
            continue
        series = [p for p in g if p.get("class") == "series"]
        names = [p.get("data-phase") for p in series]
        check(names == want, "%s: one series per phase %s, got %s" %
              (gid, want, names))
        for p in series:
            pts = [tuple(map(float, xy.split(",")))
                   for xy in p.get("points").split()]
            check(len(pts) >= (20 if gid == "spectrum" else 2) and
                  all(0 <= x <= 1000 and 0 <= y <= 440 for x, y in pts),
                  "%s %s: %d points inside the picture" %
                  (gid, p.get("data-phase"), len(pts)))


def run_json(cmd, jpath, args, what):
    """Run the bench with --json=jpath; its exit status must be 0.
    Returns the parsed JSON, or None."""
    r = run(cmd + args + ["--json=" + jpath])
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    if "--baseline" in args:
        check("latency iocx / raw, paired rounds" in r.stdout and
              "release p50" in r.stdout,
              "%s: the table pairs the rounds' latencies" % what)
        check(("open loop: " in r.stdout) == ("--rate" in args),
              "%s: an open-loop verdict exactly with --rate" % what)
    check(r.returncode == 0, "%s: exit status %d, want 0" %
          (what, r.returncode))
    try:
        with open(jpath) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        check(False, "%s: JSON output parses: %s" % (what, e))
        return None


def check_cap_hits(cmd, tmp):
    """--rate far above what one slot can do (one start per microsecond,
    --concurrency 1): every start after the first comes due while the
    slot is still busy, on both sides, so both count cap hits and the
    run is no open loop.  Counts only, no speed: no connect-close cycle
    takes under a microsecond."""
    n = 200
    jpath = os.path.join(tmp, "bench-cap.json")
    r = run(cmd + ["--connects", str(n), "--warmup", "0",
                   "--concurrency", "1",
                   "--payload", "0", "--rate", "1000000", "--baseline",
                   "--rounds", "1", "--json=" + jpath])
    check(r.returncode == 0, "cap run: exit status %d" % r.returncode)
    check("open loop: NO" in r.stdout,
          "cap run: the table says it was no open loop")
    try:
        with open(jpath) as f:
            doc = json.load(f)
        for p in doc["phases"]:
            where = "cap run, phase %s" % p["phase"]
            # Each side's first start finds its slot free; a later one
            # is due a microsecond after the one before.
            check(p["cap_hits"] >= n // 2,
                  "%s: cap_hits %d, want at least %d of %d starts" %
                  (where, p["cap_hits"], n // 2, n))
            check(p["cap_hits"] <= n - 1,
                  "%s: cap_hits %d at most starts - 1 (%d)" %
                  (where, p["cap_hits"], n - 1))
            check(p["open_loop"] is False, where + ": open_loop false")
        check(doc["cap_hits"] == doc["phases"][0]["cap_hits"] and
              doc["baseline"]["cap_hits"] == doc["phases"][1]["cap_hits"],
              "cap run: each side's cap_hits adds its phases'")
    except (OSError, ValueError, KeyError, IndexError) as e:
        check(False, "cap run: JSON has the documented shape: %r" % e)


def check_run(cmd, tmp, tag, armed, extra):
    """One --baseline --json run; its JSON must add up."""
    doc = run_json(cmd, os.path.join(tmp, "bench-%s.json" % tag),
                   ["--connects", str(CONNECTS), "--warmup", str(WARMUP),
                    "--concurrency", "32", "--payload", str(PAYLOAD),
                    "--baseline"] + extra, "bench")
    if doc is None:
        return
    try:
        check_json(doc, armed)
    except (KeyError, TypeError) as e:
        check(False, "JSON has the documented shape: %r" % e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--wrapper")
    a = ap.parse_args()
    cmd = ([a.wrapper] if a.wrapper else []) + [a.exe]

    with tempfile.TemporaryDirectory() as tmp:
        cpath = os.path.join(tmp, "bench.csv")
        check_run(cmd, tmp, "plain", 0,
                  ["--close", "graceful", "--csv=" + cpath])
        try:
            check_csv(cpath)
        except (OSError, KeyError, ValueError) as e:
            check(False, "CSV output parses: %r" % e)
        # Abortive closes, batched through the ring on io_uring (the
        # other backends ignore the option): the sink must still count
        # every connect.
        check_run(cmd, tmp, "armed", ARMED,
                  ["--armed", str(ARMED), "--batch-closes"])
        # The engine paces the iocx phases, the schedule the raw ones.
        check_run(cmd, tmp, "rate", 0, ["--rate", str(RATE)])
        check_cap_hits(cmd, tmp)
        check_interrupt(cmd, tmp)
        check_interrupt_in_flight(cmd, tmp)
        check_interrupt_before_start(cmd, tmp)
        check_request_response(cmd, tmp)
        check_reply_timeout(cmd)
        check_hdr_log(cmd, tmp)
        check_merge(cmd, tmp)
        check_svg(cmd, tmp)
        check_bad_file(cmd, tmp)
        check_scale(cmd, tmp)
        check_scale_interrupt(cmd, tmp)
    check_bad_usage(cmd)
    check_progress(cmd)
    check_targets_round_robin(cmd)

    return verdict()


if __name__ == "__main__":
    sys.exit(main())
