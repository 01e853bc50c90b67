//! # vazhi-core
//!
//! The Vazhi SDK: an offline assistant for phones and laptops. A small GGUF model runs through
//! llama.cpp on its own thread ([`engine`]); the files it reads are validated by our own GGUF
//! parser first; Vazhi's state lives in one documented directory ([`data_dir`]).
//!
//! ```no_run
//! use vazhi_core::engine::{Engine, EngineConfig, GenerateParams};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::load("model.gguf", EngineConfig::default())?;
//! let answer = engine.session(None).send("Hello!", GenerateParams::default())?.wait()?;
//! println!("{}", answer.text);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod app;
pub mod assistant;
pub mod builtin_tools;
pub mod civil_date;
pub mod data_dir;
pub mod download;
pub mod engine;
pub mod error_kind;
pub mod eval;
pub mod fact_guard;
pub mod feedback;
pub mod fsutil;
pub mod grounding;
pub mod knowledge;
pub mod router;
pub mod sessions;
pub mod signing;
mod sqlite_migrate;
pub mod task;
pub mod text;
pub mod tool_results;

pub use vazhi_gguf as gguf;
