#!/usr/bin/env bash
# Checks everything under deploy/ with the real tools: systemd-analyze verify, hadolint and
# an install replay for the container, Kubernetes/KEDA/PodMonitor schema validation,
# promtool check + test for the rules, and the dashboard. Installs what it needs (apt only
# when missing). Exit status is the verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || deploy/dev/bootstrap.sh

need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v promtool >/dev/null || need+=(prometheus)
if ((${#need[@]})); then
  echo "check-deploy: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's prometheus package starts a server where an init system runs; not here, but make
# sure nothing we did leaves one listening.
pkill -x prometheus 2>/dev/null || true

echo "== systemd";    deploy/systemd/check.sh
echo "== container";  deploy/container/build-check.sh
echo "== kubernetes"; .venv/bin/python deploy/kubernetes/validate.py
echo "== prometheus"
promtool check rules deploy/prometheus/imgworker-rules.yml
(cd deploy/prometheus/tests && promtool test rules ./*.yml)
echo "== grafana";    .venv/bin/pytest -q -p no:cacheprovider tests/unit/test_deploy.py
echo "check-deploy: all deploy checks passed"
