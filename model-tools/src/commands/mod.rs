//! The `model-tools` subcommands, one file each: its arguments and its `run`, which returns
//! the exit code. What they share lives in [`output`] and [`args`].

pub mod args;
pub mod output;

pub mod audit_tokenizer;
pub mod convert;
pub mod doctor;
pub mod eval;
pub mod import_gguf;
pub mod merge;
pub mod preflight;
pub mod prepare_data;
pub mod publish;
pub mod quantize;
pub mod setup_train;
pub mod train;
pub mod validate_data;
