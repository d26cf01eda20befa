#!/usr/bin/env bash
# Fails when bindings/ differs from what scripts/gen-bindings.sh generates from the current
# mistborn-ffi: regenerates into a temp dir and diffs.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT

bash "$root/scripts/gen-bindings.sh" "$fresh"
if ! diff -ru "$root/bindings" "$fresh"; then
    echo "check-bindings: bindings/ is stale; run scripts/gen-bindings.sh and commit the result" >&2
    exit 1
fi
echo "check-bindings: bindings/ is up to date"
