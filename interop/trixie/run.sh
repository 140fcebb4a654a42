#!/usr/bin/env bash
# Runs CMD inside the trixie root (see setup.sh) as root, with the repo bind-mounted at the same absolute path
# and /proc mounted, in a private mount namespace (mounts vanish when the command exits, even on a crash).
# The working directory is kept if it lies inside the repo, else the repo root. Network (loopback included) is
# shared with the host.
#
#   interop/trixie/run.sh ruby interop/gen_vectors.rb
set -euo pipefail

ROOT="${RAILBRIDGE_TRIXIE_ROOT:-/var/cache/railbridge/trixie}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(git -C "$HERE" rev-parse --show-toplevel)"

if [[ $# -eq 0 ]]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi
if [[ ! -s "$ROOT/.railbridge-ready" ]]; then
  echo "run.sh: no ready trixie root at $ROOT; run interop/trixie/setup.sh (as root) first" >&2
  exit 1
fi
if [[ $EUID -ne 0 ]]; then
  echo "run.sh: must run as root (chroot)" >&2
  exit 1
fi

cwd="$PWD"
case "$cwd/" in
  "$REPO"/*) ;;
  *) cwd="$REPO" ;;
esac

export RB_ROOT="$ROOT" RB_REPO="$REPO" RB_CWD="$cwd"
exec unshare --mount --propagation private -- bash -c '
  set -euo pipefail
  mkdir -p "$RB_ROOT$RB_REPO"
  mount --bind "$RB_REPO" "$RB_ROOT$RB_REPO"
  mount -t proc proc "$RB_ROOT/proc"
  if [[ -d /dev/shm ]]; then mount -t tmpfs tmpfs "$RB_ROOT/dev/shm" 2>/dev/null || true; fi
  cp -L /etc/resolv.conf "$RB_ROOT/etc/resolv.conf" 2>/dev/null || true
  exec chroot "$RB_ROOT" /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    ${TZ:+TZ="$TZ"} \
    /bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$RB_CWD" "$@"
' rb-trixie "$@"
