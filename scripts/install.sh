#!/usr/bin/env bash
# Installs or upgrades Mistborn on Debian 12 / Ubuntu 22.04+ as a hardened systemd service. Run as
# root; idempotent (a second run changes nothing) and non-interactive. Settings come from the
# environment (all optional):
#   MISTBORN_BINARY      a prebuilt `mistborn` binary to install (default: build this checkout with
#                        cargo, after installing the build's apt needs)
#   MISTBORN_ENDPOINT    the public address or name devices dial (default: the source address of
#                        the default route)
#   MISTBORN_EXTERNAL_INTERFACE  the interface facing the internet (default: the default route's)
#   MISTBORN_WG_PORT, MISTBORN_SUBNET_V4, MISTBORN_SUBNET_V6, MISTBORN_WG_INTERFACE,
#   MISTBORN_HTTP_LISTEN, MISTBORN_DATABASE_URL   as in mistborn.toml (written on first install
#                        only: the file is never overwritten)
#   MISTBORN_PROXY       managed (default: Caddy started by Mistborn) or off
#   MISTBORN_WIREGUARD_GO  auto (default: only when the kernel has no WireGuard), yes or no
#   MISTBORN_KEEP_RESOLVED_STUB=1  leave systemd-resolved's stub listener on port 53 alone
#   MISTBORN_NO_START=1  install and enable, but do not start or restart anything
# An upgrade (the installed binary differs) stops the service, backs the database up (a raw copy
# of the SQLite file and `mistborn db backup` by the installed binary), migrates a copy with the
# new binary, and only then swaps it in and restarts; a failed migration leaves the database and
# the installed binary as they were and says how to restore a backup.
set -euo pipefail
umask 022

PREFIX=/usr/local
BIN="$PREFIX/bin/mistborn"
SVC_USER=mistborn
DATA_DIR=/var/lib/mistborn
CONF_DIR=/etc/mistborn
CONF="$CONF_DIR/mistborn.toml"
UNIT_DIR=/etc/systemd/system
WG_PORT=${MISTBORN_WG_PORT:-51820}
WG_IF=${MISTBORN_WG_INTERFACE:-mistborn0}
SUBNET_V4=${MISTBORN_SUBNET_V4:-10.15.91.0/24}
SUBNET_V6=${MISTBORN_SUBNET_V6:-fd15:91::/64}
HTTP_LISTEN=${MISTBORN_HTTP_LISTEN:-127.0.0.1:5000}
PROXY=${MISTBORN_PROXY:-managed}
WG_GO=${MISTBORN_WIREGUARD_GO:-auto}
CHANGED=0

say() { echo "mistborn install: $*"; }
die() { echo "mistborn install: error: $*" >&2; exit 1; }
changed() { CHANGED=1; say "$*"; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages, a system user and a systemd unit)"
. /etc/os-release 2>/dev/null || true
case " ${ID:-} ${ID_LIKE:-} " in
  *" debian "*|*" ubuntu "*) ;;
  *) die "Debian 12 or Ubuntu 22.04+ only (found ${PRETTY_NAME:-an unknown system})" ;;
esac
case "$PROXY" in managed|off) ;; *) die "MISTBORN_PROXY must be managed or off, got '$PROXY'" ;; esac
case "$WG_GO" in auto|yes|no) ;; *) die "MISTBORN_WIREGUARD_GO must be auto, yes or no" ;; esac
systemd_running() { [ -d /run/systemd/system ]; }
no_start() { [ "${MISTBORN_NO_START:-0}" = 1 ] || ! systemd_running; }

# --- packages ---------------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
APT_UPDATED=0
apt_update() { if [ $APT_UPDATED = 0 ]; then apt-get update -q >/dev/null; APT_UPDATED=1; fi; }
apt_install() {
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_update
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  CHANGED=1
}
kernel_wireguard() {
  [ -d /sys/module/wireguard ] && return 0
  command -v modprobe >/dev/null && modprobe -q wireguard 2>/dev/null && [ -d /sys/module/wireguard ]
}
packages=(wireguard-tools nftables iproute2)
if [ "$WG_GO" = yes ] || { [ "$WG_GO" = auto ] && ! kernel_wireguard; }; then
  packages+=(wireguard-go)
fi
if [ "$PROXY" = managed ]; then
  if installed caddy || apt-cache show caddy >/dev/null 2>&1 \
     || { apt_update; apt-cache show caddy >/dev/null 2>&1; }; then
    packages+=(caddy)
  else
    say "caddy is not in this system's apt sources: writing [proxy] mode = \"off\" (add Caddy's apt repository and set mode = \"managed\" for the sign-in page)"
    PROXY=off
  fi
fi
apt_install "${packages[@]}"

# --- the binary ---------------------------------------------------------------------------------
if [ -n "${MISTBORN_BINARY:-}" ]; then
  NEW_BIN=$MISTBORN_BINARY
  [ -x "$NEW_BIN" ] || die "MISTBORN_BINARY=$NEW_BIN is not an executable file"
else
  src=$(cd "$(dirname "$0")/.." && pwd)
  [ -f "$src/Cargo.toml" ] || die "no source checkout beside this script: set MISTBORN_BINARY"
  command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) or set MISTBORN_BINARY"
  apt_install clang libclang-dev pkg-config gcc libc6-dev linux-libc-dev   # as scripts/run.sh
  say "building mistborn (cargo build --release; several minutes the first time)"
  (cd "$src" && cargo build --release --locked --bin mistborn)
  NEW_BIN=$src/target/release/mistborn
fi

# --- user, directories ---------------------------------------------------------------------------
if ! getent passwd "$SVC_USER" >/dev/null; then
  useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
    --shell /usr/sbin/nologin --comment "Mistborn gateway" "$SVC_USER"
  changed "created system user $SVC_USER"
fi
ensure_dir() { # path mode owner:group
  if [ ! -d "$1" ]; then install -d -m "$2" -o "${3%:*}" -g "${3#*:}" "$1"; changed "created $1"; fi
  if [ "$(stat -c '%a %U:%G' "$1")" != "$2 $3" ]; then
    chmod "$2" "$1"; chown "$3" "$1"; changed "set $1 to $2 $3"
  fi
}
ensure_dir "$DATA_DIR" 700 "$SVC_USER:$SVC_USER"
ensure_dir "$DATA_DIR/backups" 700 "$SVC_USER:$SVC_USER"
ensure_dir "$CONF_DIR" 750 "root:$SVC_USER"

# put PATH MODE OWNER:GROUP < content: writes only when content, mode or owner differ.
put() {
  local tmp; tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1" && [ "$(stat -c '%a %U:%G' "$1")" = "$2 $3" ]; then
    rm -f "$tmp"; return 1
  fi
  # staged beside the target, so the final rename is atomic
  install -m "$2" -o "${3%:*}" -g "${3#*:}" "$tmp" "$1.new"; rm -f "$tmp"
  mv -f "$1.new" "$1"
  changed "wrote $1"
}

# --- configuration (first install only) -------------------------------------------------------
server_v4() { # network address + 1 of an IPv4 CIDR
  local ip=${1%/*} len=${1#*/} a b c d n
  IFS=. read -r a b c d <<<"$ip"
  n=$(( (a << 24 | b << 16 | c << 8 | d) & (0xffffffff << (32 - len)) & 0xffffffff ))
  n=$((n + 1))
  echo "$((n >> 24 & 255)).$((n >> 16 & 255)).$((n >> 8 & 255)).$((n & 255))"
}
server_v6() { # network + 1 of an IPv6 CIDR written as prefix::/len
  case "$1" in *::/*) echo "${1%%/*}1" ;; *) die "MISTBORN_SUBNET_V6 must be written as <prefix>::/<len>, got $1" ;; esac
}
if [ -f "$CONF" ]; then
  # the installed config is the truth: take the tunnel settings from it
  v() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\{0,1\}\([^\"#]*\)\"\{0,1\}.*/\1/p" "$CONF" | head -1 | tr -d ' '; }
  SUBNET_V4=$(v subnet_v4); SUBNET_V4=${SUBNET_V4:-10.15.91.0/24}
  SUBNET_V6=$(v subnet_v6); SUBNET_V6=${SUBNET_V6:-fd15:91::/64}
  WG_IF=$(v interface); WG_IF=${WG_IF:-mistborn0}
else
  route=$(ip -4 route get 192.0.2.1 2>/dev/null || true)  # TEST-NET-1: nothing is sent
  ext_if=${MISTBORN_EXTERNAL_INTERFACE:-$(sed -n 's/.* dev \([^ ]*\).*/\1/p' <<<"$route")}
  endpoint=${MISTBORN_ENDPOINT:-$(sed -n 's/.* src \([^ ]*\).*/\1/p' <<<"$route")}
  [ -n "$endpoint" ] || die "no default route to find the public address: set MISTBORN_ENDPOINT (and MISTBORN_EXTERNAL_INTERFACE)"
  [ -n "$ext_if" ] || die "no default route interface: set MISTBORN_EXTERNAL_INTERFACE"
  case "$endpoint" in 10.*|192.168.*|172.1[6-9].*|172.2[0-9].*|172.3[01].*)
    say "note: $endpoint is a private address; behind NAT set MISTBORN_ENDPOINT to the public name or address and forward UDP $WG_PORT" ;;
  esac
  server_v4 "$SUBNET_V4" >/dev/null; server_v6 "$SUBNET_V6" >/dev/null
  conf=$(
    echo "# Written by scripts/install.sh; edit freely (the installer never overwrites this file)."
    echo "data_dir = \"$DATA_DIR\""
    echo "endpoint = \"$endpoint\""
    echo "http_listen = \"$HTTP_LISTEN\""
    if [ -n "${MISTBORN_DATABASE_URL:-}" ]; then echo "database_url = \"$MISTBORN_DATABASE_URL\""; fi
    echo
    echo "[wireguard]"
    echo "interface = \"$WG_IF\""
    echo "listen_port = $WG_PORT"
    echo "subnet_v4 = \"$SUBNET_V4\""
    echo "subnet_v6 = \"$SUBNET_V6\""
    echo "backend = \"auto\"                    # kernel WireGuard when there is one, else wireguard-go"
    echo "keep_on_stop = true                 # restarts and upgrades keep the tunnel up"
    echo
    echo "[firewall]"
    echo "external_interface = \"$ext_if\""
    echo
    echo "[proxy]"
    echo "mode = \"$PROXY\""
    if [ "$PROXY" = managed ]; then echo "caddy_bin = \"/usr/bin/caddy\""; fi
  )
  put "$CONF" 640 "root:$SVC_USER" <<<"$conf" || true
fi
DNS_V4=$(server_v4 "$SUBNET_V4")
DNS_V6=$(server_v6 "$SUBNET_V6")

# --- competing DNS listeners ----------------------------------------------------------------------
# systemd-resolved's stub (127.0.0.53:53) would answer instead of the tunnel resolver for
# programs that ask it, and DNSStubListenerExtra entries may claim port 53 more widely: turn the
# stub off and point /etc/resolv.conf at resolved's upstream list instead.
if [ "${MISTBORN_KEEP_RESOLVED_STUB:-0}" != 1 ] && [ -f /lib/systemd/system/systemd-resolved.service ] \
   && { systemctl is-enabled -q systemd-resolved 2>/dev/null || systemctl is-active -q systemd-resolved 2>/dev/null; }; then
  mkdir -p /etc/systemd/resolved.conf.d
  if put /etc/systemd/resolved.conf.d/mistborn.conf 644 root:root \
      <<<$'# Mistborn serves DNS on the tunnel addresses.\n[Resolve]\nDNSStubListener=no'; then
    if [ "$(readlink /etc/resolv.conf || true)" != /run/systemd/resolve/resolv.conf ]; then
      ln -sf /run/systemd/resolve/resolv.conf /etc/resolv.conf
      changed "pointed /etc/resolv.conf at /run/systemd/resolve/resolv.conf"
    fi
    systemd_running && systemctl restart systemd-resolved
  fi
fi
# The distribution's caddy.service would hold ports 80/443 that Mistborn's managed Caddy needs.
if [ "$PROXY" = managed ] && systemctl is-enabled -q caddy.service 2>/dev/null; then
  if systemd_running; then systemctl disable --now -q caddy.service; else systemctl disable -q caddy.service; fi
  changed "disabled caddy.service (Mistborn starts its own Caddy)"
fi

# --- systemd units ---------------------------------------------------------------------------------
UNITS_CHANGED=0
put "$UNIT_DIR/mistborn-dns.socket" 644 root:root <<EOF && UNITS_CHANGED=1
# Written by scripts/install.sh. Holds Mistborn's DNS sockets across restarts of mistborn.service:
# queries that arrive while it restarts wait here and are answered by the next process.
[Unit]
Description=Mistborn DNS sockets (tunnel addresses, port 53)
Documentation=man:systemd.socket(5)

[Socket]
ListenDatagram=$DNS_V4:53
ListenStream=$DNS_V4:53
ListenDatagram=[$DNS_V6]:53
ListenStream=[$DNS_V6]:53
# The tunnel interface (and so its addresses) appears only when mistborn.service runs.
FreeBind=yes
# Room for a few seconds of queries while the daemon restarts.
ReceiveBuffer=8M
FileDescriptorName=dns
Service=mistborn.service

[Install]
WantedBy=sockets.target
EOF
put "$UNIT_DIR/mistborn.service" 644 root:root <<EOF && UNITS_CHANGED=1
# Written by scripts/install.sh.
[Unit]
Description=Mistborn gateway (WireGuard, DNS filtering, firewall, API)
Wants=network-online.target
After=network-online.target mistborn-dns.socket
Requires=mistborn-dns.socket

[Service]
Type=exec
User=$SVC_USER
Group=$SVC_USER
ExecStart=$BIN --config $CONF serve
Sockets=mistborn-dns.socket
Restart=on-failure
RestartSec=2s
TimeoutStopSec=30s
# Only the main process is stopped: the wireguard-go that serve starts (own process group) keeps
# the tunnel up across restarts and upgrades, and the next start adopts it (wireguard.keep_on_stop).
KillMode=process
Environment=HOME=$DATA_DIR
StateDirectory=mistborn
StateDirectoryMode=0700
# wireguard-go's control sockets; kept across restarts for the wireguard-go that survives them.
RuntimeDirectory=wireguard
RuntimeDirectoryMode=0755
RuntimeDirectoryPreserve=yes
UMask=0077

# Privileges: interfaces, routes, nftables and forwarding (CAP_NET_ADMIN); ports below 1024 for
# DNS and the proxy (CAP_NET_BIND_SERVICE). Nothing else.
AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE
NoNewPrivileges=yes

# File system: read-only except the data dir; no home dirs, private /tmp.
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
# /proc/sys/net stays writable: IP forwarding and accept_ra are turned on behind the firewall.
ProtectKernelTunables=yes
ReadWritePaths=/proc/sys/net
# Devices: only the TUN device (wireguard-go).
DevicePolicy=closed
DeviceAllow=/dev/net/tun rw
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
EOF

if [ $UNITS_CHANGED = 1 ] && systemd_running; then systemctl daemon-reload; fi
# Another DNS server on the wildcard address (dnsmasq, bind9, ...) keeps the socket unit from
# binding port 53 on the tunnel addresses: name it (it is not ours to stop).
if command -v ss >/dev/null; then
  while read -r line; do
    say "warning: port 53 is taken on all addresses, so mistborn-dns.socket cannot bind $DNS_V4:53: $line"
  done < <(ss -Hlntup 2>/dev/null | awk '$5 ~ /^(0\.0\.0\.0|\[::\]|\*):53$/ {print $1, $5, $7}')
fi

# --- install or upgrade the binary ------------------------------------------------------------------
db_file() { # the SQLite file, or nothing when the database is PostgreSQL
  if grep -qE '^[[:space:]]*database_url[[:space:]]*=[[:space:]]*"postgres' "$CONF" 2>/dev/null; then return 0; fi
  echo "$DATA_DIR/mistborn.db"
}
was_active=0
systemd_running && systemctl is-active -q mistborn.service && was_active=1
# the service user's commands, with the unit's umask: what they create is theirs alone
as_svc() { (umask 077; exec runuser -u "$SVC_USER" -- "$@"); }
copy_db() { # from to: the SQLite file and its write-ahead log, owned by the service user
  install -m 600 -o "$SVC_USER" -g "$SVC_USER" "$1" "$2"
  if [ -f "$1-wal" ]; then install -m 600 -o "$SVC_USER" -g "$SVC_USER" "$1-wal" "$2-wal"; fi
}
upgrade() {
  local ts db json err staging="" url=() out
  ts=$(date -u +%Y%m%dT%H%M%SZ)
  db=$(db_file)
  json="$DATA_DIR/backups/pre-upgrade-$ts.json"
  err="$DATA_DIR/backups/pre-upgrade-$ts.log"
  say "upgrading $BIN (the installed binary differs)"
  if [ $was_active = 1 ] && ! no_start; then systemctl stop mistborn.service; fi
  resume() { if [ $was_active = 1 ] && ! no_start; then systemctl start mistborn.service; fi; }
  if [ -n "$db" ] && [ -f "$db" ]; then
    # The database file itself is not opened until the new one is swapped in: a raw copy is the
    # first backup, and both binaries below work on a second copy.
    copy_db "$db" "$DATA_DIR/backups/pre-upgrade-$ts.db"
    say "backed up $db to $DATA_DIR/backups/pre-upgrade-$ts.db"
    staging="$DATA_DIR/upgrade-$ts.db"
    copy_db "$db" "$staging"
    url=("MISTBORN_DATABASE_URL=sqlite://$staging")
  fi
  # The portable backup, by the installed binary that knows this schema.
  if as_svc env "${url[@]}" "$BIN" -c "$CONF" db backup "$json" >/dev/null 2>"$err"; then
    rm -f "$err"
    say "backed up the database to $json (mistborn db backup)"
  elif [ -n "$staging" ]; then
    say "warning: the installed binary could not write a portable backup ($(tail -1 "$err")); the raw copy is the backup"
    json="$DATA_DIR/backups/pre-upgrade-$ts.db"
  else
    resume
    die "the installed binary could not back up the PostgreSQL database ($(tail -1 "$err")): not upgrading, nothing changed"
  fi
  # Migrate with the new binary: SQLite on the copy, swapped in only when it worked; PostgreSQL in
  # place (each migration in its own transaction).
  install -m 755 -o root -g root "$NEW_BIN" "$BIN.new"
  if ! out=$(as_svc env "${url[@]}" "$BIN.new" -c "$CONF" db migrate 2>&1); then
    rm -f "$BIN.new"
    if [ -n "$staging" ]; then rm -f "$staging" "$staging-wal" "$staging-shm"; fi
    {
      echo "mistborn install: error: the new binary could not migrate the database:"
      echo "  $out"
      if [ -n "$staging" ]; then
        echo "  the database was not changed (the migration ran on a copy) and the installed binary is kept"
        echo "  raw backup: $DATA_DIR/backups/pre-upgrade-$ts.db (to restore it: systemctl stop mistborn, copy it over $db, remove $db-wal and $db-shm, systemctl start mistborn)"
      else
        echo "  the installed binary is kept; the database may be partly migrated"
      fi
      if [ "${json%.json}" != "$json" ]; then
        echo "  to restore the portable backup: systemctl stop mistborn && runuser -u $SVC_USER -- $BIN -c $CONF db restore --force $json && systemctl start mistborn"
      fi
    } >&2
    resume
    exit 1
  fi
  if [ -n "$staging" ]; then
    rm -f "$db-wal" "$db-shm"
    mv -f "$staging" "$db"
    rm -f "$staging-wal" "$staging-shm"
  fi
  mv -f "$BIN.new" "$BIN"
  changed "upgraded $BIN and migrated the database (backup: $json)"
}
if [ ! -f "$BIN" ]; then
  install -m 755 -o root -g root "$NEW_BIN" "$BIN"
  changed "installed $BIN"
elif ! cmp -s "$NEW_BIN" "$BIN"; then
  upgrade
fi
if [ ! -f "$DATA_DIR/secret.key" ]; then
  as_svc "$BIN" -c "$CONF" init >/dev/null
  changed "initialised $DATA_DIR (superuser 'admin'; password in $DATA_DIR/admin-password)"
fi

# --- enable and start ----------------------------------------------------------------------------------
if ! systemctl is-enabled -q mistborn.service 2>/dev/null || ! systemctl is-enabled -q mistborn-dns.socket 2>/dev/null; then
  systemctl enable -q mistborn-dns.socket mistborn.service 2>/dev/null
  changed "enabled mistborn.service and mistborn-dns.socket"
fi
if no_start; then
  systemd_running || say "systemd is not running here: units enabled, not started"
else
  systemctl is-active -q mistborn-dns.socket || { systemctl start mistborn-dns.socket; CHANGED=1; }
  if ! systemctl is-active -q mistborn.service; then
    systemctl start mistborn.service; changed "started mistborn.service"
  elif [ $UNITS_CHANGED = 1 ] || [ $CHANGED = 1 ]; then
    systemctl restart mistborn.service; changed "restarted mistborn.service"
  fi
fi

[ $CHANGED = 1 ] || say "nothing to change: Mistborn is installed and up to date"
cat <<EOF

Mistborn is installed: $BIN, config $CONF, data $DATA_DIR (service user $SVC_USER).
  status:            systemctl status mistborn; journalctl -u mistborn
  admin's WireGuard config (a QR code on a terminal; a plain file when redirected):
                     runuser -u $SVC_USER -- $BIN -c $CONF getconf
                     runuser -u $SVC_USER -- $BIN -c $CONF getconf > admin.conf
  admin password:    $DATA_DIR/admin-password
Run other commands the same way (as $SVC_USER), so the files they create stay the service's.
EOF
