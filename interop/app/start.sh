#!/usr/bin/env bash
# Start the railbridge Rails test app in the background with the current environment.
# Prints "PORT=<n> PID=<pid>" once GET /up answers 200 (waits up to RAILS_APP_START_TIMEOUT, default 30 s).
# PORT (default 0 = ephemeral) and every other app env var (see README.md) are passed through.
# The app's stdout/stderr go to $RAILS_APP_LOG (default: a temp file, printed on failure).
# Stop it with: interop/app/stop.sh <pid>
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
timeout_s="${RAILS_APP_START_TIMEOUT:-30}"
log="${RAILS_APP_LOG:-$(mktemp "${TMPDIR:-/tmp}/railbridge-app-log.XXXXXX")}"
portfile="$(mktemp "${TMPDIR:-/tmp}/railbridge-app-port.XXXXXX")"
rm -f "$portfile"

RAILS_APP_PORTFILE="$portfile" PORT="${PORT:-0}" nohup ruby "$here/app.rb" </dev/null >"$log" 2>&1 &
pid=$!

deadline=$(( $(date +%s) + timeout_s ))
port=""
while :; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "start.sh: app exited during boot; log ($log):" >&2
    cat "$log" >&2
    rm -f "$portfile"
    exit 1
  fi
  if [[ -z "$port" && -s "$portfile" ]]; then
    port="$(tr -dc 0-9 <"$portfile")"
  fi
  if [[ -n "$port" ]] && [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/up" 2>/dev/null || true)" == 200 ]]; then
    break
  fi
  if (( $(date +%s) >= deadline )); then
    echo "start.sh: app not ready after ${timeout_s}s; log ($log):" >&2
    cat "$log" >&2
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$portfile"
    exit 1
  fi
  sleep 0.1
done
rm -f "$portfile"
echo "PORT=$port PID=$pid"
