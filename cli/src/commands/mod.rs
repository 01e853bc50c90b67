//! One module per subcommand, plus the options they share.

pub mod ask;
pub mod assistant;
pub mod bench;
pub mod chat;
pub mod feedback;
pub mod info;
pub mod kb;
pub mod kb_bench;
pub mod kb_eval;
pub mod model;
pub mod trust;

use std::path::PathBuf;

use anyhow::Context;
use vazhi_core::data_dir::DataDir;
use vazhi_core::engine::{GenerateParams, Sampling};
use vazhi_core::fact_guard::FactPolicy;
use vazhi_core::knowledge::{Card, KnowledgeBase};

/// The data directory, which the command needs (`--data-dir`, `VAZHI_DATA_DIR` or the platform
/// default).
pub fn require_data_dir(data_dir: Option<&DataDir>) -> anyhow::Result<&DataDir> {
    data_dir.context("no data directory: pass --data-dir or set VAZHI_DATA_DIR")
}

/// The data directory (created if missing) and its knowledge base.
pub fn open_knowledge(data_dir: Option<&DataDir>) -> anyhow::Result<(&DataDir, KnowledgeBase)> {
    let data_dir = require_data_dir(data_dir)?;
    data_dir
        .create()
        .with_context(|| format!("creating {}", data_dir.root().display()))?;
    let kb = KnowledgeBase::open(&data_dir.knowledge_db())?;
    Ok((data_dir, kb))
}

/// A card as text: title, the body with its lines, then where it comes from. Pack text is
/// untrusted: control characters other than the body's line breaks are shown as spaces.
pub fn card_text(card: &Card) -> String {
    format!(
        "┌ {}\n{}\n└ {} · {} {} · {}\n",
        one_line(&card.title),
        lines(&card.body),
        one_line(&card.source),
        one_line(&card.pack_title),
        one_line(&card.pack_version),
        one_line(&card.licence)
    )
}

/// `text` on one line, control characters (newlines, escape sequences) shown as spaces.
///
/// Every piece of untrusted text (packs, feedback, question sets) goes through this (or
/// [`lines`]) before it reaches a terminal.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `text` with its line breaks kept and every line passed through [`one_line`].
pub fn lines(text: &str) -> String {
    text.split('\n')
        .map(one_line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Options that say which model to load and how.
#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    /// GGUF model file (default: the default chat model, see `vazhi --help`).
    #[arg(short, long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// An installed catalog model (see `vazhi model list`); loaded only if it is the file that
    /// was verified against the catalog's SHA-256.
    #[arg(long, value_name = "ID", conflicts_with = "model")]
    pub model_id: Option<String>,
    /// llama.cpp threads (default: physical cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Context size in tokens (default: chosen by the memory plan, at most 4096).
    #[arg(long, value_name = "TOKENS")]
    pub ctx: Option<u32>,
    /// Memory budget for model + cache, in MiB; the context shrinks to fit.
    #[arg(long, value_name = "MIB")]
    pub ram_budget_mb: Option<u64>,
    /// Largest model file accepted, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub max_model_mb: u64,
    /// Model catalog file for `--model-id`, with its signature `FILE.sig` if there is one
    /// (default: the catalog built into vazhi).
    #[arg(long, env = "VAZHI_CATALOG", value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// A chat template (Jinja file) to use instead of the model's own, e.g. one that renders
    /// tools for a model whose template does not.
    #[arg(long, value_name = "FILE")]
    pub chat_template: Option<PathBuf>,
}

/// Options for one answer.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// System prompt.
    #[arg(long)]
    pub system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,
    /// Sampling temperature; 0 decodes greedily.
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Top-k (0 disables).
    #[arg(long, default_value_t = 40)]
    pub top_k: u32,
    /// Top-p (1 disables).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Min-p (0 disables).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Repeat penalty (1 disables).
    #[arg(long, default_value_t = 1.1)]
    pub repeat_penalty: f32,
    /// Random seed: the same seed and settings give the same answer.
    #[arg(long, default_value_t = 42)]
    pub seed: u32,
    /// Stop when this text appears (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Never produce this token string, e.g. `<think>` (repeatable; must be one token).
    #[arg(long)]
    pub suppress: Vec<String>,
    /// Show the model's reasoning (`<think>…</think>`), on stderr or as `reasoning` events;
    /// hidden otherwise.
    #[arg(long)]
    pub show_reasoning: bool,
    /// Set the chat template's `enable_thinking` variable (templates that read it).
    #[arg(long, value_name = "BOOL")]
    pub enable_thinking: Option<bool>,
    /// What to do with a sentence of the model's whose numbers, phone numbers, years, quotes
    /// or names are in neither the question nor the cards: `mark` it (printed with
    /// `[unsupported]`, `"unsupported": true` in JSON), `drop` it, `stop` the answer there,
    /// or `off` (no check; tokens stream one by one).
    #[arg(long, value_name = "POLICY", default_value = "mark", value_parser = parse_fact_policy)]
    pub fact_guard: FactPolicy,
}

/// `--fact-guard`'s value.
fn parse_fact_policy(name: &str) -> Result<FactPolicy, String> {
    FactPolicy::parse(name).ok_or_else(|| format!("expected mark, drop, stop or off, not {name:?}"))
}

impl GenerateArgs {
    /// The generation parameters these options describe.
    pub fn params(&self) -> GenerateParams {
        GenerateParams {
            max_tokens: self.max_tokens,
            sampling: Sampling {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                repeat_last_n: 64,
                seed: self.seed,
            },
            stop: self.stop.clone(),
            suppress: self.suppress.clone(),
            show_reasoning: self.show_reasoning,
            enable_thinking: self.enable_thinking,
            ..GenerateParams::default()
        }
    }
}
