//! `vazhi info`: validate a model file and print its metadata.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vazhi_core::engine::{validate_model, ValidationPolicy};

use crate::output::outln;

/// Arguments of `vazhi info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The GGUF file.
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Largest model file accepted, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub max_model_mb: u64,
}

/// Runs `vazhi info`.
pub fn run(args: Args) -> Result<ExitCode> {
    let policy = ValidationPolicy {
        max_file_bytes: args.max_model_mb << 20,
        ..Default::default()
    };
    let report = validate_model(&args.model, &policy)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mib = report.file_bytes as f64 / f64::from(1 << 20);
    outln!(
        "file           {} ({mib:.1} MiB, GGUF v{})",
        report.path.display(),
        report.gguf_version
    )?;
    // The name comes from the file: no escape sequences on the terminal.
    let name = report.name.as_deref().map_or("-".into(), super::one_line);
    outln!("name           {name}")?;
    outln!("architecture   {}", report.architecture)?;
    outln!(
        "parameters     {:.1} M",
        report.parameter_count as f64 / 1e6
    )?;
    outln!(
        "file type      {} ({})",
        report.file_type.map_or("-".into(), |t| t.to_string()),
        report.file_type_name.as_deref().unwrap_or("unknown")
    )?;
    outln!("tensors        {}", report.tensor_count)?;
    outln!("context        {} tokens (trained)", report.context_length)?;
    outln!(
        "layers         {} × {} wide, {} heads ({} KV heads)",
        report.block_count,
        report.embedding_length,
        report.head_count,
        report.head_count_kv
    )?;
    outln!("vocabulary     {} tokens", report.vocab_size)?;
    outln!(
        "chat template  {}",
        if report.has_chat_template {
            "yes"
        } else {
            "no (llama.cpp fallback)"
        }
    )?;
    outln!("validation     ok")?;
    Ok(ExitCode::SUCCESS)
}
