#!/usr/bin/env bash
# Removes what scripts/install.sh set up: stops and removes the systemd units, deletes the
# nftables table `inet mistborn` and the WireGuard interface (which ends a wireguard-go that
# outlived the service), removes the binary and the systemd-resolved drop-in. Keeps the data
# (/var/lib/mistborn, with its backups), the config (/etc/mistborn) and the system user unless
# MISTBORN_PURGE=1. Run as root; running it twice is harmless.
set -euo pipefail

BIN=/usr/local/bin/mistborn
SVC_USER=mistborn
DATA_DIR=/var/lib/mistborn
CONF_DIR=/etc/mistborn
UNIT_DIR=/etc/systemd/system

say() { echo "mistborn uninstall: $*"; }
[ "$(id -u)" = 0 ] || { echo "mistborn uninstall: error: run as root" >&2; exit 1; }

# The interface name from the config (the installer's default otherwise).
wg_if=$(sed -n 's/^[[:space:]]*interface[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' \
  "$CONF_DIR/mistborn.toml" 2>/dev/null | head -1)
wg_if=${wg_if:-mistborn0}

if [ -d /run/systemd/system ]; then
  for unit in mistborn.service mistborn-dns.socket; do
    if systemctl list-unit-files -q "$unit" >/dev/null 2>&1; then
      systemctl disable --now -q "$unit" 2>/dev/null || true
    fi
  done
else
  systemctl disable -q mistborn.service mistborn-dns.socket 2>/dev/null || true
fi
for f in "$UNIT_DIR/mistborn.service" "$UNIT_DIR/mistborn-dns.socket"; do
  if [ -e "$f" ]; then rm -f "$f"; say "removed $f"; fi
done
if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

if command -v nft >/dev/null && nft list table inet mistborn >/dev/null 2>&1; then
  nft delete table inet mistborn
  say "deleted the nftables table inet mistborn"
fi
if ip link show dev "$wg_if" >/dev/null 2>&1; then
  ip link delete dev "$wg_if"
  say "deleted the WireGuard interface $wg_if"
fi
rm -f "/run/wireguard/$wg_if.sock"

if [ -f /etc/systemd/resolved.conf.d/mistborn.conf ]; then
  rm -f /etc/systemd/resolved.conf.d/mistborn.conf
  say "removed /etc/systemd/resolved.conf.d/mistborn.conf (systemd-resolved's stub listener is back)"
  if [ -d /run/systemd/system ]; then
    systemctl try-restart systemd-resolved || true
  fi
  if [ "$(readlink /etc/resolv.conf || true)" = /run/systemd/resolve/resolv.conf ]; then
    ln -sf /run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
  fi
fi

if [ -e "$BIN" ]; then rm -f "$BIN"; say "removed $BIN"; fi

if [ "${MISTBORN_PURGE:-0}" = 1 ]; then
  rm -rf "$DATA_DIR" "$CONF_DIR"
  if getent passwd "$SVC_USER" >/dev/null; then userdel "$SVC_USER"; fi
  say "purged $DATA_DIR, $CONF_DIR and the user $SVC_USER"
else
  say "kept the data in $DATA_DIR (backups in $DATA_DIR/backups), the config in $CONF_DIR and the user $SVC_USER (MISTBORN_PURGE=1 removes them)"
fi
