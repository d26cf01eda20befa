//! `uniffi-bindgen` for this workspace, in its own crate so the runtime library does not carry the
//! CLI feature. Used by `scripts/gen-bindings.sh`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
