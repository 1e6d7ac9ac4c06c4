#!/usr/bin/env bash
# A real Keystone (from PyPI) on loopback for the tests: keystone-up.sh DIR PORT
# (or keystone-up.sh --install: only install it, as deploy/dev/test.sh does before the tests)
#
# Installs Keystone and uWSGI once into a cached virtualenv (.cache/keystone-venv, stamped
# with the versions) and prepares, once too, a template (.cache/keystone-template: the SQLite
# schema, fernet and credential keys, `keystone-manage bootstrap`'s admin, roles and
# catalog), which is what takes time. A new DIR gets a copy of the template, its own
# configuration and a `bootstrap` again (which points the catalog at PORT), while uWSGI starts
# serving Keystone on 127.0.0.1:PORT, daemonized with DIR/uwsgi.pid; it returns once /v3
# answers. Idempotent: run again on the same DIR it only starts what is not running. The
# keys are shared by every test Keystone made from one template: this is a test stack.
# keystone-down.sh DIR stops it by that pid.
#
# Environment: KEYSTONE_ADMIN_PASSWORD (default "admin-secret").
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$repo/.cache/keystone-venv"
password="${KEYSTONE_ADMIN_PASSWORD:-admin-secret}"

versions="keystone==30.0.0 uwsgi==2.0.31"
template="$repo/.cache/keystone-template"

# The virtualenv and the template, once; one installer at a time (two test runs may start at
# once): the others wait, then find both ready.
install() {
  mkdir -p "$repo/.cache"
  exec 9>"$repo/.cache/keystone-venv.lock"
  flock 9
  install_venv
  make_template
  exec 9>&-  # or the daemonized uWSGI inherits the lock and holds it while it runs
}

install_venv() {
  local stamp="$venv/.installed"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$versions" ]; then return; fi
  rm -rf "$venv" "$template"
  python3 -m venv "$venv"
  echo "keystone-up: installing $versions into $venv (once)" >&2
  # shellcheck disable=SC2086  # the versions are separate arguments
  if ! { "$venv/bin/pip" install -q -U pip && "$venv/bin/pip" install -q $versions; } \
      >"$venv/install.log" 2>&1; then
    cat "$venv/install.log" >&2
    echo "keystone-up: installing Keystone failed (log above, also in $venv/install.log)" >&2
    exit 1
  fi
  echo "$versions" > "$stamp"
}

make_template() {
  local stamp="$template/.made"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$versions" ]; then return; fi
  rm -rf "$template"
  dir="$template" conf="$template/etc/keystone.conf" url="http://127.0.0.1:5000/v3"
  configure
  mkdir -p "$dir/fernet" "$dir/cred"
  if ! setup; then
    tail -n 40 "$dir/log/manage.log" >&2
    echo "keystone-up: keystone-manage failed (log above, also in $dir/log/manage.log)" >&2
    exit 1
  fi
  echo "$versions" > "$stamp"
}

configure() {
  mkdir -p "$dir/etc" "$dir/log"
  cat > "$conf" <<CONF
[DEFAULT]
log_file = $dir/log/keystone.log
[database]
connection = sqlite:///$dir/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $dir/fernet
[credential]
key_repository = $dir/cred
CONF
}

manage() {
  "$venv/bin/keystone-manage" --config-file "$conf" "$@" >>"$dir/log/manage.log" 2>&1
}

# The schema, the fernet and credential keys, then `bootstrap`. Each keystone-manage spends
# ~2 s importing Keystone, so the three independent steps run at once.
setup() {
  local owner=(--keystone-user "$(id -un)" --keystone-group "$(id -gn)") pids=() pid
  manage db_sync & pids+=($!)
  manage fernet_setup "${owner[@]}" & pids+=($!)
  manage credential_setup "${owner[@]}" & pids+=($!)
  for pid in "${pids[@]}"; do
    wait "$pid" || return 1
  done
  bootstrap
}

# The admin user and project, the default roles (admin, manager, member, reader, service) and
# the identity service in the catalog at $url; run again, it updates what differs.
bootstrap() {
  manage bootstrap --bootstrap-password "$password" \
    --bootstrap-admin-url "$url/" --bootstrap-public-url "$url/" \
    --bootstrap-internal-url "$url/" --bootstrap-region-id RegionOne
}

# A new DIR: the template's database and keys, bootstrapped for $url while uWSGI starts.
start_new() {
  mkdir -p "$dir/fernet" "$dir/cred"
  cp -a "$template/keystone.db" "$dir/"
  cp -a "$template/fernet/." "$dir/fernet/"
  cp -a "$template/cred/." "$dir/cred/"
  bootstrap &
  local booting=$!
  serve || exit 1
  if ! wait "$booting"; then
    tail -n 40 "$dir/log/manage.log" >&2
    echo "keystone-up: keystone-manage bootstrap failed (log above, also in" \
      "$dir/log/manage.log)" >&2
    exit 1
  fi
  echo "$port" > "$dir/.bootstrapped"
}

start() {
  local stamp="$dir/.bootstrapped"
  if [ ! -f "$stamp" ]; then
    start_new
  elif [ "$(cat "$stamp")" != "$port" ]; then
    echo "keystone-up: $dir was bootstrapped for port $(cat "$stamp"), not $port;" \
      "use a new DIR or the same port" >&2
    exit 1
  else
    serve || exit 1
  fi
}

answers() {
  curl -fs -o /dev/null --max-time 5 "$url"
}

# uWSGI's plain HTTP socket closes each connection after one answer without saying so; the
# clients (requests, aiohttp) would then send their next request on a closed connection, so
# every answer says "Connection: close".
serve() {
  local pidfile="$dir/uwsgi.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    answers && return
  fi
  rm -f "$pidfile"
  OS_KEYSTONE_CONFIG_DIR="$dir/etc" "$venv/bin/uwsgi" \
    --http-socket "127.0.0.1:$port" --module keystone.wsgi.api:application \
    --master --processes 1 --threads 4 --enable-threads --lazy-apps --die-on-term \
    --pidfile "$pidfile" --virtualenv "$venv" --daemonize "$dir/log/uwsgi.log" \
    --env OS_KEYSTONE_CONFIG_FILES=keystone.conf --add-header "Connection: close"
  for _ in $(seq 600); do
    answers && return
    sleep 0.1
  done
  tail -n 40 "$dir/log/uwsgi.log" >&2
  echo "keystone-up: Keystone did not answer at $url within 60 s (log above)" >&2
  return 1
}

install
if [ $# -eq 1 ] && [ "$1" = --install ]; then
  exit 0
fi
if [ $# -ne 2 ]; then
  echo "usage: $0 DIR PORT | $0 --install" >&2
  exit 2
fi
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
port="$2"
conf="$dir/etc/keystone.conf"
url="http://127.0.0.1:$port/v3"
configure
start
echo "$url"
