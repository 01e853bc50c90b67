//! `vazhi kb`: the knowledge base from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vazhi_core::data_dir::DataDir;
use vazhi_core::knowledge::{KnowledgeBase, KnowledgeError};

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
    /// in a scratch database (the data directory is not touched), and router decisions.
    Bench {
        /// Records in the generated pack.
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        /// Lookups and searches timed.
        #[arg(long, default_value_t = 5_000)]
        queries: usize,
    },
}

/// Runs `vazhi kb`.
pub fn run(args: Args, data_dir: Option<&DataDir>) -> Result<ExitCode> {
    match args.command {
        Command::Bench { records, queries } => return bench(records, queries),
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
        Command::Bench { .. } | Command::Eval(_) => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `count` distinct words: Tamil consonant + vowel-sign syllables (2–4) and Latin letters (3–9).
fn vocabulary(count: usize, next: &mut dyn FnMut(usize) -> usize) -> Vec<String> {
    const CONSONANTS: &[char] = &[
        'க', 'ச', 'ட', 'த', 'ப', 'ற', 'ம', 'ன', 'ய', 'ர', 'ல', 'வ', 'ழ', 'ள', 'ண', 'ந',
    ];
    const SIGNS: &[&str] = &[
        "", "\u{0BBE}", "\u{0BBF}", "\u{0BC0}", "\u{0BC1}", "\u{0BC6}", "\u{0BCD}",
    ];
    let mut seen = std::collections::HashSet::new();
    let mut words = Vec::with_capacity(count);
    while words.len() < count {
        let word: String = if words.len() % 2 == 0 {
            (0..2 + next(3))
                .map(|_| {
                    format!(
                        "{}{}",
                        CONSONANTS[next(CONSONANTS.len())],
                        SIGNS[next(SIGNS.len())]
                    )
                })
                .collect()
        } else {
            (0..3 + next(7))
                .map(|_| char::from(b'a' + next(26) as u8))
                .collect()
        };
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

/// `vazhi kb bench`: figures for docs/benchmarks.md.
fn bench(records: usize, queries: usize) -> Result<ExitCode> {
    use std::io::Write as _;
    use std::time::Instant;
    let dir = std::env::temp_dir().join(format!("vazhi-kb-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("pack"))?;
    std::fs::write(
        dir.join("pack/pack.toml"),
        "name = \"bench\"\nversion = \"1.0.0\"\nlicence = \"CC0-1.0\"\nsource = \"generated\"\n",
    )?;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    // A Zipf-like vocabulary (rank drawn log-uniformly, p ∝ 1/rank) of Tamil syllable words and
    // Latin pseudo-words, like real text: a few very common words, a long tail of rare ones.
    let words = vocabulary(30_000, &mut next);
    let zipf = |next: &mut dyn FnMut(usize) -> usize| {
        let u = next(1_000_000) as f64 / 1_000_000.0;
        let rank = ((words.len() as f64).ln() * u).exp() as usize;
        words[rank.saturating_sub(1).min(words.len() - 1)].as_str()
    };
    {
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(dir.join("pack/records.jsonl"))?);
        for i in 0..records {
            let body: Vec<&str> = (0..24).map(|_| zipf(&mut next)).collect();
            let record = serde_json::json!({
                "id": format!("r{i}"), "keys": [format!("item {i}"), format!("பொருள் {i}")],
                "title": format!("{} {} {i}", zipf(&mut next), zipf(&mut next)),
                "body": body.join(" "), "lang": "ta-en",
            });
            writeln!(out, "{record}")?;
        }
    }
    let kb = KnowledgeBase::open(&dir.join("knowledge.db"))?;
    let started = Instant::now();
    let pack = vazhi_core::knowledge::Pack::read(&dir.join("pack"))?;
    let parsed = started.elapsed();
    kb.import(&pack)?;
    let imported = started.elapsed();
    let percentiles = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
        (at(0.5), at(0.99))
    };
    let mut lookup = Vec::with_capacity(queries);
    for _ in 0..queries {
        let key = format!("பொருள் {}", next(records));
        let t = Instant::now();
        let card = kb.lookup("bench", &key)?;
        lookup.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(card.is_some(), "lookup of {key} found nothing");
    }
    let mut search = Vec::with_capacity(queries);
    let mut hits = 0;
    let mut slowest = 0.0f64;
    for i in 0..queries {
        let q = if i % 2 == 0 {
            format!("{} {}", zipf(&mut next), zipf(&mut next))
        } else {
            zipf(&mut next).to_owned()
        };
        let t = Instant::now();
        hits += kb.search(&q, 10, None)?.len();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        slowest = slowest.max(ms);
        search.push(ms);
    }
    let router = vazhi_core::router::Router::builtin()?;
    let mut route = Vec::with_capacity(queries);
    let samples = [
        "kural 5",
        "குறள் ௧௨",
        "explain kural 7",
        "women helpline number",
        "அவசர எண்",
        "write a poem about rain",
        "is this SMS a scam?",
    ];
    for i in 0..queries {
        let q = samples[i % samples.len()];
        let t = Instant::now();
        let d = router.decide(q, &|_| None);
        route.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(d);
    }
    let (l50, l99) = percentiles(lookup);
    let (s50, s99) = percentiles(search);
    let (r50, r99) = percentiles(route);
    println!("knowledge base, {records} generated records (24 words each from a 30 000-word Zipf vocabulary, Tamil and Latin), no model loaded");
    println!(
        "  import      {:.0} records/s ({:.2} s parse+check, {:.2} s total; target ≥ 50 000/s)",
        records as f64 / imported.as_secs_f64(),
        parsed.as_secs_f64(),
        imported.as_secs_f64()
    );
    println!(
        "  lookup      p50 {l50:.3} ms, p99 {l99:.3} ms over {queries} keys (target p99 ≤ 1 ms)"
    );
    println!("  FTS search  p50 {s50:.3} ms, p99 {s99:.3} ms over {queries} queries, top 10, {:.1} hits/query (target p99 ≤ 5 ms)", hits as f64 / queries as f64);
    println!(
        "  router      p50 {:.1} µs, p99 {:.1} µs per decision",
        r50 * 1e3,
        r99 * 1e3
    );
    drop(kb);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}
