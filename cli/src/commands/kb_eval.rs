//! `vazhi kb eval`: a labelled question set through the router and the knowledge base, scored
//! (recall@1, recall@3, MRR, route accuracy; overall, per language, per phrasing tag).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vazhi_core::signing::TrustPolicy;

use anyhow::{Context, Result};
use serde_json::json;
use vazhi_core::assistant::{Assistant, AssistantConfig};
use vazhi_core::data_dir::DataDir;
use vazhi_core::eval::{accuracy_at, calibrate, evaluate, Figures, QuestionSet, Report};
use vazhi_core::knowledge::KnowledgeBase;
use vazhi_core::router::Router;

/// Arguments of `vazhi kb eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The question set: JSON lines (format: docs/formats.md, "Question sets").
    set: PathBuf,
    /// Evaluate against this pack directory, imported into a scratch database, instead of the
    /// data directory's knowledge base. Repeat for several packs.
    #[arg(long = "pack", value_name = "DIR")]
    packs: Vec<PathBuf>,
    /// Router rules: a TOML file, or a directory of them (default: the built-in rules, which
    /// `vazhi ask` uses).
    #[arg(long, value_name = "PATH")]
    rules: Option<PathBuf>,
    /// Cards a Search answer shows (default: as many as `vazhi ask` shows).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=100))]
    cards: Option<u16>,
    /// Also sweep the router's search threshold: the route accuracy each threshold would give
    /// on this set, and the threshold in the middle of the best plateau. Calibrate on a dev
    /// set, never on the set you report.
    #[arg(long)]
    calibrate: bool,
    /// Missed questions listed in text output (JSON lists them all).
    #[arg(long, value_name = "N", default_value_t = 40)]
    show_missed: usize,
}

/// Runs `vazhi kb eval`.
pub fn run(args: Args, json: bool, data_dir: Option<&DataDir>) -> Result<ExitCode> {
    let set = QuestionSet::read(&args.set)?;
    let router = match &args.rules {
        None => Router::builtin()?,
        Some(path) if path.is_dir() => Router::from_dir(path)?,
        Some(path) => Router::from_toml_str(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading router rules {}", path.display()))?,
        )?,
    };
    // The scratch database lives as long as the evaluation.
    let mut _scratch = None;
    let kb = if args.packs.is_empty() {
        let (_, kb) = super::open_knowledge(data_dir)?;
        anyhow::ensure!(
            !kb.packs()?.is_empty(),
            "no packs are installed in the data directory: import some with `vazhi kb import DIR` or pass --pack DIR"
        );
        kb
    } else {
        let dir = tempfile::tempdir().context("creating a scratch directory")?;
        let kb = KnowledgeBase::open(&dir.path().join("knowledge.db"))?;
        for pack in &args.packs {
            kb.import_dir(pack, &TrustPolicy::any())
                .with_context(|| format!("importing {}", pack.display()))?;
        }
        _scratch = Some(dir);
        kb
    };
    let mut config = AssistantConfig::default();
    if let Some(cards) = args.cards {
        config.search_cards = usize::from(cards);
    }
    let assistant = Assistant::new(kb, router, None, config);
    let report = evaluate(&assistant, &set)?;
    let threshold = assistant.router().search_threshold();
    let calibration = args.calibrate.then(|| calibrate(&report.outcomes));
    let mut out = crate::output::stdout();
    if json {
        let missed: Vec<_> = report.missed().collect();
        let mut value = json!({
            "set": args.set.display().to_string(),
            "questions": report.questions,
            "cards_per_answer": report.cards_per_answer,
            "overall": report.overall,
            "by_lang": report.by_lang,
            "by_tag": report.by_tag,
            "missed": missed,
        });
        if let Some(c) = &calibration {
            value["calibration"] = json!({
                "current_threshold": threshold,
                "threshold": c.threshold,
                "route_accuracy": c.route_accuracy,
                "curve": c.curve,
            });
        }
        writeln!(out, "{value}")?;
    } else {
        print_text(&mut out, &args.set, &report, args.show_missed)?;
        if let Some(c) = &calibration {
            writeln!(
                out,
                "calibration: route accuracy by search threshold (now {threshold:.2})"
            )?;
            writeln!(out, "{:>10}{:>8}{:>8}{:>8}", "threshold", "all", "en", "ta")?;
            for i in (0..=100).step_by(5) {
                let t = f64::from(i) / 100.0;
                let lang = |l: &str| accuracy_at(report.outcomes.iter().filter(|o| o.lang == l), t);
                writeln!(
                    out,
                    "{t:>10.2}{:>8.3}{:>8.3}{:>8.3}",
                    accuracy_at(&report.outcomes, t),
                    lang("en"),
                    lang("ta")
                )?;
            }
            writeln!(
                out,
                "best: threshold {:.2} (middle of the widest best plateau), route accuracy {:.3}",
                c.threshold, c.route_accuracy
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(out: &mut impl Write, set: &Path, report: &Report, show: usize) -> Result<()> {
    let all = &report.overall;
    writeln!(
        out,
        "{}: {} questions, {} labelled with records; answers show up to {} cards",
        super::one_line(&set.display().to_string()),
        all.questions,
        all.labelled,
        report.cards_per_answer
    )?;
    writeln!(
        out,
        "{:<14}{:>9}{:>9}{:>10}{:>10}{:>8}{:>8}",
        "", "questions", "labelled", "recall@1", "recall@3", "MRR", "route"
    )?;
    let row = |out: &mut dyn Write, name: &str, f: &Figures| -> std::io::Result<()> {
        let share = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
        writeln!(
            out,
            "{:<14}{:>9}{:>9}{:>10}{:>10}{:>8}{:>8.3}",
            super::one_line(name),
            f.questions,
            f.labelled,
            share(f.recall_at_1),
            share(f.recall_at_3),
            share(f.mrr),
            f.route_accuracy
        )
    };
    row(out, "all", all)?;
    for (lang, figures) in &report.by_lang {
        row(out, &format!("  {lang}"), figures)?;
    }
    if !report.by_tag.is_empty() {
        writeln!(out, "by phrasing")?;
        for (tag, figures) in &report.by_tag {
            row(out, &format!("  {tag}"), figures)?;
        }
    }
    let missed: Vec<_> = report.missed().collect();
    if missed.is_empty() {
        writeln!(out, "missed: none")?;
        return Ok(());
    }
    let listed = if show == 0 {
        " (--show-missed N lists them)".to_owned()
    } else if missed.len() > show {
        format!("; the first {show}:")
    } else {
        ":".to_owned()
    };
    writeln!(
        out,
        "missed {} of {} (wrong route, or no accepted record in the first 3 cards){listed}",
        missed.len(),
        all.questions,
    )?;
    for o in missed.iter().take(show) {
        writeln!(
            out,
            "  {} [{}] {}",
            super::one_line(&o.id),
            super::one_line(&o.lang),
            super::one_line(&o.question)
        )?;
        let routes: Vec<_> = o.expected_routes.iter().map(|r| r.as_str()).collect();
        let mark = if o.route_correct() { "ok" } else { "WRONG" };
        write!(
            out,
            "      route {} ({mark}, want {})",
            o.route,
            routes.join("|")
        )?;
        if o.labelled() {
            let wanted = match o.expected_ids.len() {
                0..=3 => o.expected_ids.join(" "),
                n => format!("{} … ({n} records)", o.expected_ids[..3].join(" ")),
            };
            let shown = if o.cards.is_empty() {
                "none".to_owned()
            } else {
                o.cards.join(" ")
            };
            let rank = o
                .rank
                .map_or(String::new(), |r| format!(", accepted at {r}"));
            write!(
                out,
                " · cards {}{rank} · want {}",
                super::one_line(&shown),
                super::one_line(&wanted)
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}
