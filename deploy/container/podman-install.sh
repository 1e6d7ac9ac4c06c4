#!/usr/bin/env bash
# Installs what deploy/container/build.sh needs from Debian, only what is missing: podman, runc
# (the runtime containers.conf names) and debootstrap (for a base image without a registry).
set -euo pipefail
need=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
  echo "podman-install: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
