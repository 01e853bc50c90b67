//! `vazhi kb`: the knowledge base from the command line.
//!
//! Pack text is untrusted: in text output every field goes through [`one_line`] (or
//! [`super::card_text`]), so a pack cannot send escape sequences to the terminal; JSON output
//! is escaped by serde.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vazhi_core::data_dir::DataDir;
use vazhi_core::knowledge::KnowledgeError;

use super::one_line;
use crate::output::{errln, outln};

/// Arguments of `vazhi kb`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Import (or upgrade) a knowledge pack directory (pack.toml + records.jsonl).
    Import {
        /// The pack directory.
        dir: PathBuf,
    },
    /// Full-text search across packs.
    Search {
        /// The query (any text; never interpreted as search syntax).
        query: String,
        /// Most results.
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Only this pack.
        #[arg(long)]
        pack: Option<String>,
    },
    /// Exact lookup of a key in a pack.
    Lookup {
        /// Pack name.
        pack: String,
        /// Key, e.g. "kural 1" or "குறள் ௧".
        key: String,
    },
    /// List installed packs.
    List,
    /// Remove a pack.
    Remove {
        /// Pack name.
        pack: String,
    },
    /// Measure retrieval and routing on a labelled question set: each question goes through
    /// the router and the knowledge base exactly as `vazhi ask --no-model` answers it. Prints
    /// recall@1, recall@3, MRR and route accuracy, overall, per language and per phrasing tag,
    /// and the questions missed.
    Eval(super::kb_eval::Args),
    /// Benchmark: import, lookup and search on a generated pack of mixed Tamil/English records
    /// in a scratch directory (the data directory is not touched), against the version-1
    /// knowledge base measured in the same run; and router decisions.
    Bench(super::kb_bench::Args),
}

/// Runs `vazhi kb`.
pub fn run(args: Args, data_dir: Option<&DataDir>) -> Result<ExitCode> {
    match args.command {
        Command::Bench(bench) => return super::kb_bench::run(bench),
        Command::Eval(eval) => return super::kb_eval::run(eval, args.json, data_dir),
        _ => {}
    }
    let (_, kb) = super::open_knowledge(data_dir)?;
    let json = args.json;
    match args.command {
        Command::Import { dir } => {
            let report = match kb.import_dir(&dir) {
                Err(KnowledgeError::NotAnUpgrade {
                    name,
                    installed,
                    offered,
                }) if installed == offered => {
                    outln!(
                        "{} {} is already installed",
                        one_line(&name),
                        one_line(&installed)
                    )?;
                    return Ok(ExitCode::SUCCESS);
                }
                other => other?,
            };
            if json {
                outln!("{}", serde_json::to_string(&report)?)?;
            } else {
                match &report.replaced {
                    Some(old) => outln!(
                        "upgraded {} {} → {} ({} records)",
                        one_line(&report.name),
                        one_line(old),
                        one_line(&report.version),
                        report.records
                    )?,
                    None => outln!(
                        "imported {} {} ({} records)",
                        one_line(&report.name),
                        one_line(&report.version),
                        report.records
                    )?,
                }
            }
        }
        Command::Search { query, limit, pack } => {
            let hits = kb.search(&query, limit, pack.as_deref())?;
            if json {
                outln!("{}", serde_json::to_string(&hits)?)?;
            } else if hits.is_empty() {
                outln!("no matches")?;
            } else {
                for hit in hits {
                    outln!(
                        "{:>7.2}  {}/{}  {}",
                        hit.score,
                        one_line(&hit.card.pack),
                        one_line(&hit.card.id),
                        one_line(&hit.card.title)
                    )?;
                    outln!("         {}", one_line(&hit.snippet))?;
                }
            }
        }
        Command::Lookup { pack, key } => match kb.lookup(&pack, &key)? {
            Some(card) if json => outln!("{}", serde_json::to_string(&card)?)?,
            Some(card) => outln!("{}", super::card_text(&card))?,
            None => {
                errln!("vazhi: no record with key {key:?} in pack {pack:?}");
                return Ok(ExitCode::from(1));
            }
        },
        Command::List => {
            let packs = kb.packs()?;
            if json {
                outln!("{}", serde_json::to_string(&packs)?)?;
            } else {
                for p in packs {
                    outln!(
                        "{} {} — {} ({} records; {})",
                        one_line(&p.name),
                        one_line(&p.version),
                        one_line(&p.title),
                        p.records,
                        one_line(&p.licence)
                    )?;
                }
            }
        }
        Command::Remove { pack } => {
            kb.remove(&pack)?;
            outln!("removed {}", one_line(&pack))?;
        }
        Command::Bench(_) | Command::Eval(_) => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}
