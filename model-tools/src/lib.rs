//! # model-tools
//!
//! The desktop model-build library behind the `model-tools` CLI: data checks, training
//! supervision, merging, GGUF conversion, quantization and the quantized-model gate. It shares
//! the pure-Rust GGUF reader/writer with the engine ([`vazhi_gguf`]); the build steps arrive
//! with the model-tools issues.
#![deny(missing_docs)]

pub use vazhi_gguf as gguf;
