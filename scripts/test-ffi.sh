#!/usr/bin/env bash
# Tests mistborn-ffi the way an app uses it: checks that bindings/ is up to date, then runs
# mistborn-ffi/tests/test_ffi_python.py (pytest) against the generated Python binding with the built
# library copied next to it in a temp dir. Uses the venv of scripts/install-test-deps.sh.
# Exits non-zero on any failure, and also when pytest collected no test (exit code 5).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${MISTBORN_PY_VENV:-$root/target/py-venv}"
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check pytest

bash "$root/scripts/check-bindings.sh"

target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps --locked \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$root/bindings/python/mistborn_ffi.py" "$target_dir/debug/libmistborn_ffi.so" \
    "$root/mistborn-ffi/tests/test_ffi_python.py" "$work/"

status=0
(cd "$work" && "$venv/bin/python" -m pytest -q -p no:cacheprovider test_ffi_python.py "$@") || status=$?
if [ "$status" -eq 5 ]; then
    echo "test-ffi: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
