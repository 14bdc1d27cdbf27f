#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time (meson suite 'fuzz').
#
#   run_fuzz.sh EXE SEED_CORPUS WORK_DIR SECONDS
#
# The seed corpus of the repository (tests/fuzz/corpus/<target>/) is read,
# never written: inputs the run finds go to WORK_DIR/corpus, a crashing
# input to WORK_DIR/crash-<sha1> (libFuzzer prints that path, and so does
# this script).  Exit 0 when the time ran out with no fault; 1 otherwise
# (libFuzzer's own default for a fault is 77, meson's "skip").
set -euo pipefail

exe=${1:?exe}; seeds=${2:?seed corpus}; work=${3:?work dir}; seconds=${4:?seconds}
mkdir -p "$work/corpus"
rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*

rc=0
"$exe" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
  -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" "$seeds" || rc=$?

for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
  [ -e "$f" ] || continue
  echo "run_fuzz: reproducer: $f (replay: $exe $f)" >&2
  rc=${rc/#0/1}
done
if [ "$rc" -ne 0 ]; then
  echo "run_fuzz: $(basename "$exe") failed (exit $rc)" >&2
  exit 1
fi
