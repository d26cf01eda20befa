#!/usr/bin/env bash
# Fuzzes the whole REST API from its own OpenAPI document with schemathesis (property-based
# requests, valid and invalid), as a superuser and as a regular user, against a debug
# `mistborn serve` on a temp data dir and a free port (data plane, firewall and DNS off: nothing
# of the host's network is touched). Fails when any response is a 5xx, has a status code the
# document does not declare for that operation, or does not match the declared schema or content
# type.
#
#   bash scripts/test-fuzz.sh                 # about 3 minutes: MISTBORN_FUZZ_SECONDS per token
#   MISTBORN_FUZZ_SECONDS=600 bash scripts/test-fuzz.sh    # a longer hunt
#   MISTBORN_FUZZ_SEED=1234 ...               # replay a run (the seed is printed)
#
# Needs python3 with venv and PyPI on the first run (schemathesis, in the venv of
# scripts/install-test-deps.sh). Reports land in target/fuzz/ (JUnit XML, and the failures with
# curl commands that reproduce them in the output).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${MISTBORN_PY_VENV:-$root/target/py-venv}"
python="${PYTHON:-python3}"
seconds="${MISTBORN_FUZZ_SECONDS:-75}"
seed="${MISTBORN_FUZZ_SEED:-$RANDOM$RANDOM}"
out="$root/target/fuzz"

if [ ! -x "$venv/bin/schemathesis" ]; then
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check 'schemathesis>=4.3,<5'
fi

cd "$root"
cargo build -q --locked -p mistborn-http --bin mistborn
bin="${CARGO_TARGET_DIR:-$root/target}/debug/mistborn"

tmp="$(mktemp -d)"
serve_pid=""
cleanup() {
    if [ -n "$serve_pid" ]; then
        kill -TERM "$serve_pid" 2>/dev/null || true
        wait "$serve_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/mistborn.toml" <<TOML
data_dir = "$tmp/data"
http_listen = "127.0.0.1:0"
[wireguard]
backend = "none"
[dns]
enabled = false
[firewall]
enabled = false
TOML
mb() { "$bin" --config "$tmp/mistborn.toml" "$@"; }

MISTBORN_LOG="${MISTBORN_LOG:-warn}" mb serve >"$tmp/serve.out" 2>"$tmp/serve.err" &
serve_pid=$!
addr=""
for _ in $(seq 300); do
    addr="$(sed -n 's|^serving the API on http://\([^/]*\).*|\1|p' "$tmp/serve.out")"
    [ -n "$addr" ] && break
    if ! kill -0 "$serve_pid" 2>/dev/null; then
        echo "test-fuzz: mistborn serve exited at start:" >&2
        cat "$tmp/serve.out" "$tmp/serve.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "test-fuzz: mistborn serve printed no address within 30 s" >&2
    cat "$tmp/serve.out" "$tmp/serve.err" >&2
    exit 1
fi

# The superuser `admin` (created at first start) and a regular user, each with a token made by the
# command line on the data dir the server runs on.
admin_token="$(mb token add fuzz-admin | tail -n 1)"
mb user add fuzzer --password 'fuzzer password' >/dev/null
user_token="$(mb token add fuzz --user fuzzer | tail -n 1)"

# Which checks, and one exception: this run has no firewall (it needs root and a namespace of its
# own), so its metrics answer 503 `firewall_off`, as documented; every other 5xx fails the run.
cat >"$tmp/schemathesis.toml" <<TOML
[checks.not_a_server_error]
enabled = true
[checks.status_code_conformance]
enabled = true
[checks.content_type_conformance]
enabled = true
[checks.response_schema_conformance]
enabled = true
[checks.response_headers_conformance]
enabled = true
[checks.negative_data_rejection]
enabled = false
[checks.positive_data_acceptance]
enabled = false
[checks.missing_required_header]
enabled = false
[checks.unsupported_method]
enabled = false
[checks.allow_header_conformance]
enabled = false
[checks.use_after_free]
enabled = false
[checks.ensure_resource_availability]
enabled = false
[checks.ignored_auth]
enabled = false

[[operations]]
include-path = "/api/v1/firewall/metrics"
checks.not_a_server_error.enabled = false
TOML

mkdir -p "$out"
cd "$tmp" # schemathesis keeps a cache in the working directory
status=0
for who in superuser regular; do
    if [ "$who" = superuser ]; then token="$admin_token"; else token="$user_token"; fi
    echo "== schemathesis as the $who (seed $seed, ${seconds} s)"
    "$venv/bin/schemathesis" --config-file "$tmp/schemathesis.toml" \
        run "http://$addr/api/v1/openapi.json" \
        --url "http://$addr" \
        --header "Authorization: Bearer $token" \
        --phases examples,coverage,fuzzing \
        --max-time "$seconds" \
        --max-examples "${MISTBORN_FUZZ_EXAMPLES:-40}" \
        --workers 2 \
        --seed "$seed" \
        --request-timeout 20 \
        --suppress-health-check all \
        --no-color \
        --report junit --report-junit-path "$out/$who.xml" \
        || status=1
done

if ! kill -0 "$serve_pid" 2>/dev/null; then
    echo "test-fuzz: mistborn serve died during the run" >&2
    status=1
fi
if grep -q "panicked" "$tmp/serve.err"; then
    echo "test-fuzz: the server panicked:" >&2
    grep -A5 "panicked" "$tmp/serve.err" >&2
    status=1
fi
exit "$status"
