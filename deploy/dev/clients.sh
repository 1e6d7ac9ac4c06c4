#!/usr/bin/env bash
# The real OpenStack clients the API tests drive — python-glanceclient (`glance`) and
# python-openstackclient (`openstack`) from PyPI — in a virtualenv of their own
# (.venv-clients), so their dependencies never mix with the project's. Idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
versions="python-glanceclient==4.13.0 python-openstackclient==10.5.0 oslo.messaging==18.3.1"
stamp=.venv-clients/.installed
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$versions" ]; then exit 0; fi
[ -x .venv-clients/bin/python ] || python3 -m venv .venv-clients
log=.venv-clients/install.log
# shellcheck disable=SC2086  # the versions are separate arguments
if ! { .venv-clients/bin/pip install -q -U pip && .venv-clients/bin/pip install -q $versions; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "clients: installing the OpenStack clients failed (log above, also in $log)" >&2
  exit 1
fi
echo "$versions" > "$stamp"
