#!/usr/bin/env bash
# Stop an app started by start.sh: TERM to its whole process group (run.sh's unshare/chroot chain and the
# chroot'ed ruby), then KILL to the group after RAILS_APP_STOP_TIMEOUT (default 5) seconds.
set -uo pipefail
pid="${1:?usage: stop.sh PID}"
[[ "$pid" =~ ^[0-9]+$ && "$pid" -gt 1 ]] || { echo "stop.sh: bad pid: $pid" >&2; exit 2; }

group_alive() { kill -0 -- "-$pid" 2>/dev/null; }
signal() { kill "-$1" -- "-$pid" 2>/dev/null || kill "-$1" "$pid" 2>/dev/null; }

alive() { group_alive || kill -0 "$pid" 2>/dev/null; }
alive || exit 0
signal TERM || exit 0
for _ in $(seq 1 $(( ${RAILS_APP_STOP_TIMEOUT:-5} * 10 ))); do
  alive || exit 0
  sleep 0.1
done
echo "stop.sh: process group $pid did not exit after TERM; sending KILL" >&2
signal KILL || true
for _ in $(seq 1 20); do alive || exit 0; sleep 0.1; done
exit 0
