//! `eval`: runs eval sets through `vazhi-core`'s engine, scores the answers, measures
//! perplexity and — against a reference model — KL divergence and top-1 agreement, and gates
//! the model on thresholds.
//!
//! The answers are generated greedily (deterministic), through the same engine, chat template
//! and stop handling the SDK ships, so the gate sees what an app's user would see. The
//! candidate and the reference each run on their own engine; held-out texts are tokenized by
//! the reference and the same token ids are fed to both, so their distributions are compared
//! position by position.

mod compare;
mod gate;
mod report;
pub mod score;
mod set;

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use vazhi_core::engine::{
    Engine, EngineConfig, EngineError, GenerateParams, Message, Sampling, ValidationPolicy,
};

pub use compare::{compare, CompareError, Divergence};
pub use gate::{Check, CheckKind, GateThresholds};
pub use score::{score_answer, AnswerScore};
pub use set::{EvalPrompt, EvalSet, HeldOutText, SetError, SetThresholds};

/// What to evaluate and how strictly.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The model under test (usually the quantized one).
    pub model: PathBuf,
    /// The model it must stay close to (usually the F32/F16 it was quantized from).
    pub reference: Option<PathBuf>,
    /// Eval set files.
    pub sets: Vec<PathBuf>,
    /// Relative thresholds.
    pub thresholds: GateThresholds,
    /// Default answer length cap in tokens (a prompt's own `max_tokens` wins).
    pub max_tokens: u32,
    /// Evaluate only the first N prompts and texts of each set (quick runs).
    pub limit: Option<usize>,
    /// llama.cpp threads (`None`: physical cores).
    pub threads: Option<usize>,
    /// Context size for both models.
    pub n_ctx: u32,
}

impl EvalOptions {
    /// Options with the default thresholds and limits.
    pub fn new(model: PathBuf, sets: Vec<PathBuf>) -> EvalOptions {
        EvalOptions {
            model,
            reference: None,
            sets,
            thresholds: GateThresholds::default(),
            max_tokens: 96,
            limit: None,
            threads: None,
            n_ctx: 2048,
        }
    }
}

/// Why an evaluation could not run (a model that fails the gate is not an error: see
/// [`EvalReport::passed`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// An eval set is unreadable.
    #[error(transparent)]
    Set(#[from] SetError),
    /// A model could not be loaded or run.
    #[error("{model}: {source}")]
    Engine {
        /// Which model.
        model: PathBuf,
        /// What failed.
        source: EngineError,
    },
    /// The two models cannot be compared.
    #[error(transparent)]
    Compare(#[from] CompareError),
    /// No eval set was given.
    #[error("no eval set given (--set FILE; sets ship in assets/eval/)")]
    NoSets,
}

/// One prompt's answers.
#[derive(Debug, Clone, Serialize)]
pub struct PromptResult {
    /// Prompt id.
    pub id: String,
    /// The prompt.
    pub prompt: String,
    /// The candidate's answer.
    pub answer: String,
    /// Its scores.
    pub score: AnswerScore,
    /// The reference's answer, when a reference was given.
    pub reference_answer: Option<String>,
    /// Its scores.
    pub reference_score: Option<AnswerScore>,
}

/// Aggregates over one model's answers to one set.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AnswerSummary {
    /// Prompts answered.
    pub answers: usize,
    /// Mean script share over prompts that expect a script.
    pub mean_script_share: Option<f64>,
    /// Share of expected keywords found, over prompts that list keywords.
    pub keyword_share: Option<f64>,
    /// Share of answers that loop.
    pub loop_share: f64,
    /// Share of answers that are empty.
    pub empty_share: f64,
    /// Share of answers that leak template tokens.
    pub leak_share: f64,
    /// Share of answers that only repeat the prompt.
    pub echo_share: f64,
}

impl AnswerSummary {
    fn of<'a>(scores: impl Iterator<Item = &'a AnswerScore>) -> AnswerSummary {
        let scores: Vec<&AnswerScore> = scores.collect();
        let n = scores.len().max(1) as f64;
        // An echoed prompt is in the right script without answering anything: it counts as
        // zero script share.
        let shares: Vec<f64> = scores
            .iter()
            .filter_map(|s| s.script_share.map(|v| if s.echo { 0.0 } else { v }))
            .collect();
        let (found, total) = scores.iter().fold((0, 0), |(f, t), s| {
            (f + s.keywords_found, t + s.keywords_total)
        });
        AnswerSummary {
            answers: scores.len(),
            mean_script_share: (!shares.is_empty())
                .then(|| shares.iter().sum::<f64>() / shares.len() as f64),
            keyword_share: (total > 0).then(|| found as f64 / total as f64),
            loop_share: scores.iter().filter(|s| s.looping).count() as f64 / n,
            empty_share: scores.iter().filter(|s| s.empty).count() as f64 / n,
            leak_share: scores.iter().filter(|s| !s.leaked.is_empty()).count() as f64 / n,
            echo_share: scores.iter().filter(|s| s.echo).count() as f64 / n,
        }
    }
}

/// Everything measured on one set.
#[derive(Debug, Clone, Serialize)]
pub struct SetResult {
    /// Set name.
    pub name: String,
    /// Set file.
    pub path: PathBuf,
    /// Per-prompt results.
    pub prompts: Vec<PromptResult>,
    /// The candidate's answers, summarised.
    pub summary: AnswerSummary,
    /// The reference's answers, summarised.
    pub reference_summary: Option<AnswerSummary>,
    /// Distribution comparison on the held-out texts (with a reference).
    pub divergence: Option<Divergence>,
    /// The candidate's perplexity on the held-out texts.
    pub perplexity: Option<f64>,
    /// Tokens scored for perplexity.
    pub scored_tokens: usize,
}

/// The result of an evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The model under test.
    pub model: PathBuf,
    /// The reference, if any.
    pub reference: Option<PathBuf>,
    /// Thresholds used.
    pub thresholds: GateThresholds,
    /// Per-set results.
    pub sets: Vec<SetResult>,
    /// Divergence over every set's texts together.
    pub divergence: Option<Divergence>,
    /// Every check, relative ones first.
    pub checks: Vec<Check>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl EvalReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The checks that failed.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }
}

/// Progress of an evaluation, for a progress bar.
#[derive(Debug, Clone)]
pub enum EvalProgress {
    /// Starting a set: its name and number of steps (prompts + texts).
    Set(String, usize),
    /// One prompt or text done.
    Step,
}

/// Runs the evaluation; see the module docs.
pub fn evaluate(
    opts: &EvalOptions,
    progress: &dyn Fn(EvalProgress),
) -> Result<EvalReport, EvalError> {
    let _span = tracing::info_span!("eval").entered();
    let started = Instant::now();
    if opts.sets.is_empty() {
        return Err(EvalError::NoSets);
    }
    let sets = opts
        .sets
        .iter()
        .map(|p| EvalSet::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let candidate = load(&opts.model, opts)?;
    let reference = match &opts.reference {
        Some(path) => Some((path.clone(), load(path, opts)?)),
        None => None,
    };
    let mut results = Vec::new();
    let mut total: Option<Divergence> = None;
    for set in &sets {
        let result = evaluate_set(set, opts, &candidate, reference.as_ref(), progress)?;
        if let Some(d) = &result.divergence {
            total.get_or_insert_with(Divergence::default).add(d);
        }
        results.push(result);
    }
    candidate.unload();
    if let Some((_, engine)) = &reference {
        engine.unload();
    }
    let checks = gate_checks(&opts.thresholds, &sets, &results, total.as_ref());
    Ok(EvalReport {
        model: opts.model.clone(),
        reference: opts.reference.clone(),
        thresholds: opts.thresholds.clone(),
        sets: results,
        divergence: total,
        checks,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn load(path: &std::path::Path, opts: &EvalOptions) -> Result<Engine, EvalError> {
    let config = EngineConfig {
        threads: opts.threads,
        n_ctx: Some(opts.n_ctx),
        // Unquantized references are larger than anything the SDK would ship to a phone.
        policy: ValidationPolicy {
            max_file_bytes: u64::MAX,
            ..ValidationPolicy::default()
        },
        ..EngineConfig::default()
    };
    // Loads are serialised process-wide; wait for another one to finish rather than fail.
    loop {
        match Engine::load(path, config.clone()) {
            Err(EngineError::LoadInProgress) => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            result => {
                return result.map_err(|source| EvalError::Engine {
                    model: path.to_owned(),
                    source,
                })
            }
        }
    }
}

fn evaluate_set(
    set: &EvalSet,
    opts: &EvalOptions,
    candidate: &Engine,
    reference: Option<&(PathBuf, Engine)>,
    progress: &dyn Fn(EvalProgress),
) -> Result<SetResult, EvalError> {
    let _span = tracing::info_span!("eval_set", set = %set.name).entered();
    let limit = opts.limit.unwrap_or(usize::MAX);
    let prompts: Vec<&EvalPrompt> = set.prompts.iter().take(limit).collect();
    let texts: Vec<&HeldOutText> = set.texts.iter().take(limit).collect();
    progress(EvalProgress::Set(
        set.name.clone(),
        prompts.len() + texts.len(),
    ));

    let mut results = Vec::new();
    for prompt in prompts {
        let answer =
            greedy_answer(candidate, prompt, opts).map_err(|source| EvalError::Engine {
                model: opts.model.clone(),
                source,
            })?;
        let score = score_answer(&prompt.prompt, &answer, prompt.script, &prompt.keywords);
        let (reference_answer, reference_score) = match reference {
            Some((path, engine)) => {
                let text =
                    greedy_answer(engine, prompt, opts).map_err(|source| EvalError::Engine {
                        model: path.clone(),
                        source,
                    })?;
                let score = score_answer(&prompt.prompt, &text, prompt.script, &prompt.keywords);
                (Some(text), Some(score))
            }
            None => (None, None),
        };
        results.push(PromptResult {
            id: prompt.id.clone(),
            prompt: prompt.prompt.clone(),
            answer,
            score,
            reference_answer,
            reference_score,
        });
        progress(EvalProgress::Step);
    }

    let mut divergence: Option<Divergence> = None;
    let mut nll = 0.0;
    let mut scored_tokens = 0usize;
    for text in texts {
        let engine_error = |model: &PathBuf| {
            let model = model.clone();
            move |source| EvalError::Engine { model, source }
        };
        match reference {
            Some((path, engine)) => {
                let tokens = engine.tokenize(&text.text).map_err(engine_error(path))?;
                let reference_logits = engine.logits(tokens.clone()).map_err(engine_error(path))?;
                let candidate_logits = candidate
                    .logits(tokens)
                    .map_err(engine_error(&opts.model))?;
                let d = compare(&reference_logits, &candidate_logits)?;
                divergence.get_or_insert_with(Divergence::default).add(&d);
            }
            None => {
                let scores = candidate
                    .score(&text.text)
                    .map_err(engine_error(&opts.model))?;
                nll -= scores.sum_logprob;
                scored_tokens += scores.tokens.len();
            }
        }
        progress(EvalProgress::Step);
    }
    let perplexity = match &divergence {
        Some(d) => {
            scored_tokens = d.positions;
            (d.positions > 0).then(|| d.candidate_perplexity())
        }
        None => (scored_tokens > 0).then(|| (nll / scored_tokens as f64).exp()),
    };
    Ok(SetResult {
        name: set.name.clone(),
        path: set.path.clone(),
        summary: AnswerSummary::of(results.iter().map(|r| &r.score)),
        reference_summary: reference
            .map(|_| AnswerSummary::of(results.iter().filter_map(|r| r.reference_score.as_ref()))),
        prompts: results,
        divergence,
        perplexity,
        scored_tokens,
    })
}

/// One greedy answer to a prompt, through the engine's chat template.
fn greedy_answer(
    engine: &Engine,
    prompt: &EvalPrompt,
    opts: &EvalOptions,
) -> Result<String, EngineError> {
    let mut messages = Vec::new();
    if let Some(system) = &prompt.system {
        messages.push(Message::system(system.clone()));
    }
    messages.push(Message::user(prompt.prompt.clone()));
    let params = GenerateParams {
        max_tokens: prompt.max_tokens.unwrap_or(opts.max_tokens),
        sampling: Sampling::greedy(),
        reuse_kv_cache: false,
        ..GenerateParams::default()
    };
    Ok(engine.generate(messages, params)?.wait()?.text)
}

fn gate_checks(
    t: &GateThresholds,
    sets: &[EvalSet],
    results: &[SetResult],
    divergence: Option<&Divergence>,
) -> Vec<Check> {
    use CheckKind::{Absolute, Relative};
    let mut checks = Vec::new();
    if let Some(d) = divergence.filter(|d| d.positions > 0) {
        checks.push(Check::at_most(
            None,
            "mean_kl",
            Relative,
            d.mean_kl(),
            t.max_mean_kl,
        ));
        checks.push(Check::at_least(
            None,
            "top1_agreement",
            Relative,
            d.top1_agreement(),
            t.min_top1_agreement,
        ));
        checks.push(Check::at_most(
            None,
            "perplexity_ratio",
            Relative,
            d.perplexity_ratio(),
            t.max_perplexity_ratio,
        ));
    }
    for (set, result) in sets.iter().zip(results) {
        let name = Some(set.name.as_str());
        let s = &result.summary;
        if let Some(r) = &result.reference_summary {
            if let (Some(c), Some(rs)) = (s.mean_script_share, r.mean_script_share) {
                checks.push(Check::at_most(
                    name,
                    "script_share_drop",
                    Relative,
                    rs - c,
                    t.max_script_share_drop,
                ));
            }
            checks.push(Check::at_most(
                name,
                "extra_loop_share",
                Relative,
                s.loop_share - r.loop_share,
                t.max_extra_loop_share,
            ));
            let broken = s.leak_share + s.empty_share + s.echo_share
                - r.leak_share
                - r.empty_share
                - r.echo_share;
            checks.push(Check::at_most(
                name,
                "extra_broken_share",
                Relative,
                broken,
                t.max_extra_broken_share,
            ));
        }
        let a = &set.thresholds;
        if let (Some(limit), Some(v)) = (a.min_script_share, s.mean_script_share) {
            checks.push(Check::at_least(name, "script_share", Absolute, v, limit));
        }
        if let (Some(limit), Some(v)) = (a.min_keyword_share, s.keyword_share) {
            checks.push(Check::at_least(name, "keyword_share", Absolute, v, limit));
        }
        if let Some(limit) = a.max_loop_share {
            checks.push(Check::at_most(
                name,
                "loop_share",
                Absolute,
                s.loop_share,
                limit,
            ));
        }
        if let Some(limit) = a.max_empty_share {
            checks.push(Check::at_most(
                name,
                "empty_share",
                Absolute,
                s.empty_share,
                limit,
            ));
        }
        if let Some(limit) = a.max_echo_share {
            checks.push(Check::at_most(
                name,
                "echo_share",
                Absolute,
                s.echo_share,
                limit,
            ));
        }
        if let Some(limit) = a.max_leak_share {
            checks.push(Check::at_most(
                name,
                "leak_share",
                Absolute,
                s.leak_share,
                limit,
            ));
        }
        if let (Some(limit), Some(v)) = (a.max_perplexity, result.perplexity) {
            checks.push(Check::at_most(name, "perplexity", Absolute, v, limit));
        }
    }
    checks.sort_by_key(|c| c.kind == Absolute);
    checks
}
