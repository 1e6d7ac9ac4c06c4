#!/usr/bin/env bash
# Starts N throwaway single-node Ceph clusters (one mon, one RAM-backed memstore OSD, an
# `images` pool each), without systemd, in parallel. Each cluster has its own fsid, monitor
# port, conf and directory: DIR/c0, DIR/c1, ... Prints one conf path per line.
#
#   deploy/dev/ceph-up.sh N [DIR]        (DIR defaults to .ceph; stop with ceph-down.sh DIR)
#   CEPH_MEMSTORE_BYTES=...              RAM per OSD (default 2 GiB)
#   CEPH_OBJECTSTORE=bluestore           a file-backed BlueStore OSD instead of memstore
#                                        (real allocation accounting; CEPH_BLUESTORE_BYTES)
#
# Auth is `none`: these clusters listen on 127.0.0.1 only and live for one test run.
set -euo pipefail
count=${1:?usage: ceph-up.sh N [DIR]}
root=$(realpath -m "${2:-.ceph}")
memstore=${CEPH_MEMSTORE_BYTES:-2147483648}
objectstore=${CEPH_OBJECTSTORE:-memstore}
bluestore_bytes=${CEPH_BLUESTORE_BYTES:-8589934592}
mkdir -p "$root"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_cluster() {
  set -x
  local dir=$1 port=$2 fsid conf
  fsid=$(uuidgen)
  conf="$dir/ceph.conf"
  mkdir -p "$dir"/{run,log,mon,osd}
  cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd objectstore = $objectstore
memstore device bytes = $memstore
# BlueStore (when chosen) on a sparse file outside the OSD's data directory: bluestore
# links "block" inside the data directory to it, and the same path would loop.
bluestore block path = $dir/osd/\$name.block
bluestore block create = true
bluestore block size = $bluestore_bytes
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
mon data = $dir/mon/\$name
osd data = $dir/osd/\$name
ms bind ipv6 = false
# Snapshot ids come from the monitor through paxos, which batches proposals for 1 s by
# default: every snapshot create/remove would wait for it. A one-node test mon need not.
paxos propose interval = 0.01
CONF
  ceph-mon -c "$conf" --mkfs -i a --fsid "$fsid" --mon-data "$dir/mon/mon.a" >/dev/null 2>&1
  ceph-mon -c "$conf" -i a --public-addr "v2:127.0.0.1:$port"
  local id
  id=$(ceph -c "$conf" --connect-timeout 30 osd create)
  mkdir -p "$dir/osd/osd.$id"
  ceph-osd -c "$conf" -i "$id" --mkfs >/dev/null 2>&1
  ceph -c "$conf" osd crush add "osd.$id" 1.0 host=localhost root=default >/dev/null 2>&1
  ceph-osd -c "$conf" -i "$id"
  ceph -c "$conf" osd pool create images 8 >/dev/null 2>&1
  rbd -c "$conf" pool init images
  echo "$fsid" > "$dir/fsid"
}

pids=()
for ((i = 0; i < count; i++)); do
  dir="$root/c$i"
  if [ -f "$dir/fsid" ]; then continue; fi   # already up (idempotent)
  start_cluster "$dir" "$(free_port)" > "$root/c$i.start.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
if ((status)); then
  echo "ceph-up: a cluster failed to start; logs:" >&2
  tail -n 20 "$root"/c*.start.log >&2 || true
  exit 1
fi
for ((i = 0; i < count; i++)); do echo "$root/c$i/ceph.conf"; done
