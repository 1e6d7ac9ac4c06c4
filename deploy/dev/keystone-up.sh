#!/usr/bin/env bash
# A real Keystone (from PyPI) on loopback for the tests: keystone-up.sh DIR PORT
# (or keystone-up.sh --install: only install it, as deploy/dev/test.sh does before the tests)
#
# Installs Keystone and uWSGI once into a cached virtualenv (.cache/keystone-venv, stamped
# with the versions), configures DIR (SQLite, fernet tokens), creates the database, the keys
# and the admin user once per DIR (`keystone-manage bootstrap`), then serves Keystone with
# uWSGI on 127.0.0.1:PORT, daemonized with DIR/uwsgi.pid, and waits until /v3 answers.
# Idempotent: run again on the same DIR it only starts what is not running.
# keystone-down.sh DIR stops it by that pid.
#
# Environment: KEYSTONE_ADMIN_PASSWORD (default "admin-secret").
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$repo/.cache/keystone-venv"
password="${KEYSTONE_ADMIN_PASSWORD:-admin-secret}"

install() {
  local versions="keystone==30.0.0 uwsgi==2.0.31" stamp="$venv/.installed"
  mkdir -p "$repo/.cache"
  # One installer at a time (two test runs may start at once); the others wait, then skip.
  exec 9>"$repo/.cache/keystone-venv.lock"
  flock 9
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$versions" ]; then
    exec 9>&-  # or the daemonized uWSGI inherits the lock and holds it while it runs
    return
  fi
  rm -rf "$venv"
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
  exec 9>&-
}

configure() {
  mkdir -p "$dir/etc" "$dir/log" "$dir/fernet" "$dir/cred"
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

# Once per DIR: the schema, the fernet and credential keys, then `bootstrap` (the admin user
# and project, the default roles, the identity service in the catalog). Each keystone-manage
# spends ~2 s importing Keystone, so the three independent steps run at once.
setup() {
  local owner=(--keystone-user "$(id -un)" --keystone-group "$(id -gn)") pids=() pid
  manage db_sync & pids+=($!)
  manage fernet_setup "${owner[@]}" & pids+=($!)
  manage credential_setup "${owner[@]}" & pids+=($!)
  for pid in "${pids[@]}"; do
    wait "$pid" || return 1
  done
  manage bootstrap --bootstrap-password "$password" \
    --bootstrap-admin-url "$url/" --bootstrap-public-url "$url/" \
    --bootstrap-internal-url "$url/" --bootstrap-region-id RegionOne
}

bootstrap() {
  local stamp="$dir/.bootstrapped"
  if [ -f "$stamp" ]; then
    if [ "$(cat "$stamp")" != "$port" ]; then
      echo "keystone-up: $dir was bootstrapped for port $(cat "$stamp"), not $port;" \
        "use a new DIR or the same port" >&2
      exit 1
    fi
    return
  fi
  if ! setup; then
    tail -n 40 "$dir/log/manage.log" >&2
    echo "keystone-up: keystone-manage failed (log above, also in $dir/log/manage.log)" >&2
    exit 1
  fi
  echo "$port" > "$stamp"
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
  exit 1
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
bootstrap
serve
echo "$url"
