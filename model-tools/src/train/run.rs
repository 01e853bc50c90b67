//! `model-tools train`: prepares the data (checked first), launches the Python backend
//! (`backend/vazhi_train/train.py`, compiled into this binary and unpacked into the cache),
//! and supervises it: every JSON event it prints is shown, saved to `train-log.jsonl` and
//! turned into the outcome — done (the adapter's path), diverged, interrupted (checkpoint kept,
//! `--resume` continues) or failed (with the backend's last words).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::checks::{CheckError, CheckResult, Checks};
use super::quantized::{quantized_check, QuantizedCheck, QuantizedCheckOptions};
use super::{prepare_data, PrepareError, PrepareOptions};
use crate::data::Stage;
use crate::hf;

const BACKEND: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../backend/vazhi_train/__init__.py"),
    ),
    (
        "doctor.py",
        include_str!("../../backend/vazhi_train/doctor.py"),
    ),
    (
        "train.py",
        include_str!("../../backend/vazhi_train/train.py"),
    ),
];

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The Hugging Face base model directory.
    pub model: PathBuf,
    /// The training file (JSON lines as `validate-data` reads them).
    pub data: PathBuf,
    /// DAPT or SFT.
    pub stage: Stage,
    /// Output directory: sequences, log, checkpoint, adapter.
    pub out: PathBuf,
    /// The interpreter (see [`super::env::find_python`]).
    pub python: PathBuf,
    /// Sequence length in tokens.
    pub seq_len: usize,
    /// Language the data should be in.
    pub lang: Option<String>,
    /// Extra backend options, already as command-line words (`--max-steps`, `--lr`, …).
    pub backend_args: Vec<String>,
    /// Continue from the last checkpoint.
    pub resume: bool,
    /// GPUs to train on: more than one launches the backend under `torchrun` (DDP).
    pub gpus: usize,
    /// Answer checks during training.
    pub checks: Option<CheckOptions>,
    /// Quantized checks of checkpoints during training (`--gguf-check`).
    pub gguf_check: Option<GgufCheckOptions>,
}

/// Answer checks during training: see [`super::checks`].
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Eval sets whose prompts are answered.
    pub sets: Vec<PathBuf>,
    /// Prompts taken from each set.
    pub per_set: usize,
    /// Answer every N steps (and at the end).
    pub every: u64,
    /// Longest answer in tokens.
    pub max_new_tokens: u32,
}

/// Merge → convert → quantize → eval of checkpoints while training goes on: see
/// [`super::quantized`].
#[derive(Debug, Clone)]
pub struct GgufCheckOptions {
    /// Eval sets.
    pub sets: Vec<PathBuf>,
    /// Prompts and texts per set (`None`: all).
    pub limit: Option<usize>,
}

/// One event the backend printed (or the supervisor derived: `check`, `gguf_check`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainEvent {
    /// `start`, `step`, `sample`, `checkpoint`, `diverged`, `interrupted`, `done`, `error`;
    /// from the supervisor: `check` (a scored sample) and `gguf_check`.
    pub event: String,
    /// Step number, where given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    /// Loss, where given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Every other field, as printed.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl TrainEvent {
    fn derived(event: &str, step: u64, value: &impl Serialize) -> TrainEvent {
        let mut fields = match serde_json::to_value(value) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        fields.remove("step");
        TrainEvent {
            event: event.to_owned(),
            step: Some(step),
            loss: None,
            fields,
        }
    }

    /// A numeric field.
    pub fn number(&self, key: &str) -> Option<f64> {
        self.fields.get(key).and_then(serde_json::Value::as_f64)
    }
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// `done`, `diverged`, `interrupted`.
    pub outcome: String,
    /// Steps trained.
    pub steps: u64,
    /// The last smoothed loss.
    pub loss: Option<f64>,
    /// The adapter directory (when done).
    pub adapter: Option<PathBuf>,
    /// The event log.
    pub log: PathBuf,
    /// Training tokens per second after the first steps, all GPUs together.
    pub steady_tokens_per_s: Option<f64>,
    /// Peak GPU memory of the busiest GPU, in bytes.
    pub peak_memory_bytes: Option<u64>,
    /// The answer checks of the last round.
    pub last_checks: Vec<CheckResult>,
    /// Every quantized check: step, passed, headline.
    pub gguf_checks: Vec<GgufCheckSummary>,
}

/// The outcome of one quantized check of a checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct GgufCheckSummary {
    /// The checkpoint's step.
    pub step: u64,
    /// Whether the quantized model passed the gate (`false` also when the check could not run).
    pub passed: bool,
    /// KL / top-1 / perplexity ratio, or the error.
    pub headline: String,
    /// The failed checks.
    pub failures: Vec<String>,
    /// The quantized file's size.
    pub quantized_bytes: u64,
    /// Seconds the check took.
    pub seconds: f64,
}

impl TrainReport {
    /// Whether every quantized check passed.
    pub fn gguf_checks_passed(&self) -> bool {
        self.gguf_checks.iter().all(|c| c.passed)
    }
}

impl std::fmt::Display for TrainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "train {} after {} steps", self.outcome, self.steps)?;
        if let Some(loss) = self.loss {
            write!(f, ", loss {loss:.4}")?;
        }
        if let Some(speed) = self.steady_tokens_per_s {
            write!(f, "\n  speed     {speed:.0} tokens/s")?;
        }
        if let Some(bytes) = self.peak_memory_bytes.filter(|&b| b > 0) {
            write!(f, ", peak GPU memory {:.2} GiB", bytes as f64 / GIB)?;
        }
        if !self.last_checks.is_empty() {
            let failed = self.last_checks.iter().filter(|c| c.failed()).count();
            write!(
                f,
                "\n  checks    {} answers at the last round, {failed} with a failure symptom",
                self.last_checks.len()
            )?;
        }
        for c in &self.gguf_checks {
            write!(
                f,
                "\n  gguf@{:<5} {} — {}{}",
                c.step,
                if c.passed { "passed" } else { "FAILED" },
                c.headline,
                if c.failures.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", c.failures.join("; "))
                }
            )?;
        }
        if let Some(adapter) = &self.adapter {
            write!(f, "\n  adapter   {}", adapter.display())?;
        }
        write!(f, "\n  log       {}", self.log.display())
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Why training could not run or finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The data failed its checks or could not be prepared.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// The check prompts could not be prepared.
    #[error(transparent)]
    Checks(#[from] CheckError),
    /// The backend could not be started.
    #[error("cannot start {python}: {source}")]
    Spawn {
        /// The interpreter.
        python: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The loss became NaN or spiked; the last good checkpoint is kept.
    #[error("training diverged at step {step} (loss {loss}); the last good checkpoint is in {checkpoint} — lower --lr and --resume, or start over")]
    Diverged {
        /// The step.
        step: u64,
        /// The loss seen.
        loss: String,
        /// The checkpoint directory.
        checkpoint: PathBuf,
    },
    /// The backend failed.
    #[error("the training backend failed ({status}): {stderr}")]
    Backend {
        /// Its exit status.
        status: String,
        /// The end of its stderr (or its `error` event).
        stderr: String,
    },
    /// A file could not be written.
    #[error(transparent)]
    Hf(#[from] hf::HfError),
}

/// Unpacks the backend into the cache (once per version) and returns the directory to put
/// on `PYTHONPATH`.
pub fn backend_dir() -> Result<PathBuf, hf::HfError> {
    let mut hash = Sha256::new();
    for (name, text) in BACKEND {
        hash.update(name.as_bytes());
        hash.update(text.as_bytes());
    }
    let id: String = hash
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let root = super::env::default_venv()
        .with_file_name("train-backend")
        .join(id);
    let package = root.join("vazhi_train");
    std::fs::create_dir_all(&package).map_err(|source| hf::HfError::Io {
        path: package.clone(),
        source,
    })?;
    for (name, text) in BACKEND {
        let path = package.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(*text) {
            hf::write_atomically(&path, |w| w.write_all(text.as_bytes()))?;
        }
    }
    Ok(root)
}

/// The command that runs the backend: plain Python, or `torchrun` for several GPUs. The
/// package is found through `PYTHONPATH` alone: the current directory is kept off `sys.path`
/// (see [`super::env::python_command`]), for `torchrun`'s workers too.
fn backend_command(opts: &TrainOptions, backend: &Path, sequences: &Path) -> Command {
    let mut command = super::env::python_command(&opts.python);
    command.arg("-u");
    if opts.gpus > 1 {
        command.args([
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nnodes=1",
            &format!("--nproc-per-node={}", opts.gpus),
        ]);
    }
    command
        .args(["-m", "vazhi_train.train", "--model"])
        .arg(&opts.model)
        .arg("--data")
        .arg(sequences)
        .arg("--out")
        .arg(&opts.out)
        .args(["--stage", opts.stage.name()])
        .args(&opts.backend_args)
        .env("PYTHONPATH", backend)
        .env("PYTHONNOUSERSITE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if opts.resume {
        command.arg("--resume");
    }
    command
}

/// Prepares the data and runs the backend, calling `on_event` for every event (per-rank
/// events already aggregated into one per step).
pub fn train(
    opts: &TrainOptions,
    on_event: &dyn Fn(&TrainEvent),
) -> Result<TrainReport, TrainError> {
    let _span = tracing::info_span!("train", stage = opts.stage.name(), gpus = opts.gpus).entered();
    std::fs::create_dir_all(&opts.out).map_err(|source| hf::HfError::Io {
        path: opts.out.clone(),
        source,
    })?;
    let sequences = opts.out.join("sequences.jsonl");
    if !(opts.resume && sequences.exists()) {
        let prepared = prepare_data(&PrepareOptions {
            data: opts.data.clone(),
            stage: opts.stage,
            model_dir: opts.model.clone(),
            out: sequences.clone(),
            seq_len: opts.seq_len,
            lang: opts.lang.clone(),
        })?;
        // What will be trained, before any GPU time: SFT's share of trained tokens shows a
        // mask that trains nothing (or everything) at once.
        let mut event = TrainEvent::derived("prepared", 0, &prepared);
        event.step = None;
        event
            .fields
            .insert("trained_share".to_owned(), prepared.trained_share().into());
        on_event(&event);
    }
    let backend = backend_dir()?;
    let mut command = backend_command(opts, &backend, &sequences);
    if opts.gguf_check.is_some() {
        command.arg("--snapshots");
    }
    let checks = match &opts.checks {
        Some(c) if c.every > 0 && !c.sets.is_empty() => {
            let checks = Checks::prepare(
                &opts.model,
                &c.sets,
                c.per_set,
                c.max_new_tokens,
                &opts.out.join("checks.json"),
            )?;
            command
                .arg("--checks")
                .arg(&checks.file)
                .arg("--check-every")
                .arg(c.every.to_string());
            Some(checks)
        }
        _ => None,
    };
    // Ctrl-C reaches the backend (same process group), which checkpoints and reports
    // `interrupted`; this process keeps supervising until then instead of dying first.
    let ignore = IgnoreInterrupts::new();
    let mut child = command.spawn().map_err(|source| TrainError::Spawn {
        python: opts.python.clone(),
        source,
    })?;
    let mut stderr = child.stderr.take();
    let stderr_thread = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(err) = stderr.as_mut() {
            let _ = err.read_to_string(&mut text);
        }
        text
    });
    let log_path = opts.out.join("train-log.jsonl");
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|source| hf::HfError::Io {
            path: log_path.clone(),
            source,
        })?;
    let mut supervisor = Supervisor {
        opts,
        checks: checks.as_ref(),
        ranks: RankAggregator::new(opts.gpus.max(1)),
        gguf: GgufChecks::default(),
        last: None,
        steps: 0,
        last_checks: Vec::new(),
        done: None,
        error: None,
    };
    let mut record = |event: &TrainEvent| {
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(log, "{line}");
        }
        on_event(event);
    };
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(event) = serde_json::from_str::<TrainEvent>(&line) else {
                tracing::debug!(line = %line, "backend printed a non-event line");
                continue;
            };
            for event in supervisor.handle(event) {
                record(&event);
            }
            for event in supervisor.gguf.poll(false) {
                record(&event);
            }
        }
    }
    let status = child.wait().map_err(|source| TrainError::Spawn {
        python: opts.python.clone(),
        source,
    })?;
    // Ctrl-C works again: waiting for a quantized check can take minutes.
    drop(ignore);
    let finished = supervisor.last.as_ref().is_some_and(|e| e.event == "done");
    for event in supervisor.gguf.poll(finished) {
        record(&event);
    }
    // The last checkpoint is the model that ships: check it even if it came while the
    // previous check was running. An unfinished run does not wait for checks.
    if let Some((step, snapshot)) = supervisor.gguf.skipped.take() {
        match (&opts.gguf_check, finished) {
            (Some(gguf), true) => {
                if let Some(event) = supervisor.gguf.start(opts, gguf, step, Some(snapshot)) {
                    record(&event);
                }
                for event in supervisor.gguf.poll(true) {
                    record(&event);
                }
            }
            _ => {
                let _ = std::fs::remove_dir_all(snapshot);
            }
        }
    }
    let stderr_text = stderr_thread.join().unwrap_or_default();
    supervisor.finish(status, &stderr_text, log_path)
}

/// Turns the backend's events into the supervisor's: ranks aggregated, samples scored,
/// quantized checks started on checkpoints.
struct Supervisor<'a> {
    opts: &'a TrainOptions,
    checks: Option<&'a Checks>,
    ranks: RankAggregator,
    gguf: GgufChecks,
    last: Option<TrainEvent>,
    steps: u64,
    last_checks: Vec<CheckResult>,
    done: Option<TrainEvent>,
    error: Option<String>,
}

impl Supervisor<'_> {
    fn handle(&mut self, event: TrainEvent) -> Vec<TrainEvent> {
        let Some(event) = self.ranks.push(event) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match event.event.as_str() {
            "sample" => {
                let event_raw = event.clone();
                let step = event.step.unwrap_or(self.steps);
                let id = event.fields.get("id").and_then(|v| v.as_str());
                let ids: Vec<u32> = event
                    .fields
                    .get("output_ids")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default();
                if let Some(result) = self
                    .checks
                    .zip(id)
                    .and_then(|(checks, id)| checks.score(step, id, &ids))
                {
                    if self.last_checks.first().is_some_and(|c| c.step != step) {
                        self.last_checks.clear();
                    }
                    let mut event = TrainEvent::derived("check", step, &result);
                    event
                        .fields
                        .insert("summary".to_owned(), result.summary().into());
                    out.push(event);
                    self.last_checks.push(result);
                }
                // The raw sample stays in the log too: the ids can be scored again later.
                out.insert(0, event_raw);
                return out;
            }
            "checkpoint" => {
                if let (Some(gguf), Some(step)) = (&self.opts.gguf_check, event.step) {
                    let snapshot = event
                        .fields
                        .get("snapshot")
                        .and_then(|s| s.as_str())
                        .map(PathBuf::from);
                    if let Some(note) = self.gguf.start(self.opts, gguf, step, snapshot) {
                        out.push(note);
                    }
                }
            }
            "done" => self.done = Some(event.clone()),
            "error" => {
                self.error = event
                    .fields
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned);
            }
            _ => {}
        }
        self.steps = event.step.unwrap_or(self.steps);
        if event.event != "checkpoint" {
            self.last = Some(event.clone());
        }
        out.insert(0, event);
        out
    }

    fn finish(
        self,
        status: std::process::ExitStatus,
        stderr: &str,
        log: PathBuf,
    ) -> Result<TrainReport, TrainError> {
        let opts = self.opts;
        let done = self.done.as_ref();
        let report = |outcome: &str, adapter: Option<PathBuf>| TrainReport {
            outcome: outcome.to_owned(),
            steps: self.steps,
            loss: self.last.as_ref().and_then(|e| e.loss),
            adapter,
            log: log.clone(),
            steady_tokens_per_s: done.and_then(|d| d.number("steady_tokens_per_s")),
            peak_memory_bytes: done
                .and_then(|d| d.number("peak_memory_bytes"))
                .map(|b| b as u64),
            last_checks: self.last_checks.clone(),
            gguf_checks: self.gguf.results.clone(),
        };
        match self.last.as_ref().map(|e| e.event.as_str()) {
            // The adapter is written before `done` is printed: a signal during the backend's
            // teardown does not undo a finished run.
            Some("done") if status.success() || opts.out.join("adapter").is_dir() => {
                if !status.success() {
                    tracing::warn!(%status, "the backend exited abnormally after finishing");
                }
                Ok(report("done", Some(opts.out.join("adapter"))))
            }
            Some("interrupted") => Ok(report("interrupted", None)),
            Some("diverged") => Err(TrainError::Diverged {
                step: self.steps,
                loss: self.last.as_ref().map_or_else(
                    || "?".to_owned(),
                    |e| match (e.loss, e.fields.get("loss_text")) {
                        (Some(loss), _) => loss.to_string(),
                        (None, Some(text)) => text.as_str().unwrap_or("?").to_owned(),
                        (None, None) => "?".to_owned(),
                    },
                ),
                checkpoint: opts.out.join("checkpoint"),
            }),
            _ => Err(TrainError::Backend {
                status: status.to_string(),
                stderr: self.error.clone().unwrap_or_else(|| tail(stderr, 2000)),
            }),
        }
    }
}

/// Collects the per-rank `step` and `done` events of a multi-GPU run into one event per step:
/// tokens and tokens/s summed, memory and time the largest, the loss (already averaged over
/// ranks by the backend) taken once.
struct RankAggregator {
    world: usize,
    pending: std::collections::BTreeMap<(String, u64), Vec<TrainEvent>>,
}

impl RankAggregator {
    fn new(world: usize) -> RankAggregator {
        RankAggregator {
            world,
            pending: Default::default(),
        }
    }

    /// The event to act on now, if any: other events pass through; a rank's `step`/`done`
    /// waits for the other ranks'.
    fn push(&mut self, event: TrainEvent) -> Option<TrainEvent> {
        let world = event
            .number("world")
            .map_or(1, |w| w as usize)
            .max(self.world);
        if world <= 1 || !matches!(event.event.as_str(), "step" | "done") {
            return Some(event);
        }
        let key = (event.event.clone(), event.step.unwrap_or(0));
        let ranks = self.pending.entry(key.clone()).or_default();
        ranks.push(event);
        if ranks.len() < world {
            return None;
        }
        let mut ranks = self.pending.remove(&key)?;
        ranks.sort_by_key(|e| e.number("rank").map_or(0, |r| r as u64));
        let mut merged = ranks[0].clone();
        let sum = |k: &str| ranks.iter().filter_map(|e| e.number(k)).sum::<f64>();
        let max = |k: &str| {
            ranks
                .iter()
                .filter_map(|e| e.number(k))
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        };
        let fields = &mut merged.fields;
        let number = |key: &str, v: f64| {
            if matches!(
                key,
                "tokens" | "steady_tokens" | "memory_bytes" | "peak_memory_bytes"
            ) {
                serde_json::Value::from(v as u64)
            } else {
                serde_json::Value::from(v)
            }
        };
        for key in [
            "tokens",
            "tokens_per_s",
            "steady_tokens",
            "steady_tokens_per_s",
        ] {
            // A rank with nothing measured yet (`null`) leaves the field null, not 0.
            if ranks.iter().all(|e| e.number(key).is_some()) {
                fields.insert(key.to_owned(), number(key, sum(key)));
            }
        }
        for key in [
            "seconds",
            "memory_bytes",
            "steady_seconds",
            "peak_memory_bytes",
        ] {
            if let Some(v) = max(key) {
                fields.insert(key.to_owned(), number(key, v));
            }
        }
        fields.insert(
            "rank_tokens_per_s".to_owned(),
            ranks
                .iter()
                .map(|e| e.number("tokens_per_s").or(e.number("steady_tokens_per_s")))
                .collect::<Vec<_>>()
                .into(),
        );
        fields.remove("rank");
        fields.remove("local_loss");
        Some(merged)
    }
}

/// Quantized checks of checkpoints, one at a time on a worker thread.
#[derive(Default)]
struct GgufChecks {
    running: Option<(u64, std::thread::JoinHandle<Result<QuantizedCheck, String>>)>,
    /// A checkpoint that arrived while a check was running, with its snapshot (only the
    /// newest is kept).
    skipped: Option<(u64, PathBuf)>,
    results: Vec<GgufCheckSummary>,
}

impl GgufChecks {
    /// Starts a check of the checkpoint `snapshot` (the backend's own copy of the adapter
    /// under `snapshots/step-N`, which nothing replaces), unless one is still running;
    /// returns an event saying what happened.
    fn start(
        &mut self,
        opts: &TrainOptions,
        gguf: &GgufCheckOptions,
        step: u64,
        snapshot: Option<PathBuf>,
    ) -> Option<TrainEvent> {
        let Some(adapter) = snapshot.filter(|s| s.join("adapter_config.json").is_file()) else {
            self.results.push(GgufCheckSummary {
                step,
                passed: false,
                headline: "the backend wrote no snapshot of this checkpoint".to_owned(),
                failures: Vec::new(),
                quantized_bytes: 0,
                seconds: 0.0,
            });
            return None;
        };
        if let Some((running, _)) = &self.running {
            let reason = format!("the check of step {running} is still running");
            if let Some((_, older)) = self.skipped.replace((step, adapter)) {
                let _ = std::fs::remove_dir_all(older);
            }
            return Some(TrainEvent::derived(
                "gguf_check_skipped",
                step,
                &serde_json::json!({ "reason": reason }),
            ));
        }
        let mut check = QuantizedCheckOptions::new(
            opts.model.clone(),
            vec![adapter.clone()],
            opts.out.join("gguf-check").join(format!("step-{step}")),
            gguf.sets.clone(),
        );
        check.limit = gguf.limit;
        let handle = std::thread::spawn(move || {
            let result = quantized_check(&check).map_err(|e| e.to_string());
            let _ = std::fs::remove_dir_all(&adapter);
            if let Ok(done) = &result {
                // Keep the reports and the quantized file; the merged copy and F16 are bulk.
                let _ = std::fs::remove_dir_all(&done.merged);
                let _ = std::fs::remove_file(&done.f16);
            }
            result
        });
        self.running = Some((step, handle));
        Some(TrainEvent::derived(
            "gguf_check_started",
            step,
            &serde_json::json!({}),
        ))
    }

    /// Events for checks that have finished (`wait`: wait for the running one).
    fn poll(&mut self, wait: bool) -> Vec<TrainEvent> {
        let finished = self
            .running
            .as_ref()
            .is_some_and(|(_, h)| wait || h.is_finished());
        if !finished {
            return Vec::new();
        }
        let Some((step, handle)) = self.running.take() else {
            return Vec::new();
        };
        let summary = match handle.join() {
            Ok(Ok(check)) => GgufCheckSummary {
                step,
                passed: check.passed(),
                headline: check.headline(),
                failures: check.failures(),
                quantized_bytes: check.quantized_bytes,
                seconds: check.seconds,
            },
            Ok(Err(e)) => GgufCheckSummary {
                step,
                passed: false,
                headline: e,
                failures: Vec::new(),
                quantized_bytes: 0,
                seconds: 0.0,
            },
            Err(_) => GgufCheckSummary {
                step,
                passed: false,
                headline: "the check panicked".to_owned(),
                failures: Vec::new(),
                quantized_bytes: 0,
                seconds: 0.0,
            },
        };
        let event = TrainEvent::derived("gguf_check", step, &summary);
        self.results.push(summary);
        vec![event]
    }
}

/// Ignores SIGINT in this process while alive (the child re-installs its own handler).
struct IgnoreInterrupts {
    previous: libc::sighandler_t,
}

impl IgnoreInterrupts {
    fn new() -> IgnoreInterrupts {
        // SAFETY: `signal` with SIG_IGN installs no Rust code as a handler; the previous
        // disposition is restored on drop.
        let previous = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
        IgnoreInterrupts { previous }
    }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        // SAFETY: restores the disposition `new` found.
        unsafe {
            libc::signal(libc::SIGINT, self.previous);
        }
    }
}

fn tail(text: &str, max: usize) -> String {
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].trim().to_owned()
}

/// Whether `dir` holds a checkpoint `--resume` can continue from.
pub fn has_checkpoint(dir: &Path) -> bool {
    dir.join("checkpoint/trainer_state.pt").exists()
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn events_parse_with_their_extra_fields() {
        let e: TrainEvent = serde_json::from_str(
            r#"{"step": 3, "loss": 1.5, "lr": 0.0001, "grad_norm": 0.4, "event": "step"}"#,
        )
        .expect("event");
        assert_eq!(
            (e.event.as_str(), e.step, e.loss),
            ("step", Some(3), Some(1.5))
        );
        assert_eq!(e.fields["grad_norm"], 0.4);
        assert_eq!(tail("ab€cd", 3), "cd");
    }

    fn event(value: serde_json::Value) -> TrainEvent {
        serde_json::from_value(value).expect("event")
    }

    #[test]
    fn ranks_are_aggregated_into_one_event_per_step() {
        let mut ranks = RankAggregator::new(2);
        let step = |rank: u64, tokens: u64, speed: f64, memory: u64| {
            event(serde_json::json!({
                "event": "step", "step": 3, "rank": rank, "world": 2, "loss": 1.5,
                "local_loss": 1.4 + rank as f64, "tokens": tokens, "tokens_per_s": speed,
                "memory_bytes": memory, "seconds": 0.5 + rank as f64 / 10.0,
            }))
        };
        assert!(
            ranks.push(step(1, 100, 1000.0, 7)).is_none(),
            "waits for the other rank"
        );
        let sample = event(serde_json::json!({"event": "sample", "step": 3, "id": "x"}));
        assert_eq!(
            ranks.push(sample).map(|e| e.event),
            Some("sample".to_owned()),
            "other events pass through at once"
        );
        let merged = ranks.push(step(0, 120, 1100.0, 5)).expect("both ranks in");
        assert_eq!((merged.step, merged.loss), (Some(3), Some(1.5)));
        assert_eq!(merged.fields["tokens"], 220);
        assert_eq!(merged.number("tokens_per_s"), Some(2100.0));
        assert_eq!(merged.fields["memory_bytes"], 7, "the busiest GPU");
        assert_eq!(merged.number("seconds"), Some(0.6), "the slowest rank");
        assert_eq!(
            merged.fields["rank_tokens_per_s"],
            serde_json::json!([1100.0, 1000.0])
        );
        assert!(!merged.fields.contains_key("rank") && !merged.fields.contains_key("local_loss"));
        assert!(ranks.pending.is_empty());

        let mut single = RankAggregator::new(1);
        let alone = event(serde_json::json!({"event": "step", "step": 1, "rank": 0, "world": 1}));
        assert!(
            single.push(alone).is_some(),
            "one process: nothing to wait for"
        );
    }

    fn options(python: &str, gpus: usize) -> TrainOptions {
        TrainOptions {
            model: PathBuf::from("/nonexistent/model"),
            data: PathBuf::from("/nonexistent/data.jsonl"),
            stage: Stage::Sft,
            out: PathBuf::from("/nonexistent/out"),
            python: PathBuf::from(python),
            seq_len: 64,
            lang: None,
            backend_args: Vec::new(),
            resume: false,
            gpus,
            checks: None,
            gguf_check: None,
        }
    }

    #[test]
    fn the_backend_runs_with_the_current_directory_off_sys_path() {
        let backend = Path::new("/cache/train-backend/x");
        for gpus in [1, 2] {
            let command = backend_command(&options("python3", gpus), backend, Path::new("s"));
            let env = |name: &str| {
                command
                    .get_envs()
                    .find(|(key, _)| *key == name)
                    .and_then(|(_, value)| value)
            };
            // Inherited by torchrun's workers, which a `-P` flag would not reach.
            assert_eq!(env("PYTHONSAFEPATH"), Some(OsStr::new("1")), "{command:?}");
            assert_eq!(env("PYTHONPATH"), Some(backend.as_os_str()), "{command:?}");
            assert_eq!(command.get_program(), "python3");
        }
    }

    #[test]
    fn modules_in_the_current_directory_do_not_shadow_the_backends() {
        let python = "python3";
        let version = Command::new(python)
            .args(["-c", "import sys; print(sys.version_info >= (3, 11))"])
            .output()
            .expect("python3 runs");
        if String::from_utf8_lossy(&version.stdout).trim() != "True" {
            eprintln!("skipping: this python3 is older than 3.11 and ignores PYTHONSAFEPATH");
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        super::super::env::shadowing_modules(
            dir.path(),
            &[
                "json.py",
                "torch.py",
                "vazhi_train/__init__.py",
                "vazhi_train/train.py",
            ],
        );
        let backend = backend_dir().expect("unpacked");
        let mut command = backend_command(&options(python, 1), &backend, Path::new("s.jsonl"));
        let output = command
            .current_dir(dir.path())
            .output()
            .expect("python3 runs");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        assert!(
            output.status.code() != Some(97) && !stderr.contains("SHADOWED"),
            "the current directory's modules ran: {stderr}"
        );
        // The real backend ran, found through PYTHONPATH, with the real json: it reports that it
        // cannot train here (no torch, or no model at /nonexistent) as an event.
        let error = stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<TrainEvent>(line).ok())
            .find(|e| e.event == "error");
        assert!(error.is_some(), "stdout: {stdout}\nstderr: {stderr}");
    }

    #[test]
    fn the_backend_is_unpacked_once_and_importable_as_a_package() {
        let dir = backend_dir().expect("unpacked");
        for (name, text) in BACKEND {
            assert_eq!(
                std::fs::read_to_string(dir.join("vazhi_train").join(name)).expect("file"),
                *text
            );
        }
        assert_eq!(
            backend_dir().expect("again"),
            dir,
            "same version, same place"
        );
    }
}
