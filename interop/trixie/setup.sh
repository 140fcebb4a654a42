#!/usr/bin/env bash
# Creates (once per machine) a Debian trixie root with Ruby 3.3 + Rails 7.2 + msgpack + redis + dalli for the
# interop tooling.
#
#   sudo interop/trixie/setup.sh            # idempotent; ~2-5 min the first time, instant afterwards
#
# Root: ${RAILBRIDGE_TRIXIE_ROOT:-/var/cache/railbridge/trixie}. "$ROOT/.railbridge-ready" (holding the Rails
# version plus MARKER_SUFFIX, e.g. "7.2.2.2+stores") is written only after everything succeeded; a root without it
# is removed and rebuilt. A complete root made by an older setup.sh (its marker lacks the current MARKER_SUFFIX,
# e.g. plain "7.2.2.2") is upgraded in place: the packages it lacks are installed with apt-get inside the root,
# then the marker is rewritten. Until then the old marker stays, so run.sh keeps working meanwhile.
set -euo pipefail

ROOT="${RAILBRIDGE_TRIXIE_ROOT:-/var/cache/railbridge/trixie}"
# debootstrap's own default mirror (Debian's package registry) unless RAILBRIDGE_TRIXIE_MIRROR names another.
MIRROR=("${RAILBRIDGE_TRIXIE_MIRROR:-}")
[[ -z "${MIRROR[0]}" ]] && MIRROR=()
MARKER="$ROOT/.railbridge-ready"
# ruby-redis + ruby-dalli: ActiveSupport::Cache::RedisCacheStore / MemCacheStore for the session-store tests
# (interop/app72 with SESSION_STORE=cache_store, interop/stores/smoke.sh).
PACKAGES=(ruby ruby-rails ruby-msgpack ruby-sqlite3 ruby-bcrypt ruby-pg puma ruby-webrick curl ca-certificates
          ruby-redis ruby-dalli)
# Change this whenever PACKAGES grows: roots whose marker lacks it get the missing packages installed.
MARKER_SUFFIX="+stores"

if [[ $EUID -ne 0 ]]; then
  echo "setup.sh: must run as root (debootstrap/chroot)" >&2
  exit 1
fi

# The marker is current when it ends with MARKER_SUFFIX (e.g. "7.2.2.2+stores").
marker_current() {
  [[ -s "$MARKER" ]] || return 1
  local m; m="$(head -n1 "$MARKER")"
  [[ "$m" == *"$MARKER_SUFFIX" ]]
}

if marker_current; then
  echo "trixie root ready at $ROOT (Rails $(cat "$MARKER"))"
  exit 0
fi

# Serialize concurrent setups on one machine.
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9
if marker_current; then
  echo "trixie root ready at $ROOT (Rails $(cat "$MARKER"))"
  exit 0
fi

proc_mounted=0
cleanup() {
  if [[ $proc_mounted == 1 ]]; then umount "$ROOT/proc" 2>/dev/null || umount -l "$ROOT/proc" 2>/dev/null || true; fi
}
trap cleanup EXIT

if [[ -s "$MARKER" ]]; then
  # A complete root from an older setup.sh: keep it, only add what PACKAGES gained since.
  echo "upgrading trixie root $ROOT (marker '$(head -n1 "$MARKER")', want suffix '$MARKER_SUFFIX')"
else
  if [[ -e "$ROOT" ]]; then
    echo "removing half-made root $ROOT (no $MARKER)"
    # never follow into a still-mounted /proc
    umount "$ROOT/proc" 2>/dev/null || true
    rm -rf --one-file-system "$ROOT"
  fi

  if ! command -v debootstrap >/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap
  fi

  echo "debootstrap trixie into $ROOT ..."
  debootstrap --variant=minbase trixie "$ROOT" "${MIRROR[@]}"
fi

cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
mount -t proc proc "$ROOT/proc"
proc_mounted=1

in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive "$@"; }

in_root apt-get update
available=()
for p in "${PACKAGES[@]}"; do
  if in_root apt-cache show "$p" >/dev/null 2>&1; then
    available+=("$p")
  else
    echo "WARNING: package $p does not exist in trixie; skipped" >&2
  fi
done
in_root apt-get install -y --no-install-recommends "${available[@]}"
in_root apt-get clean

version="$(in_root ruby -e 'require "rails"; print Rails.version')"
in_root ruby -e 'require "msgpack"; require "active_support"; require "active_support/message_pack"' >/dev/null
in_root ruby -e 'require "redis"; require "dalli"' >/dev/null
case "$version" in
  7.2.*) ;;
  *) echo "setup.sh: expected Rails 7.2.x in trixie, got '$version'" >&2; exit 1 ;;
esac

umount "$ROOT/proc"
proc_mounted=0
printf '%s%s\n' "$version" "$MARKER_SUFFIX" >"$MARKER.tmp"
mv -f "$MARKER.tmp" "$MARKER"
echo "trixie root ready at $ROOT (Rails $version$MARKER_SUFFIX)"
