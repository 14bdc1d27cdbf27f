#!/usr/bin/env python3
"""Soak check of iocx-bench (meson test suites 'slow' and 'long', Linux).

Runs iocx-bench natively for --connects connects (default 1,000,000)
against its built-in sink and samples the process's resident memory
(VmRSS) and open descriptors (/proc/PID/fd) once a second.  Fails when
the run does not exit 0, when its JSON does not account for every connect
(connects + errors = attempts = asked), or when the samples grow: the
highest of the last fifth of the run against the highest of the first
fifth (after a settling second) may differ by at most --rss-slack-kib of
memory and --fd-slack descriptors.  Prints every sample's summary and the
numbers compared.  No speed is asserted.

usage: check_soak.py --exe PATH [--connects N] [--backend NAME]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    """VmRSS of pid in KiB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--connects", type=int, default=1000000)
    ap.add_argument("--backend", default=None)
    ap.add_argument("--rss-slack-kib", type=int, default=8192)
    ap.add_argument("--fd-slack", type=int, default=32)
    ap.add_argument("--timeout", type=int, default=1500)
    args = ap.parse_args()

    env = dict(os.environ)
    if args.backend:
        env["IOCX_BACKEND"] = args.backend
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "soak.json")
        cmd = [args.exe, "--connects", str(args.connects), "--quiet",
               f"--json={out}"]
        print("running:", " ".join(cmd),
              f"(IOCX_BACKEND={args.backend or 'default'})", flush=True)
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        samples = []            # (seconds, rss KiB, fds)
        next_t = t0 + 1.0
        while proc.poll() is None:
            if time.monotonic() - t0 > args.timeout:
                proc.kill()
                proc.wait()
                print(f"FAIL: still running after {args.timeout} s")
                return 1
            time.sleep(max(0.0, next_t - time.monotonic()))
            next_t += 1.0
            rss, fds = rss_kib(proc.pid), fd_count(proc.pid)
            if rss is not None and fds is not None and proc.poll() is None:
                samples.append((time.monotonic() - t0, rss, fds))
        elapsed = time.monotonic() - t0
        if proc.returncode != 0:
            print(f"FAIL: iocx-bench exited {proc.returncode}")
            return 1
        with open(out, encoding="utf-8") as f:
            report = json.load(f)

    failures = []
    errors = sum(report.get("errors", {}).values()) \
        if isinstance(report.get("errors"), dict) else 0
    if report.get("attempts") != args.connects or \
            report.get("connects", 0) + errors != args.connects:
        failures.append(f"counts: attempts {report.get('attempts')}, "
                        f"connects {report.get('connects')}, errors {errors}"
                        f", asked {args.connects}")
    print(f"{args.connects} connects in {elapsed:.1f} s, "
          f"{report.get('connects_per_sec')} connects/s, errors {errors}, "
          f"{len(samples)} samples")
    if len(samples) < 10:
        failures.append(f"only {len(samples)} samples: run too short to "
                        "judge growth")
    else:
        body = samples[1:]      # the first second is start-up
        fifth = max(2, len(body) // 5)
        first, last = body[:fifth], body[-fifth:]
        rss0, rss1 = max(s[1] for s in first), max(s[1] for s in last)
        fd0, fd1 = max(s[2] for s in first), max(s[2] for s in last)
        print(f"RSS KiB: first fifth max {rss0}, last fifth max {rss1}, "
              f"growth {rss1 - rss0} (bound {args.rss_slack_kib}); "
              f"all samples {min(s[1] for s in body)}.."
              f"{max(s[1] for s in body)}")
        print(f"fds: first fifth max {fd0}, last fifth max {fd1}, growth "
              f"{fd1 - fd0} (bound {args.fd_slack}); all samples "
              f"{min(s[2] for s in body)}..{max(s[2] for s in body)}")
        if rss1 - rss0 > args.rss_slack_kib:
            failures.append(f"RSS grew by {rss1 - rss0} KiB")
        if fd1 - fd0 > args.fd_slack:
            failures.append(f"open descriptors grew by {fd1 - fd0}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
