#!/usr/bin/env bash
# Proves the packaging of iocx the way an adopter meets it (issue 10,
# "Done when"), outside any build tree, in a temporary directory:
#
#   native      meson setup --prefix=/usr -Ddefault_library=both + meson
#               install --destdir: header, libiocx.a, libiocx.so, iocx.pc;
#               tests/pkg/consumer.c built with `pkg-config --cflags --libs
#               iocx` against the shared library, and with `pkg-config
#               --static --cflags --libs iocx` against a static-only install,
#               each run: it connects to a loopback listener of its own.
#   win         the same cross-built with mingw-w64 (iocx.dll + import
#               library, and a static-only install whose Cflags carry
#               -DIOCX_STATIC), the consumers run under Wine.
#   subproject  a parent Meson project with iocx in subprojects/ and no
#               cmocka visible (PKG_CONFIG_LIBDIR hides it) configures,
#               builds, gets no iocx warning flags on its own compile
#               lines, and `meson test` runs its one test and none of iocx's.
#
#   tests/pkg/install.sh [native] [win] [subproject]    (default: all three)
#
# scripts/test.sh runs it; for win, scripts/env.sh must be sourced first
# (the cross build's `meson setup` runs a sanity check under Wine).  Prints
# "install: N passed, M failed" last; exit status 0 only if nothing failed.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(native win subproject)

work="$(mktemp -d "${TMPDIR:-/tmp}/iocx-install.XXXXXX")"
[ -n "${IOCX_KEEP_INSTALL:-}" ] || trap 'rm -rf "$work"' EXIT
passed=0 failed=0

ok() { echo "install: PASS: $*"; passed=$((passed + 1)); }
bad() { echo "install: FAIL: $*"; failed=$((failed + 1)); }
# run LOG CMD...: run quietly, show the log on failure.
run() {
  local log=$1; shift
  if "$@" >"$log" 2>&1; then return 0; fi
  echo "install: command failed: $*"; tail -n 40 "$log"; return 1
}

# build_install NAME KIND [meson setup args...]: configure the library
# alone (no tests, no bench) from the source tree, install into
# $work/NAME-dest.  Prints nothing; returns non-zero on failure.
build_install() {
  local name=$1 kind=$2; shift 2
  run "$work/$name-setup.log" meson setup "$work/$name-build" "$repo" \
      --prefix=/usr -Ddefault_library="$kind" -Dtests=disabled \
      -Dbench=disabled -Dbuildtype=release "$@" &&
  run "$work/$name-compile.log" meson compile -C "$work/$name-build" &&
  run "$work/$name-install.log" meson install -C "$work/$name-build" \
      --destdir "$work/$name-dest" --no-rebuild
}

# expect_files DEST FILE...: every FILE (a path under DEST) is installed.
expect_files() {
  local dest=$1 f missing=0; shift
  for f in "$@"; do
    if [ ! -e "$dest/$f" ]; then
      echo "install: not installed: /$f"; missing=1
    fi
  done
  return "$missing"
}

# shows PATTERN CMD...: CMD's output matches PATTERN.  (Not CMD | grep -q:
# under pipefail, grep's early exit can fail CMD with SIGPIPE.)
shows() {
  local pattern=$1 out; shift
  out="$("$@" 2>&1)" || return 1
  grep -Eq "$pattern" <<<"$out"
}

# pc DEST PCDIR ARGS...: pkg-config for the install in DEST, the system's
# .pc files after it (liburing for Requires.private).
pc() {
  local dest=$1 pcdir=$2; shift 2
  PKG_CONFIG_SYSROOT_DIR="$dest" \
  PKG_CONFIG_LIBDIR="$dest/$pcdir:$(pkg-config --variable pc_path pkg-config)" \
    pkg-config "$@"
}

native() {
  local libdir pcflags
  libdir="usr/lib/$(gcc -print-multiarch)"
  [ -d "/$libdir" ] || libdir=usr/lib
  if ! build_install n-both both; then bad "native: build/install (both)"; return; fi
  if expect_files "$work/n-both-dest" usr/include/iocx.h "$libdir/libiocx.a" \
       "$libdir/libiocx.so" "$libdir/pkgconfig/iocx.pc" \
       usr/share/doc/iocx/LICENSE; then
    ok "native: header, libiocx.a, libiocx.so, iocx.pc and LICENSE installed"
  else
    bad "native: installed files"
  fi

  # One version: meson.build's, in iocx.pc and in the installed header.
  local pcver hver
  pcver="$(pc "$work/n-both-dest" "$libdir/pkgconfig" --modversion iocx)"
  hver="$(sed -n 's/^#define IOCX_VERSION_STRING "\(.*\)"$/\1/p' \
    "$work/n-both-dest/usr/include/iocx.h")"
  if [ -n "$pcver" ] && [ "$pcver" = "$hver" ]; then
    ok "native: iocx.pc and iocx.h both say version $pcver"
  else
    bad "native: iocx.pc says '$pcver', iocx.h '$hver'"
  fi

  if [ "$(pc "$work/n-both-dest" "$libdir/pkgconfig" --variable=license iocx)" = MIT ]; then
    ok "native: iocx.pc names the licence (MIT)"
  else
    bad "native: iocx.pc has no license=MIT"
  fi
  # meson dist packs what git tracks, committed (HEAD): LICENSE among it.
  if run "$work/dist.log" meson dist -C "$work/n-both-build" --no-tests \
       --allow-dirty --formats xztar &&
     shows '^iocx-[^/]*/LICENSE$' tar -tJf "$work/n-both-build/meson-dist/"iocx-*.tar.xz; then
    ok "native: the meson dist tarball has LICENSE"
  else
    bad "native: LICENSE not in the meson dist tarball"
  fi

  # Shared: what plain `pkg-config --cflags --libs iocx` gives.
  pcflags="$(pc "$work/n-both-dest" "$libdir/pkgconfig" --cflags --libs iocx)"
  echo "install: native shared: pkg-config --cflags --libs iocx: $pcflags"
  # shellcheck disable=SC2086  # pkg-config output is a word list
  if run "$work/n-shared-cc.log" gcc -std=c11 -Wall -Wextra -Werror \
       "$repo/tests/pkg/consumer.c" $pcflags -o "$work/consumer-shared" &&
     shows 'NEEDED.*libiocx\.so' readelf -d "$work/consumer-shared" &&
     LD_LIBRARY_PATH="$work/n-both-dest/$libdir" "$work/consumer-shared"; then
    ok "native: shared-library consumer connected"
  else
    bad "native: shared-library consumer"
  fi

  # Static: a static-only install, `pkg-config --static`.
  if ! build_install n-static static; then bad "native: build/install (static)"; return; fi
  pcflags="$(pc "$work/n-static-dest" "$libdir/pkgconfig" --static --cflags --libs iocx)"
  echo "install: native static: pkg-config --static --cflags --libs iocx: $pcflags"
  # shellcheck disable=SC2086
  if run "$work/n-static-cc.log" gcc -std=c11 -Wall -Wextra -Werror \
       "$repo/tests/pkg/consumer.c" $pcflags -o "$work/consumer-static" &&
     ! shows 'NEEDED.*libiocx' readelf -d "$work/consumer-static" &&
     "$work/consumer-static"; then
    ok "native: static-library consumer connected"
  else
    bad "native: static-library consumer"
  fi
}

win() {
  local cc=x86_64-w64-mingw32-gcc objdump=x86_64-w64-mingw32-objdump pcflags
  local cross=(--cross-file "$repo/cross/mingw64.ini")
  if ! build_install w-both both "${cross[@]}"; then bad "win: build/install (both)"; return; fi
  if expect_files "$work/w-both-dest" usr/include/iocx.h usr/bin/iocx.dll \
       usr/lib/iocx.dll.a usr/lib/libiocx.a usr/lib/pkgconfig/iocx.pc; then
    ok "win: header, iocx.dll, iocx.dll.a, libiocx.a and iocx.pc installed"
  else
    bad "win: installed files"
  fi

  # The DLL: no -DIOCX_STATIC, -liocx finds the import library (iocx.dll.a
  # comes before libiocx.a in ld's search order; -static would skip it, so
  # only libgcc is linked statically here).  The consumer's own Winsock
  # calls need -lws2_32.
  pcflags="$(PKG_CONFIG_SYSROOT_DIR="$work/w-both-dest" \
    PKG_CONFIG_LIBDIR="$work/w-both-dest/usr/lib/pkgconfig" \
    pkg-config --cflags --libs iocx)"
  echo "install: win DLL: pkg-config --cflags --libs iocx: $pcflags"
  # shellcheck disable=SC2086
  if run "$work/w-dll-cc.log" "$cc" -std=c11 -Wall -Wextra -Werror \
       -D_WIN32_WINNT=0x0A00 -D__USE_MINGW_ANSI_STDIO=1 \
       "$repo/tests/pkg/consumer.c" $pcflags -lws2_32 -static-libgcc \
       -o "$work/consumer-dll.exe" &&
     shows 'DLL Name: iocx\.dll' "$objdump" -p "$work/consumer-dll.exe" &&
     WINEPATH="$(winepath -w "$work/w-both-dest/usr/bin" 2>/dev/null)" \
       wine "$work/consumer-dll.exe" </dev/null; then
    ok "win: DLL consumer connected under Wine"
  else
    bad "win: DLL consumer"
  fi

  if ! build_install w-static static "${cross[@]}"; then bad "win: build/install (static)"; return; fi
  pcflags="$(PKG_CONFIG_SYSROOT_DIR="$work/w-static-dest" \
    PKG_CONFIG_LIBDIR="$work/w-static-dest/usr/lib/pkgconfig" \
    pkg-config --static --cflags --libs iocx)"
  echo "install: win static: pkg-config --static --cflags --libs iocx: $pcflags"
  case " $pcflags " in
    *" -DIOCX_STATIC "*) ok "win: a static-only install's Cflags say -DIOCX_STATIC" ;;
    *) bad "win: static-only Cflags lack -DIOCX_STATIC" ;;
  esac
  # shellcheck disable=SC2086
  if run "$work/w-static-cc.log" "$cc" -std=c11 -Wall -Wextra -Werror \
       -D_WIN32_WINNT=0x0A00 -D__USE_MINGW_ANSI_STDIO=1 \
       "$repo/tests/pkg/consumer.c" $pcflags -lws2_32 -static \
       -o "$work/consumer-static.exe" &&
     ! shows 'DLL Name: iocx\.dll|Export Table' "$objdump" -p "$work/consumer-static.exe" &&
     wine "$work/consumer-static.exe" </dev/null; then
    ok "win: static consumer (no iocx.dll, no exports) connected under Wine"
  else
    bad "win: static consumer"
  fi
}

subproject() {
  local p="$work/parent" pcdir="$work/pc-without-cmocka" leaked list
  mkdir -p "$p/subprojects/iocx" "$pcdir"
  # The source tree as a fresh clone has it: tracked and new files, no
  # build directories, no cmocka source in subprojects/packagecache.
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard |
     xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$p/subprojects/iocx"
  cp "$repo/tests/pkg/consumer.c" "$p/"
  cat >"$p/meson.build" <<'MESON'
project('parent', 'c', default_options : ['c_std=c11'])
iocx_dep = dependency('iocx', fallback : ['iocx', 'iocx_dep'])
test('consumer', executable('consumer', 'consumer.c', dependencies : iocx_dep))
MESON
  # Only the library's own dependencies (liburing, c-ares) are visible to
  # pkg-config: no cmocka.pc.
  cp "$(pkg-config --variable=pcfiledir liburing)/liburing.pc" "$pcdir/"
  cp "$(pkg-config --variable=pcfiledir libcares)/libcares.pc" "$pcdir/"
  if ! PKG_CONFIG_LIBDIR="$pcdir" run "$work/parent-setup.log" \
         meson setup "$work/parent-build" "$p"; then
    bad "subproject: parent configure"; return
  fi
  if grep -Eqi 'dependency cmocka found|fallback subproject for the dependency cmocka' \
       "$work/parent-setup.log"; then
    bad "subproject: configure looked for cmocka"
    grep -i cmocka "$work/parent-setup.log"
  else
    ok "subproject: configured without looking for cmocka"
  fi
  if ! run "$work/parent-compile.log" meson compile -C "$work/parent-build"; then
    bad "subproject: parent build"; return
  fi
  ok "subproject: parent built"
  # The parent's own compile line: none of iocx's warning flags.
  leaked="$(python3 - "$work/parent-build/compile_commands.json" <<'PY'
import json, sys
flags = ("-Werror", "-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes",
         "-Wpedantic", "-Wextra")
for c in json.load(open(sys.argv[1])):
    if c["file"].endswith("consumer.c"):
        print(" ".join(f for f in c["command"].split() if f.startswith(flags)))
PY
)"
  if [ -z "$leaked" ]; then
    ok "subproject: no iocx warning flag on the parent's compile line"
  else
    bad "subproject: flags leaked to the parent: $leaked"
  fi
  list="$(meson test -C "$work/parent-build" --no-rebuild --list 2>/dev/null)"
  echo "install: parent's tests: $(echo "$list" | tr '\n' ' ')"
  if [ "$list" = consumer ] &&
     run "$work/parent-test.log" meson test -C "$work/parent-build" &&
     grep -q '^Ok: *1 *$' "$work/parent-test.log"; then
    ok "subproject: meson test ran the parent's test and none of iocx's"
  else
    bad "subproject: parent's meson test"
    cat "$work/parent-test.log" 2>/dev/null | tail -n 20
  fi
}

for part in "${parts[@]}"; do
  case "$part" in
    native|win|subproject) echo "== install: $part"; "$part" ;;
    *) echo "install.sh: unknown part: $part" >&2; exit 2 ;;
  esac
done
echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
