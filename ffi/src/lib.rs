//! # vazhi-ffi
//!
//! The foreign-function boundary over `vazhi-core`: uniffi objects, listener traits, task
//! handles and one flat error enum. It holds conversion only, never business logic. The
//! uniffi layer arrives with the FFI issue; until then this crate only proves that the core
//! builds as a dependency of the boundary crate.
#![deny(missing_docs)]

/// The version of the SDK behind this boundary.
pub fn sdk_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
