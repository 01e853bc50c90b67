//! # vazhi_flutter
//!
//! The Flutter example's bridge crate. [`api`] is the whole surface Dart sees, generated into
//! `lib/src/rust/` by `flutter_rust_bridge_codegen` 2.13.0 (the code it writes on the Rust
//! side is `frb_generated.rs`). Everything the api does is a call into `vazhi-core` and a type
//! conversion; answers and downloads stream through [`emit::Emit`], which a `StreamSink`
//! implements and the Rust tests replace with a channel.

pub mod api;
pub mod emit;
// Written by the codegen, not by us: its own lint choices.
#[allow(clippy::unwrap_used, missing_debug_implementations)]
mod frb_generated;
