//! `publish`: prints the SDK catalog entry for a finished GGUF, optionally adding it to a
//! catalog file.

use std::path::PathBuf;

use model_tools::publish;

use super::output::{fail, print_json, Failure, BAD_INPUT};

/// The arguments of `publish`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The GGUF file.
    model: PathBuf,
    /// Download URL (https); repeat for mirrors.
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// Catalog id (default: from the file name).
    #[arg(long)]
    id: Option<String>,
    /// Display name (default: general.name).
    #[arg(long)]
    name: Option<String>,
    /// Licence (default: general.license).
    #[arg(long)]
    licence: Option<String>,
    /// Add the entry to this catalog file (replacing one with the same id).
    #[arg(long)]
    catalog: Option<PathBuf>,
}

/// Runs `publish` and returns its exit code.
pub fn run(args: Args) -> Result<u8, Failure> {
    let Args {
        model,
        urls,
        id,
        name,
        licence,
        catalog,
    } = args;
    let opts = publish::PublishOptions {
        model,
        urls,
        id,
        name,
        licence,
        catalog,
    };
    let entry = publish::publish(&opts).map_err(|e| fail(BAD_INPUT)(&e))?;
    print_json(&entry)?;
    Ok(0)
}
