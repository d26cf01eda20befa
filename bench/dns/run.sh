#!/usr/bin/env bash
# bench/dns/run.sh - Mistborn's filtering resolver vs dnsmasq vs unbound, each loaded with the same
# 1,000,000 blocked names (and the same 1000-name local zone), in the foreground on loopback with NO
# upstream. Measures load time (exec to the first correct answer for the LAST listed name), RSS,
# dnsperf max qps with losses, server CPU per query, and latency at a fixed rate. Server pinned to
# CPU 0, dnsperf to CPU 1 (2-core machine). Prints a markdown table and writes $W/results.md.
# Needs: apt-get install -y --no-install-recommends dnsmasq-base unbound dnsperf dnsutils
# Env: W=/tmp/mbdns  N=1000000  DUR=30 (s per dnsperf run)  RATE=20000 (qps for the latency run)
#      CASES="mistborn mistborn-nolog dnsmasq-address unbound-null"  (also: dnsmasq-hosts unbound-nxdomain)
# Writes $W/results.md. Only loopback traffic. Kills only the servers it started.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
W=${W:-/tmp/mbdns}; N=${N:-1000000}; DUR=${DUR:-30}; RATE=${RATE:-20000}
CASES=${CASES:-"mistborn mistborn-nolog dnsmasq-address unbound-null"}
ROOT=$(cd "$HERE/../.." && pwd)
MB=${MB:-$ROOT/target/release/examples/dns_serve}
if [[ " $CASES " == *" mistborn"* ]]; then
  (cd "$ROOT" && cargo build --release -q -p mistborn-core --example dns_serve) || exit 1
fi
LAST=$(printf 'blk%06d.example-ads.test' $((N-1)))
SPID=
cleanup() {
  if [ -n "$SPID" ] && [ -d /proc/$SPID ] && grep -E 'dnsmasq|unbound|dns_serve' /proc/$SPID/comm >/dev/null; then
    kill "$SPID"; for _ in $(seq 50); do [ -d /proc/$SPID ] || break; sleep 0.1; done
  fi
  SPID=
}
trap cleanup EXIT
mkdir -p "$W"
for p in 5301 5303 5305; do [ -n "$(ss -Hlun "sport = :$p")" ] && { echo "udp port $p busy"; exit 1; }; done

t=$(date +%s%N)
[ -f "$W/in/.n$N" ] || { rm -rf "$W/in"; python3 "$HERE/gen.py" "$W/in" "$N" && touch "$W/in/.n$N"; }
echo "inputs ready ($(( ($(date +%s%N)-t)/1000000 )) ms)"

conf_dnsmasq() { # $1 = extra line
  cat <<EOF
port=5301
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
no-poll
log-facility=-
pid-file=
local=/mistborn/
addn-hosts=$W/in/dnsmasq-local.txt
$1
EOF
}
conf_unbound() { # $1 = nxdomain|null
  cat <<EOF
server:
	interface: 127.0.0.1
	port: 5303
	do-daemonize: no
	chroot: ""
	username: ""
	directory: "$W"
	pidfile: ""
	use-syslog: no
	logfile: ""
	num-threads: 1
	module-config: "iterator"
	do-not-query-localhost: no
	access-control: 127.0.0.0/8 allow
	include: "$W/in/unbound-local.conf"
	include: "$W/in/unbound-$1.conf"
# no real upstream: everything not local goes to a loopback port where nothing listens
forward-zone:
	name: "."
	forward-addr: 127.0.0.1@9
EOF
}
cpu_ticks() { awk '{print $14+$15}' /proc/$1/stat; }
rss_mb() { awk '/VmRSS/{printf "%.0f", $2/1024}' /proc/$1/status; }

echo "| server / block form | load to first answer | RSS after load | RSS after bench | max qps (lost) | avg / max latency at max | server CPU at max (µs/query) | avg / max latency at ${RATE} qps |" >"$W/results.md"
echo "|---|---|---|---|---|---|---|---|" >>"$W/results.md"
for case in $CASES; do
  case $case in
    mistborn)        port=5305; want=0.0.0.0
                     cmd=("$MB" --list "$W/in/blocklist.txt" --hosts "$W/in/dnsmasq-local.txt" --listen 127.0.0.1:5305 --log memory) ;;
    mistborn-nolog)  port=5305; want=0.0.0.0
                     cmd=("$MB" --list "$W/in/blocklist.txt" --hosts "$W/in/dnsmasq-local.txt" --listen 127.0.0.1:5305 --log off) ;;
    dnsmasq-address) conf_dnsmasq "conf-file=$W/in/dnsmasq-address.conf" >"$W/$case.conf"; port=5301; want=0.0.0.0
                     cmd=(dnsmasq -k -C "$W/$case.conf") ;;
    dnsmasq-hosts)   conf_dnsmasq "addn-hosts=$W/in/dnsmasq-blockhosts.txt" >"$W/$case.conf"; port=5301; want=0.0.0.0
                     cmd=(dnsmasq -k -C "$W/$case.conf") ;;
    unbound-nxdomain) conf_unbound nxdomain >"$W/$case.conf"; port=5303; want=NXDOMAIN
                     cmd=(unbound -d -c "$W/$case.conf") ;;
    unbound-null)    conf_unbound null >"$W/$case.conf"; port=5303; want=0.0.0.0
                     cmd=(unbound -d -c "$W/$case.conf") ;;
  esac
  echo "== $case"
  t=$(date +%s%N)
  taskset -c 0 "${cmd[@]}" >"$W/$case.log" 2>&1 & SPID=$!
  got=
  for _ in $(seq 1200); do
    got=$(dig +time=1 +tries=1 @127.0.0.1 -p $port "$LAST" A 2>/dev/null | awk '/status:/{s=$6} /^[^;].*IN[ \t]+A[ \t]/{a=$NF} END{sub(",","",s); print (a!="")?a:s}')
    [ "$got" = "$want" ] && break; sleep 0.05
  done
  load_ms=$(( ($(date +%s%N)-t)/1000000 ))
  [ "$got" = "$want" ] || { echo "  no valid answer ($got)"; tail -5 "$W/$case.log"; cleanup; continue; }
  lh=$(dig +short @127.0.0.1 -p $port host7.mistborn A)
  [ "$lh" = "10.8.0.8" ] || { echo "  local zone broken: '$lh'"; cleanup; continue; }
  sleep 1; rss1=$(rss_mb $SPID)
  echo "  answers '$want' for $LAST after $load_ms ms; RSS ${rss1} MiB; host7.mistborn -> $lh"
  c0=$(cpu_ticks $SPID); s0=$(date +%s%N)
  out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p $port -d "$W/in/queries.txt" -l "$DUR" -c 16 -T 1 -q 100 2>&1)
  cpu=$(( ($(cpu_ticks $SPID)-c0) * 100 * 1000000000 / $(getconf CLK_TCK) / ($(date +%s%N)-s0) ))
  qps=$(awk '/Queries per second/{printf "%.0f", $4}' <<<"$out"); lost=$(awk '/Queries lost/{print $3}' <<<"$out")
  lat=$(awk '/Average Latency/{gsub(/[(),]/,""); printf "%.2f / %.2f ms", $4*1000, $8*1000}' <<<"$out")
  usq=$(awk -v c="$cpu" -v q="$qps" 'BEGIN{printf "%.1f", c*10000/q}')
  echo "  max: $qps qps, lost $lost, latency avg/max $lat, server CPU ${cpu}% (${usq} µs/query)"
  grep 'Response codes' <<<"$out" | sed 's/^ */  /'
  out2=$(taskset -c 1 dnsperf -s 127.0.0.1 -p $port -d "$W/in/queries.txt" -l "$DUR" -c 16 -T 1 -Q "$RATE" 2>&1)
  lat2=$(awk '/Average Latency/{gsub(/[(),]/,""); printf "%.3f / %.2f ms", $4*1000, $8*1000}' <<<"$out2")
  lost2=$(awk '/Queries lost/{print $3}' <<<"$out2")
  echo "  at $RATE qps: latency avg/max $lat2, lost $lost2"
  rss2=$(rss_mb $SPID)
  echo "| $case | ${load_ms} ms | ${rss1} MiB | ${rss2} MiB | $qps ($lost) | $lat | ${cpu}% (${usq}) | $lat2 |" >>"$W/results.md"
  cleanup
done
echo; cat "$W/results.md"
