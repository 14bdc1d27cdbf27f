#!/usr/bin/env bash
# ABI check of libiocx.so against the previous release (docs/abi.md).
#
#   scripts/abi-check.sh            compare with the newest tag v* that is
#                                   not this version (meson.build's)
#   scripts/abi-check.sh REF        compare with any git ref (e.g. v0.2.0)
#
# Builds the shared library of REF and of the working tree (-g -O0, the
# library target only) in a temporary directory, dumps both with Debian's
# abi-dumper and compares them with abi-compliance-checker.  Exits 0 when
# the new library is backward compatible (binary and source), 1 when it is
# not (the report says what broke: report path printed), 0 with a message
# when there is no earlier release to compare with.  Not part of
# scripts/test.sh: run it before tagging a release.
#
# Needs: apt-get install abi-dumper abi-compliance-checker (plus what
# scripts/setup.sh installs).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

for tool in abi-dumper abi-compliance-checker; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "abi-check: $tool is missing: apt-get install abi-dumper abi-compliance-checker" >&2
    exit 2
  fi
done

version="$(sed -n "s/^  version : '\([^']*\)'.*/\1/p" meson.build | head -n 1)"
[ -n "$version" ] || { echo "abi-check: no project version in meson.build" >&2; exit 2; }

old_ref="${1:-}"
if [ -z "$old_ref" ]; then
  old_ref="$(git tag --merged HEAD --list 'v*' --sort=-v:refname |
             grep -vx "v$version" | head -n 1 || true)"
  if [ -z "$old_ref" ]; then
    echo "abi-check: no earlier release tag (v*) than v$version: nothing to compare with"
    exit 0
  fi
fi
git rev-parse --verify -q "$old_ref^{commit}" >/dev/null ||
  { echo "abi-check: unknown git ref: $old_ref" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/iocx-abi.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/old-src"
git archive "$old_ref" | tar -xf - -C "$work/old-src"

# build NAME SRC: libiocx.so of SRC with debug info, then its ABI dump.
build() {
  local name=$1 src=$2 ver=$3 lib
  meson setup "$work/$name" "$src" -Ddefault_library=shared \
    -Ddebug=true -Doptimization=0 -Dtests=disabled -Dbench=disabled \
    >"$work/$name.log" 2>&1 ||
    { tail -n 30 "$work/$name.log"; exit 2; }
  meson compile -C "$work/$name" >>"$work/$name.log" 2>&1 ||
    { tail -n 30 "$work/$name.log"; exit 2; }
  lib="$(find "$work/$name" -maxdepth 1 -type f -name 'libiocx.so.*.*' | head -n 1)"
  [ -n "$lib" ] || { echo "abi-check: no libiocx.so built for $name" >&2; exit 2; }
  abi-dumper "$lib" -o "$work/$name.dump" -lver "$ver" \
    -public-headers "$src/include" >>"$work/$name.log" 2>&1 ||
    { tail -n 30 "$work/$name.log"; exit 2; }
}

echo "abi-check: libiocx.so of $old_ref against the working tree ($version)"
build old "$work/old-src" "$old_ref"
build new "$repo" "$version"

report="$repo/build/abi-report/iocx-$old_ref-to-$version.html"
mkdir -p "$(dirname "$report")"
rc=0
abi-compliance-checker -l iocx -old "$work/old.dump" -new "$work/new.dump" \
  -report-path "$report" || rc=$?
echo "abi-check: report: $report"
if [ "$rc" -eq 0 ]; then
  echo "abi-check: compatible with $old_ref"
else
  echo "abi-check: NOT compatible with $old_ref (abi-compliance-checker exit $rc)"
  exit 1
fi
