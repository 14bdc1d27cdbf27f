#!/usr/bin/env python3
"""`meson install` installs iocx-bench and its man page (meson test suite
'bench'): installs the build into a temporary DESTDIR and looks for both.

usage: check_install.py --builddir DIR
"""
import argparse
import os
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--builddir", required=True)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as dest:
        r = subprocess.run(["meson", "install", "-C", a.builddir,
                            "--destdir", dest, "--no-rebuild", "--quiet"],
                           capture_output=True, text=True, timeout=300)
        sys.stdout.write(r.stdout + r.stderr)
        if r.returncode != 0:
            print("FAIL: meson install exited %d" % r.returncode)
            return 1
        found = {}
        for top, _, files in os.walk(dest):
            for f in files:
                found[f] = os.path.relpath(os.path.join(top, f), dest)
        ok = True
        for want, where in (("iocx-bench", "bin"), ("iocx-bench.1", "man1")):
            path = found.get(want) or found.get(want + ".exe")
            if not path or os.path.basename(os.path.dirname(path)) != where:
                print("FAIL: %s not installed in .../%s/ (installed: %s)" %
                      (want, where, sorted(found.values())))
                ok = False
            else:
                print("installed: %s" % path)
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
