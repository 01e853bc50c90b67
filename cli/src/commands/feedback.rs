//! `vazhi feedback`: the encrypted feedback store (`feedback.db` in the data directory, keys in
//! `keys/`) from the command line — add, import, list, export, purge, count, re-encrypt, check,
//! reset, and a benchmark in a scratch directory.
//!
//! Questions, answers and corrections are the user's own data: they are printed only by `list`
//! and `export`, which the user asks for, and never echoed in error messages.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;
use vazhi_core::civil_date::UtcDateTime;
use vazhi_core::data_dir::DataDir;
use vazhi_core::feedback::import::{self, ImportError};
use vazhi_core::feedback::{
    text_from_bindings, FeedbackConfig, FeedbackError, FeedbackStore, FileKeyProvider, NewFeedback,
    Range, Rating, Unreadable, UnreadableRecord, MAX_ANSWER_BYTES, MAX_CORRECTION_BYTES,
    MAX_QUESTION_BYTES,
};

use crate::exit;
use crate::output::{errln, outln};

/// Arguments of `vazhi feedback`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// Print JSON (one object per line) instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RatingArg {
    Up,
    Down,
}

impl From<RatingArg> for Rating {
    fn from(r: RatingArg) -> Self {
        match r {
            RatingArg::Up => Rating::Up,
            RatingArg::Down => Rating::Down,
        }
    }
}

/// Which records, by creation time.
#[derive(Debug, clap::Args)]
struct TimeRange {
    /// Only records created at or after this time (Unix milliseconds).
    #[arg(long, value_name = "MS")]
    since: Option<i64>,
    /// Only records created before this time (Unix milliseconds).
    #[arg(long, value_name = "MS")]
    until: Option<i64>,
}

/// Arguments of `vazhi feedback add`. A text given in argv (`--question`, `--answer`,
/// `--correction`) can be read by other users of the machine while the command runs (`ps`,
/// `/proc/PID/cmdline`); the `--*-file` forms keep it out of argv.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("question_text").required(true)))]
#[command(group(clap::ArgGroup::new("answer_text").required(true)))]
#[command(group(clap::ArgGroup::new("correction_text")))]
struct AddArgs {
    /// The question that was asked. Other users of this machine can read it in the process
    /// list while the command runs: prefer --question-file.
    #[arg(long, group = "question_text")]
    question: Option<String>,
    /// Read the question from a file (`-`: standard input), as it is (a final newline is kept).
    #[arg(long, value_name = "FILE", group = "question_text")]
    question_file: Option<PathBuf>,
    /// The answer that was shown. Other users of this machine can read it in the process list
    /// while the command runs: prefer --answer-file.
    #[arg(long, group = "answer_text")]
    answer: Option<String>,
    /// Read the answer from a file (`-`: standard input), as it is.
    #[arg(long, value_name = "FILE", group = "answer_text")]
    answer_file: Option<PathBuf>,
    /// The rating.
    #[arg(long, value_enum)]
    rating: RatingArg,
    /// How the question was answered (e.g. `model`, `exact:thirukkural`).
    #[arg(long, default_value = "model")]
    route: String,
    /// What the answer should have been. Other users of this machine can read it in the
    /// process list while the command runs: prefer --correction-file.
    #[arg(long, group = "correction_text")]
    correction: Option<String>,
    /// Read the correction from a file (`-`: standard input), as it is. At most one of the
    /// three files can be standard input.
    #[arg(long, value_name = "FILE", group = "correction_text")]
    correction_file: Option<PathBuf>,
    /// A knowledge card that was shown (repeatable).
    #[arg(long = "card", value_name = "ID")]
    cards: Vec<String>,
    /// Catalog id of the model that answered.
    #[arg(long, value_name = "ID")]
    model_id: Option<String>,
    /// SHA-256 of that model file.
    #[arg(long, value_name = "HEX")]
    model_sha256: Option<String>,
    /// An installed pack and its version (repeatable).
    #[arg(long = "pack", value_name = "NAME=VERSION", value_parser = parse_pack)]
    packs: Vec<(String, String)>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Record one rating; prints its record id. The question, answer and correction can come
    /// from files or standard input (`--question-file` etc.), which keeps them out of the
    /// process list.
    Add(Box<AddArgs>),
    /// Record the ratings in a JSON-lines file, in batches (each batch all or nothing). A line:
    /// {"question", "answer", "rating": "up"|"down", "route"?, "correction"?, "card_ids"?,
    /// "created_at_ms"?, "model_id"?, "model_sha256"?, "pack_versions"?}; the `record_id`,
    /// `key_id` and `format` of an export are ignored.
    Import {
        /// The JSON-lines file (`-`: standard input).
        file: PathBuf,
        /// Records per transaction.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        batch: u64,
    },
    /// Print records, oldest first (with --json: one record per line, as `export` writes them;
    /// records that cannot be read as {"unreadable": {...}}).
    List {
        #[command(flatten)]
        range: TimeRange,
        /// Most records.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Write the readable records, decrypted, as JSON lines to a new file (mode 0600).
    Export {
        /// The file to write (replaced if it exists).
        path: PathBuf,
        #[command(flatten)]
        range: TimeRange,
    },
    /// Delete records (their bytes are overwritten).
    #[command(group(clap::ArgGroup::new("which").required(true)))]
    Purge {
        /// Delete the records created before this time (Unix milliseconds).
        #[arg(long, value_name = "MS", group = "which")]
        before: Option<i64>,
        /// Delete every record.
        #[arg(long, group = "which")]
        all: bool,
    },
    /// Print how many records are stored (readable or not).
    Count,
    /// Re-encrypt records under older keys with the current key, then delete the old keys.
    Reencrypt,
    /// Check the database's integrity (SQLite `integrity_check`); prints `ok`.
    Check,
    /// Start a fresh, empty store, setting the old database aside (not deleting it). Only
    /// when the store cannot be opened (its key is gone, or it is damaged) unless --force.
    Reset {
        /// Set aside a store that is still readable.
        #[arg(long)]
        force: bool,
    },
    /// Benchmark: batched and single encrypted inserts, decrypting reads and the size on disk,
    /// on generated Tamil and English records in a scratch directory (the data directory is not
    /// touched).
    Bench {
        /// Records inserted.
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
        records: u64,
        /// Records per transaction.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        batch: u64,
    },
}

fn parse_pack(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => {
            Ok((name.to_owned(), version.to_owned()))
        }
        _ => Err("expected NAME=VERSION".to_owned()),
    }
}

/// Prints a usage error the way `main` prints errors and returns the bad-usage exit code.
fn usage(message: std::fmt::Arguments<'_>) -> ExitCode {
    errln!("vazhi: error: {message}");
    ExitCode::from(exit::BAD_USAGE)
}

/// A usage error in `add`'s input (exit 2); it never contains the user's text.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

/// Runs `vazhi feedback`.
pub fn run(args: Args, data_dir: Option<&DataDir>) -> Result<ExitCode> {
    let json = args.json;
    let command = match args.command {
        Command::Bench { records, batch } => return bench(records, batch),
        Command::Add(add) => {
            return add_one(*add, data_dir, json).or_else(|e| match e.downcast::<BadInput>() {
                Ok(bad) => Ok(usage(format_args!("{bad}"))),
                Err(e) => Err(e),
            })
        }
        command => command,
    };
    let (path, provider) = locate(data_dir)?;
    if let Command::Reset { force } = command {
        return reset(&path, provider, force, json);
    }
    let store = match open(&path, provider)? {
        Ok(store) => store,
        Err(code) => return Ok(code),
    };
    match command {
        Command::Import { file, batch } => return import(&store, &file, batch, json),
        Command::List { range, limit } => {
            let listing = store.list(&Range {
                from_ms: range.since,
                until_ms: range.until,
                limit,
            })?;
            list(&listing.records, &listing.unreadable, json)?;
        }
        Command::Export { path, range } => {
            let report = store.export(
                &path,
                &Range {
                    from_ms: range.since,
                    until_ms: range.until,
                    limit: None,
                },
            )?;
            if json {
                outln!(
                    "{}",
                    json!({"exported": report.exported, "unreadable": report.unreadable,
                           "path": path})
                )?;
            } else {
                outln!(
                    "exported {} records to {} ({} unreadable, skipped)",
                    report.exported,
                    path.display(),
                    report.unreadable
                )?;
            }
        }
        Command::Purge { before, all } => {
            let deleted = if all {
                store.purge_all()?
            } else {
                store.purge(before.unwrap_or(i64::MIN))?
            };
            if json {
                outln!("{}", json!({ "deleted": deleted }))?;
            } else {
                outln!("deleted {deleted} records")?;
            }
        }
        Command::Count => {
            let count = store.count()?;
            if json {
                outln!("{}", json!({ "count": count }))?;
            } else {
                outln!("{count}")?;
            }
        }
        Command::Reencrypt => {
            let done = store.reencrypt()?;
            let key = store.current_key_id()?;
            if json {
                outln!("{}", json!({"reencrypted": done, "key_id": key}))?;
            } else {
                outln!("re-encrypted {done} records with key {key}")?;
            }
        }
        Command::Check => {
            store.integrity_check()?;
            if json {
                outln!("{}", json!({"integrity": "ok"}))?;
            } else {
                outln!("ok")?;
            }
        }
        Command::Add(_) | Command::Reset { .. } | Command::Bench { .. } => {
            unreachable!("handled above")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The store's path and key provider in the data directory, which is created if need be.
fn locate(data_dir: Option<&DataDir>) -> Result<(PathBuf, Arc<FileKeyProvider>)> {
    let data_dir = data_dir.context("no data directory: pass --data-dir or set VAZHI_DATA_DIR")?;
    data_dir
        .create()
        .with_context(|| format!("creating {}", data_dir.root().display()))?;
    let provider = Arc::new(FileKeyProvider::new(data_dir.keys()));
    Ok((data_dir.feedback_db(), provider))
}

/// Opens the store; a lost key is reported here (exit 9, with how to start over).
fn open(path: &Path, provider: Arc<FileKeyProvider>) -> Result<Result<FeedbackStore, ExitCode>> {
    match FeedbackStore::open(path, provider, FeedbackConfig::default()) {
        Ok(store) => Ok(Ok(store)),
        Err(e @ FeedbackError::KeyUnavailable { .. }) => {
            errln!("vazhi: error: {e}");
            errln!(
                "vazhi: hint: `vazhi feedback reset` starts a fresh store, setting the unreadable \
                 one aside"
            );
            Ok(Err(ExitCode::from(exit::KEY_UNAVAILABLE)))
        }
        Err(e) => Err(e).with_context(|| format!("opening {}", path.display())),
    }
}

/// `vazhi feedback add`. The texts are read before the data directory is touched, so that a
/// bad input changes nothing.
fn add_one(args: AddArgs, data_dir: Option<&DataDir>, json: bool) -> Result<ExitCode> {
    let files = [
        &args.question_file,
        &args.answer_file,
        &args.correction_file,
    ];
    if files.into_iter().flatten().filter(|f| is_stdin(f)).count() > 1 {
        return Err(BadInput(
            "at most one of --question-file, --answer-file and --correction-file can be `-` \
             (standard input)"
                .into(),
        )
        .into());
    }
    let text = |field, arg: Option<String>, file: Option<PathBuf>, max| match file {
        Some(file) => read_text(field, &file, max).map(Some),
        None => Ok(arg),
    };
    // clap requires a question and an answer, from argv or a file.
    let question = text(
        "question",
        args.question,
        args.question_file,
        MAX_QUESTION_BYTES,
    )?
    .unwrap_or_default();
    let answer =
        text("answer", args.answer, args.answer_file, MAX_ANSWER_BYTES)?.unwrap_or_default();
    let correction = text(
        "correction",
        args.correction,
        args.correction_file,
        MAX_CORRECTION_BYTES,
    )?;
    let mut pack_versions = BTreeMap::new();
    for (name, version) in args.packs {
        if pack_versions.insert(name.clone(), version).is_some() {
            return Err(BadInput(format!("--pack {name} is given twice")).into());
        }
    }
    let item = NewFeedback {
        question,
        route: args.route,
        answer,
        card_ids: args.cards,
        rating: Some(args.rating.into()),
        correction,
        model_id: args.model_id,
        model_sha256: args.model_sha256,
        pack_versions,
        created_at_ms: None,
    };
    item.validate()?;
    let (path, provider) = locate(data_dir)?;
    let store = match open(&path, provider)? {
        Ok(store) => store,
        Err(code) => return Ok(code),
    };
    let id = store.record(&item)?;
    if json {
        outln!("{}", json!({ "record_id": id }))?;
    } else {
        outln!("{id}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn is_stdin(file: &Path) -> bool {
    file.as_os_str() == "-"
}

/// The text of `--FIELD-file`: the file's, or standard input's for `-`, as it is. No more than
/// `max` + 1 bytes are read, so an endless or huge input is refused without filling memory.
fn read_text(field: &'static str, file: &Path, max: usize) -> Result<String> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut bytes = Vec::new();
    if is_stdin(file) {
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
    } else {
        let opened = std::fs::File::open(file)
            .map_err(|e| BadInput(format!("--{field}-file {}: {e}", file.display())))?;
        opened
            .take(limit)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", file.display()))?;
    }
    if bytes.len() > max {
        return Err(BadInput(format!(
            "--{field}-file {}: the {field} is longer than {max} bytes, the most accepted",
            file.display()
        ))
        .into());
    }
    Ok(text_from_bindings(field, &bytes)?)
}

fn reset(path: &Path, provider: Arc<FileKeyProvider>, force: bool, json: bool) -> Result<ExitCode> {
    if path.exists() && !force {
        match FeedbackStore::open(path, provider.clone(), FeedbackConfig::default()) {
            Ok(store) => {
                let records = store.count()?;
                return Ok(usage(format_args!(
                    "the feedback store is readable ({records} records); reset would set it \
                     aside: pass --force to do so anyway"
                )));
            }
            Err(FeedbackError::KeyUnavailable { .. } | FeedbackError::Corrupt(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        }
    }
    let (_store, moved) = FeedbackStore::open_fresh(path, provider, FeedbackConfig::default())?;
    if json {
        outln!("{}", json!({"path": path, "set_aside": moved}))?;
    } else {
        match moved {
            Some(old) => outln!(
                "started a fresh feedback store at {}; the old database is at {}",
                path.display(),
                old.display()
            )?,
            None => outln!("started a fresh feedback store at {}", path.display())?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn import(store: &FeedbackStore, file: &Path, batch: u64, json: bool) -> Result<ExitCode> {
    let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
        ))
    };
    let batch = usize::try_from(batch).unwrap_or(usize::MAX);
    let mut records = import::records(reader);
    let mut imported = 0u64;
    let mut items = Vec::with_capacity(batch.min(100_000));
    loop {
        items.clear();
        let first = records.line() + 1;
        while items.len() < batch {
            match records.next() {
                None => break,
                Some(Ok(item)) => items.push(item),
                Some(Err(ImportError::Read { line, source })) => {
                    return Err(source)
                        .with_context(|| format!("reading {} line {line}", file.display()))
                }
                Some(Err(ImportError::Line { line, error })) => {
                    return Ok(usage(format_args!(
                        "{} line {line}: {error}; nothing from lines {first}–{line} was \
                         written ({imported} records before them were)",
                        file.display()
                    )))
                }
            }
        }
        if items.is_empty() {
            break;
        }
        let line_no = records.line();
        store.record_batch(&items).with_context(|| {
            format!(
                "{} lines {first}–{line_no} were not written ({imported} records before them \
                 were)",
                file.display()
            )
        })?;
        imported += items.len() as u64;
    }
    if json {
        outln!("{}", json!({ "imported": imported }))?;
    } else {
        outln!("imported {imported} records")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn list(
    records: &[vazhi_core::feedback::Feedback],
    unreadable: &[UnreadableRecord],
    json: bool,
) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(crate::output::stdout());
    if json {
        for f in records {
            writeln!(out, "{}", serde_json::to_string(f)?)?;
        }
        for u in unreadable {
            writeln!(out, "{}", json!({ "unreadable": u }))?;
        }
        out.flush()?;
        return Ok(());
    }
    for f in records {
        let rating = match f.rating {
            Rating::Up => "up  ",
            Rating::Down => "down",
        };
        writeln!(
            out,
            "{}  {rating}  {}  {}",
            UtcDateTime::from_unix_ms(f.created_at_ms),
            super::one_line(&f.route),
            super::one_line(&f.question)
        )?;
        if let Some(c) = &f.correction {
            writeln!(out, "{:22}correction: {}", "", super::one_line(c))?;
        }
    }
    out.flush()?;
    drop(out);
    if !unreadable.is_empty() {
        let reasons = [
            (Unreadable::KeyMissing, "key missing"),
            (Unreadable::Tampered, "failed authentication"),
            (Unreadable::Malformed, "malformed"),
        ];
        let why: Vec<String> = reasons
            .iter()
            .filter_map(|(reason, label)| {
                let n = unreadable.iter().filter(|u| u.reason == *reason).count();
                (n > 0).then(|| format!("{n} {label}"))
            })
            .collect();
        let mut keys: Vec<&str> = unreadable.iter().map(|u| u.key_id.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        errln!(
            "vazhi: {} records cannot be read ({}; keys {}); they are kept as they are",
            unreadable.len(),
            why.join(", "),
            keys.join(", ")
        );
    }
    Ok(())
}

/// Removes the bench's scratch directory however the bench ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Realistic generated ratings: Tamil, English and mixed questions of 40–160 bytes, answers of
/// 120–300 bytes, a correction on one in five, 0–3 card ids, a model and 1–2 packs.
struct Generator {
    rng: u64,
}

impl Generator {
    const TAMIL: &'static [&'static str] = &[
        "திருக்குறள்",
        "அறம்",
        "பொருள்",
        "இன்பம்",
        "வள்ளுவர்",
        "கல்வி",
        "மழை",
        "விவசாயம்",
        "மருத்துவம்",
        "காய்ச்சல்",
        "அரசு",
        "திட்டம்",
        "உதவி",
        "எண்",
        "பள்ளி",
        "மாணவர்",
        "நீர்",
        "பயிர்",
        "விலை",
        "சந்தை",
        "வங்கி",
        "கடன்",
        "மின்சாரம்",
        "பேருந்து",
        "நேரம்",
        "எப்படி",
        "என்ன",
        "ஏன்",
        "எங்கே",
        "விளக்கம்",
        "பொருள்",
        "சொல்",
        "தமிழ்",
        "நாடு",
        "குடும்பம்",
        "உணவு",
        "சுகாதாரம்",
        "பாதுகாப்பு",
        "மோசடி",
        "செய்தி",
    ];
    const ENGLISH: &'static [&'static str] = &[
        "what",
        "is",
        "the",
        "meaning",
        "of",
        "kural",
        "how",
        "do",
        "I",
        "apply",
        "for",
        "scheme",
        "helpline",
        "number",
        "fever",
        "crop",
        "price",
        "loan",
        "bank",
        "bus",
        "timing",
        "school",
        "scholarship",
        "explain",
        "in",
        "simple",
        "words",
        "this",
        "message",
        "a",
        "scam",
        "water",
        "rain",
        "forecast",
        "ration",
        "card",
        "hospital",
        "nearest",
        "please",
        "thanks",
    ];

    fn next(&mut self, n: usize) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % n as u64) as usize
    }

    /// Words until at least `min` bytes (and no more than about `max`).
    fn text(&mut self, min: usize, max: usize) -> String {
        let target = min + self.next(max - min + 1);
        let style = self.next(3);
        let mut out = String::new();
        while out.len() < target {
            let tamil = match style {
                0 => true,
                1 => false,
                _ => self.next(2) == 0,
            };
            let words = if tamil { Self::TAMIL } else { Self::ENGLISH };
            let word = words[self.next(words.len())];
            if out.len() + word.len() + 1 > max && out.len() >= min {
                break;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
        out
    }

    fn record(&mut self, i: u64, start_ms: i64) -> NewFeedback {
        const ROUTES: &[&str] = &["model", "exact:thirukkural", "search:helplines", "model"];
        let card_ids = (0..self.next(4))
            .map(|_| format!("thirukkural/kural-{}", 1 + self.next(1330)))
            .collect();
        let correction = (self.next(5) == 0).then(|| self.text(40, 160));
        let mut pack_versions = BTreeMap::from([("thirukkural".into(), "1.2.0".into())]);
        if self.next(2) == 0 {
            pack_versions.insert("helplines-tn".into(), "2025.3.1".into());
        }
        NewFeedback {
            question: self.text(40, 160),
            route: ROUTES[self.next(ROUTES.len())].into(),
            answer: self.text(120, 300),
            card_ids,
            rating: Some(if self.next(3) == 0 {
                Rating::Down
            } else {
                Rating::Up
            }),
            correction,
            model_id: Some("smollm2-135m-instruct-q8".into()),
            model_sha256: Some(
                "9fa8cf3c2ab6f2b4d0e1c1a0b5bde64f0f47b0c1a2d3e4f5a6b7c8d9e0f1a2b3".into(),
            ),
            pack_versions,
            created_at_ms: Some(start_ms + i64::try_from(i).unwrap_or(0) * 60_000),
        }
    }
}

/// Bytes of user text in a record: question, answer, correction and card ids.
fn plaintext_bytes(f: &NewFeedback) -> usize {
    f.question.len()
        + f.answer.len()
        + f.correction.as_ref().map_or(0, String::len)
        + f.card_ids.iter().map(String::len).sum::<usize>()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// `vazhi feedback bench`: figures for docs/benchmarks.md.
fn bench(records: u64, batch: u64) -> Result<ExitCode> {
    const SINGLE: usize = 200;
    let n = usize::try_from(records).context("--records is too large")?;
    let batch = usize::try_from(batch).unwrap_or(usize::MAX);
    let dir = std::env::temp_dir().join(format!("vazhi-feedback-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let scratch = Scratch(dir);
    let provider = Arc::new(FileKeyProvider::new(scratch.0.join("keys")));
    let mut generator = Generator {
        rng: 0x9E37_79B9_7F4A_7C15,
    };
    let start_ms = 1_735_689_600_000; // 2025-01-01
    let items: Vec<NewFeedback> = (0..records)
        .map(|i| generator.record(i, start_ms))
        .collect();
    let plain = items.iter().map(plaintext_bytes).sum::<usize>() as f64 / n as f64;

    let db = scratch.0.join("feedback.db");
    let store = FeedbackStore::open(&db, provider.clone(), FeedbackConfig::default())?;
    let started = Instant::now();
    for chunk in items.chunks(batch) {
        store.record_batch(chunk)?;
    }
    let inserted = started.elapsed();

    let started = Instant::now();
    let listing = store.list(&Range::default())?;
    let read = started.elapsed();
    anyhow::ensure!(
        listing.records.len() == n && listing.unreadable.is_empty(),
        "read back {} records ({} unreadable) of {n}",
        listing.records.len(),
        listing.unreadable.len()
    );
    drop(listing);
    drop(store); // the last connection closes: SQLite checkpoints the WAL into the database
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let on_disk = (file_len(&db) + file_len(&wal)) as f64 / n as f64;
    // None of the user text is in the file in the clear.
    let bytes = std::fs::read(&db).context("reading the bench database")?;
    let samples: Vec<&str> = items
        .iter()
        .step_by((n / 5).max(1))
        .map(|f| f.answer.as_str())
        .collect();
    let leaked = samples
        .iter()
        .filter(|s| bytes.windows(s.len()).any(|w| w == s.as_bytes()))
        .count();
    drop(bytes);

    let single = FeedbackStore::open(
        &scratch.0.join("single.db"),
        provider,
        FeedbackConfig::default(),
    )?;
    let mut times = Vec::with_capacity(SINGLE);
    let started = Instant::now();
    for item in items.iter().cycle().take(SINGLE) {
        let t = Instant::now();
        single.record(item)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let single_total = started.elapsed();
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];

    outln!("feedback store, {records} generated records (Tamil, English and mixed questions of 40–160 bytes, answers of 120–300, a correction on 1 in 5), AES-256-GCM, SQLite WAL with synchronous=FULL, scratch directory")?;
    outln!(
        "  insert      {:.0} records/s in batches of {batch} ({:.2} s; target ≥ 20 000/s)",
        records as f64 / inserted.as_secs_f64(),
        inserted.as_secs_f64()
    )?;
    outln!(
        "  single      {:.0} records/s with record(), one transaction (fsync) each: p50 {:.2} ms, p99 {:.2} ms over {SINGLE} records",
        SINGLE as f64 / single_total.as_secs_f64(),
        at(0.5),
        at(0.99)
    )?;
    outln!(
        "  read        {:.0} records/s decrypted by list ({:.2} s)",
        records as f64 / read.as_secs_f64(),
        read.as_secs_f64()
    )?;
    outln!(
        "  size        {on_disk:.0} bytes/record on disk (database + WAL after close) for {plain:.0} bytes/record of text (question, answer, correction, card ids): +{:.0} bytes, ×{:.2}",
        on_disk - plain,
        on_disk / plain
    )?;
    outln!(
        "  plaintext   {leaked} of {} sample answers found in the database file (expected 0)",
        samples.len()
    )?;
    anyhow::ensure!(
        leaked == 0,
        "user text found in the clear in the database file"
    );
    Ok(ExitCode::SUCCESS)
}
