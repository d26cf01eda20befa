#!/usr/bin/env bash
# bench/wireguard-reconcile.sh - time Mistborn's WireGuard reconcile of 1k and 10k peers onto a
# wireguard-go interface, from empty and after one change, beside `wg syncconf` of the same config.
# Needs root, wireguard-go and wireguard-tools. Everything runs in a throwaway network namespace.
#   bench/wireguard-reconcile.sh [SIZES...]      default: 1000 10000
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root (network namespace, TUN devices)"; exit 1; }
for t in wireguard-go wg ip; do command -v "$t" >/dev/null || { echo "missing $t"; exit 1; }; done
cargo build --release --quiet -p mistborn-core --example wireguard_reconcile
NS=mbbench$$
ip netns add "$NS"
trap 'for p in $(ip netns pids "$NS" 2>/dev/null); do kill "$p" 2>/dev/null || true; done; sleep 0.2; ip netns del "$NS" 2>/dev/null || true' EXIT
ip netns exec "$NS" ip link set lo up
echo "wireguard-go $(wireguard-go --version 2>/dev/null | head -1 | awk '{print $NF}'), $(nproc) cores, release build"
ip netns exec "$NS" target/release/examples/wireguard_reconcile ${@:-1000 10000}
