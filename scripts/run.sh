#!/usr/bin/env bash
# Builds and starts `mistborn serve` from this checkout on a fresh Debian 12 / Ubuntu 22.04+
# machine with a Rust toolchain (cargo, rustc 1.85+): first installs what the build needs from apt
# when it is missing (clang and libclang-dev for rustables' bindgen, which reads the kernel's
# nf_tables headers from linux-libc-dev; pkg-config; gcc and libc6-dev as the linker), then runs
# `cargo run --release --bin mistborn -- serve` with any arguments given here. The server uses the
# embedded SQLite database in ./mistborn-data unless configured otherwise (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PACKAGES=(clang libclang-dev pkg-config gcc libc6-dev linux-libc-dev)
missing=()
for p in "${BUILD_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "run.sh: the build needs: ${missing[*]}" >&2
    echo "run.sh: install them as root (apt-get install ${missing[*]}) or run this script as root" >&2
    exit 1
  fi
  echo "run.sh: installing the build's needs: ${missing[*]}" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "run.sh: cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
exec cargo run --release --locked --bin mistborn -- serve "$@"
