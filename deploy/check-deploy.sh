#!/usr/bin/env bash
# Checks everything under deploy/ with the real tools: systemd-analyze verify, hadolint for
# the Containerfile, Kubernetes/KEDA/PodMonitor schema validation, promtool check + test for
# the rules, and the dashboard. Installs what it needs (apt only when missing). Exit status is
# the verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || deploy/dev/bootstrap.sh

need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v promtool >/dev/null || need+=(prometheus)

# Pids of processes running Debian's /usr/bin/prometheus (whoever started them).
prometheus_pids() {
  local exe
  for exe in /proc/[0-9]*/exe; do
    [ "$(readlink "$exe" 2>/dev/null)" = /usr/bin/prometheus ] && basename "${exe%/exe}"
  done
  return 0
}

# Debian's prometheus package starts a server from its postinst where an init system runs. We
# install it for promtool only, so its start is refused the Debian way (a policy-rc.d that
# exits 101, present only while apt-get runs); an administrator's own policy-rc.d is left as
# it is, and a server the install started under it anyway is stopped by its pid. Prometheus
# servers that ran before are never touched.
install_quietly() {
  local policy=/usr/sbin/policy-rc.d ours=0 before pid
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# check-deploy.sh: no service starts while it installs packages\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    ours=1
    trap "rm -f '$policy'" EXIT
  fi
  before=" $(prometheus_pids | tr '\n' ' ') "
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  if ((ours)); then rm -f "$policy"; trap - EXIT; fi
  for pid in $(prometheus_pids); do
    [[ $before == *" $pid "* ]] && continue
    echo "check-deploy: stopping the prometheus server (pid $pid) the package install started"
    kill "$pid" 2>/dev/null || true
  done
}

if ((${#need[@]})); then
  echo "check-deploy: installing ${need[*]}"
  install_quietly "${need[@]}"
fi

echo "== systemd";    deploy/systemd/check.sh
# DL3008 (pin apt versions) is ignored on purpose: Debian stable's security updates should flow
# into every rebuild. The image itself is built and run by test.sh (deploy/container/build.sh).
echo "== container";  .venv/bin/hadolint --ignore DL3008 deploy/container/Containerfile
echo "== kubernetes"; .venv/bin/python deploy/kubernetes/validate.py
echo "== prometheus"
promtool check rules deploy/prometheus/imgworker-rules.yml
(cd deploy/prometheus/tests && promtool test rules ./*.yml)
echo "== grafana";    .venv/bin/pytest -q -p no:cacheprovider tests/unit/test_deploy.py
echo "check-deploy: all deploy checks passed"
