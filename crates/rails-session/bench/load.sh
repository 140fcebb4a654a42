#!/usr/bin/env bash
# Bounded loopback load test of the rails-session layer (axum): requests/s of a hello-world without the layer,
# with it (session untouched), and with it decoding a realistic Devise cookie on every request, in one run, with
# the ratios. Only 127.0.0.1; each round is bounded in time (and to 2M requests).
#
#   crates/rails-session/bench/load.sh [SECONDS_PER_ROUND=3] [ROUNDS=3] [CONNECTIONS=32]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
exec cargo run --quiet --release -p rails-session --example load -- "${1:-3}" "${2:-3}" "${3:-32}"
