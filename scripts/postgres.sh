#!/usr/bin/env bash
# A throwaway PostgreSQL on 127.0.0.1 for the store tests, without systemd (initdb + pg_ctl as the
# postgres user, everything under /tmp/mistborn-pg-PORT).
#   postgres.sh up [PORT]    prints MISTBORN_TEST_POSTGRES_URL=...
#   postgres.sh down [PORT]
set -euo pipefail
MODE=${1:-up}
PORT=${2:-55432}
BASE=/tmp/mistborn-pg-$PORT
PASS=mistborn-test
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$BIN/initdb" ] || { echo "PostgreSQL is not installed: run scripts/install-test-deps.sh" >&2; exit 1; }

down() {
  if [ -f "$BASE/data/postmaster.pid" ]; then
    runuser -u postgres -- "$BIN/pg_ctl" -D "$BASE/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$BASE"
}

case "$MODE" in
  up)
    down
    mkdir -p "$BASE" && chown postgres:postgres "$BASE" && chmod 700 "$BASE"
    printf '%s\n' "$PASS" > "$BASE/pw" && chown postgres "$BASE/pw"
    runuser -u postgres -- "$BIN/initdb" -D "$BASE/data" -U mistborn --pwfile="$BASE/pw" \
      --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-sync >"$BASE/initdb.log" 2>&1
    rm -f "$BASE/pw"
    # fsync off: test data only, and it makes the suite several times faster.
    runuser -u postgres -- "$BIN/pg_ctl" -D "$BASE/data" -l "$BASE/server.log" -w -t 30 start \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k $BASE -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null
    echo "MISTBORN_TEST_POSTGRES_URL=postgres://mistborn:$PASS@127.0.0.1:$PORT/postgres"
    ;;
  down) down ;;
  *) echo "usage: $0 up|down [PORT]" >&2; exit 2 ;;
esac
