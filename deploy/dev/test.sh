#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what is needed (idempotently),
# makes sure PostgreSQL and RabbitMQ run, builds the container image (in the background),
# validates deploy/, then lint, types, unit and integration tests, and the built image's smoke
# test (tests/integration/test_container.py). Exit status is the verdict.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/dev/bootstrap.sh

# Services the integration tests use for real (started when down, as the machine notes say).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  rabbitmq-server -detached || true
  for _ in $(seq 60); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 1; done
fi

# Ceph's daemons and bindings (the tests start and stop their own throwaway clusters).
deploy/dev/ceph-install.sh
# The real glance and openstack clients the API tests drive (their own virtualenv).
deploy/dev/clients.sh
# Keystone from PyPI (.cache/keystone-venv), installed once; the tests start their own.
deploy/dev/keystone-up.sh --install
# podman for the container image, then its build in the background while the checks and tests
# run (mostly downloads: it costs them little); joined before the image's smoke test. Whatever
# ends this script waits for the build first, so no half-made build is left behind.
deploy/container/podman-install.sh
image_log=$(mktemp)
image_id=$(mktemp)
deploy/container/build.sh --iidfile "$image_id" >"$image_log" 2>&1 &
image_build=$!
trap 'wait "$image_build" 2>/dev/null; rm -f "$image_log" "$image_id"' EXIT

echo "== lint and types"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

echo "== deploy/"
deploy/check-deploy.sh

echo "== tests"
# Test files run on several workers at once (each file whole on one worker, so its module
# fixtures — Ceph clusters, a Keystone — start once): most tests wait on services, leases
# and shaped links rather than on the CPU. IMGWORKER_TEST_WORKERS=1 runs them one by one.
workers=${IMGWORKER_TEST_WORKERS:-4}
parallel=()
if [ "$workers" -gt 1 ]; then parallel=(-n "$workers" --dist loadfile); fi
.venv/bin/pytest -p no:cacheprovider "${parallel[@]}" \
  --ignore=tests/integration/test_container.py "$@" tests

echo "== container image (deploy/container/build.sh, started in the background)"
SECONDS=0
if ! wait "$image_build"; then
  cat "$image_log"
  echo "test.sh: the image build failed" >&2
  exit 1
fi
cat "$image_log"
echo "test.sh: waited $SECONDS s for the build"
IMGWORKER_IMAGE=$(cat "$image_id") .venv/bin/pytest -p no:cacheprovider -s \
  tests/integration/test_container.py
