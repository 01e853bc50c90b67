//! Labelled question sets: JSON lines, one question each, with the records that answer it and
//! the route it should take (format in `docs/formats.md`, "Question sets").
//!
//! A set is read and checked whole before anything is measured, so a typo in a label is an
//! error that names its line instead of a silent miss.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::knowledge::Card;
use crate::router::Route;

/// Largest question-set file read, in bytes.
pub const MAX_SET_BYTES: u64 = 16 << 20;

/// Why a question set could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
    /// The file could not be read.
    #[error("cannot read question set {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_SET_BYTES`].
    #[error("question set {} is over the {max}-byte limit", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// A line is not a valid question.
    #[error("question set line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The set holds no question.
    #[error("the question set holds no question")]
    Empty,
}

/// A record named by a label: `pack/id`, or a bare `id` that matches that id in any pack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordRef {
    /// The pack, when the label names one.
    pub pack: Option<String>,
    /// The record id.
    pub id: String,
}

impl RecordRef {
    /// Parses `pack/id` (split at the first `/`) or a bare `id`.
    pub fn parse(label: &str) -> Option<Self> {
        let label = label.trim();
        let (pack, id) = match label.split_once('/') {
            Some((pack, id)) => (Some(pack.to_owned()), id),
            None => (None, label),
        };
        if id.is_empty() || pack.as_deref().is_some_and(str::is_empty) {
            return None;
        }
        Some(Self {
            pack,
            id: id.to_owned(),
        })
    }

    /// Whether `card` is this record.
    pub fn matches(&self, card: &Card) -> bool {
        card.id == self.id && self.pack.as_ref().is_none_or(|p| *p == card.pack)
    }
}

impl std::fmt::Display for RecordRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.pack {
            Some(pack) => write!(f, "{pack}/{}", self.id),
            None => f.write_str(&self.id),
        }
    }
}

/// One labelled question.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// Its id in the set (the line's `id`, else `line N`).
    pub id: String,
    /// The question as a user would type it.
    pub question: String,
    /// The language the user speaks (`en`, `ta`, …; romanized Tamil is `ta`).
    pub lang: String,
    /// The routes that answer it well; any of them counts.
    pub routes: Vec<Route>,
    /// The records that answer it; any of them counts. Empty: no record does (small talk,
    /// general knowledge), and the question counts only toward route accuracy.
    pub ids: Vec<RecordRef>,
    /// How it is phrased (`exact`, `paraphrase`, `misspelling`, `romanized`, `code-mixed`, …).
    pub tags: Vec<String>,
}

/// A whole question set.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionSet {
    /// The questions, in file order.
    pub questions: Vec<Question>,
}

/// `route` is one route name or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    #[serde(default)]
    id: Option<String>,
    question: String,
    #[serde(alias = "language")]
    lang: String,
    #[serde(alias = "routes", alias = "expected_route")]
    route: OneOrMany,
    #[serde(alias = "record_ids", alias = "expected_ids")]
    ids: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// Free text for the people who keep the set; ignored.
    #[serde(default, rename = "note")]
    _note: Option<String>,
}

impl QuestionSet {
    /// Reads and checks the set at `path` (at most [`MAX_SET_BYTES`]).
    pub fn read(path: &Path) -> Result<Self, SetError> {
        let io = |source| SetError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        file.take(MAX_SET_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_SET_BYTES {
            return Err(SetError::TooLarge {
                path: path.to_owned(),
                max: MAX_SET_BYTES,
            });
        }
        Self::parse_bytes(&bytes)
    }

    /// Parses and checks a set from its text.
    pub fn parse(text: &str) -> Result<Self, SetError> {
        Self::parse_bytes(text.as_bytes())
    }

    fn parse_bytes(bytes: &[u8]) -> Result<Self, SetError> {
        let mut questions = Vec::new();
        let mut ids = HashSet::new();
        for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let number = index + 1;
            let bad = |reason: String| SetError::Line {
                line: number,
                reason,
            };
            let line = std::str::from_utf8(line).map_err(|e| bad(format!("not UTF-8: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            let question = parse_line(line, number).map_err(bad)?;
            if !ids.insert(question.id.clone()) {
                return Err(bad(format!("duplicate id {:?}", question.id)));
            }
            questions.push(question);
        }
        if questions.is_empty() {
            return Err(SetError::Empty);
        }
        Ok(Self { questions })
    }

    /// Every record the labels name, each once, in first-seen order.
    pub fn record_refs(&self) -> Vec<&RecordRef> {
        let mut seen = HashSet::new();
        self.questions
            .iter()
            .flat_map(|q| &q.ids)
            .filter(|r| seen.insert(*r))
            .collect()
    }
}

fn parse_line(line: &str, number: usize) -> Result<Question, String> {
    let raw: RawQuestion = serde_json::from_str(line).map_err(|e| e.to_string())?;
    if raw.question.trim().is_empty() {
        return Err("`question` is empty".into());
    }
    let lang = raw.lang.trim().to_owned();
    if lang.is_empty() {
        return Err("`lang` is empty".into());
    }
    let names = match raw.route {
        OneOrMany::One(name) => vec![name],
        OneOrMany::Many(names) => names,
    };
    if names.is_empty() {
        return Err("`route` names no route".into());
    }
    let mut routes = Vec::with_capacity(names.len());
    for name in &names {
        let route = Route::parse(name.trim()).ok_or_else(|| {
            format!("unknown route {name:?} (lookup, search, hybrid or generate)")
        })?;
        if !routes.contains(&route) {
            routes.push(route);
        }
    }
    let mut ids = Vec::with_capacity(raw.ids.len());
    for label in &raw.ids {
        let record = RecordRef::parse(label)
            .ok_or_else(|| format!("{label:?} is not a record id (`pack/id` or `id`)"))?;
        if !ids.contains(&record) {
            ids.push(record);
        }
    }
    let id = match raw.id {
        Some(id) if id.trim().is_empty() => return Err("`id` is empty".into()),
        Some(id) => id,
        None => format!("line {number}"),
    };
    Ok(Question {
        id,
        question: raw.question,
        lang,
        routes,
        ids,
        tags: raw.tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::eval::test_card;

    #[test]
    fn a_line_names_question_language_records_and_routes() {
        let set = QuestionSet::parse(
            "{\"id\":\"q1\",\"question\":\"kural about rain\",\"lang\":\"en\",\"route\":\"search\",\
             \"ids\":[\"thirukkural/chapter-2\",\"kural-11\"],\"tags\":[\"paraphrase\"]}\n\n\
             {\"question\":\"hi\",\"lang\":\"en\",\"route\":[\"generate\"],\"ids\":[]}\n",
        )
        .unwrap();
        assert_eq!(set.questions.len(), 2);
        let q = &set.questions[0];
        assert_eq!(q.routes, vec![Route::Search]);
        assert!(q.ids[0].matches(&test_card("thirukkural", "chapter-2")));
        assert!(!q.ids[0].matches(&test_card("other", "chapter-2")));
        assert!(q.ids[1].matches(&test_card("any", "kural-11")));
        assert_eq!(set.questions[1].id, "line 3");
        assert_eq!(set.record_refs().len(), 2);
    }

    #[test]
    fn a_bad_label_is_an_error_that_names_its_line() {
        let line = |l: &str| match QuestionSet::parse(&format!("\n{l}\n")) {
            Err(SetError::Line { line, reason }) => {
                assert_eq!(line, 2);
                reason
            }
            other => panic!("{l}: {other:?}"),
        };
        let base = |route: &str, ids: &str| {
            format!("{{\"question\":\"q\",\"lang\":\"en\",\"route\":{route},\"ids\":{ids}}}")
        };
        assert!(line(&base("\"lookups\"", "[]")).contains("unknown route"));
        assert!(line(&base("[]", "[]")).contains("no route"));
        assert!(line(&base("\"search\"", "[\"pack/\"]")).contains("not a record id"));
        assert!(line(&base("\"search\"", "[\"\"]")).contains("not a record id"));
        assert!(
            line("{\"question\":\" \",\"lang\":\"en\",\"route\":\"search\",\"ids\":[]}")
                .contains("question")
        );
        assert!(line("{\"question\":\"q\",\"lang\":\"en\",\"route\":\"search\"}").contains("ids"));
        assert!(line(
            "{\"question\":\"q\",\"lang\":\"en\",\"route\":\"search\",\"ids\":[],\"idz\":[]}"
        )
        .contains("unknown field"));
        assert!(line("not json").contains("expected"));
    }

    #[test]
    fn duplicate_ids_and_empty_sets_are_refused() {
        let q = "{\"id\":\"a\",\"question\":\"q\",\"lang\":\"en\",\"route\":\"search\",\"ids\":[]}";
        assert!(matches!(
            QuestionSet::parse(&format!("{q}\n{q}\n")),
            Err(SetError::Line { line: 2, .. })
        ));
        assert!(matches!(QuestionSet::parse("\n \n"), Err(SetError::Empty)));
    }

    #[test]
    fn oversized_files_are_refused_without_reading_them_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jsonl");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_SET_BYTES + 1).unwrap();
        assert!(matches!(
            QuestionSet::read(&path),
            Err(SetError::TooLarge { .. })
        ));
    }
}
