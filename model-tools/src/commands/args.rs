//! Argument types more than one subcommand parses: training stages, float and GGUF tensor
//! types, and counts that must be positive.

use clap::ValueEnum;
use model_tools::data;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StageArg {
    Dapt,
    Sft,
}

impl From<StageArg> for data::Stage {
    fn from(stage: StageArg) -> data::Stage {
        match stage {
            StageArg::Dapt => data::Stage::Dapt,
            StageArg::Sft => data::Stage::Sft,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FloatArg {
    F32,
    F16,
    Bf16,
}

impl FloatArg {
    pub fn dtype(self) -> model_tools::hf::Dtype {
        match self {
            FloatArg::F32 => model_tools::hf::Dtype::F32,
            FloatArg::F16 => model_tools::hf::Dtype::F16,
            FloatArg::Bf16 => model_tools::hf::Dtype::BF16,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutTypeArg {
    F32,
    F16,
    Bf16,
    #[value(name = "q8_0")]
    Q8_0,
}

/// Parses a count that must be at least 1.
pub fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// The output flags of the steps that write one file or folder.
#[derive(clap::Args, Debug)]
pub struct OutputArgs {
    /// Replace an existing output.
    #[arg(long)]
    pub overwrite: bool,
    /// Print JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}
