#!/usr/bin/env bash
# Sets up Podman on a development machine as ../../shared/containers.md
# describes: no Docker engine, no reachable image registry, a hard open-files
# limit of 20000 and a hybrid cgroup layout. Idempotent: every step is
# skipped when its result is already there, so running it again is cheap.
#
#   bash deploy/podman-setup.sh
#
# Afterwards `podman build --pull=never -f deploy/Dockerfile ...` finds
# `debian:bookworm-slim` locally. `deploy/rust-base.sh` adds `rust:1-bookworm`.
#
# Environment:
#   SHOP_PODMAN_CACHE       where the base tarball is kept (default $HOME/.cache/shop-podman)
#   DEBIAN_MIRROR           the mirror for debootstrap (default: the one apt already uses)
#   DEBIAN_SECURITY_MIRROR  the security mirror written into the image (likewise)
set -euo pipefail

say() { echo "podman-setup: $*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "podman-setup: run as root (Podman runs rootful on these machines)" >&2
  exit 1
fi

cache="${SHOP_PODMAN_CACHE:-$HOME/.cache/shop-podman}"
base_tar="$cache/bookworm-base.tar"
base_image="localhost/debian:bookworm-slim"
hub_alias="docker.io/library/debian:bookworm-slim"

# 1. Packages.
packages=(podman buildah runc debootstrap uidmap slirp4netns fuse-overlayfs)
missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" ca-certificates
else
  say "packages already installed"
fi

# 2. /etc/containers/containers.conf: ulimits the machine allows, and runc
# (crun refuses the hybrid cgroup layout).
conf=/etc/containers/containers.conf
wanted=$(
  cat <<'EOF'
# Written by deploy/podman-setup.sh (see shared/containers.md).
[containers]
# The machine's hard open-files limit is 20000; Podman's default asks for more.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
# crun refuses the hybrid cgroup layout of these machines.
runtime = "runc"
EOF
)
if [ -f "$conf" ] && grep -Eq '^[[:space:]]*runtime[[:space:]]*=[[:space:]]*"runc"' "$conf" &&
  grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=.*nofile=20000:20000' "$conf"; then
  say "$conf already set"
else
  mkdir -p /etc/containers
  if [ -f "$conf" ]; then
    cp -p "$conf" "$conf.before-shop"
    say "kept the previous $conf as $conf.before-shop"
  fi
  printf '%s\n' "$wanted" >"$conf"
  say "wrote $conf"
fi

# 3. The base image, made locally because no registry can be reached.
# The URI apt already uses for SUITE (deb822 .sources first, then one-line lists).
apt_uri() {
  local suite=$1 file uri
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    uri=$(awk -v suite="$suite" '
      BEGIN { RS = ""; FS = "\n" }
      {
        uris = ""; found = 0; types = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { line = $i; sub(/^URIs:[ \t]*/, "", line); split(line, u, /[ \t]+/); uris = u[1] }
          if ($i ~ /^Suites:/) { n = split($i, w, /[ \t]+/); for (j = 2; j <= n; j++) if (w[j] == suite) found = 1 }
          if ($i ~ /^Types:/ && $i ~ /[ \t]deb([ \t]|$)/) types = 1
        }
        if (uris != "" && found && types) { print uris; exit }
      }' "$file")
    if [ -n "$uri" ]; then
      echo "$uri"
      return
    fi
  done
  grep -hE "^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[a-z]+://[^[:space:]]+[[:space:]]+${suite}[[:space:]]" \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' | awk '{ print $1; exit }' || true
}

debian_mirror() {
  local uri=${DEBIAN_MIRROR:-$(apt_uri bookworm)}
  echo "${uri:-http://deb.debian.org/debian}"
}

security_mirror() {
  local uri=${DEBIAN_SECURITY_MIRROR:-$(apt_uri bookworm-security)}
  echo "${uri:-http://deb.debian.org/debian-security}"
}

make_base_tar() {
  local mirror rootfs
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d /var/tmp/shop-bookworm-rootfs.XXXXXX)
  rootfs_to_remove=$rootfs
  say "debootstrap --variant=minbase bookworm from $mirror (about a minute)"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
    echo "podman-setup: debootstrap failed; see $cache/debootstrap.log" >&2
    tail -n 20 "$cache/debootstrap.log" >&2
    return 1
  }
  # The suites an official image has (debootstrap only writes the main one),
  # and the security updates published since the point release.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $(security_mirror)
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  if chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
    'apt-get update -qq && apt-get upgrade -y -qq && apt-get clean' >>"$cache/debootstrap.log" 2>&1; then
    say "security and point-release updates applied"
  else
    say "warning: apt-get upgrade in the new root failed (see $cache/debootstrap.log); continuing without updates"
  fi
  # Slim it the way the official -slim images are: no docs, man pages or
  # locales now, and none from later `apt-get install`s either.
  mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian/* \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/tmp/* 2>/dev/null || true
  # A container gets its resolv.conf and hostname from the engine.
  : >"$rootfs/etc/resolv.conf"
  : >"$rootfs/etc/hostname"
  tar -C "$rootfs" --numeric-owner -cf "$base_tar.partial" .
  mv "$base_tar.partial" "$base_tar"
  rm -rf "$rootfs"
  say "cached $base_tar ($(du -h "$base_tar" | cut -f1))"
}

rootfs_to_remove=""
trap '[ -z "$rootfs_to_remove" ] || rm -rf "$rootfs_to_remove" "$base_tar.partial"' EXIT

mkdir -p "$cache"
if podman image exists "$base_image"; then
  say "$base_image already there"
else
  if [ -s "$base_tar" ]; then
    say "reusing $base_tar"
  else
    make_base_tar
  fi
  podman import --quiet --change 'CMD ["bash"]' "$base_tar" "$base_image" >/dev/null
  say "imported $base_image"
fi
if podman image exists "$hub_alias" &&
  [ "$(podman image inspect --format '{{.Id}}' "$hub_alias")" = "$(podman image inspect --format '{{.Id}}' "$base_image")" ]; then
  say "$hub_alias already tagged"
else
  podman tag "$base_image" "$hub_alias"
  say "tagged $hub_alias"
fi

# 4. Prove it: a container runs, with the ulimits and runtime above.
if out=$(podman run --rm --pull=never --network none "$base_image" sh -c 'ulimit -n' 2>&1); then
  say "ok: a container runs (nofile $out)"
else
  echo "podman-setup: a test container failed to run:" >&2
  echo "$out" >&2
  exit 1
fi
