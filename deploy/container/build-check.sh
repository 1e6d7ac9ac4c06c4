#!/usr/bin/env bash
# No container engine runs on the development machines, so this checks what can be checked:
# hadolint on the Containerfile, then the Containerfile's install steps replayed against a
# fresh virtualenv (install the project, import it, run the entry point's --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
# DL3008 (pin apt versions) is ignored on purpose: Debian stable's security updates should
# flow into every rebuild.
.venv/bin/hadolint --ignore DL3008 deploy/container/Containerfile
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --no-cache-dir . >"$work/pip.log" 2>&1 || { cat "$work/pip.log"; exit 1; }
"$work/venv/bin/python" -c "import worker.commands, flows.import_flow"
"$work/venv/bin/imgworker" --help >/dev/null
"$work/venv/bin/imgworker" run --help >/dev/null
echo "container: hadolint clean; install steps replayed in a fresh virtualenv"
