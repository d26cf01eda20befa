#!/usr/bin/env bash
# bench/firewall.sh - Mistborn's nftables firewall beside the seed's approach (iptables rules per
# peer + `ipset restore`), same sizes, same box, each in a throwaway network namespace.
#   bench/firewall.sh [PEERS] [CIDRS]     default: 10000 100000
# Needs root, nftables, iptables, ipset (scripts/install-test-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, nftables)"; exit 1; }
for t in nft iptables-restore ipset ip python3; do command -v "$t" >/dev/null || { echo "missing $t"; exit 1; }; done
PEERS=${1:-10000}; CIDRS=${2:-100000}
cargo build --release --quiet -p mistborn-core --example firewall_bench
NS=mbfwb$$; W=$(mktemp -d)
cleanup() { ip netns del "$NS" 2>/dev/null || true; ip netns del "${NS}s" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
ip netns add "$NS"; ip netns add "${NS}s"
echo "$(nft --version), $(iptables --version), $(ipset --version | head -1), $(nproc) cores, release build"
echo
ip netns exec "$NS" target/release/examples/firewall_bench "$PEERS" "$CIDRS"
echo

# The seed: one ACCEPT rule per peer in FORWARD, the blocklist in an ipset (hash:net).
python3 - "$W" "$PEERS" "$CIDRS" <<'PY'
import sys, ipaddress
w, peers, cidrs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(f"{w}/rules", "w") as f:
    f.write("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n")
    f.write("-A FORWARD -m set --match-set coppercloud dst -j DROP\n")
    for i in range(peers):
        f.write(f"-A FORWARD -s {ipaddress.IPv4Address(0x0a100000 + i + 2)}/32 -i mistborn0 -j ACCEPT\n")
    f.write("COMMIT\n")
with open(f"{w}/ipset", "w") as f:
    f.write(f"create coppercloud hash:net family inet hashsize 65536 maxelem {max(cidrs * 2, 65536)}\n")
    for k in range(cidrs):
        j = (k * 7919) % cidrs
        f.write(f"add coppercloud {ipaddress.IPv4Address(0x01000000 + j * 4096)}/{[20, 22, 24, 32][j % 4]}\n")
PY
s() { ip netns exec "${NS}s" "$@"; }
now() { date +%s%N; }
t=$(now); s ipset restore -f "$W/ipset"; t_ipset=$(( ($(now) - t) / 1000000 ))
t=$(now); s iptables-restore "$W/rules"; t_ipt=$(( ($(now) - t) / 1000000 ))
t=$(now); s sh -c "ipset destroy coppercloud 2>/dev/null; true" >/dev/null; t=$(now)
s iptables-restore "$W/rules" 2>/dev/null || true
A=10.16.$(( (PEERS / 2 + 2) / 256 )).$(( (PEERS / 2 + 2) % 256 ))
t=$(now); s iptables -D FORWARD -s "$A/32" -i mistborn0 -j ACCEPT; t_del=$(( ($(now) - t) / 1000000 ))
t=$(now); s iptables -I FORWARD 2 -s "$A/32" -i mistborn0 -j ACCEPT; t_ins=$(( ($(now) - t) / 1000000 ))
echo "| seed (iptables + ipset) | $PEERS peers, $CIDRS CIDRs |"
echo "|---|---|"
echo "| ipset restore of the blocklist | $t_ipset ms |"
echo "| iptables-restore of $PEERS per-peer rules | $t_ipt ms |"
echo "| full apply (both) | $(( t_ipset + t_ipt )) ms |"
echo "| MFA toggle = delete / insert one iptables rule | $t_del / $t_ins ms |"
