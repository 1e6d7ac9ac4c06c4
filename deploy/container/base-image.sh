#!/usr/bin/env bash
# Makes a Debian 12 base image from Debian's packages, for machines that cannot pull
# debian:12-slim from a registry: debootstrap's minbase, trimmed the way Debian's slim images
# are (no documentation, manuals or translations, now or from later apt installs), imported
# into podman as NAME. Keeps an existing NAME younger than a week (rebuilt after, so the base
# does not fall behind Debian's updates). Called by build.sh, with CONTAINERS_CONF set.
#
#   deploy/container/base-image.sh NAME
set -euo pipefail
name=${1:?usage: base-image.sh NAME}
max_age_seconds=$((7 * 24 * 3600))

previous=
if created=$(podman image inspect --format '{{.Created.Unix}}' "$name" 2>/dev/null); then
  (($(date +%s) - created < max_age_seconds)) && exit 0
  previous=$(podman image inspect --format '{{.Id}}' "$name")
fi

# The mirrors the host's apt sources name (deb822 or one-line style), Debian's own otherwise.
apt_uris() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | grep -E '^[[:space:]]*(URIs:|deb )' | grep -Eo 'https?://[^ ]+' || true
}
mirror=$(apt_uris | grep -v security | head -n1)
security=$(apt_uris | grep security | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "base-image: debootstrap bookworm from $mirror"
if ! debootstrap --variant=minbase bookworm "$root/fs" "$mirror" >"$root/debootstrap.log" 2>&1; then
  cat "$root/debootstrap.log" >&2
  echo "base-image: debootstrap failed (log above); check that $mirror answers" >&2
  exit 1
fi
fs=$root/fs

cat >"$fs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
rm -f "$fs/etc/apt/sources.list"
# As in Debian's slim images: later package installs leave these out too.
cat >"$fs/etc/dpkg/dpkg.cfg.d/slim" <<'EXCLUDES'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EXCLUDES
find "$fs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$fs/usr/share/man" "$fs/usr/share/info" -mindepth 1 -delete
find "$fs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf "$fs"/var/cache/apt/archives/*.deb "$fs"/var/lib/apt/lists/* "$fs"/var/log/*.log

tar -C "$fs" --numeric-owner -c . | podman import --quiet - "$name" >/dev/null
echo "base-image: $name made from Debian's packages"
# The week-old base it replaces; images built on it keep their layers.
if [ -n "$previous" ]; then podman rmi "$previous" >/dev/null 2>&1 || true; fi
