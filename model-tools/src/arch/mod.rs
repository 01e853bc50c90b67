//! What model-tools knows about each supported architecture, in one place for both
//! directions: Hugging Face → GGUF (`convert`) and GGUF → Hugging Face (`import-gguf`).

pub mod from_hf;
pub mod gguf_params;
pub mod names;
