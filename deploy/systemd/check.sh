#!/usr/bin/env bash
# Verifies the units with systemd-analyze. ExecStart must exist for `verify`, so the check
# runs on copies whose ExecStart points at this checkout's .venv/bin/imgworker (the same
# command the units start); everything else is verified as shipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing: apt-get install systemd" >&2; exit 1; }
imgworker=$(realpath .venv/bin/imgworker)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
id imgworker >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin imgworker
for unit in imgworker.service imgworker@.service; do
  sed "s|/opt/imgworker/.venv/bin/imgworker|$imgworker|" "deploy/systemd/$unit" > "$work/$unit"
done
cp "$work/imgworker@.service" "$work/imgworker@1.service"
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$work/imgworker.service" "$work/imgworker@1.service" 2>&1 || true)
# Lines about the host's own units (no systemd runs here) are not ours.
ours=$(echo "$out" | grep -F "$work" || true)
if [ -n "$ours" ]; then
  echo "$ours" >&2
  exit 1
fi
echo "systemd units verify clean"
