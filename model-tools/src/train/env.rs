//! The Python that trains: `doctor` (what a Python has — torch, CUDA, GPUs, bf16,
//! transformers, PEFT — and whether it can train) and `setup-train` (adopt a compatible
//! Python, or build a venv from the pinned requirements).
//!
//! GPU boxes are often offline and come with their own CUDA build of torch, so an existing
//! Python that passes `doctor` is adopted as it is; a venv is built only when none is given.
//! The probe (`backend/vazhi_train/doctor.py`) is compiled into the binary.
//!
//! Every Python started here or by [`super::run`] comes from [`python_command`], which keeps
//! the current directory off `sys.path` (a `torch.py` or `json.py` there would otherwise be
//! imported instead of the real module).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The probe script, run with `python -c`.
const DOCTOR_PY: &str = include_str!("../../backend/vazhi_train/doctor.py");
/// The pinned requirements a new venv gets.
pub const REQUIREMENTS: &str = include_str!("../../backend/requirements.txt");

/// A `major.minor` version.
type Version = (u32, u32);

/// `(package, oldest supported, first unsupported)` — ranges the backend is written for.
const COMPATIBLE: &[(&str, Version, Version)] = &[
    ("torch", (2, 4), (3, 0)),
    ("transformers", (4, 46), (6, 0)), // 4.46: `num_items_in_batch` in the models' losses
    ("peft", (0, 13), (0, 22)),
    ("safetensors", (0, 4), (1, 0)),
];

/// A GPU torch can see.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Gpu {
    /// Device name.
    pub name: String,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// CUDA compute capability, e.g. `9.0`.
    pub capability: String,
}

#[derive(Debug, Deserialize)]
struct Probe {
    python: String,
    executable: String,
    packages: BTreeMap<String, Option<String>>,
    errors: BTreeMap<String, String>,
    cuda: bool,
    cuda_version: Option<String>,
    gpus: Vec<Gpu>,
    bf16: bool,
    mps: bool,
}

/// What `doctor` found.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// Python version.
    pub python: String,
    /// The interpreter's path.
    pub executable: String,
    /// Versions of the packages the backend needs (`None`: not importable).
    pub packages: BTreeMap<String, Option<String>>,
    /// Whether torch sees CUDA.
    pub cuda: bool,
    /// The CUDA version torch was built for.
    pub cuda_version: Option<String>,
    /// GPUs.
    pub gpus: Vec<Gpu>,
    /// Whether the GPU supports bf16.
    pub bf16: bool,
    /// Apple's Metal backend.
    pub mps: bool,
    /// The precision training will use: `bf16` where supported, otherwise `fp32` (never fp16,
    /// whose overflow silently corrupts LoRA training).
    pub precision: &'static str,
    /// What is missing or incompatible.
    pub problems: Vec<String>,
    /// What works but is weaker than it should be (training still runs).
    pub warnings: Vec<String>,
}

impl DoctorReport {
    /// Whether this Python can run the backend.
    pub fn ready(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line: Python, torch, device and precision.
    pub fn summary(&self) -> String {
        let torch = self
            .packages
            .get("torch")
            .cloned()
            .flatten()
            .unwrap_or_else(|| "missing".to_owned());
        let device = match self.gpus.first() {
            Some(gpu) if self.gpus.len() > 1 => format!("{} × {}", self.gpus.len(), gpu.name),
            Some(gpu) => gpu.name.clone(),
            None if self.mps => "Apple MPS".to_owned(),
            None => "CPU".to_owned(),
        };
        format!(
            "python {}, torch {torch}, {device}, {}",
            self.python, self.precision
        )
    }
}

impl std::fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "python     {} ({})", self.python, self.executable)?;
        for (name, version) in &self.packages {
            writeln!(f, "{name:12} {}", version.as_deref().unwrap_or("missing"))?;
        }
        let device = if self.cuda {
            format!("CUDA {}", self.cuda_version.as_deref().unwrap_or("?"))
        } else if self.mps {
            "Apple MPS".to_owned()
        } else {
            "CPU only (slow: fine for preflight and tests)".to_owned()
        };
        writeln!(f, "device     {device}")?;
        for gpu in &self.gpus {
            writeln!(
                f,
                "gpu        {} ({:.1} GiB, compute {})",
                gpu.name,
                gpu.memory_bytes as f64 / (1u64 << 30) as f64,
                gpu.capability
            )?;
        }
        writeln!(f, "precision  {}", self.precision)?;
        for warning in &self.warnings {
            writeln!(f, "warning    {warning}")?;
        }
        if self.ready() {
            write!(f, "ready to train")
        } else {
            write!(f, "NOT ready:\n  - {}", self.problems.join("\n  - "))
        }
    }
}

/// Why the environment could not be examined or set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// The interpreter could not be run.
    #[error("cannot run {python}: {source}")]
    Spawn {
        /// The interpreter.
        python: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The probe failed or printed something unexpected.
    #[error("{python} could not run the environment probe: {detail}")]
    Probe {
        /// The interpreter.
        python: PathBuf,
        /// stderr or the parse error.
        detail: String,
    },
    /// The Python given to adopt cannot train.
    #[error("{python} cannot train: {}", problems.join("; "))]
    Incompatible {
        /// The interpreter.
        python: PathBuf,
        /// What is missing.
        problems: Vec<String>,
    },
    /// Creating the venv or installing into it failed.
    #[error("setting up {venv} failed: {detail}")]
    Install {
        /// The venv.
        venv: PathBuf,
        /// What failed.
        detail: String,
    },
    /// A file could not be written.
    #[error(transparent)]
    Hf(#[from] crate::hf::HfError),
}

/// Where the adopted interpreter's path is recorded.
pub fn adopted_record() -> PathBuf {
    cache_dir().join("train-python")
}

/// The venv `setup-train` builds by default.
pub fn default_venv() -> PathBuf {
    cache_dir().join("train-venv")
}

fn cache_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cache/vazhi")
}

/// The interpreter training uses: `explicit`, else `$VAZHI_TRAIN_PYTHON`, else the one
/// `setup-train` adopted, else its venv, else `python3` on the PATH.
pub fn find_python(explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_owned();
    }
    if let Some(path) = std::env::var_os("VAZHI_TRAIN_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    if let Ok(path) = std::fs::read_to_string(adopted_record()) {
        let path = PathBuf::from(path.trim());
        if path.exists() {
            return path;
        }
    }
    let venv_python = default_venv().join("bin/python");
    if venv_python.exists() {
        return venv_python;
    }
    PathBuf::from("python3")
}

/// A command that runs the Python `program` without the current directory (for `-c` and
/// `-m`) or a script's directory on `sys.path`.
///
/// That is `PYTHONSAFEPATH=1` rather than the `-P` flag: both mean the same on Python ≥ 3.11,
/// but Python 3.8–3.10 refuse `-P` ("Unknown option") while ignoring the variable, and those
/// still run the backend (torch ≥ 2.4 supports them; GPU images with Python 3.10 and their own
/// CUDA torch are common, see [`doctor`], which warns about them). The variable also reaches
/// the processes Python starts itself, which a flag does not: `torchrun`'s workers
/// (`python -u -m vazhi_train.train`) and pip's build steps.
pub fn python_command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env("PYTHONSAFEPATH", "1");
    command
}

/// The command that runs the probe.
fn probe_command(python: &Path) -> Command {
    let mut command = python_command(python);
    command.args(["-c", DOCTOR_PY]).env("PYTHONNOUSERSITE", "1");
    command
}

/// Runs the probe with `python` and judges the result.
pub fn doctor(python: &Path) -> Result<DoctorReport, EnvError> {
    run_probe(python, &mut probe_command(python))
}

fn run_probe(python: &Path, command: &mut Command) -> Result<DoctorReport, EnvError> {
    let _span = tracing::info_span!("doctor").entered();
    let output = command.output().map_err(|source| EnvError::Spawn {
        python: python.to_owned(),
        source,
    })?;
    let probe_error = |detail: String| EnvError::Probe {
        python: python.to_owned(),
        detail,
    };
    if !output.status.success() {
        return Err(probe_error(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_default();
    let probe: Probe =
        serde_json::from_str(line).map_err(|e| probe_error(format!("{e}: {stdout}")))?;
    Ok(judge(probe))
}

fn parse_version(text: &str) -> Option<Version> {
    let mut parts = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The first Python that honours `PYTHONSAFEPATH` (see [`python_command`]).
const SAFE_PATH_PYTHON: Version = (3, 11);

fn judge(probe: Probe) -> DoctorReport {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    if parse_version(&probe.python).is_some_and(|v| v < SAFE_PATH_PYTHON) {
        warnings.push(format!(
            "python {} ignores PYTHONSAFEPATH (3.11+): training puts the directory it is started \
             from first on sys.path, so start it from a directory no one else can write to, or \
             use Python ≥ 3.11",
            probe.python
        ));
    }
    for (name, oldest, too_new) in COMPATIBLE {
        match probe.packages.get(*name).cloned().flatten() {
            None => problems.push(format!(
                "{name} is not importable ({})",
                probe
                    .errors
                    .get(*name)
                    .map_or("not installed", String::as_str)
            )),
            Some(version) => match parse_version(&version) {
                Some(v) if v >= *oldest && v < *too_new => {}
                _ => problems.push(format!(
                    "{name} {version} is outside the supported range {}.{} ≤ v < {}.{}",
                    oldest.0, oldest.1, too_new.0, too_new.1
                )),
            },
        }
    }
    DoctorReport {
        precision: if probe.bf16 { "bf16" } else { "fp32" },
        python: probe.python,
        executable: probe.executable,
        packages: probe.packages,
        cuda: probe.cuda,
        cuda_version: probe.cuda_version,
        gpus: probe.gpus,
        bf16: probe.bf16,
        mps: probe.mps,
        problems,
        warnings,
    }
}

/// What `setup-train` did.
#[derive(Debug, Clone, Serialize)]
pub struct SetupReport {
    /// `adopted`, `existing` or `created`.
    pub action: &'static str,
    /// The environment it leaves in place.
    pub doctor: DoctorReport,
}

impl std::fmt::Display for SetupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "setup-train: {} {}", self.action, self.doctor.executable)?;
        write!(f, "{}", self.doctor)
    }
}

/// Adopts `python` when it can train (recording it for later runs); otherwise — when no
/// Python is given — builds `venv` from the pinned requirements with `base_python`.
pub fn setup_train(
    python: Option<&Path>,
    venv: &Path,
    base_python: &str,
) -> Result<SetupReport, EnvError> {
    let _span = tracing::info_span!("setup_train").entered();
    if let Some(python) = python {
        let report = doctor(python)?;
        if !report.ready() {
            return Err(EnvError::Incompatible {
                python: python.to_owned(),
                problems: report.problems,
            });
        }
        let record = adopted_record();
        if let Some(parent) = record.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        crate::hf::write_atomically(&record, |w| {
            std::io::Write::write_all(w, report.executable.as_bytes())
        })?;
        return Ok(SetupReport {
            action: "adopted",
            doctor: report,
        });
    }
    let venv_python = venv.join("bin/python");
    if venv_python.exists() {
        if let Ok(report) = doctor(&venv_python) {
            if report.ready() {
                return Ok(SetupReport {
                    action: "existing",
                    doctor: report,
                });
            }
        }
    }
    let install = |detail: String| EnvError::Install {
        venv: venv.to_owned(),
        detail,
    };
    let run = |cmd: &mut Command| -> Result<(), EnvError> {
        let status = cmd.status().map_err(|e| install(format!("{cmd:?}: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(install(format!("{cmd:?} exited with {status}")))
        }
    };
    run(python_command(base_python).args(["-m", "venv"]).arg(venv))?;
    let requirements = venv.join("vazhi-requirements.txt");
    std::fs::write(&requirements, REQUIREMENTS).map_err(|e| install(e.to_string()))?;
    run(python_command(&venv_python)
        .args(["-m", "pip", "install", "--upgrade", "pip"])
        .env("PYTHONNOUSERSITE", "1"))?;
    run(python_command(&venv_python)
        .args(["-m", "pip", "install", "-r"])
        .arg(&requirements)
        .env("PYTHONNOUSERSITE", "1"))?;
    let report = doctor(&venv_python)?;
    if !report.ready() {
        return Err(EnvError::Incompatible {
            python: venv_python,
            problems: report.problems,
        });
    }
    Ok(SetupReport {
        action: "created",
        doctor: report,
    })
}

/// Test support: writes `names` (paths under `dir`) as Python modules that, imported, say so
/// on stderr and stop Python with status 97.
#[cfg(test)]
pub(crate) fn shadowing_modules(dir: &Path, names: &[&str]) {
    let marker =
        "import sys\nsys.stderr.write('SHADOWED BY THE CURRENT DIRECTORY\\n')\nsys.exit(97)\n";
    for name in names {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(path, marker).expect("module");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_ranges() {
        assert_eq!(parse_version("2.11.0+cu130"), Some((2, 11)));
        assert_eq!(parse_version("5.17.0.dev0"), Some((5, 17)));
        assert_eq!(parse_version("unknown"), None);
        let probe = |torch: Option<&str>, peft: Option<&str>| Probe {
            python: "3.11".into(),
            executable: "/x/python".into(),
            packages: BTreeMap::from([
                ("torch".to_owned(), torch.map(str::to_owned)),
                ("transformers".to_owned(), Some("5.17.0".to_owned())),
                ("peft".to_owned(), peft.map(str::to_owned)),
                ("safetensors".to_owned(), Some("0.7.0".to_owned())),
            ]),
            errors: BTreeMap::new(),
            cuda: true,
            cuda_version: Some("13.0".into()),
            gpus: Vec::new(),
            bf16: true,
            mps: false,
        };
        let ok = judge(probe(Some("2.11.0"), Some("0.21.2")));
        assert!(ok.ready(), "{ok}");
        assert_eq!(ok.precision, "bf16");
        let old = judge(probe(Some("2.1.0"), None));
        assert_eq!(old.problems.len(), 2, "{old}");
        assert!(old.problems[0].contains("torch 2.1.0"), "{old}");
        assert!(ok.warnings.is_empty(), "{ok}");
        let mut python_3_10 = probe(Some("2.11.0"), Some("0.21.2"));
        python_3_10.python = "3.10.12".into();
        let python_3_10 = judge(python_3_10);
        assert!(
            python_3_10.ready(),
            "a warning, not a problem: {python_3_10}"
        );
        assert!(
            python_3_10.warnings[0].contains("PYTHONSAFEPATH"),
            "{python_3_10}"
        );
    }

    fn safe_path(command: &Command) -> Option<&OsStr> {
        command
            .get_envs()
            .find(|(key, _)| *key == "PYTHONSAFEPATH")
            .and_then(|(_, value)| value)
    }

    #[test]
    fn every_python_started_here_keeps_the_current_directory_off_sys_path() {
        let probe = probe_command(Path::new("python3"));
        assert_eq!(safe_path(&probe), Some(OsStr::new("1")));
        assert_eq!(probe.get_args().next(), Some(OsStr::new("-c")));
        // The venv and pip commands of `setup_train` are built by the same function.
        assert_eq!(safe_path(&python_command("python3")), Some(OsStr::new("1")));
    }

    #[test]
    fn modules_in_the_current_directory_do_not_shadow_the_probes() {
        let dir = tempfile::tempdir().expect("temp dir");
        shadowing_modules(
            dir.path(),
            &["json.py", "platform.py", "torch.py", "peft.py"],
        );
        let python = Path::new("python3");
        let mut command = probe_command(python);
        command.current_dir(dir.path());
        let report = match run_probe(python, &mut command) {
            Ok(report) => report,
            Err(e) => panic!("the probe ran the current directory's modules: {e}"),
        };
        // Imported, the planted torch.py would have stopped the probe (SystemExit is no
        // Exception, which the probe catches): what it reports is the real environment.
        assert!(
            !report.problems.iter().any(|p| p.contains("SystemExit")),
            "{report}"
        );
    }

    #[test]
    fn a_python_without_torch_is_not_ready_and_cannot_be_adopted() {
        // The system python3 of the CI machine has no torch (the setup script never installs it).
        let report = match doctor(Path::new("python3")) {
            Ok(report) => report,
            Err(e) => panic!("python3 runs the probe: {e}"),
        };
        if report.packages.get("torch").cloned().flatten().is_some() {
            eprintln!("skipping: this python3 has torch");
            return;
        }
        assert!(!report.ready());
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.starts_with("torch is not importable")),
            "{report}"
        );
        assert_eq!(report.precision, "fp32");
        let err = setup_train(
            Some(Path::new("python3")),
            Path::new("/nonexistent"),
            "python3",
        )
        .expect_err("not adoptable");
        assert!(matches!(err, EnvError::Incompatible { .. }), "{err}");
        assert!(matches!(
            doctor(Path::new("/no/such/python")),
            Err(EnvError::Spawn { .. })
        ));
    }
}
