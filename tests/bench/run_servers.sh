#!/usr/bin/env bash
# iocx-bench's request/response mode against real servers from Debian's
# packages (meson test suites 'bench' and 'examples'):
#
#   run_servers.sh [--wrapper WRAPPER] EXE
#
# nginx: --payload-file with "GET / HTTP/1.1" + Host, --expect-until the
# 200 status line; redis-server: --payload-hex of PING, --expect-until
# "+PONG\r\n".  scripts/servers.sh starts each server (never the system
# service) on a free 127.0.0.1 port with a config file of its own and
# stops it by pid when this script exits.  Checks the bench's JSON (every
# reply complete, so nginx answered 200 to every request: a reply without
# that status line ends in EOF and counts as an error) and what each
# server itself recorded.  Exit 77 (skip) only when a server binary is
# missing.
set -euo pipefail

wrapper=()
if [ "${1:-}" = --wrapper ]; then
  wrapper=("$2"); shift 2
fi
exe=${1:?exe}
n=500

# shellcheck source=scripts/servers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/servers.sh"
servers_begin
trap servers_stop EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# start FUNCTION ARGS...: a missing server binary skips the test.
start() {
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -eq 77 ]; then echo "SKIP"; exit 77; fi
  [ "$rc" -eq 0 ] || exit "$rc"
}

# bench ARGS...: the bench's JSON on stdout; fails unless it exits 0.
bench() {
  local rc=0
  "${wrapper[@]}" "$exe" --connects "$n" --concurrency 16 --json --quiet \
    "$@" >"$SERVERS_DIR/out.json" || rc=$?
  cat "$SERVERS_DIR/out.json"
  [ "$rc" -eq 0 ] || fail "iocx-bench $* exited $rc"
}

# json EXPR: a Python expression over the JSON as d.
json() {
  python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($1)" \
    "$SERVERS_DIR/out.json"
}

check_replies() {
  local what=$1
  [ "$(json 'd["connects"]')" = "$n" ] || fail "$what: want $n replies"
  [ "$(json 'd["errors"]')" = "{}" ] || fail "$what: errors $(json 'd["errors"]')"
  [ "$(json 'd["reply_us"]["count"]')" = "$n" ] ||
    fail "$what: want $n reply times"
}

echo hello >"$SERVERS_DIR/www/index.html"
printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' \
  >"$SERVERS_DIR/request.http"
start nginx_start 256
bench --target "127.0.0.1:$NGINX_PORT" --payload-file "$SERVERS_DIR/request.http" \
  --expect-until 'HTTP/1.1 200 OK\r\n' --close graceful
check_replies nginx
# nginx's own record: a 200 for every request (bounded wait: it logs once
# the response is out, which may trail the bench's last read).
for _ in $(seq 200); do
  [ "$(grep -c '"GET / HTTP/1.1" 200 ' "$NGINX_ACCESS_LOG")" -ge "$n" ] && break
  sleep 0.05
done
got=$(grep -c '"GET / HTTP/1.1" 200 ' "$NGINX_ACCESS_LOG" || true)
all=$(wc -l <"$NGINX_ACCESS_LOG")
[ "$got" = "$n" ] && [ "$all" = "$n" ] ||
  fail "nginx logged $got requests with 200 of $all, want $n of $n"
echo "nginx: $n requests, $got answered 200 (access log)"

start redis_start 256
bench --target "127.0.0.1:$REDIS_PORT" --payload-hex 50494e470d0a \
  --expect-until '+PONG\r\n'
check_replies redis
# redis-server's own count: the bench's connections, plus the readiness
# check's and this one's.
conns=$(redis-cli -p "$REDIS_PORT" INFO stats | tr -d '\r' |
  sed -n 's/^total_connections_received://p')
[ "$conns" -ge "$n" ] || fail "redis-server received $conns connections"
echo "redis-server: $n PONGs, $conns connections received"
