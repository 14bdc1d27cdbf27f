#!/usr/bin/env python3
"""Several load machines, shown with network namespaces (suite 'bench').

Creates N = 3 client namespaces and one sink namespace, each client
joined to the sink by a veth pair of its own (client i is 10.213.i.2, the
sink answers on 10.213.i.1), starts a sink in the sink namespace, and
runs one iocx-bench per client namespace, all with the same --start-at
a little in the future, each writing its --hdr-log and --json.  Then
checks that:

  - every bench waited for the start time (its log's StartTime is not
    before it) and succeeded;
  - `iocx-bench merge` of the three logs counts the sum of the three
    JSON reports' connects, and its p50 and p99 are those of one
    histogram fed every sample (hdr-histogram-js adds every interval of
    the three logs into one); merging the three JSON reports instead
    gives the same numbers;
  - the runs overlapped, so the merge gives a combined rate.

Namespaces, links and processes are removed on every exit (also on
SIGTERM from meson's timeout).  Needs root and `ip netns`: without them
it exits 77 (skip) saying why.  Native builds only: under Wine the
sockets are wineserver's, which lives outside the namespaces.

usage: check_netns.py --exe PATH
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from check_bench import check, read_hlogs, verdict

N = 3
DURATION_S = "2"
# Far enough ahead for three processes to start under a loaded machine.
START_DELAY_S = 3.0
TIMEOUT_S = 60
SKIP = 77

# What to undo, newest last: namespaces, processes.
namespaces = []
procs = []

# A sink for the sink namespace: accepts on every address and closes,
# counting; prints "ready" once listening, its count when stdin closes.
SINK = r"""
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(4096)
n = 0
def serve():
    global n
    while True:
        try:
            c, _ = s.accept()
        except OSError:
            return
        n += 1
        c.close()
threading.Thread(target=serve, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
print(n, flush=True)
"""


def sh(*args):
    """Run a command that must succeed (set-up steps)."""
    print("running: " + " ".join(args), flush=True)
    subprocess.run(args, check=True, timeout=TIMEOUT_S)


def cleanup():
    for p in reversed(procs):
        if p.poll() is None:
            p.kill()
        p.wait()
    for ns in reversed(namespaces):
        # Deleting a namespace deletes its ends of the veth pairs.
        subprocess.run(["ip", "netns", "del", ns])


def on_signal(signo, frame):
    raise SystemExit(128 + signo)


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


def add_namespace(name):
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True,
                       text=True, timeout=TIMEOUT_S)
    if r.returncode != 0:
        skip("`ip netns add` is not permitted here: " + r.stderr.strip())
    namespaces.append(name)
    sh("ip", "-n", name, "link", "set", "lo", "up")


def topology(tag):
    """The sink namespace and N clients, one veth pair each."""
    sink = tag + "s"
    add_namespace(sink)
    clients = []
    for i in range(N):
        ns = "%sc%d" % (tag, i)
        add_namespace(ns)
        a, b = "%sa%d" % (tag, i), "%sb%d" % (tag, i)
        sh("ip", "link", "add", a, "netns", sink, "type", "veth", "peer",
           "name", b, "netns", ns)
        sh("ip", "-n", sink, "addr", "add", "10.213.%d.1/24" % i, "dev", a)
        sh("ip", "-n", ns, "addr", "add", "10.213.%d.2/24" % i, "dev", b)
        sh("ip", "-n", sink, "link", "set", a, "up")
        sh("ip", "-n", ns, "link", "set", b, "up")
        clients.append(ns)
    return sink, clients


def start_sink(sink, port):
    p = subprocess.Popen(["ip", "netns", "exec", sink, sys.executable,
                          "-c", SINK, str(port)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    procs.append(p)
    if p.stdout.readline().strip() != "ready":
        raise SystemExit("the sink did not start")
    return p


def hlog_start_time(path):
    with open(path) as f:
        for line in f:
            if line.startswith("#[StartTime: "):
                return float(line.split()[1])
    return None


def run_benches(exe, clients, port, tmp):
    """One bench per client namespace, a common --start-at."""
    start_at = "%.3f" % (time.time() + START_DELAY_S)
    hlogs, jsons = [], []
    for i, ns in enumerate(clients):
        hlogs.append(os.path.join(tmp, "%s.hlog" % ns))
        jsons.append(os.path.join(tmp, "%s.json" % ns))
        args = ["ip", "netns", "exec", ns, exe, "--target",
                "10.213.%d.1:%d" % (i, port), "--duration", DURATION_S,
                "--concurrency", "4", "--start-at", start_at, "--quiet",
                "--hdr-log", hlogs[-1], "--json=" + jsons[-1]]
        print("running: " + " ".join(args), flush=True)
        procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL))
    for i, p in enumerate(procs[-N:]):
        rc = p.wait(timeout=TIMEOUT_S)
        check(rc == 0, "bench in %s: exit status %d" % (clients[i], rc))
    return float(start_at), hlogs, jsons


def check_results(exe, start_at, hlogs, jsons):
    for h in hlogs:
        t = hlog_start_time(h)
        check(t is not None and t >= start_at,
              "%s: started at %s, not before --start-at %.3f" %
              (h, t, start_at))
    parts = [json.load(open(j)) for j in jsons]
    for j, doc in zip(jsons, parts):
        check(doc["settings"]["start_at"] == start_at,
              "%s: settings.start_at is %.3f" % (j, start_at))
        check(doc["connects"] > 0 and doc["errors"] == {},
              "%s: %d connects, no errors" % (j, doc["connects"]))
    r = subprocess.run([exe, "merge", "--json"] + hlogs,
                       capture_output=True, text=True, timeout=TIMEOUT_S)
    check(r.returncode == 0, "merge: exit status %d" % r.returncode)
    merged = json.loads(r.stdout)
    print("merge: " + r.stdout)
    js = read_hlogs(hlogs)
    total = sum(p["connects"] for p in parts)
    check(merged["connects"] == total == js["all"]["count"],
          "merged connects %d == the sum of the three %d" %
          (merged["connects"], total))
    # One histogram with every sample (the same buckets): the same p50
    # and p99, each the top of its bucket, to 0.1 us of rounding.
    for k in ("p50", "p99"):
        check(abs(merged["latency_us"][k] * 1e3 - js["all"][k]) <= 100,
              "merged %s %.1f us == one histogram's %.1f us" %
              (k, merged["latency_us"][k], js["all"][k] / 1e3))
    check(merged["overlap_s"] is not None and merged["overlap_s"] > 0 and
          merged["connects_per_sec"] > 0,
          "the three ran together: a combined rate")
    # The JSON reports merge to the same numbers.
    r = subprocess.run([exe, "merge", "--json"] + jsons,
                       capture_output=True, text=True, timeout=TIMEOUT_S)
    check(r.returncode == 0, "merge of the JSON reports: exit status %d" %
          r.returncode)
    mj = json.loads(r.stdout)
    for k in ("connects", "overlap_s", "connects_per_sec", "latency_us"):
        check(mj[k] == merged[k], "JSON merge %s %s == log merge's %s" %
              (k, mj[k], merged[k]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    a = ap.parse_args()
    if os.geteuid() != 0:
        skip("network namespaces need root")
    if not shutil.which("ip"):
        skip("no `ip` command (iproute2) to make network namespaces")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    tag = "ib%d" % (os.getpid() % 100000)
    port = 18000 + os.getpid() % 1000
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sink, clients = topology(tag)
            sinkp = start_sink(sink, port)
            start_at, hlogs, jsons = run_benches(a.exe, clients, port, tmp)
            sinkp.stdin.close()
            accepted = int(sinkp.stdout.readline())
            print("sink accepted %d" % accepted)
            check_results(a.exe, start_at, hlogs, jsons)
    finally:
        cleanup()
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
