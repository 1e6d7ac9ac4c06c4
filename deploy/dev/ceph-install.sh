#!/usr/bin/env bash
# Installs Ceph's daemons, client tools and Python bindings from Debian (only what is missing)
# and makes the `rados` and `rbd` bindings importable from the project's virtualenv.
#
# Debian builds python3-rados/python3-rbd for its own CPython 3.11; they are ABI-compatible
# with any CPython 3.11, so the two extension modules (and nothing else from dist-packages)
# are linked into .venv/lib/python3.11/site-packages/imgworker-ceph/ and a .pth file adds
# that directory to sys.path. `deploy/dev/ceph-install.sh --check` only reports.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
for pkg in ceph-mon ceph-osd ceph-common python3-rados python3-rbd qemu-block-extra uuid-runtime; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
  [ "${1:-}" = "--check" ] && { echo "missing: ${need[*]}"; exit 1; }
  echo "ceph-install: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || deploy/dev/bootstrap.sh
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
abi=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
bindings="$site/imgworker-ceph"
mkdir -p "$bindings"
for module in rados rbd; do
  so="/usr/lib/python3/dist-packages/$module$abi"
  if [ ! -f "$so" ]; then
    echo "ceph-install: $so not found: Debian's bindings do not match this Python ($abi)" >&2
    exit 1
  fi
  ln -sf "$so" "$bindings/$module$abi"
done
echo "$bindings" > "$site/imgworker-ceph.pth"
.venv/bin/python -c 'import rados, rbd' && echo "ceph-install: rados and rbd import from .venv"
