//! `vazhi kb`: the knowledge base from the command line.
//!
//! Pack text is untrusted: in text output every field goes through [`one_line`] (or
//! [`super::card_text`]), so a pack cannot send escape sequences to the terminal; JSON output
//! is escaped by serde.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vazhi_core::data_dir::DataDir;
use vazhi_core::knowledge::{trust, KnowledgeError};
use vazhi_core::signing;

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
    /// Import (or upgrade) a knowledge pack directory (pack.toml + records.jsonl, and
    /// pack.sig if signed). Only packs Vazhi ships, or signed by a `--trusted-key`, are
    /// accepted unless `--allow-unsigned` is given; a pack replaces an installed one only if
    /// it is trusted the same way.
    Import {
        /// The pack directory.
        dir: PathBuf,
    },
    /// Sign a pack directory: writes DIR/pack.sig, an Ed25519 signature over its files (sign
    /// after the last change; any later change breaks it).
    Sign {
        /// The pack directory.
        dir: PathBuf,
        /// The secret key file (from `vazhi kb keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Make a new signing key: writes the secret key to FILE (mode 0600, never overwritten)
    /// and prints the public key to give apps (`--trusted-key`, `trusted_keys`).
    Keygen {
        /// Where to write the secret key.
        file: PathBuf,
    },
    /// Print a pack directory's digest (the SHA-256 its signature covers; the line a pack
    /// shipped with Vazhi has in assets/packs/SHIPPED) and how it would be trusted.
    Digest {
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
        Command::Sign { dir, key } => {
            let key = signing::read_signing_key(&key)?;
            let sig = trust::sign_pack(&dir, &key)?;
            outln!(
                "signed {} with key {}",
                dir.join(trust::SIGNATURE_FILE).display(),
                sig.key_hex()
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Keygen { file } => {
            let key = signing::write_new_signing_key(&file)?;
            if args.json {
                outln!(
                    "{}",
                    serde_json::json!({"secret_key_file": file, "public_key": signing::public_key_hex(&key)})
                )?;
            } else {
                outln!("secret key: {} (keep it private)", file.display())?;
                outln!("public key: {}", signing::public_key_hex(&key))?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Digest { dir } => {
            let manifest = vazhi_core::knowledge::pack::read_manifest(&dir)?;
            let files = trust::PackFiles::of_dir(&dir)?;
            let signature = trust::read_signature(&dir)?;
            let verdict = trust::decide(
                super::trust::policy(),
                &manifest.name,
                &files,
                signature.as_ref(),
            );
            let digest = files.digest();
            if args.json {
                outln!(
                    "{}",
                    serde_json::json!({
                        "name": manifest.name,
                        "version": manifest.version,
                        "digest": digest,
                        "trust": verdict.as_ref().ok(),
                        "refused": verdict.as_ref().err().map(ToString::to_string),
                    })
                )?;
            } else {
                outln!(
                    "{digest} {} {}",
                    one_line(&manifest.name),
                    one_line(&manifest.version)
                )?;
                match &verdict {
                    Ok(p) => outln!("trusted: {p}")?,
                    Err(e) => outln!("refused: {}", one_line(&e.to_string()))?,
                }
            }
            return Ok(if verdict.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        _ => {}
    }
    let (_, kb) = super::open_knowledge(data_dir)?;
    let json = args.json;
    match args.command {
        Command::Import { dir } => {
            let report = match kb.import_dir(&dir, super::trust::policy()) {
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
                outln!("trust: {}", one_line(&report.provenance.to_string()))?;
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
                        "{} {} — {} ({} records; {}; {})",
                        one_line(&p.name),
                        one_line(&p.version),
                        one_line(&p.title),
                        p.records,
                        one_line(&p.licence),
                        one_line(&p.provenance.to_string())
                    )?;
                }
            }
        }
        Command::Remove { pack } => {
            kb.remove(&pack)?;
            outln!("removed {}", one_line(&pack))?;
        }
        Command::Bench(_)
        | Command::Eval(_)
        | Command::Sign { .. }
        | Command::Keygen { .. }
        | Command::Digest { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}
