#!/usr/bin/env bash
# Builds the `mistborn` Python module (mistborn-py, pyo3 + maturin) into a venv under target/ and
# runs its pytest suite (which also checks mistborn.pyi against the module with mypy's stubtest).
# Needs python3 with venv and the network to PyPI on the first run (maturin, pytest, mypy).
# Exits non-zero on any failure, and also when pytest collected no test (exit code 5).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${MISTBORN_PY_VENV:-$root/target/py-venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check 'maturin>=1.0,<2.0' pytest mypy

cd "$root/mistborn-py"
VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin develop -q

status=0
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test-python: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
