#!/usr/bin/env bash
# The first thing to run: installs what is needed, generates a sample qcow2 and imports it,
# in this process (no broker), on SQLite, into three local file stores; then shows the image.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/dev/bootstrap.sh

demo=.demo
rm -rf "$demo"
mkdir -p "$demo"
export IMGWORKER_CONFIG=deploy/dev/demo.toml
.venv/bin/python -m tests.support.images "$demo/sample.qcow2" --virtual-mib 1024 --data-mib 96 >/dev/null
echo "sample image: $demo/sample.qcow2 ($(du -h "$demo/sample.qcow2" | cut -f1) qcow2, 1 GiB virtual)"
echo
echo "\$ imgworker import --file $demo/sample.qcow2 --disk-format qcow2 --stores central,dcn0,dcn1"
.venv/bin/imgworker import --file "$demo/sample.qcow2" --disk-format qcow2 --name sample \
  --stores central,dcn0,dcn1
echo
echo "\$ imgworker list --include-stores"
.venv/bin/imgworker list --include-stores
echo
echo "Stores are under $demo/stores; try: .venv/bin/imgworker --config $IMGWORKER_CONFIG show IMAGE_ID --json"
