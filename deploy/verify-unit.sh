#!/usr/bin/env bash
# Checks deploy/railbridge.service with `systemd-analyze verify` (needs Debian's `systemd` package; nothing is
# started). The unit names /usr/local/bin/railbridge, which verify requires to exist: a copy of the unit points at
# the binary given (default: the debug build) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-${CARGO_TARGET_DIR:-$PWD/target}/debug/railbridge}
[ -x "$bin" ] || { echo "verify-unit: no railbridge binary at $bin (cargo build -p railbridge)" >&2; exit 1; }
command -v systemd-analyze >/dev/null || { echo "verify-unit: systemd-analyze is missing (apt-get install systemd)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#/usr/local/bin/railbridge#$bin#g" deploy/railbridge.service >"$tmp/railbridge.service"
out=$(systemd-analyze verify "$tmp/railbridge.service" 2>&1) || { echo "$out" >&2; exit 1; }
# verify exits 0 on some warnings: any line about the unit fails the check.
if grep -F "railbridge.service" <<<"$out" >&2; then
  echo "verify-unit: systemd-analyze has remarks about the unit" >&2
  exit 1
fi
echo "verify-unit: deploy/railbridge.service ok"
