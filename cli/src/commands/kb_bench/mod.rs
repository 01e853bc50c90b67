//! `vazhi kb bench`: import, lookup and search at scale, against the version-1 knowledge base
//! measured in the same run ([`baseline`]), and router decisions. Figures for
//! docs/benchmarks.md.

mod baseline;

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;
use vazhi_core::signing::TrustPolicy;

use anyhow::Result;
use vazhi_core::knowledge::KnowledgeBase;

use crate::output::outln;

/// Arguments of `vazhi kb bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Records in the generated pack.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Lookups and searches timed, per query kind.
    #[arg(long, default_value_t = 5_000)]
    queries: usize,
    /// Imports timed per implementation (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// `count` distinct words: Tamil consonant + vowel-sign syllables (2–4) and Latin letters (3–9).
fn vocabulary(count: usize, rng: &mut Rng) -> Vec<String> {
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
            (0..2 + rng.below(3))
                .map(|_| {
                    format!(
                        "{}{}",
                        CONSONANTS[rng.below(CONSONANTS.len())],
                        SIGNS[rng.below(SIGNS.len())]
                    )
                })
                .collect()
        } else {
            (0..3 + rng.below(7))
                .map(|_| char::from(b'a' + rng.below(26) as u8))
                .collect()
        };
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

/// A Zipf-like draw (rank log-uniform, p ∝ 1/rank), like words in real text.
fn zipf<'a>(words: &'a [String], rng: &mut Rng) -> &'a str {
    let u = rng.below(1_000_000) as f64 / 1_000_000.0;
    let rank = ((words.len() as f64).ln() * u).exp() as usize;
    &words[rank.saturating_sub(1).min(words.len() - 1)]
}

fn write_pack(dir: &Path, records: usize, words: &[String], rng: &mut Rng) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("pack.toml"),
        "name = \"bench\"\nversion = \"1.0.0\"\nlicence = \"CC0-1.0\"\nsource = \"generated\"\n",
    )?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("records.jsonl"))?);
    for i in 0..records {
        let body: Vec<&str> = (0..24).map(|_| zipf(words, rng)).collect();
        let record = serde_json::json!({
            "id": format!("r{i}"), "keys": [format!("item {i}"), format!("பொருள் {i}")],
            "title": format!("{} {} {i}", zipf(words, rng), zipf(words, rng)),
            "body": body.join(" "), "lang": "ta-en",
        });
        writeln!(out, "{record}")?;
    }
    out.flush()?;
    Ok(())
}

/// (p50, p99) of `times` in milliseconds.
fn percentiles(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    (at(0.5), at(0.99))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// Runs `vazhi kb bench`.
pub fn run(args: Args) -> Result<ExitCode> {
    anyhow::ensure!(
        args.records > 0 && args.queries > 0 && args.runs > 0,
        "records, queries and runs must be positive"
    );
    let scratch = tempfile::tempdir()?;
    let dir = scratch.path();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let words = vocabulary(30_000, &mut rng);
    write_pack(&dir.join("pack"), args.records, &words, &mut rng)?;
    let records = args.records as f64;

    // Import: the baseline and the current code in turn, each into a fresh file.
    let (mut old_rates, mut new_rates) = (Vec::new(), Vec::new());
    let (mut old_kb, mut new_kb) = (None, None);
    for run in 0..args.runs {
        let path = dir.join(format!("v1-{run}.db"));
        let mut old = baseline::Baseline::create(&path)?;
        let t = Instant::now();
        old.import_dir(&dir.join("pack"))?;
        old_rates.push(records / t.elapsed().as_secs_f64());
        old_kb = Some(old);
        let path = dir.join(format!("v2-{run}.db"));
        let new = KnowledgeBase::open(&path)?;
        let t = Instant::now();
        new.import_dir(&dir.join("pack"), &TrustPolicy::any())?;
        new_rates.push(records / t.elapsed().as_secs_f64());
        new_kb = Some(new);
    }
    let (old, new) = (old_kb.expect("runs > 0"), new_kb.expect("runs > 0"));
    let (old_import, new_import) = (median(old_rates), median(new_rates));

    // Lookups (the current code; exact lookup did not change in kind).
    let mut lookup = Vec::with_capacity(args.queries);
    for _ in 0..args.queries {
        let key = format!("பொருள் {}", rng.below(args.records));
        let t = Instant::now();
        let card = new.lookup("bench", &key)?;
        lookup.push(ms(t));
        anyhow::ensure!(card.is_some(), "lookup of {key} found nothing");
    }

    // Searches: short and long questions, the two implementations interleaved.
    let query = |rng: &mut Rng, n: usize| {
        (0..n)
            .map(|_| zipf(&words, rng).to_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut report = Vec::new();
    for (kind, min, max) in [("1-2 words", 1, 2), ("5-12 words", 5, 12)] {
        let (mut old_t, mut new_t, mut old_hits, mut new_hits) = (Vec::new(), Vec::new(), 0, 0);
        for _ in 0..args.queries {
            let n = min + rng.below(max - min + 1);
            let q = query(&mut rng, n);
            let t = Instant::now();
            old_hits += old.search(&q, 10)?.len();
            old_t.push(ms(t));
            let t = Instant::now();
            new_hits += new.search(&q, 10, None)?.len();
            new_t.push(ms(t));
        }
        report.push((
            kind,
            percentiles(old_t),
            percentiles(new_t),
            old_hits,
            new_hits,
        ));
    }

    // Hostile questions: the slowest of a few tries each.
    let one_letters = (0..32)
        .map(|i| char::from(b'a' + (i % 26) as u8).to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let megabyte = format!("{} ", zipf(&words, &mut rng)).repeat(1 << 20 >> 4);
    let syntax = "\"* OR (NEAR(a b) AND col:x) ^y -z".to_owned();
    let common = words[..12].join(" ");
    let mut hostile = Vec::new();
    for (name, q) in [
        ("32 one-letter words", &one_letters),
        ("a 1 MB query", &megabyte),
        ("FTS syntax", &syntax),
        ("12 of the commonest words", &common),
    ] {
        let (mut old_worst, mut new_worst) = (0.0f64, 0.0f64);
        for _ in 0..5 {
            let t = Instant::now();
            old.search(q, 10)?;
            old_worst = old_worst.max(ms(t));
            let t = Instant::now();
            new.search(q, 10, None)?;
            new_worst = new_worst.max(ms(t));
        }
        hostile.push((name, old_worst, new_worst));
    }

    // The router.
    let router = vazhi_core::router::Router::builtin()?;
    let samples = [
        "kural 5",
        "குறள் ௧௨",
        "explain kural 7",
        "women helpline number",
        "அவசர எண்",
        "write a poem about rain",
        "is this SMS a scam?",
    ];
    let mut route = Vec::with_capacity(args.queries);
    for i in 0..args.queries {
        let t = Instant::now();
        std::hint::black_box(router.decide(samples[i % samples.len()], &|_| None));
        route.push(ms(t));
    }

    let (l50, l99) = percentiles(lookup);
    let (r50, r99) = percentiles(route);
    outln!(
        "knowledge base, {} generated records (24 words each from a 30 000-word Zipf vocabulary, Tamil and Latin), no model; baseline = schema v1 and its search, measured in this run",
        args.records
    )?;
    outln!(
        "  import      {new_import:.0} records/s (baseline {old_import:.0}/s, ×{:.2}; median of {} runs; read, check, analyze, write, commit; target ≥ 50 000/s)",
        new_import / old_import,
        args.runs
    )?;
    outln!(
        "  lookup      p50 {l50:.3} ms, p99 {l99:.3} ms over {} keys (target p99 ≤ 1 ms)",
        args.queries
    )?;
    for (kind, (o50, o99), (n50, n99), old_hits, new_hits) in &report {
        outln!(
            "  search {kind:<10} p50 {n50:.3} ms, p99 {n99:.3} ms (baseline p50 {o50:.3}, p99 {o99:.3}; p99 ×{:.2}); {:.1} hits/query (baseline {:.1}); target p99 ≤ 5 ms",
            n99 / o99,
            *new_hits as f64 / args.queries as f64,
            *old_hits as f64 / args.queries as f64
        )?;
    }
    for (name, old_worst, new_worst) in &hostile {
        outln!("  hostile     {name:<26} worst {new_worst:.2} ms (baseline {old_worst:.2} ms; bound 50 ms)")?;
    }
    outln!(
        "  router      p50 {:.1} µs, p99 {:.1} µs per decision",
        r50 * 1e3,
        r99 * 1e3
    )?;
    Ok(ExitCode::SUCCESS)
}
