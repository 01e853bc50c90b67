//! The router: decides how a query is answered, and says why, without calling a model.
//!
//! A query goes one of four [`Route`]s: an exact knowledge-base record ([`Route::Lookup`]),
//! full-text search ([`Route::Search`]), a record or search result explained by the model
//! ([`Route::Hybrid`]), or the model alone ([`Route::Generate`]). The [`Decision`] carries a
//! [`Reason`] so that every answer can show where it came from.
//!
//! Rules live in TOML files (`assets/router/*.toml`), tried in order against the query as
//! [`normalize_query`] leaves it (lowercase, NFC, ASCII digits, single spaces):
//!
//! ```toml
//! [settings]
//! search_threshold = 2.0            # minimum relevance for a search hit (see Router::decide)
//! explain_words = ["explain*", "why", "what does", "விளக்க*"]
//!
//! [[rule]]
//! name = "kural-number-en"          # unique; reported in Reason::Rule
//! pattern = '^kural\s*(?P<n>\d{1,4})$'
//! route = "lookup"                  # lookup | search | hybrid | generate
//! pack = "thirukkural"              # lookup/hybrid: required; search: optional filter
//! key = "kural {n}"                 # lookup/hybrid: required; `{name}` = named capture
//! # query = "{q}"                   # optional: the text to search/generate with
//! ```
//!
//! A generate or hybrid rule may also name a `task = "NAME"` defined by a `[task.NAME]` table:
//! the model then answers with that task's system prompt, JSON Schema, token budget and
//! temperature ([`Task`], `docs/formats.md`).
//!
//! Patterns use the [`regex`] crate's syntax (linear time, no look-around or back-references)
//! and should be written in lowercase with ASCII digits, as queries are normalized. Each is
//! checked when loaded: at most [`MAX_PATTERN_BYTES`] long, compiled within
//! [`REGEX_SIZE_LIMIT`]; templates may only name capture groups the pattern defines. Filled
//! templates are normalized with [`normalize_query`], like the knowledge base's keys.
//!
//! `explain_words` are whole words or phrases, or word prefixes when they end in `*`; they are
//! normalized like queries ([`explain`]). When no rule matches, the query without its explain
//! words goes to the knowledge base's probe, which answers with [`Evidence`]: a record whose
//! key is the whole question gives [`Route::Lookup`] (Hybrid with an explain word); a
//! confidence at or above `search_threshold` gives [`Route::Search`] (Hybrid with an explain
//! word); anything less, [`Route::Generate`]. The threshold is a share of the question the best
//! record accounts for (0 to 1), calibrated on a labelled question set (`vazhi kb eval
//! --calibrate`).
//!
//! ```
//! use vazhi_core::router::{Route, Router};
//!
//! let router = Router::builtin().unwrap();
//! let no_search = |_: &str| None;
//! let d = router.decide("Kural ௫", &no_search);
//! assert_eq!(d.route, Route::Lookup);
//! assert_eq!((d.pack.as_deref(), d.key.as_deref()), (Some("thirukkural"), Some("kural 5")));
//! println!("{} because {}", d.route, d.reason); // lookup because rule `kural-number-en`
//! ```

pub mod explain;
mod rule;
mod tasks;
mod template;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use rule::{Rule, MAX_PATTERN_BYTES, REGEX_DFA_SIZE_LIMIT, REGEX_SIZE_LIMIT};
pub use tasks::{Attachment, Task, MAX_TASK_PROMPT_BYTES, MAX_TASK_SCHEMA_BYTES, MAX_TASK_TOKENS};

use crate::text::{normalize_query, truncate_query};
use explain::ExplainWords;
use rule::RawRule;
use tasks::RawTask;

/// The rules shipped with Vazhi (`assets/router/default.toml`), for [`Router::builtin`].
pub const DEFAULT_RULES: &str = include_str!("../../../assets/router/default.toml");

/// Search threshold used when no rules file sets `search_threshold`: the share of a question
/// the best record must account for.
pub const DEFAULT_SEARCH_THRESHOLD: f64 = 0.6;

/// Largest rules file read by [`Router::from_dir`], in bytes.
pub const MAX_RULES_FILE_BYTES: u64 = 1 << 20;

/// How a query is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Show one knowledge-base record, found by exact key; no model.
    Lookup,
    /// Show full-text search results from the knowledge base; no model.
    Search,
    /// Find a record (by key, or by search) and have the model explain it.
    Hybrid,
    /// The model answers on its own.
    Generate,
}

impl Route {
    /// The route's name as used in rules files and serde: `lookup`, `search`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Lookup => "lookup",
            Route::Search => "search",
            Route::Hybrid => "hybrid",
            Route::Generate => "generate",
        }
    }

    /// The route named `name` (as [`Route::as_str`] writes it), if any.
    pub fn parse(name: &str) -> Option<Self> {
        [Route::Lookup, Route::Search, Route::Hybrid, Route::Generate]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the router chose a route.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The rule with this name matched.
    Rule {
        /// The rule's name.
        name: String,
    },
    /// No rule matched; the whole question is a key of this record.
    Key {
        /// The record's pack.
        pack: String,
        /// The key.
        key: String,
    },
    /// No rule matched; the best search hit's confidence reached the threshold.
    SearchScore {
        /// The best hit's confidence (0 to 1, higher is surer).
        score: f64,
        /// The configured `search_threshold`.
        threshold: f64,
    },
    /// No rule matched; the question names this pack ("kural about rain", "helpline for
    /// kids"), so it is answered from the pack's records, however few of its words they hold:
    /// the model alone would invent them.
    NamedPack {
        /// The pack named.
        pack: String,
    },
    /// No rule matched and search found nothing good enough.
    NoMatch,
    /// The query was empty after normalization.
    Empty,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Rule { name } => write!(f, "rule `{name}`"),
            Reason::Key { pack, key } => write!(f, "key `{key}` of pack `{pack}`"),
            Reason::SearchScore { score, threshold } => {
                write!(f, "search score {score:.3} >= threshold {threshold:.3}")
            }
            Reason::NamedPack { pack } => write!(f, "the question names pack `{pack}`"),
            Reason::NoMatch => f.write_str("no rule matched and no search result was good enough"),
            Reason::Empty => f.write_str("empty query"),
        }
    }
}

/// What the knowledge base found for a query, as the router weighs it
/// ([`Retrieval`](crate::knowledge::Retrieval) gives it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evidence {
    /// How much of the question the best record accounts for, 0 to 1.
    pub confidence: f64,
    /// The pack and key of a record whose key is the whole question.
    pub key: Option<(String, String)>,
    /// A pack the question names by one of its aliases (the first, if several).
    pub named_pack: Option<String>,
}

impl Evidence {
    /// Evidence of this confidence, without a key match or a named pack.
    pub fn confidence(confidence: f64) -> Self {
        Self {
            confidence,
            ..Self::default()
        }
    }
}

/// The router's answer for one query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// How to answer.
    pub route: Route,
    /// Why.
    pub reason: Reason,
    /// The knowledge pack to look up in (lookup, hybrid by rule) or to restrict search to.
    pub pack: Option<String>,
    /// The record key to look up (lookup, hybrid by rule), normalized.
    pub key: Option<String>,
    /// The text to search with: a rule's filled `query` template, or the normalized query
    /// without its explain words.
    pub query: String,
    /// The task preset the model answers with ([`Router::task`]), when the rule names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// Why rules could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// A rule is invalid: bad or oversize pattern, unknown route, bad template, ….
    #[error("router rule `{rule}` is invalid: {reason}")]
    InvalidRule {
        /// The rule's name.
        rule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A task preset is invalid: bad schema, empty prompt, out-of-range budget, ….
    #[error("task `{task}` is invalid: {reason}")]
    InvalidTask {
        /// The task's name.
        task: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The `[settings]` table is invalid.
    #[error("router settings are invalid: {0}")]
    InvalidSettings(String),
    /// The text is not valid TOML, or not shaped like a rules file.
    #[error("router rules are not valid: {0}")]
    Parse(String),
    /// A rules file or directory could not be read.
    #[error("cannot read router rules at {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A rules file is larger than [`MAX_RULES_FILE_BYTES`].
    #[error("router rules file {} is {bytes} bytes, over the {max}-byte limit", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// A directory given to [`Router::from_dir`] holds no `*.toml` file.
    #[error("no router rules files (*.toml) in {}", path.display())]
    NoRuleFiles {
        /// The directory.
        path: PathBuf,
    },
    /// An error in one file of a directory.
    #[error("{}: {error}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        error: Box<RouterError>,
    },
}

/// The `[settings]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    search_threshold: Option<f64>,
    explain_words: Option<Vec<String>>,
}

/// A whole rules file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    settings: Option<RawSettings>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
    #[serde(default, rename = "task")]
    tasks: BTreeMap<String, RawTask>,
}

/// One rules file, compiled.
struct ParsedFile {
    settings: Option<RawSettings>,
    rules: Vec<Rule>,
    tasks: Vec<Task>,
}

/// Routes queries by rules, then by a search probe. Cheap to share: `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Router {
    rules: Vec<Rule>,
    tasks: Vec<Task>,
    search_threshold: f64,
    explain_words: Vec<String>,
    explain: ExplainWords,
}

impl Router {
    /// The rules shipped with Vazhi ([`DEFAULT_RULES`]).
    pub fn builtin() -> Result<Self, RouterError> {
        Self::from_toml_str(DEFAULT_RULES)
    }

    /// Loads rules from one TOML document.
    pub fn from_toml_str(text: &str) -> Result<Self, RouterError> {
        let ParsedFile {
            settings,
            rules,
            tasks,
        } = parse_file(text)?;
        let mut names = HashMap::new();
        for rule in &rules {
            check_unique(&mut names, rule, None)?;
        }
        Self::assemble(settings.unwrap_or_default(), rules, tasks)
    }

    /// Loads every `*.toml` file in `dir`, in file-name order; their rules are tried in that
    /// order. At most one file may have a `[settings]` table, and rule names must be unique
    /// across files. Errors inside a file come wrapped in [`RouterError::InFile`].
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, RouterError> {
        let dir = dir.as_ref();
        let _span = tracing::debug_span!("router_load", dir = %dir.display()).entered();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| RouterError::Io { path, source }
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(RouterError::NoRuleFiles {
                path: dir.to_owned(),
            });
        }
        files.sort();
        let mut settings: Option<(RawSettings, PathBuf)> = None;
        let mut rules = Vec::new();
        let mut tasks: Vec<Task> = Vec::new();
        let mut names = HashMap::new();
        for path in files {
            let in_file = |error: RouterError| RouterError::InFile {
                path: path.clone(),
                error: error.into(),
            };
            let bytes = std::fs::metadata(&path).map_err(io(&path))?.len();
            if bytes > MAX_RULES_FILE_BYTES {
                return Err(RouterError::FileTooLarge {
                    path,
                    bytes,
                    max: MAX_RULES_FILE_BYTES,
                });
            }
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let ParsedFile {
                settings: file_settings,
                rules: file_rules,
                tasks: file_tasks,
            } = parse_file(&text).map_err(in_file)?;
            for task in file_tasks {
                if tasks.iter().any(|t| t.name == task.name) {
                    return Err(in_file(RouterError::InvalidTask {
                        task: task.name,
                        reason: "another file defines a task of the same name".into(),
                    }));
                }
                tasks.push(task);
            }
            if let Some(s) = file_settings {
                if let Some((_, first)) = &settings {
                    return Err(in_file(RouterError::InvalidSettings(format!(
                        "`[settings]` is already set in {}; only one file may set it",
                        first.display()
                    ))));
                }
                settings = Some((s, path.clone()));
            }
            for rule in &file_rules {
                check_unique(&mut names, rule, Some(&path)).map_err(in_file)?;
            }
            rules.extend(file_rules);
        }
        let settings = settings.map(|(s, _)| s).unwrap_or_default();
        let router = Self::assemble(settings, rules, tasks)?;
        tracing::debug!(rules = router.rules.len(), "router rules loaded");
        Ok(router)
    }

    fn assemble(
        settings: RawSettings,
        rules: Vec<Rule>,
        tasks: Vec<Task>,
    ) -> Result<Self, RouterError> {
        for rule in &rules {
            if let Some(task) = rule.task() {
                if !tasks.iter().any(|t| t.name == task) {
                    return Err(RouterError::InvalidRule {
                        rule: rule.name().to_owned(),
                        reason: format!("it names task `{task}`, which no `[task.{task}]` defines"),
                    });
                }
            }
        }
        let search_threshold = settings
            .search_threshold
            .unwrap_or(DEFAULT_SEARCH_THRESHOLD);
        if !(0.0..=1.0).contains(&search_threshold) {
            return Err(RouterError::InvalidSettings(format!(
                "search_threshold is the share of a question the best record must account for, \
                 from 0 to 1, not {search_threshold}"
            )));
        }
        let explain_words = settings.explain_words.unwrap_or_default();
        let explain = ExplainWords::parse(&explain_words)?;
        Ok(Self {
            rules,
            tasks,
            search_threshold,
            explain_words,
            explain,
        })
    }

    /// The rules, in the order they are tried.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The task presets, in name order within each file, files in order.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// The task preset named `name` (a [`Decision::task`]), if any.
    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// The minimum search relevance for [`Route::Search`] / [`Route::Hybrid`] by search.
    pub fn search_threshold(&self) -> f64 {
        self.search_threshold
    }

    /// The explain words as configured (before normalization).
    pub fn explain_words(&self) -> &[String] {
        &self.explain_words
    }

    /// Decides how to answer `input`.
    ///
    /// `input` is cut to [`MAX_QUERY_BYTES`](crate::text::MAX_QUERY_BYTES) and normalized
    /// ([`normalize_query`]). Empty: [`Route::Generate`] with [`Reason::Empty`]. Otherwise the
    /// first matching rule decides. If none does, `probe` is called once with the normalized
    /// query less its explain words, and returns what the knowledge base found (`None`:
    /// nothing): a key match gives [`Route::Lookup`] with [`Reason::Key`] (Hybrid when the
    /// query holds an explain word); a finite confidence at or above the threshold gives
    /// [`Route::Search`] (Hybrid with an explain word); anything else [`Route::Generate`]
    /// with [`Reason::NoMatch`].
    ///
    /// Matching is linear in the input's length; no model is called.
    pub fn decide(&self, input: &str, probe: &dyn Fn(&str) -> Option<Evidence>) -> Decision {
        self.decide_corrected(input, input, probe)
    }

    /// [`decide`](Self::decide) for a question and its spelling-corrected form (see
    /// `KnowledgeBase::correct_spelling`): rules are tried on the question as typed, then on
    /// the corrected form (so a correction never spoils a rule's own words, and `kurl 12`
    /// still finds the kural rule as `kural 12`); the probe sees the corrected form.
    pub fn decide_corrected(
        &self,
        input: &str,
        corrected: &str,
        probe: &dyn Fn(&str) -> Option<Evidence>,
    ) -> Decision {
        let _span = tracing::debug_span!("route", input_bytes = input.len()).entered();
        let query = normalize_query(truncate_query(input));
        let corrected = normalize_query(truncate_query(corrected));
        tracing::trace!(%query, %corrected, "normalized query");
        let decision = self.decide_normalized(query, corrected, probe);
        tracing::debug!(route = %decision.route, reason = %decision.reason, "routed");
        decision
    }

    /// The words of a normalized query without its explain words, and whether it had any.
    pub fn strip_explain_words(&self, query: &str) -> (String, bool) {
        self.explain.strip(query)
    }

    fn decide_normalized(
        &self,
        query: String,
        corrected: String,
        probe: &dyn Fn(&str) -> Option<Evidence>,
    ) -> Decision {
        let unmatched = |route, reason, query| Decision {
            route,
            reason,
            pack: None,
            key: None,
            query,
            task: None,
        };
        if query.is_empty() {
            return unmatched(Route::Generate, Reason::Empty, query);
        }
        if let Some(decision) = self.rules.iter().find_map(|rule| rule.apply(&query)) {
            return decision;
        }
        if corrected != query {
            if let Some(decision) = self.rules.iter().find_map(|rule| rule.apply(&corrected)) {
                return decision;
            }
        }
        let (content, explain) = self.explain.strip(&corrected);
        let evidence = if content.is_empty() {
            None
        } else {
            probe(&content)
        };
        let threshold = self.search_threshold;
        let (by_key, by_search) = if explain {
            (Route::Hybrid, Route::Hybrid)
        } else {
            (Route::Lookup, Route::Search)
        };
        match evidence {
            Some(Evidence {
                key: Some((pack, key)),
                ..
            }) => Decision {
                route: by_key,
                reason: Reason::Key {
                    pack: pack.clone(),
                    key: key.clone(),
                },
                pack: Some(pack),
                key: Some(key),
                query: content,
                task: None,
            },
            Some(e) if e.confidence.is_finite() && e.confidence >= threshold => unmatched(
                by_search,
                Reason::SearchScore {
                    score: e.confidence,
                    threshold,
                },
                content,
            ),
            Some(Evidence {
                named_pack: Some(pack),
                ..
            }) => unmatched(by_search, Reason::NamedPack { pack }, content),
            _ => unmatched(Route::Generate, Reason::NoMatch, content),
        }
    }
}

/// Parses one rules file into its settings, compiled rules and tasks (names not yet
/// cross-checked).
fn parse_file(text: &str) -> Result<ParsedFile, RouterError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| RouterError::Parse(e.to_string()))?;
    let rules = raw
        .rules
        .into_iter()
        .map(Rule::compile)
        .collect::<Result<_, _>>()?;
    let tasks = raw
        .tasks
        .into_iter()
        .map(|(name, task)| Task::compile(name, task))
        .collect::<Result<_, _>>()?;
    Ok(ParsedFile {
        settings: raw.settings,
        rules,
        tasks,
    })
}

/// Records `rule`'s name (defined in `file`), failing if it was seen before.
fn check_unique(
    names: &mut HashMap<String, Option<PathBuf>>,
    rule: &Rule,
    file: Option<&Path>,
) -> Result<(), RouterError> {
    match names.get(rule.name()) {
        Some(first) => {
            let place = match first {
                Some(path) => format!(" (first defined in {})", path.display()),
                None => String::new(),
            };
            Err(RouterError::InvalidRule {
                rule: rule.name().to_owned(),
                reason: format!("another rule has the same name{place}"),
            })
        }
        None => {
            names.insert(rule.name().to_owned(), file.map(Path::to_owned));
            Ok(())
        }
    }
}
