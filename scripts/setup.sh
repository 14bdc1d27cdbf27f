#!/usr/bin/env bash
# Prepares a Debian 12 machine (developer's or CI's) for building and testing iocx.
# Idempotent and non-interactive; a second run does nothing and takes ~1 s.
#
#   1. Debian packages: installs only the missing ones (apt-get update only if
#      something is missing). Needs root (or sudo) only in that case.
#   2. subprojects/packagecache/: Debian has no mingw build of cmocka, so the
#      cmocka source package is fetched with apt-get source; Meson unpacks it
#      for subprojects/cmocka.wrap with subprojects/packagefiles/cmocka/
#      meson.build. Nor of zlib (iocx-bench --hdr-log): its source is unpacked
#      into subprojects/zlib/ with subprojects/packagefiles/zlib/meson.build.
#      Generated, git-ignored.
#   3. npm packages, in one step: tests/bench/node_modules (the packages of
#      tests/bench/package.json) and pinned tools in .tools/npm/ (git-ignored):
#      @action-validator/cli, which checks .github/workflows/*.yml. npm itself
#      comes from Debian when the machine has none.
#   4. The Wine prefix (scripts/env.sh): created once, up front, because a
#      prefix created implicitly by parallel tests made a test fail
#      (docs/windows.md, "Wine in the test command").
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

packages=(
  meson ninja-build pkg-config python3   # build system; python3 also parses test logs
  gcc clang                              # native builds (+ sanitizer runtimes, see below)
  libclang-rt-14-dev                     # clang's ASan/UBSan and libFuzzer runtimes: only a Recommends of clang-14
  mingw-w64                              # Windows cross toolchain (default: win32 thread model)
  wine wine64                            # runs the Windows tests (64-bit only, no wine32)
  libcmocka-dev                          # unit-test framework, native
  liburing-dev                           # the Linux io_uring backend (src/linux/)
  libc-ares-dev                          # the Linux engine's own resolver (src/linux/resolve_ares.c)
  dnsmasq-base                           # a real DNS server for tests/bench/check_dnsmasq.py (started by the test, not as a service)
  dpkg-dev                               # apt-get source / dpkg-source for the cmocka and zlib subprojects
  nginx redis-server                     # servers the examples run against (tests/examples/run_example.sh
                                         # starts its own; the system services are not used)
  zlib1g-dev                             # iocx-bench --hdr-log deflates with zlib (native)
  nodejs                                 # tests/bench: hdr-histogram-js reads --hdr-log (npm: step 3)
)

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    die "need root to run: $*"
  fi
}

# Never prompt (CI has no stdin); wait for a dpkg lock held by e.g.
# unattended-upgrades on a fresh machine instead of failing at once.
apt_opts=(-y -q -o DPkg::Lock::Timeout=600
          -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
apt_updated=0
apt_update() {
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update
    apt_updated=1
  fi
}

# Two setups at once (e.g. two clones on one machine) would race on apt and on
# the shared Wine prefix.
lock="/tmp/iocx-setup-$(id -u).lock"
exec 9>"$lock"
flock 9

# --- 1. packages -------------------------------------------------------------
missing=()
for p in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
  [ "$status" = "ii " ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt_update
  # Recommends are kept on purpose: that is how Wine was installed where its
  # behaviour was measured (docs/windows.md).
  as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install "${missing[@]}"
else
  log "all packages present"
fi

# --- 2. cmocka and zlib sources for the mingw build -----------------------------
cache=subprojects/packagecache   # where Meson looks before downloading a wrap
wrap_dir="$(sed -n 's/^directory *= *//p' subprojects/cmocka.wrap)"
wrap_file="$(sed -n 's/^source_filename *= *//p' subprojects/cmocka.wrap)"

has_deb_src() {
  grep -Eqs '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
}

add_deb_src() {
  # Mirror the machine's own Debian entries (same mirror, suites and keyring)
  # as deb-src, in a file of our own.
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    log "adding deb-src entries: /etc/apt/sources.list.d/iocx-deb-src.sources"
    sed -E 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
      as_root tee /etc/apt/sources.list.d/iocx-deb-src.sources >/dev/null
  elif grep -Eqs '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
    log "adding deb-src lines: /etc/apt/sources.list.d/iocx-deb-src.list"
    sed -En 's/^[[:space:]]*deb[[:space:]]+/deb-src /p' /etc/apt/sources.list |
      as_root tee /etc/apt/sources.list.d/iocx-deb-src.list >/dev/null
  else
    die "no Debian apt source found to derive a deb-src entry from"
  fi
  apt_updated=0   # the new entry needs its own apt-get update
}

# fetch_source SPEC: apt-get source --download-only SPEC into the cache.
fetch_source() {
  # APT::Sandbox::User=root: as root, apt would otherwise try (and warn that it
  # failed) to download as user _apt into our root-owned directory.
  local sandbox=()
  [ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root)
  (cd "$cache" && apt-get source --download-only -q ${sandbox[@]+"${sandbox[@]}"} "$1")
}

if [ -f "$cache/$wrap_file" ]; then
  log "cmocka source present: $cache/$wrap_file"
else
  mkdir -p "$cache"
  log "fetching Debian's cmocka source (apt-get source)"
  if ! has_deb_src; then
    add_deb_src
    apt_update
  fi
  # A failure with deb-src present: package lists not updated yet.
  fetch_source cmocka || { apt_update; fetch_source cmocka; }
  # The wrap's source_hash names one version: a Debian that moved on
  # needs the wrap updated, not a silently different cmocka.
  [ -f "$cache/$wrap_file" ] ||
    die "apt-get source cmocka did not give $wrap_file (update subprojects/cmocka.wrap)"
fi
# The wrap names no download address (the source comes from apt only), so
# Meson takes the tarball from subprojects/packagefiles/: a git-ignored copy.
cmp -s "$cache/$wrap_file" "subprojects/packagefiles/$wrap_file" ||
  cp "$cache/$wrap_file" "subprojects/packagefiles/$wrap_file"
# Meson copies the build file only when it unpacks: refresh an unpacked copy,
# so edits to the packagefiles one take effect.
cmocka_build=subprojects/packagefiles/cmocka/meson.build
if [ -d "subprojects/$wrap_dir" ]; then
  cmp -s "$cmocka_build" "subprojects/$wrap_dir/meson.build" ||
    cp "$cmocka_build" "subprojects/$wrap_dir/meson.build"
fi

# The newest downloaded upstream tarball of source package $1 (not its .asc
# signature), if any.
source_orig() {
  find "$cache" -maxdepth 1 -name "$1_*.orig.tar.*" ! -name '*.asc' | sort -V | tail -n 1
}

# seed NAME SPEC MARKER: unpack Debian source package SPEC (NAME or
# NAME=VERSION) into subprojects/NAME/ unless MARKER (a file inside) exists,
# for a subproject without a wrap (zlib).
seed() {
  local name=$1 spec=$2 marker=$3 dir=subprojects/$1 orig tmp
  if [ -f "$dir/$marker" ]; then
    log "$name subproject already seeded"
  else
    mkdir -p "$cache"
    if [ -z "$(source_orig "$name")" ]; then
      log "fetching Debian's $name source (apt-get source $spec)"
      if ! has_deb_src; then
        add_deb_src
        apt_update
      fi
      # A failure with deb-src present: package lists not updated yet.
      fetch_source "$spec" || { apt_update; fetch_source "$spec"; }
    fi
    orig="$(source_orig "$name")"
    log "unpacking $orig into $dir"
    # Unpack beside the target, then rename: an interrupted run leaves no
    # half-seeded subprojects/NAME behind.
    tmp="$(mktemp -d "subprojects/.$name.XXXXXX")"
    tar -xf "$orig" -C "$tmp" --strip-components=1
    [ -f "$tmp/$marker" ] || die "unexpected layout in $orig"
    rm -rf "$dir"
    mv "$tmp" "$dir"
  fi
  # Always refresh the build file, so edits to the packagefiles copy take effect.
  local build=subprojects/packagefiles/$name/meson.build
  cmp -s "$build" "$dir/meson.build" || cp "$build" "$dir/meson.build"
}

# The source of the zlib the native build links (zlib1g-dev): same version
# on both sides, and it stays fetchable when a newer security upload is not
# on the mirror yet.
seed zlib "zlib=$(dpkg-query -W -f='${Version}' zlib1g-dev)" deflate.c

# --- 3. npm packages --------------------------------------------------------------
# Two sets, one step (npm itself comes from Debian when the machine has none):
#  - tests/bench/package.json: hdr-histogram-js decodes the bench's --hdr-log;
#  - .tools/npm/ (git-ignored, never global): @action-validator/cli, which
#    checks .github/workflows/*.yml, with its peer dependency, both pinned.
action_validator_version=0.6.0
npm_tools=.tools/npm
installed_version() {
  node -p "require('./$npm_tools/node_modules/@action-validator/cli/package.json').version" \
    2>/dev/null || true
}
need_bench_npm=0 need_tools_npm=0
if [ -f tests/bench/node_modules/hdr-histogram-js/package.json ]; then
  log "npm packages of tests/bench present"
else
  need_bench_npm=1
fi
if [ "$(installed_version)" = "$action_validator_version" ] &&
   [ -x "$npm_tools/node_modules/.bin/action-validator" ]; then
  log "action-validator $action_validator_version present"
else
  need_tools_npm=1
fi
if [ $((need_bench_npm + need_tools_npm)) -gt 0 ] && ! command -v npm >/dev/null 2>&1; then
  # Debian's nodejs comes without npm (package npm); NodeSource's has it.
  log "installing: npm"
  apt_update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install npm
fi
if [ "$need_bench_npm" -eq 1 ]; then
  log "installing the npm packages of tests/bench (npm install)"
  (cd tests/bench && npm install --no-audit --no-fund --loglevel=error)
fi
if [ "$need_tools_npm" -eq 1 ]; then
  log "npm install @action-validator/cli@$action_validator_version into $npm_tools"
  mkdir -p "$npm_tools"
  npm install --prefix "$npm_tools" --no-audit --no-fund --no-save --loglevel=error \
    "@action-validator/cli@$action_validator_version" \
    "@action-validator/core@$action_validator_version"
  [ "$(installed_version)" = "$action_validator_version" ] ||
    die "action-validator $action_validator_version did not install"
fi

# --- 4. Wine prefix -------------------------------------------------------------
# shellcheck source=scripts/env.sh
. "$repo_root/scripts/env.sh"
if [ -f "$WINEPREFIX/system.reg" ]; then
  log "Wine prefix ready: $WINEPREFIX"
else
  log "creating Wine prefix $WINEPREFIX (~12 s, ~700 MB)"
  mkdir -p "$(dirname "$WINEPREFIX")"
  # wineboot -i prints 3 harmless lines on a fresh prefix.
  # wineserver -w: wait until the setup services exit and the registry is saved.
  wineboot -i
  # A fresh prefix reports Windows 7; make it Windows 10 like _WIN32_WINNT.
  wine winecfg -v win10
  wineserver -w
  [ -f "$WINEPREFIX/system.reg" ] || die "Wine prefix creation failed: no $WINEPREFIX/system.reg"
fi

log "done"
