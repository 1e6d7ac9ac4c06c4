# Functions shared by ceph-up.sh and ceph-down.sh (sourced, not run). Everything here acts on
# what a cluster directory records — pid files and site.env — never on names it guesses.

# Stop the daemons of the cluster directories given, by the pids in their pid files: TERM,
# up to 10 s for them to exit, then KILL.
stop_daemons() {
  local dir pidfile pid alive pids=()
  for dir in "$@"; do
    for pidfile in "$dir"/run/*.pid; do
      [ -f "$pidfile" ] || continue
      pid=$(cat "$pidfile")
      if kill "$pid" 2>/dev/null; then pids+=("$pid"); fi
    done
  done
  ((${#pids[@]})) || return 0
  for _ in $(seq 100); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}

# A site is a cluster in its own network namespace behind a veth pair shaped with tbf in both
# directions. Its names derive from the cluster directory (unique per DIR and cluster; an
# interface name has at most 15 characters) and are recorded in DIR/site.env before anything
# is created, so ceph-down.sh removes exactly them, even from a half-made site.
site_names() {
  local dir=$1 tag
  tag=$(printf '%s' "$dir" | sha256sum | cut -c1-8)
  site_netns="imgw-$tag-${dir##*/}"
  site_host_veth="iw${tag}h"
  site_veth="iw${tag}s"
}

# Print "HOST_ADDR SITE_ADDR": the first /30 of $1 (a private network) that no address or
# route of this machine (other than a default route) overlaps. Hold the sites lock around
# this and the addresses' creation.
free_site_pair() {
  python3 - "$1" <<'PY'
import ipaddress, json, subprocess, sys


def ip(*args):
    out = subprocess.run(["ip", "-j", "-4", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout or "[]")


pool = ipaddress.ip_network(sys.argv[1])
routes = ip("route", "show", "table", "all")
taken = [ipaddress.ip_network(r["dst"], strict=False) for r in routes if r["dst"] != "default"]
links = ip("addr", "show")
taken += [ipaddress.ip_network(a["local"]) for link in links for a in link.get("addr_info", [])]
for subnet in pool.subnets(new_prefix=30):
    if not any(subnet.overlaps(net) for net in taken):
        host, site = list(subnet.hosts())
        print(host, site)
        sys.exit(0)
sys.exit(f"ceph-up: no free /30 in {pool}: this machine routes or uses all of it; set CEPH_SITE_NET to a private range it does not")
PY
}

# Create the site of cluster directory $1 with link rate $2 (tc's units: 400mbit, 1gbit).
# Writes $1/site.env first; the caller holds the sites lock.
site_up() {
  local dir=$1 rate=$2 pair host_addr site_addr
  site_names "$dir"
  if [ -e "/run/netns/$site_netns" ] || ip link show "$site_host_veth" >/dev/null 2>&1; then
    echo "ceph-up: $site_netns or $site_host_veth exists but $dir does not record it;" \
      "if a removed directory left it, delete it with: ip netns del $site_netns; ip link del $site_host_veth" >&2
    return 1
  fi
  pair=$(free_site_pair "${CEPH_SITE_NET:-10.250.0.0/16}")
  read -r host_addr site_addr <<<"$pair"
  mkdir -p "$dir"
  cat > "$dir/site.env" <<ENV
netns=$site_netns
host_veth=$site_host_veth
site_veth=$site_veth
host_addr=$host_addr
site_addr=$site_addr
rate=$rate
ENV
  ip netns add "$site_netns"
  ip link add "$site_host_veth" type veth peer name "$site_veth" netns "$site_netns"
  # Nothing arriving from the site is forwarded, whatever the machine's ip_forward says; the
  # namespace has no default route, so it reaches only the host's end of its own link.
  sysctl -qw "net.ipv4.conf.$site_host_veth.forwarding=0"
  ip addr add "$host_addr/30" dev "$site_host_veth"
  ip link set "$site_host_veth" up
  ip -n "$site_netns" link set lo up
  ip -n "$site_netns" addr add "$site_addr/30" dev "$site_veth"
  ip -n "$site_netns" link set "$site_veth" up
  # tbf shapes what an interface sends: the host's end carries writes to the site, the
  # site's end what it sends back (reads, acks). netem is not in these kernels; tbf is.
  # A 256 KiB burst holds four 64 KiB GSO packets and is ~10 ms at 200mbit.
  tc qdisc add dev "$site_host_veth" root tbf rate "$rate" burst 256kb latency 50ms
  tc -n "$site_netns" qdisc add dev "$site_veth" root tbf rate "$rate" burst 256kb latency 50ms
}

# Value of KEY in the site record $1 (lines KEY=VALUE; read, never sourced).
site_value() {
  sed -n "s/^$2=//p" "$1"
}

# Remove the namespace and veth pair recorded in cluster directory $1, if it has a site.
# Call after its daemons stopped: a namespace lingers while a process runs in it.
site_down() {
  local record=$1/site.env netns host_veth
  [ -f "$record" ] || return 0
  netns=$(site_value "$record" netns)
  host_veth=$(site_value "$record" host_veth)
  if [ -n "$host_veth" ] && ip link show "$host_veth" >/dev/null 2>&1; then
    ip link del "$host_veth"
  fi
  if [ -n "$netns" ] && [ -e "/run/netns/$netns" ]; then
    ip netns del "$netns"
  fi
}
