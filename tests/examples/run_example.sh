#!/usr/bin/env bash
# Runs an example of examples/ against a real server from Debian's packages.
#
#   run_example.sh [--wrapper WRAPPER] http  EXE    nginx, GET of a file
#   run_example.sh [--wrapper WRAPPER] redis EXE N  redis-server, N PINGs
#
# scripts/servers.sh starts the server (never the system service) on a
# free 127.0.0.1 port with a config file of its own and stops it by pid
# when this script exits.  EXE runs through WRAPPER when given (wine, for
# the Windows build: Wine's sockets reach the host's loopback).  Checks
# what the server answered, as the example printed it, and what the server
# itself recorded.  Exit 77 (skip) only when the server binary is missing.
set -euo pipefail

wrapper=()
if [ "${1:-}" = --wrapper ]; then
  wrapper=("$2"); shift 2
fi
kind=${1:?kind}; exe=${2:?exe}

# shellcheck source=scripts/servers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/servers.sh"
servers_begin
trap servers_stop EXIT

# The example, through the wrapper; a Windows program's \r\n becomes \n.
run_exe() { "${wrapper[@]}" "$exe" "$@" | tr -d '\r'; }

run_http() {
  local out size line
  # A body several receive buffers long, with a size that is no power of 2.
  head -c 300007 /dev/urandom >"$SERVERS_DIR/www/index.html"
  size=$(stat -c %s "$SERVERS_DIR/www/index.html")
  start nginx_start 64

  out=$(run_exe 127.0.0.1 "$NGINX_PORT" /) || fail "http_get exited $?: $out"
  echo "$out"
  line=$(head -n 1 <<<"$out")
  [ "$line" = "HTTP/1.1 200 OK" ] || fail "status line '$line', want HTTP/1.1 200 OK"
  grep -q "body $size, Content-Length $size\$" <<<"$out" ||
    fail "want a body of $size bytes with Content-Length $size"
  # nginx's own record of the request.
  grep -q "\"GET / HTTP/1.1\" 200 $size " "$NGINX_ACCESS_LOG" ||
    fail "access log: $(cat "$NGINX_ACCESS_LOG")"
  echo "nginx logged: $(cat "$NGINX_ACCESS_LOG")"
}

run_redis() {
  local n=${3:?N} out stats
  start redis_start $((n + 32))

  out=$(run_exe 127.0.0.1 "$REDIS_PORT" "$n") || fail "redis_ping exited $?: $out"
  echo "$out"
  [ "$out" = "$n connections, $n +PONG" ] || fail "want $n +PONG"
  # The server's own count: our N connections, plus redis-cli's two (the
  # readiness PING and this INFO).
  stats=$(redis-cli -p "$REDIS_PORT" INFO stats | tr -d '\r')
  grep -qx "total_connections_received:$((n + 2))" <<<"$stats" ||
    fail "redis counted: $(grep total_connections_received <<<"$stats")"
  echo "redis counted $((n + 2)) connections (N + redis-cli's 2)"
}

case "$kind" in
  http) run_http ;;
  redis) run_redis "$@" ;;
  *) fail "unknown kind $kind" ;;
esac
