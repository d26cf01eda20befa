#!/usr/bin/env bash
# Generates the Kotlin, Swift and Python bindings of mistborn-ffi (UniFFI library mode) into
# bindings/ , or into the directory given as $1 (scripts/check-bindings.sh uses a temp dir).
# Commit bindings/ after changing mistborn-ffi's exported API.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/bindings}"
cd "$root"

# Both packages in one build: cargo unifies uniffi's features across them, so this is the same
# build that `cargo build --workspace` makes and nothing is compiled twice.
cargo build --quiet --locked -p mistborn-ffi -p mistborn-ffi-bindgen
target_dir="$(cargo metadata --format-version 1 --no-deps --locked \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
lib="$target_dir/debug/libmistborn_ffi.so"

for lang in kotlin swift python; do
    rm -rf "${out:?}/$lang"
    "$target_dir/debug/uniffi-bindgen" generate "$lib" --language "$lang" --no-format \
        --out-dir "$out/$lang" >/dev/null
done
