#!/usr/bin/env bash
# Stop an app started by start.sh (or app.rb): TERM, then KILL after RAILS_APP_STOP_TIMEOUT (default 5) seconds.
set -uo pipefail
pid="${1:?usage: stop.sh PID}"
[[ "$pid" =~ ^[0-9]+$ ]] || { echo "stop.sh: bad pid: $pid" >&2; exit 2; }
kill -0 "$pid" 2>/dev/null || exit 0
kill -TERM "$pid" 2>/dev/null || exit 0
for _ in $(seq 1 $(( ${RAILS_APP_STOP_TIMEOUT:-5} * 10 ))); do
  kill -0 "$pid" 2>/dev/null || exit 0
  sleep 0.1
done
echo "stop.sh: $pid did not exit after TERM; sending KILL" >&2
kill -KILL "$pid" 2>/dev/null || true
exit 0
