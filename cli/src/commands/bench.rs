//! `vazhi bench`: the engine against a bare llama-cpp-2 loop and llama.cpp's `llama-bench`.
//!
//! Per model, three phases:
//! 1. memory — the engine alone: peak RSS growth while loading and answering, against model
//!    file + KV cache + 64 MiB;
//! 2. speed — the engine and a bare llama-cpp-2 greedy loop ([`reference`]) with the same
//!    prompt tokens, interleaved in one process (the order alternates every round), cold KV
//!    cache each run; medians and spread of the ratios. The bare loop runs on the engine's own
//!    worker thread and context ([`Engine::run_reference`]): a second llama.cpp context on
//!    another thread would start a second OpenMP thread team, which slowed both ~3× here;
//! 3. llama-bench — for each `--llama-bench` binary, one run per round (in the same rounds):
//!    `pp` for our prompt length, `tg` for our generation length after a prompt as long as
//!    ours (`-d`) and from an empty context, same threads; per-round ratios of ours to them.
//!
//! [`reference`]: mod@vazhi_core::engine::reference

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use serde_json::json;
use vazhi_core::data_dir::DataDir;
use vazhi_core::engine::metrics::{current_rss_bytes, peak_rss_bytes, reset_peak_rss};
use vazhi_core::engine::{Engine, EngineConfig, GenerateParams, Message, Sampling};

use crate::model_path::model_cache;
use crate::output::outln;

/// Arguments of `vazhi bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model files (repeatable; default: both test models from the model cache).
    #[arg(short, long, value_name = "PATH")]
    pub model: Vec<PathBuf>,
    /// Interleaved rounds per model.
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// Tokens to generate per run.
    #[arg(long, default_value_t = 128)]
    pub gen_tokens: u32,
    /// llama.cpp threads (default: physical cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Context size.
    #[arg(long, default_value_t = 2048)]
    pub ctx: u32,
    /// Path of a `llama-bench` binary (scripts/build-llama-bench builds one); repeatable.
    #[arg(long, value_name = "PATH")]
    pub llama_bench: Vec<PathBuf>,
    /// Print one JSON object per model instead of text.
    #[arg(long)]
    pub json: bool,
}

const SYSTEM: &str = "You are a patient teacher who writes long, detailed answers.";
const QUESTION: &str = "Here is some background. The printing press with movable type spread \
through Europe in the fifteenth century. Earlier, woodblock printing had been used in China and \
Korea for centuries, and movable metal type was used in Korea before it appeared in Mainz. \
Printing made books cheaper, helped standardise spelling, carried news and arguments quickly \
between cities, and changed how schools and universities taught. Libraries grew, literacy rose \
slowly, and scholars could compare identical copies of a text. Using this background, write a \
long essay of at least ten paragraphs on the history of printing, its inventors in Asia and \
Europe, and how it changed education, religion, science and trade. Begin with an introduction.";

/// Runs `vazhi bench`.
pub fn run(args: Args, _data_dir: Option<&DataDir>) -> Result<ExitCode> {
    let models = if args.model.is_empty() {
        let cache = model_cache();
        vec![
            cache.join("SmolLM2-135M-Instruct.Q4_1.gguf"),
            cache.join("gemma-3-270m-q4_k_m.gguf"),
        ]
    } else {
        args.model.clone()
    };
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    for model in &models {
        bench_model(model, &args).with_context(|| format!("benchmarking {}", model.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_model(path: &Path, args: &Args) -> Result<()> {
    let config = EngineConfig {
        threads: args.threads,
        n_ctx: Some(args.ctx),
        ..EngineConfig::default()
    };
    let messages = vec![Message::system(SYSTEM), Message::user(QUESTION)];
    let params = GenerateParams {
        max_tokens: args.gen_tokens,
        sampling: Sampling::greedy(),
        reuse_kv_cache: false,
        ..GenerateParams::default()
    };

    // Phase 1: memory, engine alone.
    reset_peak_rss();
    let rss_before = current_rss_bytes().unwrap_or(0);
    let engine = Engine::load(path, config)?;
    let first = engine.generate(messages.clone(), params.clone())?.wait()?;
    let peak_growth = peak_rss_bytes().unwrap_or(0).saturating_sub(rss_before);
    let info = engine.info().clone();
    let kv = info.plan.kv_bytes;
    let rss_budget = info.report.file_bytes + kv + (64 << 20);

    // Phase 2: interleaved speed against the bare loop.
    // The engine's own prompt tokens (its template, or llama.cpp's fallback), fed to both.
    let (_, prompt) = engine.render_prompt(messages.clone())?;
    let mut ours = Samples::default();
    let mut bare = Samples::default();
    let mut identical = true;
    // Per llama-bench binary: one sample per round, taken in the same round as ours.
    let mut llama: Vec<LlamaSamples> = args
        .llama_bench
        .iter()
        .map(|_| LlamaSamples::default())
        .collect();
    for round in 0..args.runs {
        let mut run_engine = || -> Result<()> {
            let a = engine.generate(messages.clone(), params.clone())?.wait()?;
            ours.push(
                a.metrics.generation_tokens_per_s,
                a.metrics.prompt_tokens_per_s,
                a.metrics.time_to_first_token_ms,
            );
            identical &=
                a.tokens == first.tokens && a.metrics.prompt_tokens as usize == prompt.len();
            Ok(())
        };
        let mut run_bare = || -> Result<Vec<i32>> {
            let r = engine.run_reference(prompt.clone(), args.gen_tokens as usize)?;
            bare.push(
                r.generation_tokens_per_s,
                r.prompt_tokens_per_s,
                r.time_to_first_token_ms,
            );
            Ok(r.tokens)
        };
        let bare_tokens = if round % 2 == 0 {
            run_engine()?;
            run_bare()?
        } else {
            let t = run_bare()?;
            run_engine()?;
            t
        };
        identical &= bare_tokens == first.tokens;
        for (bin, samples) in args.llama_bench.iter().zip(&mut llama) {
            let figures =
                run_llama_bench(bin, path, info.threads, prompt.len(), first.tokens.len())?;
            samples.pp.push(figures.pp);
            samples.tg.push(figures.tg);
            samples.tg_at_depth.push(figures.tg_at_depth);
        }
    }
    let ratio = |f: fn(&Samples) -> &Vec<f64>| Ratio::of(f(&ours), f(&bare));
    let gen = ratio(|s| &s.gen);
    let pp = ratio(|s| &s.pp);
    let ttft = ratio(|s| &s.ttft);

    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    if args.json {
        outln!(
            "{}",
            json!({
                "model": name, "threads": info.threads, "n_ctx": info.plan.n_ctx,
                "prompt_tokens": prompt.len(), "generated_tokens": first.tokens.len(),
                "runs": args.runs, "identical_tokens": identical,
                "engine": ours.summary(), "bare_llama_cpp_2": bare.summary(),
                "ratio_generation": gen.json(), "ratio_prompt": pp.json(), "ratio_ttft": ttft.json(),
                "peak_rss_growth_bytes": peak_growth, "rss_budget_bytes": rss_budget,
                "model_bytes": info.report.file_bytes, "kv_bytes": kv,
                "llama_bench": args.llama_bench.iter().zip(&llama).map(|(bin, l)| json!({
                    "binary": bin.display().to_string(),
                    "pp_tok_s": l.pp, "tg_tok_s": l.tg, "tg_at_prompt_depth_tok_s": l.tg_at_depth,
                    "ratio_prompt": Ratio::of(&ours.pp, &l.pp).json(),
                    "ratio_generation_at_depth": Ratio::of(&ours.gen, &l.tg_at_depth).json(),
                    "ratio_generation_at_depth_0": Ratio::of(&ours.gen, &l.tg).json(),
                })).collect::<Vec<_>>(),
            })
        )?;
        return Ok(());
    }
    outln!("== {name}: {} threads, n_ctx {}, prompt {} tokens, {} generated tokens, {} interleaved rounds",
        info.threads, info.plan.n_ctx, prompt.len(), first.tokens.len(), args.runs)?;
    outln!(
        "   greedy output identical to the bare loop in every run: {}",
        if identical { "yes" } else { "NO" }
    )?;
    outln!(
        "   {:<22} {:>22} {:>22}",
        "",
        "vazhi engine",
        "bare llama-cpp-2"
    )?;
    outln!(
        "   {:<22} {:>22} {:>22}",
        "generation tok/s",
        ours.fmt(|s| &s.gen),
        bare.fmt(|s| &s.gen)
    )?;
    outln!(
        "   {:<22} {:>22} {:>22}",
        "prompt tok/s",
        ours.fmt(|s| &s.pp),
        bare.fmt(|s| &s.pp)
    )?;
    outln!(
        "   {:<22} {:>22} {:>22}",
        "time to first token ms",
        ours.fmt(|s| &s.ttft),
        bare.fmt(|s| &s.ttft)
    )?;
    outln!(
        "   ratio engine/bare: generation {} (target ≥ 0.98), prompt {}, TTFT {} (target ≤ 1.03)",
        gen.fmt(),
        pp.fmt(),
        ttft.fmt()
    )?;
    for (bin, l) in args.llama_bench.iter().zip(&llama) {
        outln!("   llama-bench {} (same rounds):", bin.display())?;
        outln!(
            "      pp{} {} tok/s, tg{} after a {}-token prompt {} tok/s (from an empty context {})",
            prompt.len(),
            fmt_samples(&l.pp),
            first.tokens.len(),
            prompt.len(),
            fmt_samples(&l.tg_at_depth),
            fmt_samples(&l.tg)
        )?;
        outln!(
            "      engine/llama-bench: prompt {} (target ≥ 0.9), generation {} (target ≥ 0.9; vs empty context {})",
            Ratio::of(&ours.pp, &l.pp).fmt(),
            Ratio::of(&ours.gen, &l.tg_at_depth).fmt(),
            Ratio::of(&ours.gen, &l.tg).fmt()
        )?;
    }
    outln!(
        "   peak RSS growth {:.1} MiB vs model {:.1} MiB + KV {:.1} MiB + 64 MiB = {:.1} MiB → {}",
        mib(peak_growth),
        mib(info.report.file_bytes),
        mib(kv),
        mib(rss_budget),
        if peak_growth <= rss_budget {
            "within budget".to_owned()
        } else {
            format!("over by {:.1} MiB", mib(peak_growth - rss_budget))
        }
    )?;
    Ok(())
}

#[derive(Debug, Default)]
struct Samples {
    gen: Vec<f64>,
    pp: Vec<f64>,
    ttft: Vec<f64>,
}

impl Samples {
    fn push(&mut self, gen: f64, pp: f64, ttft: f64) {
        self.gen.push(gen);
        self.pp.push(pp);
        self.ttft.push(ttft);
    }

    fn fmt(&self, f: fn(&Samples) -> &Vec<f64>) -> String {
        fmt_samples(f(self))
    }

    fn summary(&self) -> serde_json::Value {
        let s = |v: &Vec<f64>| json!({"median": median(v), "min": min(v), "max": max(v), "all": v});
        json!({"generation_tok_s": s(&self.gen), "prompt_tok_s": s(&self.pp), "ttft_ms": s(&self.ttft)})
    }
}

/// Per-round ratios ours/bare: median and spread.
struct Ratio(Vec<f64>);

impl Ratio {
    fn of(ours: &[f64], bare: &[f64]) -> Self {
        Ratio(ours.iter().zip(bare).map(|(a, b)| a / b).collect())
    }

    fn fmt(&self) -> String {
        format!(
            "{:.3} [{:.3}–{:.3}]",
            median(&self.0),
            min(&self.0),
            max(&self.0)
        )
    }

    fn json(&self) -> serde_json::Value {
        json!({"median": median(&self.0), "min": min(&self.0), "max": max(&self.0)})
    }
}

/// llama-bench figures, one per round.
#[derive(Debug, Default)]
struct LlamaSamples {
    pp: Vec<f64>,
    tg: Vec<f64>,
    tg_at_depth: Vec<f64>,
}

/// One llama-bench run: prompt processing, generation from an empty context, and generation
/// after a prompt as long as ours (`-d`), which is what the engine's figure measures.
struct LlamaFigures {
    pp: f64,
    tg: f64,
    tg_at_depth: f64,
}

fn run_llama_bench(
    bin: &Path,
    model: &Path,
    threads: usize,
    pp: usize,
    tg: usize,
) -> Result<LlamaFigures> {
    let output = Command::new(bin)
        .arg("-m")
        .arg(model)
        .args([
            "-t",
            &threads.to_string(),
            "-p",
            &pp.to_string(),
            "-n",
            &tg.max(1).to_string(),
        ])
        .args(["-d", &format!("0,{pp}"), "-r", "1", "-o", "json"])
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !output.status.success() {
        bail!(
            "llama-bench failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    let results: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).context("parsing llama-bench JSON")?;
    let mut figures = LlamaFigures {
        pp: f64::NAN,
        tg: f64::NAN,
        tg_at_depth: f64::NAN,
    };
    for r in results {
        let ts = r["avg_ts"].as_f64().unwrap_or(f64::NAN);
        match (r["n_gen"].as_u64(), r["n_depth"].as_u64()) {
            (Some(0), Some(0)) => figures.pp = ts,
            (Some(n), Some(0)) if n > 0 => figures.tg = ts,
            (Some(n), Some(d)) if n > 0 && d > 0 => figures.tg_at_depth = ts,
            _ => {}
        }
    }
    if figures.pp.is_nan() || figures.tg.is_nan() || figures.tg_at_depth.is_nan() {
        bail!("llama-bench output lacks pp, tg or tg at depth");
    }
    Ok(figures)
}

fn fmt_samples(v: &[f64]) -> String {
    format!("{:.1} [{:.1}–{:.1}]", median(v), min(v), max(v))
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}
