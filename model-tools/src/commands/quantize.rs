//! `quantize`: quantizes a GGUF with llama.cpp (Q4_K_M, Q5_K_M, Q8_0, ...).

use std::path::PathBuf;

use model_tools::quantize;

use super::args::OutputArgs;
use super::output::{emit, fail, Failure, BAD_INPUT, STEP_FAILED};

/// The arguments of `quantize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input GGUF (F32/F16/BF16).
    input: PathBuf,
    /// Output GGUF.
    output: PathBuf,
    /// The preset, e.g. Q4_K_M.
    #[arg(long = "type", default_value = "Q4_K_M")]
    qtype: String,
    /// Importance matrix from llama-imatrix (GGUF).
    #[arg(long)]
    imatrix: Option<PathBuf>,
    /// Worker threads (0: every core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Accept an already quantized input.
    #[arg(long)]
    allow_requantize: bool,
    #[command(flatten)]
    flags: OutputArgs,
}

/// Runs `quantize` and returns its exit code.
pub fn run(args: Args) -> Result<u8, Failure> {
    let Args {
        input,
        output,
        qtype,
        imatrix,
        threads,
        allow_requantize,
        flags: OutputArgs { overwrite, json },
    } = args;
    let opts = quantize::QuantizeOptions {
        input,
        output,
        qtype: quantize::QuantType::parse(&qtype).map_err(|e| fail(2)(&e))?,
        imatrix,
        threads,
        overwrite,
        allow_requantize,
    };
    let report = quantize::quantize(&opts).map_err(|e| match e {
        quantize::QuantizeError::BadInput { .. } | quantize::QuantizeError::BadImatrix { .. } => {
            fail(BAD_INPUT)(&e)
        }
        other => fail(STEP_FAILED)(&other),
    })?;
    emit(&report, json)?;
    Ok(0)
}
