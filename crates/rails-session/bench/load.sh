#!/usr/bin/env bash
# Bounded loopback load test of the rails-session layer (axum): requests/s of a hello-world without the layer,
# with it (session untouched), and with it decoding a realistic Devise cookie on every request, in one run, with
# the ratios. Every variant's slot sits between two slots of the baseline (B V1 B V2 B V3 B V4 B per round); each
# server's client connections are opened once and reused by all its slots. Only 127.0.0.1; each slot is bounded in
# time (and to 2M requests); a round takes 9 slots. SECONDS_PER_SLOT may be fractional (0.1 to 60).
#
#   crates/rails-session/bench/load.sh [SECONDS_PER_SLOT=1] [ROUNDS=3] [CONNECTIONS=32]
#   crates/rails-session/bench/load.sh 0.5 120 32    # the README's figure (~9 minutes)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
exec cargo run --quiet --release -p rails-session --example load -- "${1:-1}" "${2:-3}" "${3:-32}"
