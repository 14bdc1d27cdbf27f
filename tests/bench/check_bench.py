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
Finally checks that bad usage exits 2 with a one-line message.  No timing
is asserted.

usage: check_bench.py --exe PATH [--wrapper PROG]
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

CONNECTS = 500
WARMUP = 50
PAYLOAD = 64
ARMED = 2000
TIMEOUT_S = 120

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what)


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


def check_json(doc, armed):
    check_side(doc, "top level")
    settings = doc["settings"]
    for k in ["backend", "target", "sink", "sink_threads", "connects",
              "duration_s", "concurrency", "workers", "batch", "payload",
              "fastopen", "close", "rate", "warmup_connects", "warmup_s",
              "timeout_s", "baseline", "rounds", "armed"]:
        check(k in settings, "settings.%s present" % k)
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


def check_bad_usage(cmd):
    bad = [["--concurrency", "0"], ["--bogus"], ["--target", "localhost:80"],
           ["--payload", "16777217"], ["--close", "maybe"],
           ["--armed", "1000001"], ["--batch-closes=1"]]
    for args in bad:
        r = run(cmd + args)
        check(r.returncode == 2, "%s: exit status %d, want 2" %
              (" ".join(args), r.returncode))
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(len(lines) >= 1 and lines[0].startswith("iocx-bench: "),
              "%s: one clear message on stderr" % " ".join(args))
        check(r.stdout == "", "%s: nothing on stdout" % " ".join(args))


def check_run(cmd, tmp, armed, extra):
    """One --baseline --json run; its JSON must add up."""
    jpath = os.path.join(tmp, "bench-%d.json" % armed)
    r = run(cmd + ["--connects", str(CONNECTS), "--warmup", str(WARMUP),
                   "--concurrency", "32", "--payload", str(PAYLOAD),
                   "--baseline", "--json=" + jpath] + extra)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    check(r.returncode == 0, "bench exit status %d, want 0" % r.returncode)
    try:
        with open(jpath) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        check(False, "JSON output parses: %s" % e)
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
        check_run(cmd, tmp, 0, ["--close", "graceful", "--csv=" + cpath])
        try:
            check_csv(cpath)
        except (OSError, KeyError, ValueError) as e:
            check(False, "CSV output parses: %r" % e)
        # Abortive closes, batched through the ring on io_uring (the
        # other backends ignore the option): the sink must still count
        # every connect.
        check_run(cmd, tmp, ARMED, ["--armed", str(ARMED), "--batch-closes"])
    check_bad_usage(cmd)

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
