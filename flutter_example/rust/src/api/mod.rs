//! Everything Dart calls. Each module wraps one `vazhi-core` capability; no decisions are made
//! here. Blocking calls run on flutter_rust_bridge's worker threads (never Dart's); answers and
//! downloads run on threads of their own and stream their events.

pub mod assistant;
pub mod error;
pub mod feedback;
pub mod knowledge;
pub mod models;
pub mod records;

/// The version of the Vazhi SDK behind this bridge.
#[flutter_rust_bridge::frb(sync)]
pub fn sdk_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Called once by `RustLib.init()`: installs flutter_rust_bridge's panic hook and platform
/// logger (logcat / os_log). Vazhi logs no user text above `trace`.
#[flutter_rust_bridge::frb(init)]
pub fn init_app() {
    flutter_rust_bridge::setup_default_user_utils();
}
