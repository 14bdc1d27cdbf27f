#!/usr/bin/env python3
"""Write the README's API example, exactly as printed, to a C file.

    extract_quickstart.py README.md OUT.c

The example is the one ```c block of the section "## The API in short".
Anything else (no such section, no block, two blocks, an unclosed block)
is an error: the test that compiles the example must never compile
something other than what a reader sees.
"""
import sys

SECTION = "## The API in short"


def extract(lines):
    try:
        start = lines.index(SECTION)
    except ValueError:
        sys.exit("README has no section %r" % SECTION)
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith("## ")), len(lines))
    blocks, block = [], None
    for line in lines[start + 1:end]:
        if block is None and line == "```c":
            block = []
        elif block is not None and line == "```":
            blocks.append(block)
            block = None
        elif block is not None:
            block.append(line)
    if block is not None:
        sys.exit("unclosed ```c block in %r" % SECTION)
    if len(blocks) != 1:
        sys.exit("want one ```c block in %r, found %d" % (SECTION, len(blocks)))
    return blocks[0]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        lines = f.read().splitlines()
    code = extract(lines)
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write("\n".join(code) + "\n")


if __name__ == "__main__":
    main()
