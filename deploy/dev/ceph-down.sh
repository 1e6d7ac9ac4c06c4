#!/usr/bin/env bash
# Stops the clusters ceph-up.sh started under DIR (by the pids in their pid files, never by
# name: other Ceph daemons on the machine are left alone), removes the network namespaces and
# veth pairs their sites recorded in DIR/cN/site.env (by those names only), and removes DIR.
set -euo pipefail
root=$(realpath -m "${1:-.ceph}")
[ -d "$root" ] || exit 0
source "$(dirname "$0")/ceph-lib.sh"
dirs=()
for dir in "$root"/c*/; do
  [ -d "$dir" ] && dirs+=("${dir%/}")
done
stop_daemons "${dirs[@]}"
for dir in "${dirs[@]}"; do site_down "$dir"; done
rm -rf "$root"
