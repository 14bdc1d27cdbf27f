#!/usr/bin/env python3
"""End-to-end test of iocx-bench --target NAME:PORT and --resolver
(meson test suite 'bench').

Starts a DNS responder of its own on a loopback UDP port (a thread of
this script, stopped at the end): the test name answers A 127.0.0.1 and
an empty AAAA, every other name NXDOMAIN.  The bench is pointed at it
with --resolver, so no query goes to the machine's configured DNS server.

Natively it checks that:

  - --target NAME:0 (the built-in sink's port) --json: exit 0, every
    connect succeeded, the sink saw them all, each phase's resolve_us
    counts every connect (warm-up included) with ordered, non-zero
    percentiles, and the responder answered at least one A query per
    connect (the engine caches nothing by default);
  - the table shows the resolution line apart from the latencies;
  - --csv has each interval's resolved count and resolution p50/p99
    (adding up to every connect), --hdr-log a "resolve.PHASE.ROUND"
    interval beside each latency one (hdr-histogram-js reads both;
    merge leaves them out of the latencies), --svg a dashed resolution
    curve per phase; a numeric target has none of them;
  - a name the responder does not know: exit 1, every attempt
    IOCX_E_NAME;
  - a numeric target's phases say resolve_us null.

Through a wrapper (Wine), the engine's own resolver (GetAddrInfoExW)
takes no list of servers: --resolver makes the engine refuse to start
(IOCX_E_NOTSUP, "not supported", a non-zero exit) and no query is sent.
Names through the host's resolver are not run here: under Wine an AAAA
query for any name the host's hosts file lacks would reach the
machine's configured DNS server (tests/net/test_gai_win.c covers
localhost).  No speed is asserted.

usage: check_names.py --exe PATH [--wrapper PROG]
"""
import argparse
import csv
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET

from check_bench import SVG, check, read_hlogs, run, verdict

NAME = "bench-name.test"
CONNECTS = 300
WARMUP = 30


class Responder:
    """UDP DNS on 127.0.0.1: NAME -> A 127.0.0.1, empty AAAA; others
    NXDOMAIN.  Counts the queries per type."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.queries = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def answer(self, q):
        if len(q) < 17:
            return None
        qid = struct.unpack(">H", q[:2])[0]
        labels, i = [], 12
        while i < len(q) and q[i] and len(labels) < 128:
            labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace"))
            i += 1 + q[i]
        if i + 5 > len(q):
            return None
        question = q[12:i + 5]
        qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
        with self.lock:
            self.queries[qtype] = self.queries.get(qtype, 0) + 1
        known = ".".join(labels).lower() == NAME
        rcode = 0 if known else 3
        records = b""
        if known and qtype == 1:
            records = (b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) +
                       socket.inet_aton("127.0.0.1"))
        head = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1,
                           1 if records else 0, 0, 0)
        return head + question + records

    def loop(self):
        while not self.stop.is_set():
            try:
                q, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            r = self.answer(q)
            if r:
                self.sock.sendto(r, peer)

    def count(self, qtype):
        with self.lock:
            return self.queries.get(qtype, 0)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def run_json(cmd, args, want_rc, what):
    r = run(cmd + args + ["--json", "--quiet"])
    sys.stderr.write(r.stderr)
    check(r.returncode == want_rc, "%s: exit status %d, want %d" %
          (what, r.returncode, want_rc))
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        check(False, "%s: JSON on stdout: %s" % (what, e))
        return None


def check_resolved(cmd, dns):
    a_before = dns.count(1)
    doc = run_json(cmd, ["--target", NAME + ":0", "--resolver", dns.address,
                         "--connects", str(CONNECTS), "--warmup",
                         str(WARMUP), "--concurrency", "8"], 0, "by name")
    if doc is None:
        return
    check(doc["connects"] == CONNECTS - WARMUP and doc["errors"] == {},
          "by name: %d measured connects, no error: %d, %s" %
          (CONNECTS - WARMUP, doc["connects"], doc["errors"]))
    check(doc["sink"]["checked"] and doc["sink"]["ok"] and
          doc["sink"]["accepted"] == CONNECTS,
          "by name: the sink accepted all %d: %s" % (CONNECTS, doc["sink"]))
    check(doc["settings"]["resolver"] == dns.address,
          "settings.resolver is %s" % doc["settings"]["resolver"])
    check(doc["settings"]["target"].startswith(NAME + ":") and
          not doc["settings"]["target"].endswith(":0"),
          "settings.target names the sink's port: %s" %
          doc["settings"]["target"])
    for p in doc["phases"]:
        res = p["resolve_us"]
        check(res is not None and res["count"] == CONNECTS,
              "phase %s: resolve_us counts all %d connects: %s" %
              (p["phase"], CONNECTS, res))
        if res:
            v = [res["min"], res["p50"], res["p99"], res["max"]]
            check(v == sorted(v) and v[0] > 0,
                  "phase %s: resolution min <= p50 <= p99 <= max, > 0: %s"
                  % (p["phase"], v))
    asked = dns.count(1) - a_before
    check(asked >= CONNECTS, "the responder answered %d A queries, want "
          ">= %d (one per connect)" % (asked, CONNECTS))


def check_table(cmd, dns):
    r = run(cmd + ["--target", NAME + ":0", "--resolver", dns.address,
                   "--connects", "50", "--concurrency", "4", "--quiet"])
    check(r.returncode == 0, "table: exit status %d" % r.returncode)
    lines = r.stdout.splitlines()
    head = [l for l in lines if l.startswith("resolution ")]
    check(len(head) == 1 and dns.address in head[0],
          "table: one resolution heading naming the DNS server: %s" % head)
    rows = [l for l in lines if l.startswith("iocx #") and
            " resolved " in l]
    check(len(rows) == 1 and rows[0].split()[2] == "50",
          "table: the phase resolved 50 names: %s" % rows)


def check_outputs(cmd, dns, tmp):
    """Resolution in --csv, --hdr-log (and merge) and --svg, by name;
    none of it for a numeric target."""
    paths = {k: os.path.join(tmp, "names." + k)
             for k in ("csv", "hlog", "svg", "json")}
    r = run(cmd + ["--target", NAME + ":0", "--resolver", dns.address,
                   "--connects", str(CONNECTS), "--warmup", str(WARMUP),
                   "--concurrency", "8",
                   "--csv=" + paths["csv"], "--hdr-log", paths["hlog"],
                   "--svg", paths["svg"], "--json=" + paths["json"],
                   "--quiet"])
    sys.stderr.write(r.stderr)
    check(r.returncode == 0, "outputs by name: exit status %d" %
          r.returncode)
    try:
        with open(paths["csv"], newline="") as f:
            rows = list(csv.DictReader(f))
        with open(paths["json"]) as f:
            doc = json.load(f)
        logs = read_hlogs([paths["hlog"]])
        root = ET.parse(paths["svg"]).getroot()
    except (OSError, ValueError, ET.ParseError) as e:
        check(False, "outputs by name: read them: %s" % e)
        return
    # CSV: every interval says how many connects resolved and how fast;
    # they add up to every connect of the phase (warm-up included).
    check(rows and all(r["resolved"] != "" for r in rows),
          "CSV: a resolved count in every row")
    check(sum(int(r["resolved"]) for r in rows) == CONNECTS,
          "CSV: the intervals resolved %d names in all, want %d" %
          (sum(int(r["resolved"] or 0) for r in rows), CONNECTS))
    for r in rows:
        if r["resolved"] and int(r["resolved"]) > 0:
            p50, p99 = float(r["resolve_p50_us"]), float(r["resolve_p99_us"])
            check(0 < p50 <= p99, "CSV t=%s: 0 < resolve p50 %.1f <= p99 "
                  "%.1f us" % (r["t_s"], p50, p99))
    # hlog: tag resolve.iocx.1 beside iocx.1, read by hdr-histogram-js.
    print("hdr-histogram-js: %s" % logs)
    res = logs.get("resolve.iocx.1")
    lat = logs.get("iocx.1")
    check(res is not None and res["count"] == CONNECTS,
          "hlog: resolve.iocx.1 counts all %d connects: %s" %
          (CONNECTS, res))
    check(lat is not None and lat["count"] == doc["connects"],
          "hlog: iocx.1 still the %d measured latencies: %s" %
          (doc["connects"], lat))
    # merge keeps the latencies only.
    m = run(cmd + ["merge", "--json", paths["hlog"]])
    try:
        merged = json.loads(m.stdout)
        tags = [p["tag"] for p in merged["phases"]]
    except (ValueError, KeyError) as e:
        check(False, "merge of a log by name: %s" % e)
    else:
        check(m.returncode == 0 and tags == ["iocx.1"] and
              merged["connects"] == doc["connects"],
              "merge of a log by name: phase iocx.1 only, %d connects: "
              "%s, %d" % (doc["connects"], tags, merged["connects"]))
    # SVG: a dashed resolution curve per phase in the spectrum.
    groups = {g.get("id"): g for g in root.iter(SVG + "g")}
    g = groups.get("spectrum")
    curves = [] if g is None else [
        p.get("data-phase") for p in g if p.get("class") == "resolution"]
    check(curves == ["iocx #1"], "SVG: one resolution curve, iocx #1: %s"
          % curves)

    # A numeric target: empty resolution fields, no resolve tag, no curve.
    r = run(cmd + ["--connects", "50", "--concurrency", "4",
                   "--csv=" + paths["csv"],
                   "--hdr-log", paths["hlog"], "--svg", paths["svg"],
                   "--quiet"])
    check(r.returncode == 0, "numeric outputs: exit status %d" %
          r.returncode)
    try:
        with open(paths["csv"], newline="") as f:
            rows = list(csv.DictReader(f))
        with open(paths["hlog"]) as f:
            hlog = f.read()
        with open(paths["svg"]) as f:
            svg = f.read()
    except OSError as e:
        check(False, "numeric outputs: %s" % e)
        return
    check(rows and all(r["resolved"] == r["resolve_p50_us"] ==
                       r["resolve_p99_us"] == "" for r in rows),
          "numeric CSV: empty resolution fields")
    check("Tag=resolve." not in hlog, "numeric hlog: no resolve tag")
    check('class="resolution"' not in svg, "numeric SVG: no resolution")


def check_nxdomain(cmd, dns):
    doc = run_json(cmd, ["--target", "missing.test:0", "--resolver",
                         dns.address, "--connects", "20", "--concurrency",
                         "4"], 1, "unknown name")
    if doc is None:
        return
    check(doc["totals"]["connects"] == 0 and
          doc["totals"]["errors"] == {"IOCX_E_NAME": 20},
          "unknown name: all 20 IOCX_E_NAME: %s" % doc["totals"])


def check_numeric(cmd):
    doc = run_json(cmd, ["--connects", "50", "--concurrency", "4"], 0,
                   "numeric")
    if doc is None:
        return
    check(all(p["resolve_us"] is None for p in doc["phases"]),
          "numeric target: resolve_us null")
    check(doc["settings"]["resolver"] is None, "numeric: resolver null")


def check_windows(cmd, dns):
    r = run(cmd + ["--target", NAME + ":0", "--resolver", dns.address,
                   "--connects", "20", "--concurrency", "4", "--json",
                   "--quiet"])
    sys.stderr.write(r.stderr)
    check(r.returncode != 0 and "not supported" in r.stderr,
          "Windows: --resolver refused (GetAddrInfoExW takes no server "
          "list): exit %d, stderr %r" % (r.returncode, r.stderr))
    check(dns.count(1) + dns.count(28) == 0,
          "Windows: no DNS query sent: %s" % dns.queries)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--wrapper")
    a = ap.parse_args()
    cmd = ([a.wrapper] if a.wrapper else []) + [a.exe]

    dns = Responder()
    try:
        if a.wrapper:
            check_windows(cmd, dns)
        else:
            check_resolved(cmd, dns)
            check_table(cmd, dns)
            with tempfile.TemporaryDirectory() as tmp:
                check_outputs(cmd, dns, tmp)
            check_nxdomain(cmd, dns)
            check_numeric(cmd)
    finally:
        dns.close()
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
