#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (root). Idempotent and quiet:
# packages already present are skipped without touching apt.
set -euo pipefail

APT_PACKAGES=(
  clang libclang-dev pkg-config       # rustables' bindgen, -sys crates
  python3-dev python3-venv            # pyo3 module, maturin
  wireguard-go wireguard-tools        # userspace WireGuard + wg(8) for system tests
  nftables iproute2 iputils-ping      # firewall, network namespaces
  procps                              # sysctl(8): the forwarding system test reads namespaces
  iptables ipset                      # bench/firewall.sh: the seed's approach, side by side
  dnsutils                            # dig
  postgresql                          # store tests against a real server
  curl ca-certificates openssl  # TLS tests
  caddy                               # reverse proxy with forward-auth
  debootstrap systemd-container       # scripts/test-install.sh: a Debian root, booted with nspawn
  sqlite3                             # scripts/test-install.sh: inspects the installed database
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python frontends (mistborn-py's pytest suite, the FFI test through the generated Python binding):
# a venv under target/ with maturin, pytest and mypy (for stubtest). scripts/test-python.sh and
# scripts/test-ffi.sh use it; scripts/test-fuzz.sh runs schemathesis from it.
root="$(cd "$(dirname "$0")/.." && pwd)"
py_venv="${MISTBORN_PY_VENV:-$root/target/py-venv}"
if [ ! -x "$py_venv/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$py_venv"
fi
"$py_venv/bin/python" -m pip install -q --disable-pip-version-check 'maturin>=1.0,<2.0' pytest mypy \
  'schemathesis>=4.3,<5'
