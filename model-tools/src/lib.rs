//! # model-tools
//!
//! The desktop model-build library behind the `model-tools` CLI: the steps that turn a
//! fine-tuned Hugging Face model into the quantized GGUF an app downloads, and the gate that
//! refuses a broken one.
//!
//! `validate-data → train → merge → convert → quantize → eval → publish`:
//! - [`data`]: `validate-data`, training files checked before GPU time is spent;
//! - [`audit`]: `audit-tokenizer`, the tokenizer faults that broke real models;
//! - [`findings`]: the findings both checks report;
//! - [`quantize`]: llama.cpp's quantizer, wrapped once;
//! - [`eval`]: answers, perplexity, KL divergence and top-1 agreement against a reference,
//!   turned into a gate;
//! - [`publish`]: the SDK catalog entry;
//! - [`hf`]: Hugging Face checkpoint files (memory-mapped safetensors in, atomic outputs);
//! - [`script`]: which Unicode scripts a text is written in.
//!
//! It shares the pure-Rust GGUF reader/writer with the engine ([`vazhi_gguf`]).
#![deny(missing_docs)]

pub use vazhi_gguf as gguf;

pub mod arch;
pub mod audit;
pub mod convert;
pub mod data;
pub mod dequant;
pub mod eval;
pub mod findings;
pub mod hf;
pub mod import;
pub mod merge;
pub mod publish;
pub mod quantize;
pub mod script;
pub mod synth;
pub mod train;
