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
}

/// One event the backend printed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainEvent {
    /// `start`, `step`, `checkpoint`, `diverged`, `interrupted`, `done`, `error`.
    pub event: String,
    /// Step number, where given.
    #[serde(default)]
    pub step: Option<u64>,
    /// Loss, where given.
    #[serde(default)]
    pub loss: Option<f64>,
    /// Every other field, as printed.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
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
}

impl std::fmt::Display for TrainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "train {} after {} steps", self.outcome, self.steps)?;
        if let Some(loss) = self.loss {
            write!(f, ", loss {loss:.4}")?;
        }
        if let Some(adapter) = &self.adapter {
            write!(f, "\n  adapter   {}", adapter.display())?;
        }
        write!(f, "\n  log       {}", self.log.display())
    }
}

/// Why training could not run or finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The data failed its checks or could not be prepared.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
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
        /// The end of its stderr.
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

/// Prepares the data and runs the backend, calling `on_event` for every event.
pub fn train(
    opts: &TrainOptions,
    on_event: &dyn Fn(&TrainEvent),
) -> Result<TrainReport, TrainError> {
    let _span = tracing::info_span!("train").entered();
    std::fs::create_dir_all(&opts.out).map_err(|source| hf::HfError::Io {
        path: opts.out.clone(),
        source,
    })?;
    let sequences = opts.out.join("sequences.jsonl");
    if !(opts.resume && sequences.exists()) {
        prepare_data(&PrepareOptions {
            data: opts.data.clone(),
            stage: opts.stage,
            model_dir: opts.model.clone(),
            out: sequences.clone(),
            seq_len: opts.seq_len,
            lang: opts.lang.clone(),
        })?;
    }
    let backend = backend_dir()?;
    let mut command = Command::new(&opts.python);
    command
        .args(["-u", "-m", "vazhi_train.train", "--model"])
        .arg(&opts.model)
        .arg("--data")
        .arg(&sequences)
        .arg("--out")
        .arg(&opts.out)
        .args([
            "--stage",
            if opts.stage == Stage::Dapt {
                "dapt"
            } else {
                "sft"
            },
        ])
        .args(&opts.backend_args)
        .env("PYTHONPATH", &backend)
        .env("PYTHONNOUSERSITE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if opts.resume {
        command.arg("--resume");
    }
    // Ctrl-C reaches the backend (same process group), which checkpoints and reports
    // `interrupted`; this process keeps supervising until then instead of dying first.
    let _ignore = IgnoreInterrupts::new();
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
    let mut last: Option<TrainEvent> = None;
    let mut steps = 0;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(event) = serde_json::from_str::<TrainEvent>(&line) else {
                tracing::debug!(line = %line, "backend printed a non-event line");
                continue;
            };
            let _ = writeln!(log, "{line}");
            steps = event.step.unwrap_or(steps);
            on_event(&event);
            last = Some(event);
        }
    }
    let status = child.wait().map_err(|source| TrainError::Spawn {
        python: opts.python.clone(),
        source,
    })?;
    let stderr_text = stderr_thread.join().unwrap_or_default();
    let report = |outcome: &str, adapter: Option<PathBuf>| TrainReport {
        outcome: outcome.to_owned(),
        steps,
        loss: last.as_ref().and_then(|e| e.loss),
        adapter,
        log: log_path.clone(),
    };
    match last.as_ref().map(|e| e.event.as_str()) {
        Some("done") if status.success() => Ok(report("done", Some(opts.out.join("adapter")))),
        Some("interrupted") => Ok(report("interrupted", None)),
        Some("diverged") => Err(TrainError::Diverged {
            step: steps,
            loss: last
                .as_ref()
                .and_then(|e| e.loss)
                .map_or_else(|| "?".to_owned(), |l| l.to_string()),
            checkpoint: opts.out.join("checkpoint"),
        }),
        _ => Err(TrainError::Backend {
            status: status.to_string(),
            stderr: tail(&stderr_text, 2000),
        }),
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
