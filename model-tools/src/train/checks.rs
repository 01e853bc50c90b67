//! In-training answer checks: prompts from `eval` sets, rendered here with the model's own
//! chat template into token ids the backend generates from every `--check-every` steps, and
//! the answers it sends back, decoded here and scored with `eval`'s scorer (script share,
//! loops, leaked template tokens, echoes, keywords) — so a run that starts writing the wrong
//! script or looping shows it while it trains.

use std::path::{Path, PathBuf};

use serde::Serialize;
use vazhi_core::engine::Message;

use super::dataset::{DatasetError, Formatter};
use crate::eval::{score_answer, AnswerScore, EvalSet, SetError};
use crate::hf;
use crate::script::Script;

/// Why the checks could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// An eval set could not be read.
    #[error(transparent)]
    Set(#[from] SetError),
    /// A prompt could not be rendered or tokenized.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The prompt file could not be written.
    #[error(transparent)]
    Hf(#[from] hf::HfError),
}

/// One prompt the backend answers during training.
#[derive(Debug, Clone, Serialize)]
pub struct CheckPrompt {
    /// `set/prompt-id`.
    pub id: String,
    /// The user message.
    pub prompt: String,
    /// The script the answer should be in.
    pub script: Option<Script>,
    /// Words the answer should contain.
    pub keywords: Vec<String>,
    /// Longest answer in tokens.
    pub max_new_tokens: u32,
}

/// The prompts, the tokenizer to read the answers, and the ids that end an answer.
#[derive(Debug)]
pub struct Checks {
    prompts: Vec<CheckPrompt>,
    formatter: Formatter,
    stops: Vec<u32>,
    /// The JSON file handed to the backend (`--checks`).
    pub file: PathBuf,
}

/// One scored answer.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The training step it was generated at.
    pub step: u64,
    /// The prompt's id.
    pub id: String,
    /// The decoded answer.
    pub answer: String,
    /// The answer hit its token cap instead of ending (its keywords may lie beyond it).
    pub truncated: bool,
    /// Its scores.
    pub score: AnswerScore,
}

impl CheckResult {
    /// Whether the answer shows a failure symptom (looping, leaked tokens, empty, echo, or
    /// under half its letters in the expected script).
    pub fn failed(&self) -> bool {
        let s = &self.score;
        s.looping
            || !s.leaked.is_empty()
            || s.empty
            || s.echo
            || s.script_share.is_some_and(|share| share < 0.5)
    }

    /// One line for a terminal: id, scores, the answer's start.
    pub fn summary(&self) -> String {
        let s = &self.score;
        let script = s.script_share.map_or_else(String::new, |share| {
            format!("script {:.0} %, ", 100.0 * share)
        });
        let mut flags = Vec::new();
        if s.looping {
            flags.push("LOOPING".to_owned());
        }
        if !s.leaked.is_empty() {
            flags.push(format!("LEAKED {}", s.leaked.join(" ")));
        }
        if s.empty {
            flags.push("EMPTY".to_owned());
        }
        if s.echo {
            flags.push("ECHO".to_owned());
        }
        if self.truncated {
            flags.push("cut at the token cap".to_owned());
        }
        let preview: String = self.answer.split_whitespace().collect::<Vec<_>>().join(" ");
        let preview: String = preview.chars().take(60).collect();
        format!(
            "check @{} {}: {script}loop {:.2}, keywords {}/{}{}{} — \"{preview}\"",
            self.step,
            self.id,
            s.loop_score,
            s.keywords_found,
            s.keywords_total,
            if flags.is_empty() { "" } else { ", " },
            flags.join(", "),
        )
    }
}

impl Checks {
    /// Takes the first `per_set` prompts of each set, renders them for the model in
    /// `model_dir` and writes the backend's prompt file to `file`. A prompt's own
    /// `max_tokens` overrides `max_new_tokens`.
    pub fn prepare(
        model_dir: &Path,
        sets: &[PathBuf],
        per_set: usize,
        max_new_tokens: u32,
        file: &Path,
    ) -> Result<Checks, CheckError> {
        let formatter = Formatter::open(model_dir)?;
        let stops = formatter.stop_ids()?;
        let mut prompts = Vec::new();
        let mut rendered = Vec::new();
        for path in sets {
            let set = EvalSet::load(path)?;
            for p in set.prompts.iter().take(per_set) {
                let mut messages = Vec::new();
                if let Some(system) = &p.system {
                    messages.push(Message::system(system.clone()));
                }
                messages.push(Message::user(p.prompt.clone()));
                let id = format!("{}/{}", set.name, p.id);
                let cap = p.max_tokens.unwrap_or(max_new_tokens);
                rendered.push(serde_json::json!({
                    "id": id,
                    "input_ids": formatter.prompt_ids(&messages)?,
                    "max_new_tokens": cap,
                }));
                prompts.push(CheckPrompt {
                    id,
                    prompt: p.prompt.clone(),
                    script: p.script,
                    keywords: p.keywords.clone(),
                    max_new_tokens: cap,
                });
            }
        }
        hf::write_json(
            file,
            &serde_json::json!({
                "prompts": rendered,
                "stop_ids": stops,
                "max_new_tokens": max_new_tokens,
            }),
        )?;
        Ok(Checks {
            prompts,
            formatter,
            stops,
            file: file.to_owned(),
        })
    }

    /// The prompts, in the order the backend answers them.
    pub fn prompts(&self) -> &[CheckPrompt] {
        &self.prompts
    }

    /// Decodes and scores one generated answer.
    pub fn score(&self, step: u64, id: &str, output_ids: &[u32]) -> Option<CheckResult> {
        let prompt = self.prompts.iter().find(|p| p.id == id)?;
        let answer = match self.formatter.decode_answer(output_ids, &self.stops) {
            Ok(text) => text,
            Err(e) => format!("(undecodable: {e})"),
        };
        let score = score_answer(&prompt.prompt, &answer, prompt.script, &prompt.keywords);
        let ended = output_ids
            .last()
            .is_some_and(|last| self.stops.contains(last));
        Some(CheckResult {
            step,
            id: id.to_owned(),
            answer,
            truncated: !ended && output_ids.len() >= prompt.max_new_tokens as usize,
            score,
        })
    }
}
