#!/usr/bin/env bash
# Installs what imgworker needs on a Debian machine, idempotently: system packages (only the
# missing ones, with apt-get) and the project in a virtualenv at .venv. Sourced or run by
# demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

need=()
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v chattr >/dev/null || need+=(e2fsprogs)
command -v prlimit >/dev/null || need+=(util-linux)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
  echo "bootstrap: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.imgworker-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log=.venv/install.log
  if ! { .venv/bin/pip install -q -U pip && .venv/bin/pip install -q -e '.[test]'; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "bootstrap: installing the project failed (log above, also in $log)" >&2
    exit 1
  fi
  touch "$stamp"
fi
