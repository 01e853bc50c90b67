//! `vazhi kb`: the knowledge base from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use vazhi_core::data_dir::DataDir;
use vazhi_core::knowledge::KnowledgeBase;

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
}

/// Runs `vazhi kb`.
pub fn run(args: Args, data_dir: Option<&DataDir>) -> Result<ExitCode> {
    let data_dir = data_dir.context("no data directory: pass --data-dir or set VAZHI_DATA_DIR")?;
    data_dir
        .create()
        .with_context(|| format!("creating {}", data_dir.root().display()))?;
    let kb = KnowledgeBase::open(&data_dir.knowledge_db())?;
    let json = args.json;
    match args.command {
        Command::Import { dir } => {
            let report = kb.import_dir(&dir)?;
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
            Some(card) => {
                println!(
                    "{}\n\n{}\n\n— {} · {} {} · {}",
                    card.title,
                    card.body,
                    card.source,
                    card.pack_title,
                    card.pack_version,
                    card.licence
                );
            }
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
    }
    Ok(ExitCode::SUCCESS)
}
