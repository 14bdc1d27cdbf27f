# shellcheck shell=bash
# Real servers from Debian's packages for the examples' tests (and anything
# else that needs one): nginx and redis-server, never the system services.
# Source it, then:
#
#   servers_begin                 a temporary directory for configs, logs, pids
#   trap servers_stop EXIT        stop every server started (by its pid) and
#                                 remove the directory
#   nginx_start [CONNECTIONS]     serve $SERVERS_DIR/www on a free 127.0.0.1
#                                 port: sets NGINX_PORT, NGINX_ACCESS_LOG
#   redis_start [MAXCLIENTS]      sets REDIS_PORT
#
# and, for the test scripts that use them:
#
#   start nginx_start|redis_start ARGS...   the same, but a missing server
#                                 binary ends the script with 77 (skip)
#   fail MESSAGE                  the test failed: MESSAGE, exit 1
#
# Each server gets a config file written here, listens on a free loopback
# port as the current user (workers too, when that is root), writes its pid
# file into the directory and logs there.  A start function returns 77 when
# the server binary is missing (meson's "skip"), exits 1 when the server
# does not come up.  scripts/setup.sh installs both packages.

SERVERS_DIR=""
_server_pidfiles=()

servers_begin() {
  SERVERS_DIR=$(mktemp -d)
  mkdir -p "$SERVERS_DIR/www"
}

servers_stop() {
  local f pid
  for f in ${_server_pidfiles[@]+"${_server_pidfiles[@]}"}; do
    [ -s "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || continue
    # Bounded: at most 10 s for the server to exit after SIGTERM.
    for _ in $(seq 200); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  _server_pidfiles=()
  [ -n "$SERVERS_DIR" ] && rm -rf "$SERVERS_DIR"
  SERVERS_DIR=""
}

_servers_fail() { echo "servers.sh: $*" >&2; exit 1; }

fail() { echo "FAIL: $*" >&2; exit 1; }

start() {
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -eq 77 ]; then echo "SKIP"; exit 77; fi
  [ "$rc" -eq 0 ] || exit "$rc"
}

_free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# _wait_until DESCRIPTION COMMAND...: the server's own readiness, polled for
# at most 10 s (neither server tells its caller when it listens).
_wait_until() {
  local what=$1; shift
  for _ in $(seq 200); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  _servers_fail "$what"
}

_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

nginx_start() {
  local conns=${1:-256} nginx d=$SERVERS_DIR/nginx
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  if [ ! -x "$nginx" ]; then
    echo "nginx is not installed (Debian package nginx; scripts/setup.sh installs it)"
    return 77
  fi
  mkdir -p "$d/tmp"
  NGINX_PORT=$(_free_port)
  NGINX_ACCESS_LOG=$d/access.log
  # As root the workers would become www-data, who cannot read the
  # temporary directory: keep them the current user.
  cat >"$d/nginx.conf" <<CONF
$( [ "$(id -u)" -eq 0 ] && echo "user $(id -un) $(id -gn);" )
worker_processes 1;
daemon on;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections $conns; }
http {
  access_log $NGINX_ACCESS_LOG;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $SERVERS_DIR/www;
  }
}
CONF
  _server_pidfiles+=("$d/nginx.pid")
  # -p and -e: nothing of the system's /etc/nginx or /var/log/nginx.
  "$nginx" -p "$d" -e "$d/error.log" -c "$d/nginx.conf" ||
    _servers_fail "nginx did not start: $(cat "$d/error.log" 2>/dev/null)"
  _wait_until "nginx wrote no pid file" test -s "$d/nginx.pid"
  _wait_until "nginx does not listen on $NGINX_PORT" _port_open "$NGINX_PORT"
}

redis_start() {
  local maxclients=${1:-1000} redis d=$SERVERS_DIR/redis
  redis=$(command -v redis-server || true)
  if [ -z "$redis" ]; then
    echo "redis-server is not installed (Debian package redis-server; scripts/setup.sh installs it)"
    return 77
  fi
  mkdir -p "$d"
  REDIS_PORT=$(_free_port)
  cat >"$d/redis.conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
daemonize yes
pidfile $d/redis.pid
dir $d
logfile $d/redis.log
save ""
appendonly no
maxclients $maxclients
CONF
  _server_pidfiles+=("$d/redis.pid")
  "$redis" "$d/redis.conf" ||
    _servers_fail "redis-server did not start: $(cat "$d/redis.log" 2>/dev/null)"
  _wait_until "redis-server wrote no pid file" test -s "$d/redis.pid"
  _wait_until "redis-server does not answer on $REDIS_PORT" \
    sh -c "redis-cli -p $REDIS_PORT PING | grep -qx PONG"
}
