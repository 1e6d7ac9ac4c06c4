#!/usr/bin/env bash
# Stops the clusters ceph-up.sh started under DIR (by the pids in their pid files, never by
# name: other Ceph daemons on the machine are left alone) and removes DIR.
set -euo pipefail
root=$(realpath -m "${1:-.ceph}")
[ -d "$root" ] || exit 0
pids=()
for pidfile in "$root"/c*/run/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then pids+=("$pid"); fi
done
for _ in $(seq 100); do
  alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
  ((alive)) || break
  sleep 0.1
done
for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
rm -rf "$root"
