//! One routing rule: a compiled pattern, the route it picks and the templates it fills.

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::template::Template;
use super::{Decision, Reason, Route, RouterError};
use crate::text::nfc;

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 2048;
/// Most memory one compiled pattern may use (`RegexBuilder::size_limit`).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Most memory one pattern's lazy DFA cache may use (`RegexBuilder::dfa_size_limit`).
pub const REGEX_DFA_SIZE_LIMIT: usize = 2 << 20;
/// Deepest nesting of groups and repetitions accepted (`RegexBuilder::nest_limit`).
const REGEX_NEST_LIMIT: u32 = 64;

/// A rule as written in a rules file (`[[rule]]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    name: String,
    pattern: String,
    route: String,
    #[serde(default)]
    pack: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    task: Option<String>,
}

/// A loaded, validated rule. Rules are tried in order; the first whose pattern matches the
/// normalized query decides the route.
#[derive(Debug, Clone)]
pub struct Rule {
    name: String,
    route: Route,
    pattern: String,
    regex: Regex,
    pack: Option<String>,
    key: Option<Template>,
    query: Option<Template>,
    task: Option<String>,
    needs_captures: bool,
}

impl Rule {
    /// Validates and compiles a rule read from a file.
    pub(super) fn compile(raw: RawRule) -> Result<Self, RouterError> {
        let RawRule {
            name,
            pattern,
            route,
            pack,
            key,
            query,
            task,
        } = raw;
        let invalid = |reason: String| RouterError::InvalidRule {
            rule: name.clone(),
            reason,
        };
        if name.trim().is_empty() {
            return Err(invalid("the rule name is empty".into()));
        }
        let route = Route::parse(&route).ok_or_else(|| {
            invalid(format!(
                "unknown route {route:?} (expected \"lookup\", \"search\", \"hybrid\" or \
                 \"generate\")"
            ))
        })?;
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(invalid(format!(
                "the pattern is {} bytes, over the {MAX_PATTERN_BYTES}-byte limit",
                pattern.len()
            )));
        }
        // Queries are NFC, so the pattern is too (an editor may have saved it decomposed).
        let regex = RegexBuilder::new(&nfc(&pattern))
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .map_err(|e| invalid(format!("the pattern does not compile: {e}")))?;
        let pack = match pack {
            Some(p) if p.trim().is_empty() => return Err(invalid("`pack` is empty".into())),
            other => other,
        };
        match route {
            Route::Lookup | Route::Hybrid => {
                if pack.is_none() || key.is_none() {
                    return Err(invalid(format!(
                        "a {route} rule needs both `pack` and `key` (the record to look up)"
                    )));
                }
            }
            Route::Search => {
                if key.is_some() {
                    return Err(invalid("`key` is only for lookup and hybrid rules".into()));
                }
            }
            Route::Generate => {
                if pack.is_some() || key.is_some() {
                    return Err(invalid("a generate rule takes no `pack` or `key`".into()));
                }
            }
        }
        if task.is_some() && !matches!(route, Route::Generate | Route::Hybrid) {
            return Err(invalid(format!(
                "a {route} rule takes no `task`: only the model answers with one (route \
                 \"generate\" or \"hybrid\")"
            )));
        }
        if task.as_ref().is_some_and(|t| t.trim().is_empty()) {
            return Err(invalid("`task` is empty".into()));
        }
        let key = key
            .map(|k| Template::parse("key", &k, &regex))
            .transpose()
            .map_err(invalid)?;
        let query = query
            .map(|q| Template::parse("query", &q, &regex))
            .transpose()
            .map_err(invalid)?;
        if key
            .as_ref()
            .is_some_and(|k| k.fill(None).is_empty() && !k.uses_groups())
        {
            return Err(invalid("`key` is empty".into()));
        }
        let needs_captures = key.iter().chain(query.iter()).any(Template::uses_groups);
        Ok(Self {
            name,
            route,
            pattern,
            regex,
            pack,
            key,
            query,
            task,
            needs_captures,
        })
    }

    /// The rule's name, unique among the router's rules (reported in [`Reason::Rule`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The route this rule picks.
    pub fn route(&self) -> Route {
        self.route
    }

    /// The pattern as written in the rules file.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The knowledge pack the rule targets: the pack to look up in (lookup, hybrid) or to
    /// restrict the search to (search).
    pub fn pack(&self) -> Option<&str> {
        self.pack.as_deref()
    }

    /// The `key` template as written (lookup and hybrid rules).
    pub fn key_template(&self) -> Option<&str> {
        self.key.as_ref().map(Template::source)
    }

    /// The `query` template as written, if any (else the whole normalized query is used).
    pub fn query_template(&self) -> Option<&str> {
        self.query.as_ref().map(Template::source)
    }

    /// The task preset the model answers with, when the rule names one.
    pub fn task(&self) -> Option<&str> {
        self.task.as_deref()
    }

    /// The decision for `query` (already normalized) if this rule matches it.
    pub(super) fn apply(&self, query: &str) -> Option<Decision> {
        let caps = if self.needs_captures {
            Some(self.regex.captures(query)?)
        } else if self.regex.is_match(query) {
            None
        } else {
            return None;
        };
        let fill = |t: &Template| t.fill(caps.as_ref());
        Some(Decision {
            route: self.route,
            reason: Reason::Rule {
                name: self.name.clone(),
            },
            pack: self.pack.clone(),
            key: self.key.as_ref().map(fill),
            query: self.query.as_ref().map_or_else(|| query.to_owned(), fill),
            task: self.task.clone(),
        })
    }
}
