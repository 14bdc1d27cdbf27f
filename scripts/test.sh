#!/usr/bin/env bash
# THE test command of iocx (README and .ci/run call exactly this).
#
#   scripts/test.sh                  full: workflow syntax, native gcc, clang ASan+UBSan
#                                    (+ the fuzz targets), gcc TSan, windows/Wine,
#                                    clang-mingw (unit tests under Wine), then the
#                                    packaging checks (tests/pkg/install.sh)
#   scripts/test.sh --quick          workflow syntax, native gcc + windows/Wine only
#   scripts/test.sh [--quick] -- ARGS  ARGS go to every `meson test` (e.g. --suite unit)
#
# Runs scripts/setup.sh first (packages, cmocka subproject, Wine prefix).
# Build directories under build/ are reused when they exist.
# After every `meson test` the results are read from meson-logs/testlog.json:
# the last line of output is "N passed, M failed, K skipped" over all builds
# (a build that fails to configure or compile counts as one failure), and the
# exit status is 0 only if nothing failed and every build ran its tests.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

mode=full
meson_test_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --full) mode=full ;;
    -h|--help) usage; exit 0 ;;
    --) shift; meson_test_args=("$@"); break ;;
    *) printf 'test.sh: unknown argument: %s\n' "$1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

t0=$(date +%s)
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
. scripts/env.sh        # exported before any `meson setup` of the cross build
echo "== setup: $(( $(date +%s) - t0 )) s"

total_passed=0 total_failed=0 total_skipped=0
broken_builds=()        # builds that did not get as far as running their tests
stage_report=()         # one line per build, repeated at the end

# Wine: one persistent wineserver serves the windows build (see
# iocx_wineserver_start in scripts/env.sh). Stop it only if we started it.
started_wineserver=0
cleanup() {
  if [ "$started_wineserver" -eq 1 ]; then
    wineserver -k >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT   # make Ctrl-C / kill run the EXIT trap too
trap 'exit 143' TERM

# configure DIR [meson setup args...]: reuse DIR if it is a configured build dir.
configure() {
  local dir=$1; shift
  if [ -f "$dir/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$dir" "$@"
  else
    rm -rf "$dir"   # absent, or left half-configured by an interrupted setup
    meson setup "$dir" "$@"
  fi
}

# summarize NAME DIR: prints the build's results from testlog.json and adds
# them to the totals. Windows must have really run something: Meson marks
# tests SKIP when it cannot run them (no exe wrapper), so count results "OK".
summarize() {
  local name=$1 dir=$2 out
  out="$(python3 - "$dir/meson-logs/testlog.json" "$name" <<'PY'
import json, sys
path, name = sys.argv[1], sys.argv[2]
passed, failed, skipped, ok = [], [], [], 0
try:
    lines = open(path, encoding="utf-8").read().splitlines()
except FileNotFoundError:
    lines = []
for line in lines:
    if not line.strip():
        continue
    r = json.loads(line)
    res = r.get("result", "?")
    if res in ("OK", "EXPECTEDFAIL"):
        passed.append(r["name"])
        ok += res == "OK"
    elif res == "SKIP":
        skipped.append(r["name"])
    else:   # FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, INTERRUPT, ...
        failed.append("%s (%s)" % (r["name"], res))
print("[%s] results: %d ok, %d failed, %d skipped" % (name, len(passed), len(failed), len(skipped)))
for f in failed:
    print("[%s]   FAILED:  %s" % (name, f))
for s in skipped:
    print("[%s]   skipped: %s" % (name, s))
print("COUNTS %d %d %d %d" % (len(passed), len(failed), len(skipped), ok))
PY
)"
  local p f s ok
  read -r _ p f s ok <<<"$(tail -n 1 <<<"$out")"
  sed '$d' <<<"$out"
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
  total_skipped=$((total_skipped + s))
  LAST_OK=$ok LAST_FAILED=$f
}

# run_build NAME DIR WRAPPER SETUP_ARGS... -- TEST_ARGS...
#   WRAPPER: command prefix for `meson test` ("" for none), e.g. setarch for TSan.
run_build() {
  local name=$1 dir=$2 wrapper=$3; shift 3
  local setup_args=() test_args=() t start rc=0
  LAST_OK=0 LAST_FAILED=0
  while [ $# -gt 0 ] && [ "$1" != -- ]; do setup_args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  test_args=("$@")
  start=$(date +%s)
  echo
  echo "== [$name] configure + build: $dir"
  if ! configure "$dir" "${setup_args[@]}" || ! meson compile -C "$dir"; then
    echo "[$name] BUILD FAILED"
    broken_builds+=("$name")
    total_failed=$((total_failed + 1))
    stage_report+=("[$name] build failed after $(( $(date +%s) - start )) s")
    return 0
  fi
  t=$(date +%s)
  echo "== [$name] meson test (build took $((t - start)) s)"
  # A stale log from an earlier run must never be counted.
  rm -f "$dir/meson-logs/testlog.json"
  # shellcheck disable=SC2086  # $wrapper is a word list by design
  $wrapper meson test -C "$dir" --no-rebuild --print-errorlogs \
    "${test_args[@]}" ${meson_test_args[@]+"${meson_test_args[@]}"} || rc=$?
  summarize "$name" "$dir"
  if [ ! -s "$dir/meson-logs/testlog.json" ]; then
    echo "[$name] no test results (meson test exit status $rc)"
    broken_builds+=("$name"); total_failed=$((total_failed + 1))
  elif [ "$rc" -ne 0 ] && [ "$LAST_FAILED" -eq 0 ]; then
    # meson test failed without a failed test in the log: still a failure.
    echo "[$name] meson test exited $rc"
    total_failed=$((total_failed + 1))
  fi
  stage_report+=("[$name] build $((t - start)) s, tests $(( $(date +%s) - t )) s, meson test exit $rc")
}

# --- workflow syntax ---------------------------------------------------------------
# .github/workflows/*.yml cannot run here; @action-validator/cli (pinned and
# installed by scripts/setup.sh) checks each against GitHub's schema.
echo
echo "== [workflows] action-validator"
for wf in .github/workflows/*.yml; do
  if .tools/npm/node_modules/.bin/action-validator "$wf"; then
    echo "[workflows] ok: $wf"
    total_passed=$((total_passed + 1))
  else
    echo "[workflows] FAILED: $wf"
    total_failed=$((total_failed + 1))
  fi
done
stage_report+=("[workflows] checked: $(ls .github/workflows/*.yml | wc -l) file(s)")

# --- native gcc ------------------------------------------------------------------
# default_library=both: libiocx.so exists, so its exports are checked and
# test_connect runs against it too (suite 'pkg'); the sanitizer builds stay
# static.
CC=gcc run_build native build/native "" -Dbuildtype=debugoptimized -Ddefault_library=both

if [ "$mode" = full ]; then
  # --- native clang, ASan + UBSan -----------------------------------------------
  # -Dfuzz=true: the libFuzzer targets of tests/fuzz/ are built here too and
  # run as the tests of suite 'fuzz' (fuzz_seconds each), counted like any
  # other test; a fault fails its test and the log names the reproducer.
  # b_lundef=false: clang links its sanitizer runtime into executables only, so
  # -Wl,--no-undefined would break linking any shared library (Meson docs).
  CC=clang \
  ASAN_OPTIONS=detect_leaks=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_build asan build/asan "" \
      -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
      -Dfuzz=true \
      -- --timeout-multiplier 3

  # --- native gcc, TSan -------------------------------------------------------------
  # TSan maps its shadow memory at fixed addresses. With vm.mmap_rnd_bits=32
  # (the default of some newer distro kernels) a randomized mapping can land
  # there: "FATAL: ThreadSanitizer: unexpected memory mapping". On this 6.18
  # VM mmap_rnd_bits is 28 and TSan works as is; setting it to 32 reproduces
  # the failure, and `setarch -R` (ASLR off for meson test and its children,
  # no machine-wide change) fixes it. So probe, and add setarch only if needed.
  tsan_wrapper=""
  probe_dir="$(mktemp -d)"
  printf '%s\n' '#include <pthread.h>' \
    'static void *f(void *a) { return a; }' \
    'int main(void) { pthread_t t; pthread_create(&t, 0, f, 0); return pthread_join(t, 0); }' \
    >"$probe_dir/p.c"
  if gcc -fsanitize=thread -pthread "$probe_dir/p.c" -o "$probe_dir/p" 2>"$probe_dir/err"; then
    if ! "$probe_dir/p" >/dev/null 2>"$probe_dir/err"; then
      if grep -q 'unexpected memory mapping' "$probe_dir/err" &&
         setarch "$(uname -m)" -R "$probe_dir/p" >/dev/null 2>&1; then
        tsan_wrapper="setarch $(uname -m) -R"
        echo "== [tsan] TSan needs ASLR off on this kernel: using '$tsan_wrapper'"
      else
        echo "== [tsan] warning: TSan probe failed:"; cat "$probe_dir/err"
      fi
    fi
  else
    echo "== [tsan] warning: cannot compile with -fsanitize=thread:"; cat "$probe_dir/err"
  fi
  rm -rf "$probe_dir"
  CC=gcc TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    run_build tsan build/tsan "$tsan_wrapper" \
      -Dbuildtype=debugoptimized -Db_sanitize=thread \
      -- --timeout-multiplier 3
fi

# --- windows: mingw-w64 cross build, tests under Wine --------------------------------
# The persistent wineserver (scripts/env.sh) is started before `meson setup`,
# which runs the sanity-check .exe under wine. If a wineserver already runs
# for the prefix, that one serves the tests and is left running.
if iocx_wineserver_start; then
  started_wineserver=1
fi
# default_library=both: iocx.dll is built, its export table checked, and
# test_connect runs against it under Wine as well.
run_build win build/win "" --cross-file cross/mingw64.ini -Dbuildtype=debugoptimized \
  -Ddefault_library=both -- --num-processes 2
if [[ " ${broken_builds[*]} " != *" win "* ]] && [ "${LAST_OK:-0}" -eq 0 ]; then
  echo "[win] no test ran under Wine with result OK: failing"
  broken_builds+=(win); total_failed=$((total_failed + 1))
fi

# --- windows: clang targeting x86_64-w64-mingw32 ------------------------------------
# A second Windows compiler, with mingw-w64's headers and libraries, so that
# a gcc-only construct fails the build (warnings are errors here too). Its
# unit tests run under Wine; the net tests run in the gcc build above.
# clang's driver does not find Debian's mingw libgcc directory ("12-win32")
# by itself: hand it the one mingw gcc uses.
if [ "$mode" = full ]; then
  mingw_libgcc_dir="$(dirname "$(x86_64-w64-mingw32-gcc -print-libgcc-file-name)")"
  run_build clang-win build/clang-win "" --cross-file cross/clang-mingw64.ini \
    -Dbuildtype=debugoptimized "-Dc_link_args=-L$mingw_libgcc_dir" \
    -- --suite unit --num-processes 2
fi

# --- packaging: install, pkg-config consumers, subproject use --------------------
# Fresh builds of the library alone in a temporary directory (a few minutes,
# most of it the two mingw builds); each check counts as one test.
if [ "$mode" = full ]; then
  echo
  echo "== [install] tests/pkg/install.sh native win subproject"
  start=$(date +%s)
  install_log="$(mktemp)"
  rc=0
  tests/pkg/install.sh native win subproject 2>&1 | tee "$install_log" || rc=$?
  read -r p f <<<"$(sed -n 's/^install: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$install_log" | tail -n 1)"
  rm -f "$install_log"
  if [ -z "${p:-}" ]; then
    echo "[install] no result line (exit status $rc)"
    broken_builds+=(install); total_failed=$((total_failed + 1))
  else
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      echo "[install] exited $rc"; total_failed=$((total_failed + 1))
    fi
  fi
  stage_report+=("[install] $(( $(date +%s) - start )) s, exit $rc")
fi

echo
echo "== summary ($mode, $(( $(date +%s) - t0 )) s in total)"
printf '%s\n' "${stage_report[@]}"
if [ "${#broken_builds[@]}" -gt 0 ]; then
  echo "builds that did not run all their tests: ${broken_builds[*]}"
fi
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
if [ "$total_failed" -eq 0 ] && [ "${#broken_builds[@]}" -eq 0 ]; then
  exit 0
fi
exit 1
