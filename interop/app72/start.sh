#!/usr/bin/env bash
# Start the railbridge Rails 7.2 test app (app.rb) in the background, inside the Debian trixie root
# (interop/trixie/run.sh), in its own process group. Prints "PORT=<n> PID=<pid>" once GET /up answers 200
# (waits up to RAILS_APP_START_TIMEOUT, default 60 s). PID is the process-group leader: stop it with
#   interop/app72/stop.sh <pid>
# run.sh starts the command with an empty environment (env -i), so the app's variables (see README.md) are
# passed through explicitly. The app's stdout/stderr go to $RAILS_APP_LOG (default: a temp file, printed on
# failure).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
timeout_s="${RAILS_APP_START_TIMEOUT:-60}"
log="${RAILS_APP_LOG:-$(mktemp "${TMPDIR:-/tmp}/railbridge-app72-log.XXXXXX")}"

pass=()
for v in PORT SECRET_KEY_BASE SESSION_KEY COOKIES_SERIALIZER DATABASE_URL RAILS_AUTH DOMAIN SESSION_EXPIRE_AFTER \
         BCRYPT_COST AUTH_RATE_LIMIT RAILS_APP_LOG_LEVEL RAILS_ENV RAILS_APP_PIDFILE RAILS_APP_PORTFILE \
         SESSION_STORE SESSION_STORE_URL SESSION_STORE_NAMESPACE CACHE_FORMAT_VERSION; do
  [[ -n "${!v:-}" ]] && pass+=("$v=${!v}")
done
[[ -z "${PORT:-}" ]] && pass+=("PORT=0")

: >"$log"
# setsid: new session + process group whose id is $! (run.sh execs all the way down to ruby).
setsid "$repo/interop/trixie/run.sh" env "${pass[@]}" ruby "$here/app.rb" </dev/null >>"$log" 2>&1 &
pid=$!

deadline=$(( $(date +%s) + timeout_s ))
port=""
while :; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "start.sh: app exited during boot; log ($log):" >&2
    cat "$log" >&2
    exit 1
  fi
  if [[ -z "$port" ]]; then
    port="$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$log" | head -1)"
  fi
  if [[ -n "$port" ]] && [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/up" 2>/dev/null || true)" == 200 ]]; then
    break
  fi
  if (( $(date +%s) >= deadline )); then
    echo "start.sh: app not ready after ${timeout_s}s; log ($log):" >&2
    cat "$log" >&2
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    exit 1
  fi
  sleep 0.1
done
echo "PORT=$port PID=$pid"
