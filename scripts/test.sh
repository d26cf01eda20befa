#!/usr/bin/env bash
# Runs every test of Mistborn on a fresh Debian machine as root: installs what the tests need, starts a
# throwaway PostgreSQL, then runs lint checks, the Rust tests (unit, store, HTTP, system), and the
# frontend tests. Any failure fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

bash scripts/install-test-deps.sh

PG_PORT=${MISTBORN_TEST_PG_PORT:-55432}
eval "export $(bash scripts/postgres.sh up "$PG_PORT")"
trap 'bash scripts/postgres.sh down "$PG_PORT"' EXIT

echo "== format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== Rust tests (SQLite and PostgreSQL)"
cargo test --workspace --locked --no-fail-fast

for extra in scripts/test-*.sh; do
  [ -e "$extra" ] || continue
  echo "== $extra"
  bash "$extra"
done
echo "all tests passed"
