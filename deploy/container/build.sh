#!/usr/bin/env bash
# Builds the imgworker image with podman from this checkout, on a machine with no registry and
# no Docker daemon (what CI runs):
#   - installs podman, runc and debootstrap when they are missing (podman-install.sh);
#   - uses debian:12-slim when it is present or can be pulled, else makes the base from
#     Debian's packages (base-image.sh, kept for a week);
#   - lends the host's CA bundle to pip in the build's RUN steps (outbound TLS re-signed by a
#     local authority, as behind a corporate proxy) without copying it into the image;
#   - builds in Docker's image format, which keeps HEALTHCHECK (the OCI format drops it), and
#     fails if the built image has no health check;
#   - one build at a time on the machine (flock); podman's layer cache makes rebuilds quick.
# Prints the image id, its size and how long the build took.
#
#   deploy/container/build.sh [--tag NAME] [--iidfile FILE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."

tag=localhost/imgworker:latest
iidfile=
while (($#)); do
  case $1 in
    --tag) tag=${2:?--tag needs a name}; shift 2 ;;
    --iidfile) iidfile=${2:?--iidfile needs a file}; shift 2 ;;
    *) echo "build.sh: unknown argument $1 (use --tag NAME, --iidfile FILE)" >&2; exit 2 ;;
  esac
done
SECONDS=0

"$here/podman-install.sh"
export CONTAINERS_CONF=$here/containers.conf

lock_dir=/run/lock
[ -w "$lock_dir" ] || lock_dir=${TMPDIR:-/tmp}
exec 9>"$lock_dir/imgworker-image-build.lock"
if ! flock -n 9; then
  echo "build.sh: another image build runs on this machine; waiting for it"
  flock 9
fi

base=docker.io/library/debian:12-slim
if ! podman image exists "$base" && ! timeout 120 podman pull -q "$base" >/dev/null 2>&1; then
  base=localhost/imgworker-base:bookworm
  "$here/base-image.sh" "$base"
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
lend=()
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir "$scratch/pip"
  cp /etc/ssl/certs/ca-certificates.crt "$scratch/pip/host-ca.crt"
  printf '[global]\ncert = /etc/xdg/pip/host-ca.crt\n' >"$scratch/pip/pip.conf"
  lend=(--volume "$scratch/pip:/etc/xdg/pip:ro")
fi

previous=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
podman build --quiet --format docker --network host --pull=never --layers \
  --build-arg "BASE_IMAGE=$base" --build-arg "PACKAGES_AS_OF=$(date +%G-W%V)" \
  "${lend[@]}" --iidfile "$scratch/iid" --file deploy/container/Containerfile --tag "$tag" . \
  >"$scratch/build.log" 2>&1 || {
  cat "$scratch/build.log" >&2
  echo "build.sh: the build failed (log above)" >&2
  exit 1
}
image=$(cat "$scratch/iid")
image=${image#sha256:}
# The image this tag named before, unless a container or another tag still uses it.
if [ -n "$previous" ] && [ "$previous" != "$image" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true
fi

if [ "$(podman image inspect --format '{{if .HealthCheck}}yes{{end}}' "$image")" != yes ]; then
  echo "build.sh: $tag has no HEALTHCHECK (was it built in the OCI format?)" >&2
  exit 1
fi
[ -z "$iidfile" ] || echo "$image" >"$iidfile"
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "build.sh: $tag = ${image:0:12}, $((size / 1000000)) MB, built in $SECONDS s (base $base)"
