#!/usr/bin/env bash
# System test of scripts/install.sh and scripts/uninstall.sh in a throwaway Debian 12 root made
# with debootstrap (minbase + systemd; cached as a tarball under target/install-test/ so reruns
# start in seconds):
#   1. install in a chroot with the prebuilt binary; check packages, user, files, modes, config
#      (the host's default-route address and interface), enabled units, `systemd-analyze verify`
#      (nothing on stderr) and `systemd-analyze security` (at or below SECURITY_THRESHOLD);
#   2. run it again: nothing changes (same file list, contents, modes, times), no errors;
#   3. upgrade (a binary that differs): raw and portable backups written, database migrated;
#   4. a failed migration (the newest migration's row removed, so re-applying it fails): the
#      installer fails, says how to restore, and the database file and installed binary are
#      exactly as before;
#   5. with systemd-resolved installed, a run turns its stub listener off;
#   6. boot the root with `systemd-nspawn -b` in its own network namespace: the unit starts as the
#      system user with only its two capabilities, serves the API and DNS (through the socket
#      unit), survives a restart with wireguard-go still the same process, answers a query sent
#      while it is stopped (the socket holds it and starts the service), is upgraded in place
#      (installer with systemd running) and then left alone by a second run; uninstall.sh removes the
#      units and the nftables table and keeps the data.
# From the cached root: ~25-35 s. Fresh (debootstrap): 168 s measured on 2 loaded cores.
# VERBOSE=1 prints the booted root's journal of the service too.
# Needs root, debootstrap, systemd-nspawn (scripts/install-test-deps.sh). Without them it skips
# with a reason, and fails when CI is set.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# `systemd-analyze security` exposure score (0 best .. 10), as stated in the README.
SECURITY_THRESHOLD=2.5

skip() {
  if [ -n "${CI:-}" ]; then echo "FAIL: CI is set but test-install.sh cannot run: $1" >&2; exit 1; fi
  echo "SKIPPED test-install.sh: $1"; exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, systemd-nspawn)"
for tool in debootstrap systemd-nspawn systemd-analyze sqlite3; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (bash scripts/install-test-deps.sh)"
done

ms() { echo $(( $(date +%s%N) / 1000000 )); }
T0=$(ms)
step() { echo "== test-install: $* ($(( ($(ms) - T0) / 1000 )) s)"; }
fail() { echo "FAIL test-install: $*" >&2; exit 1; }

BIN=${MISTBORN_TEST_BINARY:-$REPO/target/debug/mistborn}
if [ ! -x "$BIN" ]; then cargo build --locked --bin mistborn; fi
CACHE_DIR=$REPO/target/install-test
BASE=$CACHE_DIR/bookworm-systemd.tar
WORK=$(mktemp -d /tmp/mistborn-install-test.XXXXXX)
ROOT=$WORK/root

unmount_all() {
  local m
  for m in $(findmnt -rn -o TARGET | grep "^$ROOT" | sort -r || true); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
}
cleanup() {
  unmount_all
  # systemd-nspawn --keep-unit without a host systemd leaves empty payload/supervisor cgroups
  local m
  for m in /sys/fs/cgroup/*/payload /sys/fs/cgroup/*/supervisor /sys/fs/cgroup/payload /sys/fs/cgroup/supervisor; do
    [ -d "$m" ] && find "$m" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  if findmnt -rn -o TARGET | grep -q "^$ROOT"; then echo "still mounted under $ROOT; left $WORK" >&2; return 1; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- the root file system ---------------------------------------------------------------------------
mirror() { # the mirror apt already uses, read at run time
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}'
  } | grep -v -- '-security' | head -1
}
mkdir -p "$CACHE_DIR/apt-archives/partial"
if [ ! -s "$BASE" ]; then
  step "debootstrap bookworm minbase + systemd (cached in $BASE)"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,iproute2 bookworm "$WORK/boot" \
    "$(mirror)" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
  tar -C "$WORK/boot" -cf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE"
  rm -rf "$WORK/boot"
fi
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$BASE"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"; chmod +x "$ROOT/usr/sbin/policy-rc.d"
rm -f "$ROOT/etc/resolv.conf"; cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
mkdir -p "$ROOT/opt/mistborn/scripts"
cp scripts/install.sh scripts/uninstall.sh "$ROOT/opt/mistborn/scripts/"
cp "$BIN" "$ROOT/opt/mistborn/mistborn"
step "root ready"

in_root() { chroot "$ROOT" "$@"; }
run_installer() { # runs install.sh in a chroot (the host's network namespace, read only)
  mount -t proc proc "$ROOT/proc"
  mount --rbind /sys "$ROOT/sys"; mount --make-rslave "$ROOT/sys"
  mount --bind /dev "$ROOT/dev"; mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts"
  mount --bind "$CACHE_DIR/apt-archives" "$ROOT/var/cache/apt/archives"
  local rc=0
  chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin MISTBORN_BINARY="${1:-/opt/mistborn/mistborn}" \
    /opt/mistborn/scripts/install.sh >"$WORK/out" 2>"$WORK/err" || rc=$?
  unmount_all
  return $rc
}
show() { echo "--- stdout"; cat "$WORK/out"; echo "--- stderr"; cat "$WORK/err"; }
snapshot() { # every installed file: path, mode, owner, size, mtime, checksum
  (cd "$ROOT" && find etc/mistborn etc/systemd/system usr/local/bin var/lib/mistborn \
      -printf '%p %m %u %g %s %T@\n' 2>/dev/null | sort
   cd "$ROOT" && find etc/mistborn etc/systemd/system usr/local/bin var/lib/mistborn -type f -print0 \
      2>/dev/null | sort -z | xargs -0 sha256sum)
}
expect_stat() { # path "mode user:group" (names resolved inside the root)
  local got; got=$(in_root stat -c '%a %U:%G' "$1")
  [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
}

# --- 1. install ------------------------------------------------------------------------------------------
step "install (chroot)"
run_installer || { show; fail "install.sh failed"; }
grep -q "installed /usr/local/bin/mistborn" "$WORK/out" || { show; fail "no install reported"; }
for p in wireguard-tools nftables caddy iproute2; do
  in_root dpkg-query -W -f='${Status}' "$p" | grep -q "install ok installed" || fail "package $p not installed"
done
if [ ! -d /sys/module/wireguard ]; then
  in_root dpkg-query -W -f='${Status}' wireguard-go | grep -q "install ok installed" \
    || fail "the kernel has no WireGuard but wireguard-go was not installed"
fi
user=$(in_root getent passwd mistborn) || fail "no user mistborn"
IFS=: read -r _ _ uid _ _ home shell <<<"$user"
[ "$uid" -lt 1000 ] && [ "$home" = /var/lib/mistborn ] && [ "$shell" = /usr/sbin/nologin ] \
  || fail "user is not a system user without a login: $user"
expect_stat /var/lib/mistborn "700 mistborn:mistborn"
expect_stat /var/lib/mistborn/backups "700 mistborn:mistborn"
expect_stat /var/lib/mistborn/mistborn.db "600 mistborn:mistborn"
expect_stat /var/lib/mistborn/secret.key "600 mistborn:mistborn"
expect_stat /etc/mistborn "750 root:mistborn"
expect_stat /etc/mistborn/mistborn.toml "640 root:mistborn"
expect_stat /usr/local/bin/mistborn "755 root:root"
expect_stat /etc/systemd/system/mistborn.service "644 root:root"
expect_stat /etc/systemd/system/mistborn-dns.socket "644 root:root"
cmp -s "$BIN" "$ROOT/usr/local/bin/mistborn" || fail "installed binary differs from the given one"
route=$(ip -4 route get 192.0.2.1)
want_addr=$(sed -n 's/.* src \([^ ]*\).*/\1/p' <<<"$route")
want_if=$(sed -n 's/.* dev \([^ ]*\).*/\1/p' <<<"$route")
grep -qx "endpoint = \"$want_addr\"" "$ROOT/etc/mistborn/mistborn.toml" \
  || { cat "$ROOT/etc/mistborn/mistborn.toml"; fail "endpoint is not the default route's address $want_addr"; }
grep -qx "external_interface = \"$want_if\"" "$ROOT/etc/mistborn/mistborn.toml" \
  || { cat "$ROOT/etc/mistborn/mistborn.toml"; fail "external_interface is not $want_if"; }
# The config is valid and the database initialised: the CLI lists the superuser.
in_root runuser -u mistborn -- /usr/local/bin/mistborn -c /etc/mistborn/mistborn.toml user list \
  | grep -q admin || fail "the installed config and database do not list the admin"
for link in multi-user.target.wants/mistborn.service sockets.target.wants/mistborn-dns.socket; do
  [ -L "$ROOT/etc/systemd/system/$link" ] || fail "$link is not enabled"
done
grep -q "systemd is not running here" "$WORK/out" || { show; fail "no word about not starting"; }
grep -q "getconf > admin.conf" "$WORK/out" || { show; fail "no instructions for the admin's config"; }

verify=$(systemd-analyze verify --root="$ROOT" mistborn.service mistborn-dns.socket 2>&1 >/dev/null) || true
[ -z "$verify" ] || fail "systemd-analyze verify is not clean:
$verify"
security=$(systemd-analyze security --offline=true --root="$ROOT" --no-pager mistborn.service 2>&1 || true)
score=$(sed -n 's/.*Overall exposure level for mistborn.service: \([0-9.]*\).*/\1/p' <<<"$security")
[ -n "$score" ] || fail "no exposure score:
$security"
awk -v s="$score" -v t="$SECURITY_THRESHOLD" 'BEGIN { exit !(s <= t) }' \
  || fail "systemd-analyze security: $score is above $SECURITY_THRESHOLD:
$security"
echo "systemd-analyze security mistborn.service: $score (threshold $SECURITY_THRESHOLD)"

# --- 2. again: nothing changes ---------------------------------------------------------------------
step "install again"
before=$(snapshot)
run_installer || { show; fail "second install.sh failed"; }
[ ! -s "$WORK/err" ] || { show; fail "second run wrote to stderr"; }
grep -q "nothing to change" "$WORK/out" || { show; fail "second run changed something"; }
after=$(snapshot)
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") || true; fail "second run changed files"; }

# --- 3. upgrade --------------------------------------------------------------------------------------------
step "upgrade"
cp "$BIN" "$ROOT/opt/mistborn/mistborn-next"
printf '\n# another build\n' >>"$ROOT/opt/mistborn/mistborn-next"   # a different file that still runs
run_installer /opt/mistborn/mistborn-next || { show; fail "upgrade failed"; }
grep -q "upgraded /usr/local/bin/mistborn" "$WORK/out" || { show; fail "no upgrade reported"; }
cmp -s "$ROOT/opt/mistborn/mistborn-next" "$ROOT/usr/local/bin/mistborn" || fail "binary not upgraded"
raw=$(ls "$ROOT"/var/lib/mistborn/backups/pre-upgrade-*.db)
json=$(ls "$ROOT"/var/lib/mistborn/backups/pre-upgrade-*.json)
[ "$(sqlite3 "$raw" 'SELECT username FROM users')" = admin ] || fail "raw backup $raw does not hold the admin"
grep -q '"username":"admin"' "$json" || grep -q '"admin"' "$json" || fail "portable backup $json does not hold the admin"
expect_stat "${json#"$ROOT"}" "600 mistborn:mistborn"
ls "$ROOT"/var/lib/mistborn/upgrade-* 2>/dev/null && fail "staging copy left behind"
in_root runuser -u mistborn -- /usr/local/bin/mistborn -c /etc/mistborn/mistborn.toml user list \
  | grep -q admin || fail "the upgraded database does not list the admin"

# --- 4. a failed migration ---------------------------------------------------------------------------------
step "failed migration"
db=$ROOT/var/lib/mistborn/mistborn.db
cp -p "$db" "$WORK/db.good"
# Forget the newest migration: re-applying it fails (it creates or drops what is already created or
# dropped). Should a newest migration ever be idempotent, the next check says so loudly.
sqlite3 "$db" 'DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)'
sum_before=$(sha256sum <"$db")
rc=0; run_installer || rc=$?
[ $rc -ne 0 ] || { show; fail "installer succeeded over a failing migration"; }
sed 's/^/    | /' "$WORK/err"
grep -q "could not migrate the database" "$WORK/err" || { show; fail "no migration error shown"; }
grep -q "the database was not changed" "$WORK/err" || { show; fail "no word that the database is untouched"; }
grep -q "to restore it:" "$WORK/err" || { show; fail "no restore instructions"; }
[ "$(sha256sum <"$db")" = "$sum_before" ] || fail "the failed migration changed the database file"
[ ! -e "$db-wal" ] || fail "the failed migration left a write-ahead log on the database"
cmp -s "$ROOT/opt/mistborn/mistborn-next" "$ROOT/usr/local/bin/mistborn" || fail "the installed binary was replaced"
[ ! -e "$ROOT/usr/local/bin/mistborn.new" ] || fail "staged binary left behind"
ls "$ROOT"/var/lib/mistborn/upgrade-* 2>/dev/null && fail "staging copy left behind"
cp -p "$WORK/db.good" "$db"

# --- systemd-resolved: its stub listener is turned off ---------------------------------------------
step "systemd-resolved present"
mount --bind "$CACHE_DIR/apt-archives" "$ROOT/var/cache/apt/archives"
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  systemd-resolved >"$WORK/out" 2>&1 || { unmount_all; cat "$WORK/out"; fail "cannot install systemd-resolved"; }
unmount_all
run_installer /opt/mistborn/mistborn-next || { show; fail "install.sh with systemd-resolved failed"; }
grep -qx "DNSStubListener=no" "$ROOT/etc/systemd/resolved.conf.d/mistborn.conf" \
  || fail "resolved's stub listener not turned off"
[ "$(readlink "$ROOT/etc/resolv.conf")" = /run/systemd/resolve/resolv.conf ] \
  || fail "/etc/resolv.conf still points at the stub: $(readlink "$ROOT/etc/resolv.conf")"

# --- 6. boot it ------------------------------------------------------------------------------------------
step "boot with systemd-nspawn -b"
cat >"$ROOT/opt/mistborn/check.sh" <<'EOF'
#!/bin/bash
# Runs inside the booted root after multi-user.target; writes what it sees to /root/check.out.
exec >/root/check.out 2>&1
say() { echo "CHECK $*"; }
http_get() { # path -> status line (bash only: no curl in the root)
  exec 3<>/dev/tcp/127.0.0.1/5000 || return 1
  printf 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$1" >&3
  head -1 <&3 | tr -d '\r'
  exec 3<&-
}
wait_api() {
  for _ in $(seq 1 100); do
    status=$(http_get /api/v1/openapi.json 2>/dev/null) && [ -n "$status" ] && { echo "$status"; return 0; }
    sleep 0.2
  done
  return 1
}
dns_query() { # home.mistborn A at the tunnel address through the socket unit -> hex of the answer
  exec 4<>/dev/udp/10.15.91.1/53 || return 1
  printf '\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04home\x08mistborn\x00\x00\x01\x00\x01' >&4
  timeout "${1:-3}" dd bs=512 count=1 <&4 2>/dev/null | od -An -tx1 | tr -d ' \n'
  exec 4<&-
}
pid_of() { for p in /proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = "$1" ] && { echo "${p#/proc/}"; return; }; done; }
wgo_pid() { pid_of wireguard-go; }
caddy_state() { # waits (up to 10 s) for one Caddy, a child of the service; says what it found
  local n caddy ours
  for _ in $(seq 1 50); do
    n=0; for p in /proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = caddy ] && n=$((n + 1)); done
    caddy=$(pid_of caddy)
    ours=$([ -n "$caddy" ] && [ "$(awk '{print $4}' "/proc/$caddy/stat")" = "$(systemctl show -p MainPID --value mistborn.service)" ] && echo yes || echo no)
    [ "$n $ours" = "1 yes" ] && break
    sleep 0.2
  done
  echo "$n of-service $ours user $([ -n "$caddy" ] && stat -c %U "/proc/$caddy" || echo none)"
}
say "api $(wait_api)"
# systemd-resolved runs without its stub on 127.0.0.53:53 (0035007F... in /proc/net/udp)
say "resolved $(systemctl is-active systemd-resolved) stub $(grep -c ' 3500007F:0035 ' /proc/net/udp)"
say "service $(systemctl is-active mistborn.service) socket $(systemctl is-active mistborn-dns.socket)"
pid=$(systemctl show -p MainPID --value mistborn.service)
say "user $(stat -c %U /proc/$pid)"
grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/$pid/status | sed 's/^/CHECK /; s/:\t/ /'
say "nft $(nft list table inet mistborn >/dev/null 2>&1 && echo yes || echo no)"
say "caddy $(caddy_state)"
say "link $(ip link show mistborn0 >/dev/null 2>&1 && echo yes || echo no)"
say "dns $(dns_query)"
wgo=$(wgo_pid)
say "wireguard-go ${wgo:-none}"
# The DNS sockets passed to the service must not leak into wireguard-go (it outlives the service
# and would keep port 53 bound after the socket unit stops).
inodes=$(awk '$2 ~ /:0035$/ {print $10}' /proc/net/udp /proc/net/udp6 /proc/net/tcp /proc/net/tcp6 | sort -u)
leaked=0
for fd in /proc/${wgo:-0}/fd/*; do
  link=$(readlink "$fd" 2>/dev/null) || continue
  for i in $inodes; do [ "$link" = "socket:[$i]" ] && leaked=$((leaked + 1)); done
done
say "dns-sockets $(echo $inodes | wc -w) in-wireguard-go $leaked"
systemctl restart mistborn.service
say "api-after-restart $(wait_api)"
say "wireguard-go-after-restart $(wgo_pid)"
# A query sent while the service is stopped waits in mistborn-dns.socket, whose traffic starts
# the service again (socket activation); the new process answers it.
systemctl stop mistborn.service
say "stopped $(systemctl is-active mistborn.service)"
say "dns-while-stopped $(dns_query 15)"
say "service-after-query $(systemctl is-active mistborn.service)"
say "security $(systemd-analyze security --no-pager mistborn.service 2>&1 | tail -1)"
# After stops and restarts (one while the daemon was still starting Caddy): one Caddy, the
# running daemon's own.
wait_api >/dev/null
say "caddies $(caddy_state)"
# An upgrade on the running system (the installed binary is mistborn-next): stop, back up, migrate,
# start; then a second run changes nothing and restarts nothing.
MISTBORN_BINARY=/opt/mistborn/mistborn /opt/mistborn/scripts/install.sh >/root/upgrade.out 2>&1
say "upgrade rc $? $(grep -c 'upgraded /usr/local/bin/mistborn' /root/upgrade.out)"
say "api-after-upgrade $(wait_api)"
say "wireguard-go-after-upgrade $(wgo_pid)"
say "dns-after-upgrade $(dns_query)"
pid_before=$(systemctl show -p MainPID --value mistborn.service)
MISTBORN_BINARY=/opt/mistborn/mistborn /opt/mistborn/scripts/install.sh >/root/again.out 2>&1
say "again rc $? $(grep -c 'nothing to change' /root/again.out) same-pid $([ "$(systemctl show -p MainPID --value mistborn.service)" = "$pid_before" ] && echo yes || echo no)"
/opt/mistborn/scripts/uninstall.sh
say "uninstall rc $?"
say "units-after-uninstall $(ls /etc/systemd/system/mistborn* 2>/dev/null | wc -l)"
say "nft-after-uninstall $(nft list table inet mistborn >/dev/null 2>&1 && echo yes || echo no)"
say "data-after-uninstall $(test -f /var/lib/mistborn/mistborn.db && echo kept || echo gone)"
echo "--- journal"
journalctl -u mistborn.service -u mistborn-dns.socket --no-pager -o cat | tail -400
EOF
chmod +x "$ROOT/opt/mistborn/check.sh"
cat >"$ROOT/etc/systemd/system/test-install-check.service" <<'EOF'
[Unit]
Description=test-install.sh checks
After=mistborn.service multi-user.target
[Service]
Type=oneshot
ExecStart=/opt/mistborn/check.sh
ExecStartPost=/bin/systemctl poweroff --no-block
[Install]
WantedBy=multi-user.target
EOF
# nspawn copies the host's /dev/net/tun with its mode (0600 on some hosts); udev on a real Debian
# host makes it 0666 (50-udev-default.rules), which the service user needs to open it.
cat >"$ROOT/etc/systemd/system/test-tun-mode.service" <<'UNIT'
[Unit]
Description=/dev/net/tun mode 0666 as udev sets it
Before=mistborn.service
[Service]
Type=oneshot
ExecStart=/bin/chmod 0666 /dev/net/tun
[Install]
WantedBy=multi-user.target
UNIT
for u in test-install-check.service test-tun-mode.service; do
  ln -sf "/etc/systemd/system/$u" "$ROOT/etc/systemd/system/multi-user.target.wants/"
done
rm -f "$ROOT/usr/sbin/policy-rc.d"
rc=0
timeout 180 systemd-nspawn -q --register=no --keep-unit --private-network -b -D "$ROOT" \
  >"$WORK/boot.log" 2>&1 || rc=$?
[ -f "$ROOT/root/check.out" ] || { tail -40 "$WORK/boot.log"; fail "the booted root wrote no checks (nspawn rc $rc)"; }
out=$(cat "$ROOT/root/check.out")
check() { grep -qx "CHECK $1" <<<"$out" || { echo "$out"; fail "in the booted root, expected: $1"; }; }
check "api HTTP/1.1 200 OK"
check "service active socket active"
check "resolved active stub 0"
check "user mistborn"
# CAP_NET_ADMIN (12) and CAP_NET_BIND_SERVICE (10) only
check "CapEff 0000000000001400"
check "CapBnd 0000000000001400"
check "CapAmb 0000000000001400"
check "NoNewPrivs 1"
check "nft yes"
check "caddy 1 of-service yes user mistborn"   # the managed reverse proxy, as the service user
check "caddies 1 of-service yes user mistborn"
check "link yes"
for what in dns dns-while-stopped dns-after-upgrade; do
  answer=$(sed -n "s/^CHECK $what //p" <<<"$out")
  # id 1234, a response (QR), NOERROR, one answer
  [ "${answer:0:4}" = 1234 ] && [ $(( 0x${answer:4:2} & 0x80 )) -ne 0 ] && [ $(( 0x${answer:6:2} & 0x0f )) -eq 0 ] \
    && [ "${answer:12:4}" = 0001 ] || { echo "$out"; fail "$what: no DNS answer through the socket unit: '$answer'"; }
done
check "stopped inactive"
check "service-after-query active"
wgo=$(sed -n 's/^CHECK wireguard-go \(.*\)/\1/p' <<<"$out")
if [ "$wgo" != none ]; then
  check "wireguard-go-after-restart $wgo"
  check "dns-sockets 4 in-wireguard-go 0"
fi
check "api-after-restart HTTP/1.1 200 OK"
check "upgrade rc 0 1"
check "api-after-upgrade HTTP/1.1 200 OK"
check "again rc 0 1 same-pid yes"
if [ "$wgo" != none ]; then check "wireguard-go-after-upgrade $wgo"; fi
check "uninstall rc 0"
check "units-after-uninstall 0"
check "nft-after-uninstall no"
check "data-after-uninstall kept"
if [ -n "${VERBOSE:-}" ]; then echo "$out"; else grep "^CHECK" <<<"$out"; fi
step "passed"
