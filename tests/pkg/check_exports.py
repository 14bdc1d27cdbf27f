#!/usr/bin/env python3
"""Fail unless a shared iocx library exports exactly the public API.

    check_exports.py --header include/iocx.h --elf NM libiocx.so
    check_exports.py --header include/iocx.h --pe OBJDUMP iocx.dll

The public API is every function include/iocx.h declares with IOCX_API.
The exported names come from the ELF dynamic symbol table (nm -D
--defined-only) or from the DLL's export table (objdump -p).  Any exported
name that is not a public function fails the test (an internal iocx__
symbol, a leaked helper, a runtime symbol), and so does a public function
that is not exported.  Prints both lists, so a failure shows what leaked.
"""
import argparse
import re
import subprocess
import sys


def public_functions(header):
    text = open(header, encoding="utf-8").read()
    # Drop comments, then every "IOCX_API <type> name(" declaration.
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    names = re.findall(r"\bIOCX_API\b[^;{()]*?\b(iocx_[A-Za-z0-9_]+)\s*\(",
                       text)
    # The macro's own definition lines ("#define IOCX_API ...") name nothing.
    return set(names)


def elf_exports(nm, lib):
    out = subprocess.run([nm, "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            names.add(fields[2].split("@")[0])
    return names


def pe_exports(objdump, dll):
    out = subprocess.run([objdump, "-p", dll], check=True,
                         capture_output=True, text=True).stdout
    names, in_table = set(), False
    for line in out.splitlines():
        if line.startswith("[Ordinal/Name Pointer] Table"):
            in_table = True
            continue
        if in_table:
            m = re.match(r"\s*\[\s*\d+\]\s+(\S+)", line)
            if not m:
                break
            names.add(m.group(1))
    if not in_table:
        sys.exit("no export table in %s" % dll)
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--header", required=True)
    kind = ap.add_mutually_exclusive_group(required=True)
    kind.add_argument("--elf", metavar="NM")
    kind.add_argument("--pe", metavar="OBJDUMP")
    ap.add_argument("library")
    a = ap.parse_args()

    api = public_functions(a.header)
    if not api:
        sys.exit("no IOCX_API function found in %s" % a.header)
    if a.elf:
        exported = elf_exports(a.elf, a.library)
    else:
        exported = pe_exports(a.pe, a.library)

    extra = sorted(exported - api)
    missing = sorted(api - exported)
    print("%s: %d exported, %d public functions in %s"
          % (a.library, len(exported), len(api), a.header))
    for name in sorted(exported):
        print("  exported: %s" % name)
    for name in extra:
        print("NOT PUBLIC but exported: %s" % name)
    for name in missing:
        print("PUBLIC but not exported: %s" % name)
    return 1 if extra or missing else 0


if __name__ == "__main__":
    sys.exit(main())
