//! `uniffi-bindgen generate --library <libvazhi_ffi.so> --language kotlin|swift --out-dir DIR`:
//! the generator matching the `uniffi` that `vazhi-ffi` is built with (see `bindings/`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
