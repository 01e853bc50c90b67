//! `vazhi model`: catalog models on this machine — list, download, verify, install, remove.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use vazhi_core::data_dir::DataDir;
use vazhi_core::download::{
    Catalog, DeviceInfo, DownloadConfig, DownloadControl, DownloadOutcome, Downloader, ModelStatus,
    Phase, Progress, VerifiedModel,
};

use crate::output::{self, errln, outln};

/// Arguments of `vazhi model`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// Print JSON (one object per line) instead of text; `download` prints progress events.
    #[arg(long, global = true)]
    json: bool,
    /// Model catalog file (default: the catalog built into vazhi, assets/models/catalog.json).
    #[arg(long, global = true, env = "VAZHI_CATALOG", value_name = "FILE")]
    catalog: Option<PathBuf>,
    /// Open no socket: downloads fail at once.
    #[arg(long, global = true, env = "VAZHI_OFFLINE", value_parser = clap::builder::FalseyValueParser::new())]
    offline: bool,
    /// Allow plain http to loopback hosts (tests and benchmarks only).
    #[arg(long, global = true, hide = true, env = "VAZHI_ALLOW_LOOPBACK_HTTP", value_parser = clap::builder::FalseyValueParser::new())]
    allow_loopback_http: bool,
    /// Seconds without data before a connection is retried.
    #[arg(long, global = true, default_value_t = 30.0, hide = true)]
    read_timeout: f64,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the catalog and what is installed.
    List,
    /// Download a catalog model (resumes a partial download; Ctrl-C pauses).
    Download {
        /// Catalog id.
        id: String,
        /// RAM of the target device in MiB (checked against the catalog's min_ram_mb).
        #[arg(long)]
        ram_mb: Option<u64>,
    },
    /// Re-hash an installed model against the catalog.
    Verify {
        /// Catalog id.
        id: String,
    },
    /// Install a file downloaded by other means (checked like a download).
    Install {
        /// Catalog id.
        id: String,
        /// The file.
        file: PathBuf,
    },
    /// Remove an installed model and any partial download of it.
    Remove {
        /// Catalog id.
        id: String,
    },
    /// Sign a catalog file: writes FILE.sig, the detached Ed25519 signature that `--catalog
    /// FILE` (and an app's `catalog_signature`) is checked with.
    SignCatalog {
        /// The catalog JSON.
        file: PathBuf,
        /// The secret key file (from `vazhi kb keygen`).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
    },
}

/// Runs `vazhi model`.
pub fn run(args: Args, data_dir: Option<&DataDir>) -> Result<ExitCode> {
    if let Command::SignCatalog { file, key } = &args.command {
        let key = vazhi_core::signing::read_signing_key(key)?;
        let json =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        // Only a catalog this build can use is worth signing.
        Catalog::from_json(&json).with_context(|| format!("catalog {}", file.display()))?;
        let sig =
            vazhi_core::signing::sign(&key, &vazhi_core::download::catalog_signed_text(&json));
        let mut path = file.as_os_str().to_owned();
        path.push(".sig");
        vazhi_core::fsutil::write_atomically(path.as_ref(), sig.to_json().as_bytes())
            .with_context(|| format!("writing {}", PathBuf::from(&path).display()))?;
        outln!(
            "signed {} with key {}",
            PathBuf::from(&path).display(),
            sig.key_hex()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let data_dir = data_dir
        .context("no data directory: pass --data-dir or set VAZHI_DATA_DIR")?
        .clone();
    let catalog = match &args.catalog {
        Some(path) => super::trust::load_catalog(path)?,
        None => Catalog::builtin()?,
    };
    let mut config = DownloadConfig::new(data_dir);
    config.offline = args.offline;
    config.allow_loopback_http = args.allow_loopback_http;
    config.read_idle_timeout = Duration::try_from_secs_f64(args.read_timeout)
        .ok()
        .filter(|d| !d.is_zero() && *d <= Duration::from_secs(86_400))
        .context("--read-timeout must be between 0 and 86400 seconds")?;
    if let Command::Download {
        ram_mb: Some(ram), ..
    } = &args.command
    {
        config.device = DeviceInfo {
            ram_mb: Some(*ram),
            free_storage_bytes: None,
        };
    }
    let downloader = Downloader::new(catalog, config);
    let json = args.json;
    match args.command {
        Command::List => list(&downloader, json)?,
        Command::Download { id, .. } => return download(&downloader, &id, json),
        Command::Verify { id } => {
            let model = downloader.verify(&id)?;
            print_model("verified", &model, json)?;
        }
        Command::Install { id, file } => {
            let model = downloader.install_downloaded(&id, &file)?;
            print_model("installed", &model, json)?;
        }
        Command::Remove { id } => {
            let removed = downloader.remove(&id)?;
            if json {
                outln!(
                    "{}",
                    json!({"event": "removed", "id": id, "removed": removed})
                )?;
            } else if removed {
                outln!("removed {id}")?;
            } else {
                outln!("{id} was not installed")?;
            }
        }
        Command::SignCatalog { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

fn list(downloader: &Downloader, json: bool) -> Result<()> {
    for entry in downloader.catalog().entries() {
        let status = downloader.status(&entry.id)?;
        let (state, bytes) = match &status {
            ModelStatus::Absent => ("absent", 0),
            ModelStatus::Partial { bytes } => ("partial", *bytes),
            ModelStatus::Installed(m) => ("installed", m.size()),
            ModelStatus::Unverified => ("unverified", 0),
        };
        if json {
            outln!(
                "{}",
                json!({"id": entry.id, "name": entry.name, "size": entry.size, "quant": entry.quant,
                       "arch": entry.arch, "min_ram_mb": entry.min_ram_mb, "licence": entry.licence,
                       "status": state, "bytes": bytes})
            )?;
        } else {
            let detail = match status {
                ModelStatus::Partial { bytes } => {
                    format!("partial {:.0}%", 100.0 * bytes as f64 / entry.size as f64)
                }
                _ => state.to_owned(),
            };
            outln!(
                "{:<28} {:>8.1} MiB  {:<7} {:<8} ≥{} MiB RAM  {:<12} {}",
                entry.id,
                entry.size as f64 / 1048576.0,
                entry.quant,
                entry.arch,
                entry.min_ram_mb,
                detail,
                entry.licence
            )?;
        }
    }
    Ok(())
}

fn print_model(event: &str, model: &VerifiedModel, json: bool) -> std::io::Result<()> {
    if json {
        outln!(
            "{}",
            json!({"event": event, "id": model.id(), "path": model.path(),
                   "sha256": model.sha256(), "size": model.size()})
        )
    } else {
        outln!(
            "{event} {} ({} bytes, sha256 {}) at {}",
            model.id(),
            model.size(),
            model.sha256(),
            model.path().display()
        )
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Connecting => "connecting",
        Phase::Downloading => "downloading",
        Phase::Retrying => "retrying",
        Phase::Verifying => "verifying",
        Phase::Installed => "installed",
    }
}

fn download(downloader: &Downloader, id: &str, json: bool) -> Result<ExitCode> {
    // One runtime thread: the HTTP connection task and the download loop then hand chunks to
    // each other without cross-thread wake-ups (the writer and hasher have their own threads).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let control = DownloadControl::new();
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let total = downloader.catalog().get(id).map_or(0, |e| e.size);
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:12} [{bar:32}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let on_progress = |p: &Progress| {
        if json {
            // Progress is advisory: a failed write (a closed pipe) must not stop the download;
            // the result line that follows reports it.
            let _ = outln!(
                "{}",
                json!({"event": "progress", "phase": phase_name(p.phase), "bytes": p.bytes,
                       "total": p.total, "bytes_per_sec": p.bytes_per_sec.round(),
                       "eta_s": p.eta.map(|e| e.as_secs_f64())})
            );
        } else if let Some(bar) = &bar {
            bar.set_message(phase_name(p.phase));
            bar.set_position(p.bytes);
        }
    };
    let outcome = runtime.block_on(async {
        let ctrl_c = {
            let control = control.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    control.pause();
                }
            })
        };
        let outcome = downloader.download(id, &control, on_progress).await;
        ctrl_c.abort();
        outcome
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match outcome? {
        DownloadOutcome::Installed(model) => {
            print_model("installed", &model, json)?;
            Ok(ExitCode::SUCCESS)
        }
        DownloadOutcome::Paused { bytes } => {
            if json {
                // The download's own exit code (130) says it paused, closed pipe or not.
                output::unless_closed(outln!(
                    "{}",
                    json!({"event": "paused", "id": id, "bytes": bytes})
                ))?;
            } else {
                errln!("paused at {bytes} bytes; run the same command to resume");
            }
            Ok(ExitCode::from(crate::exit::INTERRUPTED))
        }
        DownloadOutcome::Cancelled => {
            errln!("cancelled");
            Ok(ExitCode::from(crate::exit::INTERRUPTED))
        }
    }
}
