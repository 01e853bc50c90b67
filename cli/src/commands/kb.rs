//! `vazhi kb`: the knowledge base from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vazhi_core::data_dir::DataDir;
use vazhi_core::knowledge::KnowledgeError;

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
                    println!("{name} {installed} is already installed");
                    return Ok(ExitCode::SUCCESS);
                }
                other => other?,
            };
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                match &report.replaced {
                    Some(old) => println!(
                        "upgraded {} {} → {} ({} records)",
                        report.name, old, report.version, report.records
                    ),
                    None => println!(
                        "imported {} {} ({} records)",
                        report.name, report.version, report.records
                    ),
                }
            }
        }
        Command::Search { query, limit, pack } => {
            let hits = kb.search(&query, limit, pack.as_deref())?;
            if json {
                println!("{}", serde_json::to_string(&hits)?);
            } else if hits.is_empty() {
                println!("no matches");
            } else {
                for hit in hits {
                    println!(
                        "{:>7.2}  {}/{}  {}",
                        hit.score, hit.card.pack, hit.card.id, hit.card.title
                    );
                    println!("         {}", hit.snippet.replace('\n', " "));
                }
            }
        }
        Command::Lookup { pack, key } => match kb.lookup(&pack, &key)? {
            Some(card) if json => println!("{}", serde_json::to_string(&card)?),
            Some(card) => println!("{}", super::card_text(&card)),
            None => {
                eprintln!("vazhi: no record with key {key:?} in pack {pack:?}");
                return Ok(ExitCode::from(1));
            }
        },
        Command::List => {
            let packs = kb.packs()?;
            if json {
                println!("{}", serde_json::to_string(&packs)?);
            } else {
                for p in packs {
                    println!(
                        "{} {} — {} ({} records; {})",
                        p.name, p.version, p.title, p.records, p.licence
                    );
                }
            }
        }
        Command::Remove { pack } => {
            kb.remove(&pack)?;
            println!("removed {pack}");
        }
        Command::Bench(_) | Command::Eval(_) => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}
