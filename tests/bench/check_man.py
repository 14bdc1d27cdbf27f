#!/usr/bin/env python3
"""The man page bench/iocx-bench.1 lists every option of `iocx-bench
--help`, and no other (meson test suite 'bench').

Options are the words starting with '-' followed by a letter, in the help
text and in the page (where troff writes \\- for -).

usage: check_man.py --exe PATH --man PATH [--wrapper PROG]
"""
import argparse
import re
import subprocess
import sys

OPTION = re.compile(r"(?<![\w-])(--?[a-z](?:[a-z-]*[a-z])?)(?![\w])")


def options(text):
    return set(OPTION.findall(text))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--man", required=True)
    ap.add_argument("--wrapper")
    a = ap.parse_args()
    cmd = ([a.wrapper] if a.wrapper else []) + [a.exe, "--help"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        print("FAIL: --help exited %d" % r.returncode)
        return 1
    helped = options(r.stdout)
    with open(a.man) as f:
        page = f.read().replace("\\-", "-")
    documented = options(page)
    ok = True
    for o in sorted(helped - documented):
        print("FAIL: %s is in --help but not in the man page" % o)
        ok = False
    for o in sorted(documented - helped):
        print("FAIL: %s is in the man page but not in --help" % o)
        ok = False
    if len(helped) < 30:
        print("FAIL: only %d options found in --help: %s" %
              (len(helped), sorted(helped)))
        ok = False
    print("%d options, in --help and in the man page alike: %s" %
          (len(helped), " ".join(sorted(helped))) if ok else
          "the man page and --help disagree")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
