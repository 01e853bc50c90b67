//! Training support that lives on the Rust side of `model-tools train`: the Python that trains
//! ([`env`](mod@env): `doctor`, `setup-train`), and the data, which is checked
//! (`validate-data`) and turned into token sequences with their training masks here, before
//! any GPU time is spent, so the Python backend only trains on what it is given and the
//! masks are tested in CI against real chat templates.
//!
//! `prepare-data` writes one JSON object per line, `{"input_ids": [...], "labels": [...]}`,
//! with `labels` = -100 where a position is not trained.

pub mod chain;
pub mod checks;
pub mod dataset;
pub mod env;
pub mod preflight;
pub mod quantized;
pub mod run;

use std::io::{BufRead, Write};
use std::path::PathBuf;

use serde::Serialize;
use vazhi_core::engine::{Message, Role};

use crate::data::{self, Stage, ValidateOptions};
use crate::findings::Severity;
use crate::hf;
pub use dataset::{DatasetError, Formatter, Sequence, IGNORE};

/// What to prepare.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// The JSON-lines training file (DAPT `{"text"}` or SFT `{"messages"}` lines).
    pub data: PathBuf,
    /// Which stage it feeds.
    pub stage: Stage,
    /// The Hugging Face model directory whose tokenizer and chat template are used.
    pub model_dir: PathBuf,
    /// Where the sequences go.
    pub out: PathBuf,
    /// Longest sequence in tokens (SFT samples are cut; DAPT is packed to it).
    pub seq_len: usize,
    /// Language the data should be in (checked by `validate-data`).
    pub lang: Option<String>,
}

/// What was prepared.
#[derive(Debug, Clone, Serialize)]
pub struct PrepareReport {
    /// Input samples.
    pub samples: usize,
    /// Sequences written.
    pub sequences: usize,
    /// Tokens in all sequences.
    pub tokens: usize,
    /// Tokens with a label.
    pub trained_tokens: usize,
    /// SFT samples cut at `seq_len`.
    pub truncated: usize,
    /// SFT samples dropped because nothing trainable was left within `seq_len`.
    pub dropped: usize,
    /// The output file.
    pub out: PathBuf,
}

impl PrepareReport {
    /// Share of tokens that are trained.
    pub fn trained_share(&self) -> f64 {
        self.trained_tokens as f64 / self.tokens.max(1) as f64
    }
}

impl std::fmt::Display for PrepareReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "prepared {} samples → {} sequences in {}",
            self.samples,
            self.sequences,
            self.out.display()
        )?;
        writeln!(
            f,
            "  tokens    {} of which {} trained ({:.1} %)",
            self.tokens,
            self.trained_tokens,
            100.0 * self.trained_share()
        )?;
        write!(
            f,
            "  cut       {} truncated at the sequence length, {} dropped (nothing trainable left)",
            self.truncated, self.dropped
        )
    }
}

/// Why preparation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    /// The data could not be checked.
    #[error(transparent)]
    Data(#[from] data::DataError),
    /// `validate-data` found errors: training on this file would waste the GPU time.
    #[error("validate-data failed on {path}: {summary} (run `model-tools validate-data` for the report)")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The errors found.
        summary: String,
    },
    /// Sequences could not be built.
    #[error("{path}:{line}: {source}")]
    Sample {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What failed.
        source: DatasetError,
    },
    /// The model directory's tokenizer or template is unusable.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A file could not be read or written.
    #[error(transparent)]
    Hf(#[from] hf::HfError),
}

#[derive(serde::Deserialize)]
struct Line {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    messages: Vec<LineMessage>,
}

#[derive(serde::Deserialize)]
struct LineMessage {
    role: String,
    content: String,
}

/// Checks the data, builds the sequences and writes them; see the module docs.
pub fn prepare_data(opts: &PrepareOptions) -> Result<PrepareReport, PrepareError> {
    let _span = tracing::info_span!("prepare_data").entered();
    let mut check = ValidateOptions::new(&opts.data, opts.stage);
    check.lang = opts.lang.clone();
    let report = data::validate_data(&check)?;
    if !report.passed() {
        let summary: Vec<String> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| format!("{} ({})", f.code, f.count))
            .collect();
        return Err(PrepareError::Invalid {
            path: opts.data.clone(),
            summary: summary.join(", "),
        });
    }
    let formatter = Formatter::open(&opts.model_dir)?;
    let io = |source| hf::HfError::Io {
        path: opts.data.clone(),
        source,
    };
    let reader = std::io::BufReader::new(std::fs::File::open(&opts.data).map_err(io)?);
    let mut sequences = Vec::new();
    let mut texts = Vec::new();
    let (mut samples, mut truncated, mut dropped) = (0, 0, 0);
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() {
            continue;
        }
        let sample_error = |source| PrepareError::Sample {
            path: opts.data.clone(),
            line: index + 1,
            source,
        };
        // validate-data has already refused malformed lines.
        let parsed: Line = serde_json::from_str(line)
            .map_err(|e| sample_error(DatasetError::Template(e.to_string())))?;
        samples += 1;
        match opts.stage {
            Stage::Dapt => texts.push(parsed.text.unwrap_or_default()),
            Stage::Sft => {
                let messages: Vec<Message> = parsed
                    .messages
                    .into_iter()
                    .map(|m| {
                        let role = match m.role.as_str() {
                            "system" => Role::System,
                            "assistant" => Role::Assistant,
                            _ => Role::User,
                        };
                        Message::new(role, m.content)
                    })
                    .collect();
                let mut sequence = formatter.sft_sequence(&messages).map_err(sample_error)?;
                if sequence.input_ids.len() > opts.seq_len {
                    truncated += 1;
                    sequence.input_ids.truncate(opts.seq_len);
                    sequence.labels.truncate(opts.seq_len);
                }
                if sequence.trained() == 0 {
                    dropped += 1;
                } else {
                    sequences.push(sequence);
                }
            }
        }
    }
    if opts.stage == Stage::Dapt {
        sequences = formatter.dapt_sequences(&texts, opts.seq_len)?;
    }
    hf::write_atomically(&opts.out, |w| {
        for sequence in &sequences {
            serde_json::to_writer(&mut *w, sequence).map_err(std::io::Error::from)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    Ok(PrepareReport {
        samples,
        sequences: sequences.len(),
        tokens: sequences.iter().map(|s| s.input_ids.len()).sum(),
        trained_tokens: sequences.iter().map(Sequence::trained).sum(),
        truncated,
        dropped,
        out: opts.out.clone(),
    })
}
