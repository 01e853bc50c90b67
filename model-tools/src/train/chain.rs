//! Stages in one run: DAPT on raw text, its adapter merged into the base **in full precision**
//! (F32, so the second stage does not start from a rounded model), then SFT on chat pairs over
//! the merged model. Each stage has its own directory under the output (`dapt/`, `sft/`) with
//! its sequences, log, checkpoint and adapter; the merged model is `dapt-merged/`. A rerun
//! with `--resume` skips what is finished and continues the stage that was interrupted.

use std::path::PathBuf;

use serde::Serialize;

use super::run::{train, TrainError, TrainEvent, TrainOptions, TrainReport};
use crate::data::Stage;
use crate::hf::Dtype;
use crate::hf::CONFIG_JSON;
use crate::merge::{self, MergeOptions};

/// Why a chained run stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// A stage failed.
    #[error("stage {stage}: {source}")]
    Stage {
        /// The stage.
        stage: &'static str,
        /// What failed.
        source: TrainError,
    },
    /// The full-precision merge between stages failed.
    #[error("merging the {stage} adapter: {source}")]
    Merge {
        /// The stage whose adapter was merged.
        stage: &'static str,
        /// What failed.
        source: merge::MergeError,
    },
}

/// What a chained run did.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    /// Each stage's report, in order (a stage finished by an earlier run is reported as
    /// `done` with zero steps).
    pub stages: Vec<(String, TrainReport)>,
    /// The base the last adapter was trained on (the input model, or `dapt-merged/`).
    pub base: PathBuf,
    /// The last stage's adapter, when every stage finished.
    pub adapter: Option<PathBuf>,
}

impl ChainReport {
    /// Whether every stage finished.
    pub fn done(&self) -> bool {
        self.adapter.is_some()
    }
}

impl std::fmt::Display for ChainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (stage, report) in &self.stages {
            writeln!(f, "[{stage}] {report}")?;
        }
        match &self.adapter {
            Some(adapter) => write!(
                f,
                "ship it: model-tools merge --base {} --adapter {} --out MERGED",
                self.base.display(),
                adapter.display()
            ),
            None => write!(f, "not finished: run again with --resume"),
        }
    }
}

/// Runs `stages` in order from `template` (its `model`, `out`, `stage` and `data` are set per
/// stage; everything else applies to every stage).
pub fn train_stages(
    template: &TrainOptions,
    stages: &[(Stage, PathBuf)],
    on_event: &dyn Fn(&TrainEvent),
) -> Result<ChainReport, ChainError> {
    let _span = tracing::info_span!("train_stages", stages = stages.len()).entered();
    let mut base = template.model.clone();
    let mut reports = Vec::new();
    for (index, (stage, data)) in stages.iter().enumerate() {
        let name = stage.name();
        let out = template.out.join(name);
        let adapter = out.join("adapter");
        on_event(&stage_event("stage", name, &base));
        let report = if template.resume && adapter.join("adapter_config.json").is_file() {
            on_event(&stage_event("stage_already_done", name, &adapter));
            TrainReport {
                outcome: "done".to_owned(),
                steps: 0,
                loss: None,
                adapter: Some(adapter.clone()),
                log: out.join("train-log.jsonl"),
                steady_tokens_per_s: None,
                peak_memory_bytes: None,
                last_checks: Vec::new(),
                gguf_checks: Vec::new(),
            }
        } else {
            let opts = TrainOptions {
                model: base.clone(),
                data: data.clone(),
                stage: *stage,
                out: out.clone(),
                resume: template.resume && super::run::has_checkpoint(&out),
                ..template.clone()
            };
            train(&opts, on_event).map_err(|source| ChainError::Stage {
                stage: name,
                source,
            })?
        };
        let finished = report.outcome == "done";
        reports.push((name.to_owned(), report));
        if !finished {
            return Ok(ChainReport {
                stages: reports,
                base,
                adapter: None,
            });
        }
        if index + 1 < stages.len() {
            let merged = template.out.join(format!("{name}-merged"));
            if !(template.resume && merged.join(CONFIG_JSON).is_file()) {
                on_event(&stage_event("merge", name, &merged));
                merge::merge(
                    &MergeOptions {
                        base: base.clone(),
                        adapters: vec![adapter.clone()],
                        out: merged.clone(),
                        overwrite: true,
                        out_dtype: Some(Dtype::F32),
                    },
                    &|_| {},
                )
                .map_err(|source| ChainError::Merge {
                    stage: name,
                    source,
                })?;
            }
            base = merged;
        }
    }
    let adapter = reports.last().and_then(|(_, r)| r.adapter.clone());
    Ok(ChainReport {
        stages: reports,
        base,
        adapter,
    })
}

fn stage_event(event: &str, stage: &str, path: &std::path::Path) -> TrainEvent {
    let mut fields = serde_json::Map::new();
    fields.insert("stage".to_owned(), stage.into());
    fields.insert("path".to_owned(), path.display().to_string().into());
    TrainEvent {
        event: event.to_owned(),
        step: None,
        loss: None,
        fields,
    }
}
