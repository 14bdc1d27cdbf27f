#!/usr/bin/env python3
"""Connects by name through a real DNS server: Debian's dnsmasq (issue 16,
meson test suite 'bench', native only).

The script writes a hosts file (web.iocx.test -> 127.0.0.1) and a
dnsmasq config of its own into a temporary directory, starts dnsmasq in
the foreground on 127.0.0.1 on a free UDP port, with no upstream server
(no-resolv, no-hosts, local=/iocx.test/: it answers only from that
hosts file, NXDOMAIN for other iocx.test names, REFUSED for the rest),
and stops it by its pid at the end.  The engine is pointed at it with
iocx-bench's --resolver, so no query goes to the machine's configured
DNS server, and dnsmasq itself forwards nothing.

Checks that:

  - --target web.iocx.test:0 (the built-in sink): exit 0, every connect
    succeeded and the sink saw them all, resolve_us counts every connect,
    and dnsmasq's query log shows the A queries for the name;
  - --target nope.iocx.test:0: exit 1, every attempt IOCX_E_NAME.

Exit 77 (skip) when dnsmasq is not installed (scripts/setup.sh installs
dnsmasq-base) or does not start, with its own words.

usage: check_dnsmasq.py --exe PATH
"""
import argparse
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from check_bench import check, failures, verdict
from check_names import run_json

SKIP = 77
NAME = "web.iocx.test"
CONNECTS = 200
START_S = 10
PORT_TRIES = 5


def free_port():
    """A port free on 127.0.0.1 for UDP and TCP (dnsmasq takes both)
    just now; another process may take it before dnsmasq does, so the
    caller retries on "Address already in use"."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t.bind(("127.0.0.1", port))
        return port
    except OSError:
        return None
    finally:
        u.close()
        t.close()


def ask(port, name, qtype=1):
    """One query to 127.0.0.1:port; the reply's rcode, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split("."))
    q += b"\0" + struct.pack(">HH", qtype, 1)
    try:
        s.sendto(q, ("127.0.0.1", port))
        r = s.recv(512)
    except OSError:
        return None
    finally:
        s.close()
    return r[3] & 0x0F if len(r) >= 12 and r[:2] == q[:2] else None


class Dnsmasq:
    def __init__(self, exe, tmp):
        self.tmp = tmp
        self.log = os.path.join(tmp, "dnsmasq.log")
        self.pidfile = os.path.join(tmp, "dnsmasq.pid")
        self.proc = None
        self.why = ""
        # dnsmasq drops to user nobody: let it read its files.
        os.chmod(tmp, 0o755)
        hosts = os.path.join(tmp, "hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 %s\n" % NAME)
        os.chmod(hosts, 0o644)
        self.hosts = hosts
        self.port = None
        self.conf = os.path.join(tmp, "dnsmasq.conf")
        self.cmd = [exe, "--keep-in-foreground", "--conf-file=" + self.conf]

    def configure(self, port):
        self.port = port
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "port=%d" % self.port,
                "listen-address=127.0.0.1",
                "bind-interfaces",
                "no-resolv",        # no upstream from resolv.conf
                "no-poll",
                "no-hosts",         # not /etc/hosts
                "addn-hosts=" + self.hosts,
                "local=/iocx.test/",  # never forwarded: NXDOMAIN if unknown
                "log-queries",
                "log-facility=" + self.log,
                "pid-file=" + self.pidfile,
                ""]))

    def start(self):
        """True once it answers on a free port; False (stopped, its
        words in self.why) if it did not.  A port taken between the
        check and dnsmasq's bind is retried with another."""
        self.why = "no port was free for both UDP and TCP"
        for _ in range(PORT_TRIES):
            port = free_port()
            if port is None:
                continue
            self.configure(port)
            if self.start_once():
                return True
            self.stop()
            self.why = self.words()
            if "Address already in use" not in self.why:
                return False
        return False

    def start_once(self):
        print("running: " + " ".join(self.cmd), flush=True)
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if ask(self.port, NAME) == 0:
                return True
            time.sleep(0.05)
        return False

    def words(self):
        """What dnsmasq said (once stopped); the log is emptied."""
        out = ""
        if self.proc and self.proc.stdout:
            out = self.proc.stdout.read() or ""
        if os.path.exists(self.log):
            with open(self.log) as f:
                out += f.read()
            os.unlink(self.log)
        return out.strip()

    def queries(self, qtype, name):
        with open(self.log) as f:
            return sum(1 for l in f
                       if ("query[%s] %s " % (qtype, name)) in l)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def bench(cmd, dns, name, want_rc, what):
    return run_json(cmd, ["--target", name + ":0", "--resolver",
                          "127.0.0.1:%d" % dns.port, "--connects",
                          str(CONNECTS), "--warmup", "0", "--concurrency",
                          "8"], want_rc, what)


def check_resolved(cmd, dns):
    before = dns.queries("A", NAME)
    doc = bench(cmd, dns, NAME, 0, "dnsmasq name")
    if doc is None:
        return
    check(doc["connects"] == CONNECTS and doc["errors"] == {},
          "dnsmasq name: %d connects, no error: %d, %s" %
          (CONNECTS, doc["connects"], doc["errors"]))
    check(doc["sink"]["checked"] and doc["sink"]["accepted"] == CONNECTS,
          "dnsmasq name: the sink accepted all %d: %s" %
          (CONNECTS, doc["sink"]))
    for p in doc["phases"]:
        res = p["resolve_us"]
        check(res is not None and res["count"] == CONNECTS,
              "phase %s: resolve_us counts all %d connects: %s" %
              (p["phase"], CONNECTS, res))
    asked = dns.queries("A", NAME) - before
    # dnsmasq logs each query it received; c-ares asks once per connect.
    check(asked >= CONNECTS, "dnsmasq logged %d A queries for %s, want "
          ">= %d" % (asked, NAME, CONNECTS))


def check_unknown(cmd, dns):
    doc = bench(cmd, dns, "nope.iocx.test", 1, "unknown name")
    if doc is None:
        return
    check(doc["totals"]["connects"] == 0 and
          doc["totals"]["errors"] == {"IOCX_E_NAME": CONNECTS},
          "unknown name: all %d IOCX_E_NAME: %s" %
          (CONNECTS, doc["totals"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    a = ap.parse_args()
    exe = shutil.which("dnsmasq") or (
        "/usr/sbin/dnsmasq" if os.access("/usr/sbin/dnsmasq", os.X_OK)
        else None)
    if exe is None:
        print("SKIP: dnsmasq is not installed (Debian dnsmasq-base, "
              "scripts/setup.sh)")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="iocx-dnsmasq-") as tmp:
        dns = Dnsmasq(exe, tmp)
        try:
            if not dns.start():
                print("SKIP: dnsmasq did not start on 127.0.0.1 (%d "
                      "ports tried): %s" % (PORT_TRIES, dns.why))
                return SKIP
            check_resolved([a.exe], dns)
            check_unknown([a.exe], dns)
        finally:
            dns.stop()
            if failures:
                print(dns.words())
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
