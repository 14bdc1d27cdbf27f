#!/usr/bin/env bash
# Runs an example of examples/ against a real server from Debian's packages.
#
#   run_example.sh [--wrapper WRAPPER] http  EXE    nginx, GET of a file
#   run_example.sh [--wrapper WRAPPER] redis EXE N  redis-server, N PINGs
#
# The server is started here, never the system service: its config file
# goes into a temporary directory, it listens on a free 127.0.0.1 port as
# the current user, writes its pid file there and is stopped by that pid
# when the script exits.  EXE runs through WRAPPER when given (wine, for
# the Windows build: Wine's sockets reach the host's loopback).  Checks
# what the server answered, as the example printed it, and what the server
# itself counted.  Exit 77 (skip) only when the server binary is missing.
set -euo pipefail

wrapper=()
if [ "${1:-}" = --wrapper ]; then
  wrapper=("$2"); shift 2
fi
kind=${1:?kind}; exe=${2:?exe}

fail() { echo "FAIL: $*" >&2; exit 1; }

dir=$(mktemp -d)
pidfile=""
stop_server() {
  local pid
  if [ -n "$pidfile" ] && [ -s "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    # Bounded: at most 10 s for the server to exit after SIGTERM.
    for _ in $(seq 200); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap stop_server EXIT

free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_until DESCRIPTION COMMAND...: the server's own readiness, polled for
# at most 10 s (servers do not tell their caller when they listen).
wait_until() {
  local what=$1; shift
  for _ in $(seq 200); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  fail "$what"
}

# The example, through the wrapper; a Windows program's \r\n becomes \n.
run_exe() { "${wrapper[@]}" "$exe" "$@" | tr -d '\r'; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

run_http() {
  local nginx port out size line
  nginx=$(command -v nginx || true)
  [ -x "$nginx" ] || nginx=/usr/sbin/nginx
  if [ ! -x "$nginx" ]; then
    echo "SKIP: nginx is not installed (Debian package nginx; scripts/setup.sh installs it)"
    exit 77
  fi
  port=$(free_port)
  mkdir -p "$dir/www" "$dir/tmp"
  # A body several receive buffers long, with a size that is no power of 2.
  head -c 300007 /dev/urandom >"$dir/www/index.html"
  size=$(stat -c %s "$dir/www/index.html")
  cat >"$dir/nginx.conf" <<CONF
$( [ "$(id -u)" -eq 0 ] && echo "user $(id -un) $(id -gn);" )
worker_processes 1;
daemon on;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 64; }
http {
  access_log $dir/access.log;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    root $dir/www;
  }
}
CONF
  pidfile=$dir/nginx.pid
  # -e: the error log from the start on (not the system's /var/log/nginx).
  "$nginx" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
  wait_until "nginx did not start: $(cat "$dir/error.log" 2>/dev/null)" \
    test -s "$pidfile"
  wait_until "nginx does not listen on $port" port_open "$port"

  out=$(run_exe 127.0.0.1 "$port" /) || fail "http_get exited $?: $out"
  echo "$out"
  line=$(head -n 1 <<<"$out")
  [ "$line" = "HTTP/1.1 200 OK" ] || fail "status line '$line', want HTTP/1.1 200 OK"
  grep -q "body $size, Content-Length $size\$" <<<"$out" ||
    fail "want a body of $size bytes with Content-Length $size"
  # nginx's own record of the request.
  grep -q "\"GET / HTTP/1.1\" 200 $size " "$dir/access.log" ||
    fail "access log: $(cat "$dir/access.log")"
  echo "nginx logged: $(cat "$dir/access.log")"
}

run_redis() {
  local n=${3:?N} redis port out stats
  redis=$(command -v redis-server || true)
  if [ -z "$redis" ]; then
    echo "SKIP: redis-server is not installed (Debian package redis-server; scripts/setup.sh installs it)"
    exit 77
  fi
  port=$(free_port)
  cat >"$dir/redis.conf" <<CONF
bind 127.0.0.1
port $port
daemonize yes
pidfile $dir/redis.pid
dir $dir
logfile $dir/redis.log
save ""
appendonly no
maxclients $((n + 32))
CONF
  pidfile=$dir/redis.pid
  "$redis" "$dir/redis.conf"
  wait_until "redis-server did not start: $(cat "$dir/redis.log" 2>/dev/null)" \
    test -s "$pidfile"
  wait_until "redis-server does not answer on $port" \
    sh -c "redis-cli -p $port PING | grep -qx PONG"

  out=$(run_exe 127.0.0.1 "$port" "$n") || fail "redis_ping exited $?: $out"
  echo "$out"
  [ "$out" = "$n connections, $n +PONG" ] || fail "want $n +PONG"
  # The server's own count: our N connections, plus redis-cli's two.
  stats=$(redis-cli -p "$port" INFO stats | tr -d '\r')
  grep -qx "total_connections_received:$((n + 2))" <<<"$stats" ||
    fail "redis counted: $(grep total_connections_received <<<"$stats")"
  echo "redis counted $((n + 2)) connections (N + redis-cli's 2)"
}

case "$kind" in
  http) run_http ;;
  redis) run_redis "$@" ;;
  *) fail "unknown kind $kind" ;;
esac
