#!/usr/bin/env bash
# The benchmark ("main job") command of iocx:
#
#   scripts/bench.sh [iocx-bench arguments...]
#
# Runs scripts/setup.sh, builds the Windows release build in build/win-release
# (buildtype=release, no tests), then runs iocx-bench.exe under Wine with the
# given arguments. Only the benchmark writes to stdout; setup and build
# messages go to stderr, so `scripts/bench.sh ... > result.txt` keeps the result.
#
# CPU pinning: by default both wineserver and the benchmark run on CPU 0
# (taskset -c 0). Every Winsock/IOCP call is a round trip to wineserver, and on
# these 2-vCPU VMs where the scheduler places wineserver relative to the client
# changed results 3-7x from run to run; pinning both to one CPU makes runs
# comparable. IOCX_BENCH_CPUS=0,1 picks other CPUs; IOCX_BENCH_CPUS= (empty)
# disables pinning.
#
# Wine prefix: the bench uses its own, $HOME/.cache/iocx/wine-bench (created
# once by scripts/setup.sh, like the test prefix), so a scripts/test.sh running
# at the same time neither shares the bench's wineserver (which would disturb
# the numbers) nor loses its own when the bench stops its server.
# IOCX_WINEPREFIX overrides. docs/bench.md has the rest of how to get stable
# numbers.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

export IOCX_WINEPREFIX="${IOCX_WINEPREFIX:-${HOME:-/root}/.cache/iocx/wine-bench}"

bash scripts/setup.sh >&2
# shellcheck source=scripts/env.sh
. scripts/env.sh

cpus="${IOCX_BENCH_CPUS-0}"
pin=()
if [ -n "$cpus" ]; then
  pin=(taskset -c "$cpus")
fi

# The pinned, persistent wineserver has to be the one the benchmark talks to,
# so start it first (also before `meson setup`, which runs a sanity-check .exe
# under wine and would otherwise start an unpinned server). It cannot start
# while another wineserver runs for this prefix: give a lingering one (they
# exit ~3 s after their last client) time to go away, then retry once.
started_wineserver=0
cleanup() {
  if [ "$started_wineserver" -eq 1 ]; then
    wineserver -k >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT   # make Ctrl-C / kill run the EXIT trap too
trap 'exit 143' TERM
if iocx_wineserver_start ${pin[@]+"${pin[@]}"} ||
   { timeout 10 wineserver -w >/dev/null 2>&1 || true
     iocx_wineserver_start ${pin[@]+"${pin[@]}"}; }; then
  started_wineserver=1
else
  echo "bench.sh: warning: a wineserver already runs for $WINEPREFIX; its CPU placement is not controlled" >&2
fi

dir=build/win-release
{
  if [ -f "$dir/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$dir" --cross-file cross/mingw64.ini -Dbuildtype=release -Dtests=false
  else
    rm -rf "$dir"
    meson setup "$dir" --cross-file cross/mingw64.ini -Dbuildtype=release -Dtests=false
  fi
  meson compile -C "$dir" iocx-bench
} >&2

echo "bench.sh: wine $dir/iocx-bench.exe $*${cpus:+ (pinned to CPU $cpus)}" >&2
rc=0
${pin[@]+"${pin[@]}"} wine "$dir/iocx-bench.exe" "$@" || rc=$?
exit "$rc"
