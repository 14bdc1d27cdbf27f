# shellcheck shell=bash
# Wine environment for iocx. Source it (". scripts/env.sh"); the other scripts do.
# Export it BEFORE `meson setup` of a cross build: setup runs the compiler
# sanity-check .exe through wine (cross/mingw64.ini: exe_wrapper = 'wine').
# Why each setting: docs/windows.md, "Wine in the test command".

# One dedicated prefix for iocx (695 MB, ~12 s to create; scripts/setup.sh does
# that once). Override with IOCX_WINEPREFIX, e.g. one prefix per CI job.
export WINEPREFIX="${IOCX_WINEPREFIX:-${HOME:-/root}/.cache/iocx/wine-x64}"
export WINEARCH=win64
# Silences Wine's debug channels and Debian's "wine32 is missing" hint, which
# would otherwise be printed on every run.
export WINEDEBUG=-all
# mscoree,mshtml=: never offer to install Mono/Gecko.
# winedbg.exe=d: no debugger on a crash, so a crashing .exe reliably exits
#   non-zero (0xC0000005 -> 5); with winedbg it sometimes exits 0 under Wine 8.
export WINEDLLOVERRIDES="mscoree,mshtml=;winedbg.exe=d"
# Headless: no X11/Wayland driver; nothing to show, nothing to hang on.
unset DISPLAY WAYLAND_DISPLAY

# iocx_wineserver_start [WRAPPER...]
# Starts a persistent wineserver (`wineserver -p`) for $WINEPREFIX, run under
# WRAPPER if given (e.g. taskset -c 0), and warms it up. A persistent server
# makes each later .exe start in 0.01-0.05 s instead of 0.3-0.5 s.
# Returns 0 if it started one (the caller then stops it with `wineserver -k`),
# 1 if it could not (`wineserver -p` exits 2 while a wineserver already runs
# for the prefix; that one then serves the tests).
iocx_wineserver_start() {
  "$@" wineserver -p </dev/null >/dev/null 2>&1 || return 1
  # The first client of a new wineserver starts Wine's background processes
  # (services.exe, explorer.exe, rpcss.exe, ...), and they inherit that
  # client's stdout/stderr. Under a persistent server they never exit, so
  # whatever reads the client's output never gets EOF: `meson test` timed out
  # the first test every time. So the first client is one whose stdio is
  # /dev/null.
  "$@" wine cmd /c exit </dev/null >/dev/null 2>&1 || true
  return 0
}
