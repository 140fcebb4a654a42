# Shared by the loopback benchmark and soak scripts (sourced, not run): a temporary directory whose processes are
# stopped on exit, free ports, foreground nginx instances and the gateway binary.
#
#   source scripts/lib/bench.sh
#   bench_init NAME          # sets $tmp and the exit trap; NAME prefixes messages
#   port=$(free_port); wait_port "$port"
#   start_nginx NAME WORKERS LISTEN_FLAGS SERVER_BODY [HTTP_EXTRA]   # sets $port
#   start_gateway NAME CONFIG_FILE [VAR=value …]                    # sets $gw (host:port) and $gw_pid

bench_init() {
  bench_name=$1
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  # nginx workers drop privileges when run as root: they must be able to read the files here.
  chmod 755 "$tmp"
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$bench_name: nothing listening on 127.0.0.1:$1" >&2
  return 1
}

# A foreground nginx with its own prefix under $tmp/NAME; LISTEN_FLAGS go after the address (e.g. "ssl").
start_nginx() {
  local name=$1 workers=$2 listen=$3 body=$4 extra=${5:-} dir
  port=$(free_port)
  dir=$tmp/$name
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process $([ "$workers" = 1 ] && echo off || echo on);
worker_processes $workers;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
$extra
  server {
    listen 127.0.0.1:$port $listen;
$body
  }
}
CONF
  nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout" 2>&1 &
  pids+=($!)
  wait_port "$port"
}

# The release binary ($bin) on CONFIG_FILE, with the given environment; waits for its "listening on" line.
start_gateway() {
  local name=$1 config=$2
  shift 2
  env "$@" "$bin" serve --config "$config" >"$tmp/$name.out" 2>"$tmp/$name.log" &
  gw_pid=$!
  pids+=($gw_pid)
  for _ in $(seq 1 100); do grep -q 'listening on' "$tmp/$name.out" 2>/dev/null && break; sleep 0.05; done
  gw=$(sed -n 's#^listening on https\{0,1\}://##p' "$tmp/$name.out")
  [ -n "$gw" ] || { echo "$bench_name: the gateway did not start:" >&2; cat "$tmp/$name.log" >&2; return 1; }
}
