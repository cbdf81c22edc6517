#!/usr/bin/env bash
# Makes a local `rust:1-bookworm` image, so the `builder` stage of
# deploy/Dockerfile builds on a machine that cannot reach an image registry:
# the debootstrapped bookworm image of deploy/podman-setup.sh, plus gcc,
# libc6-dev, pkg-config and CA roots from apt, plus this machine's Rust
# toolchain (rustup and the default toolchain, without its HTML docs), laid
# out like the official image (RUSTUP_HOME=/usr/local/rustup,
# CARGO_HOME=/usr/local/cargo on PATH). Tagged localhost/rust:1-bookworm and
# docker.io/library/rust:1-bookworm.
#
#   bash deploy/rust-base.sh            # skips the work when the image exists
#   bash deploy/rust-base.sh --force    # rebuild (after a toolchain update)
#
# Then the whole image builds here (about 10 minutes on two cores):
#   podman build --pull=never --format docker -f deploy/Dockerfile -t localhost/shop .
#
# Environment: RUSTUP_HOME, CARGO_HOME (default ~/.rustup, ~/.cargo), and
# RUST_TOOLCHAIN (default: rustup's default toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "rust-base: $*"; }

image=localhost/rust:1-bookworm
hub_alias=docker.io/library/rust:1-bookworm
force=no
[ "${1:-}" = --force ] && force=yes

if [ "$force" = no ] && podman image exists "$image"; then
  say "$image already there ($(podman run --rm --pull=never --network none "$image" rustc --version))"
  podman image exists "$hub_alias" || podman tag "$image" "$hub_alias"
  exit 0
fi

# The Debian base image (and Podman itself).
bash deploy/podman-setup.sh

rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
toolchain="${RUST_TOOLCHAIN:-}"
if [ -z "$toolchain" ]; then
  toolchain=$(sed -nE 's/^default_toolchain[[:space:]]*=[[:space:]]*"([^"]+)".*/\1/p' "$rustup_home/settings.toml")
fi
toolchain_dir=$(readlink -f "$rustup_home/toolchains/$toolchain")
if [ -z "$toolchain" ] || [ ! -x "$toolchain_dir/bin/cargo" ]; then
  echo "rust-base: no toolchain '$toolchain' under $rustup_home/toolchains" >&2
  exit 1
fi
rustup_bin=$(readlink -f "$cargo_home/bin/rustup")
[ -x "$rustup_bin" ] || {
  echo "rust-base: no rustup at $cargo_home/bin/rustup" >&2
  exit 1
}
say "toolchain $toolchain ($("$toolchain_dir/bin/rustc" --version))"

ctx=$(mktemp -d /var/tmp/shop-rust-base.XXXXXX)
trap 'rm -rf "$ctx"' EXIT

# The toolchain under its name, without the HTML docs (most of its size).
mkdir -p "$ctx/rustup/toolchains/$toolchain" "$ctx/cargo/bin"
tar -C "$toolchain_dir" --exclude=./share/doc/rust/html -cf - . |
  tar -C "$ctx/rustup/toolchains/$toolchain" -xf -
cat >"$ctx/rustup/settings.toml" <<EOF
version = "12"
default_toolchain = "$toolchain"
profile = "minimal"
auto_self_update = "disable"

[overrides]
EOF
# rustup and its proxies (cargo, rustc, ... are rustup under other names).
cp "$rustup_bin" "$ctx/cargo/bin/rustup"
for proxy in cargo rustc rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver rust-gdb rust-lldb; do
  ln -s rustup "$ctx/cargo/bin/$proxy"
done

# The machine's own certificate authorities (these machines reach crates.io
# through a TLS-inspecting egress whose CA is added locally), so cargo inside
# the build trusts what cargo on the host trusts. Only this local builder
# image gets them; the runtime image keeps Debian's set.
mkdir -p "$ctx/local-cas"
cp /usr/local/share/ca-certificates/*.crt "$ctx/local-cas/" 2>/dev/null || true

cat >"$ctx/Containerfile" <<'EOF'
FROM localhost/debian:bookworm-slim
COPY local-cas/ /usr/local/share/ca-certificates/
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev pkg-config make \
    && update-ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
RUN chmod -R a+w /usr/local/rustup /usr/local/cargo \
    && rustc --version && cargo --version
CMD ["bash"]
EOF

say "building $image (apt-get in the build, then the toolchain copy)"
podman build --pull=never --format docker --layers=false -t "$image" "$ctx"
podman tag "$image" "$hub_alias"
say "tagged $image and $hub_alias ($(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=iec))"
podman run --rm --pull=never --network none "$image" sh -c 'rustc --version && cargo --version && cc --version | head -n 1'
