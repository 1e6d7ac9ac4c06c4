#!/usr/bin/env bash
# Starts N throwaway single-node Ceph clusters (one mon, one RAM-backed memstore OSD, an
# `images` pool each), without systemd, in parallel. Each cluster has its own fsid, monitor
# port, conf and directory: DIR/c0, DIR/c1, ... Prints one conf path per line.
#
#   deploy/dev/ceph-up.sh N [DIR]        (DIR defaults to .ceph; stop with ceph-down.sh DIR)
#   CEPH_MEMSTORE_BYTES=...              RAM per OSD (default 2 GiB)
#   CEPH_OBJECTSTORE=bluestore           a file-backed BlueStore OSD instead of memstore
#                                        (real allocation accounting; CEPH_BLUESTORE_BYTES)
#   CEPH_SITE_RATE=400mbit               each cluster an edge site: its own network namespace,
#                                        reached through a veth pair shaped to that rate both
#                                        ways (tc tbf); recorded in DIR/cN/site.env
#   CEPH_SITE_RATES="1gbit 400mbit"      a rate per cluster (the last one repeats)
#   CEPH_SITE_NET=10.250.0.0/16          where the sites' /30 links are taken from
#
# Auth is `none`: these clusters listen on 127.0.0.1 (or on their site's private link) only
# and live for one test run. Running it again on the same DIR keeps the clusters that are up
# and starts afresh any that are not (after stopping and removing what they left).
set -euo pipefail
count=${1:?usage: ceph-up.sh N [DIR]}
root=$(realpath -m "${2:-.ceph}")
memstore=${CEPH_MEMSTORE_BYTES:-2147483648}
objectstore=${CEPH_OBJECTSTORE:-memstore}
bluestore_bytes=${CEPH_BLUESTORE_BYTES:-8589934592}
read -r -a rates <<<"${CEPH_SITE_RATES:-${CEPH_SITE_RATE:-}}"
lib="$(dirname "$0")/ceph-lib.sh"
source "$lib"
mkdir -p "$root"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Start the cluster of directory $1 with its monitor on $2:$3. With a site, its daemons run in
# the site's namespace (command prefix $4...) and bind its address; clients stay on the host.
start_cluster() {
  set -x
  local dir=$1 addr=$2 port=$3 fsid conf
  shift 3
  local inside=("$@")
  fsid=$(uuidgen)
  conf="$dir/ceph.conf"
  mkdir -p "$dir"/{run,log,mon,osd}
  cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:$addr:$port
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
  if ((${#inside[@]})); then
    # In [osd] only: a client given a public addr would try to bind it on the host.
    printf '[osd]\npublic addr = %s\ncluster addr = %s\n' "$addr" "$addr" >> "$conf"
  fi
  "${inside[@]}" ceph-mon -c "$conf" --mkfs -i a --fsid "$fsid" --mon-data "$dir/mon/mon.a" >/dev/null 2>&1
  "${inside[@]}" ceph-mon -c "$conf" -i a --public-addr "v2:$addr:$port"
  local id
  id=$(ceph -c "$conf" --connect-timeout 30 osd create)
  mkdir -p "$dir/osd/osd.$id"
  "${inside[@]}" ceph-osd -c "$conf" -i "$id" --mkfs >/dev/null 2>&1
  ceph -c "$conf" osd crush add "osd.$id" 1.0 host=localhost root=default >/dev/null 2>&1
  "${inside[@]}" ceph-osd -c "$conf" -i "$id"
  ceph -c "$conf" osd pool create images 8 >/dev/null 2>&1
  rbd -c "$conf" pool init images
  echo "$fsid" > "$dir/fsid"
}

# Sites are made one at a time under a machine-wide lock: two runs must not pick one /30. In
# a shell of its own, so errexit stops it at the first failure (under `if` it would not).
make_site() {
  flock /run/lock/imgworker-ceph-sites.lock \
    bash -euo pipefail -c 'source "$1"; site_up "$2" "$3"' site_up "$lib" "$1" "$2"
}

pids=()
for ((i = 0; i < count; i++)); do
  dir="$root/c$i"
  if [ -f "$dir/fsid" ]; then continue; fi   # already up (idempotent)
  if [ -d "$dir" ]; then                     # half started: stop and remove what it left
    stop_daemons "$dir"
    site_down "$dir"
    rm -rf "$dir"
  fi
  if ((${#rates[@]})); then
    rate=${rates[i]:-${rates[-1]}}
    if ! make_site "$dir" "$rate" > "$root/c$i.site.log" 2>&1; then
      cat "$root/c$i.site.log" >&2
      echo "ceph-up: the site of $dir (rate $rate) could not be made; ceph-down.sh $root removes what was made" >&2
      exit 1
    fi
    site_addr=$(site_value "$dir/site.env" site_addr)
    netns=$(site_value "$dir/site.env" netns)
    start_cluster "$dir" "$site_addr" 3300 ip netns exec "$netns" > "$root/c$i.start.log" 2>&1 &
  else
    start_cluster "$dir" 127.0.0.1 "$(free_port)" > "$root/c$i.start.log" 2>&1 &
  fi
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
