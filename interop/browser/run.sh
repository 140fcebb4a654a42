#!/usr/bin/env bash
# The seed scenario in headless Chromium: Rails (interop/app) as www.app.test, the Rust example API
# (crates/rails-session/examples/api.rs) as api.app.test, both on 127.0.0.1 with ephemeral ports; the browser maps
# *.app.test to 127.0.0.1. Needs chromium (apt-get install chromium) and node/npm; installs playwright-core from
# package-lock.json (no browser download). Stops both servers on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

export SECRET_KEY_BASE=${SECRET_KEY_BASE:-$(printf 'b%.0s' {1..128})}
export SESSION_KEY=_app_session DOMAIN=.app.test RAILS_VERSION=6.1
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Waits for a server's "listening on http://127.0.0.1:PORT" line and prints PORT.
port_of() {
  local log=$1
  for _ in $(seq 1 300); do
    if grep -q "listening on http://" "$log"; then
      grep -m1 -o "listening on http://[0-9.]*:[0-9]*" "$log" | sed 's/.*://'
      return 0
    fi
    sleep 0.1
  done
  echo "server did not start; its log:" >&2
  cat "$log" >&2
  return 1
}

cargo build --quiet -p rails-session --example api
RAILS_PROFILE=6.1 PORT=0 ruby interop/app/app.rb >"$tmp/rails.log" 2>&1 &
pids+=($!)
PORT=0 "${CARGO_TARGET_DIR:-$root/target}/debug/examples/api" >"$tmp/api.log" 2>&1 &
pids+=($!)
rails_port=$(port_of "$tmp/rails.log")
api_port=$(port_of "$tmp/api.log")

cd "$here"
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --silent
RAILS_URL="http://www.app.test:$rails_port" API_URL="http://api.app.test:$api_port" node seed_scenario.mjs
