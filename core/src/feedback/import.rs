//! The import format, read back: JSON lines as [`FeedbackStore::export`] writes them (or as a
//! person writes them), each line one [`NewFeedback`] for [`FeedbackStore::record_batch`].
//! `vazhi feedback import` is this module plus batching.
//!
//! A line is a JSON object with `question`, `answer` (strings) and `rating` (`"up"` or
//! `"down"`), and optionally `route` (default `model`), `correction`, `model_id`,
//! `model_sha256` (strings or `null`), `card_ids` (an array of strings), `pack_versions` (an
//! object of name: version strings) and `created_at_ms` (Unix milliseconds, an integer ≥ 0;
//! default: when it is recorded). The `record_id`, `key_id` and `format` of an export are
//! accepted and ignored: an imported record gets a new id, the current key and the current
//! format. Any other field is refused, and so is a field of the wrong type. Blank lines are
//! skipped. The caps ([`NewFeedback::validate`]) are checked when the records are written.
//!
//! [`FeedbackStore::export`]: super::FeedbackStore::export
//! [`FeedbackStore::record_batch`]: super::FeedbackStore::record_batch

use std::io::BufRead;

use serde_json::Value;

use super::NewFeedback;

/// Why a line of an import file was refused. It never holds the line's text, only (for
/// [`UnknownField`](Self::UnknownField)) the name of the field it did not expect.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The line is not JSON.
    #[error("not JSON ({0})")]
    NotJson(serde_json::Error),
    /// The line is JSON, but not an object.
    #[error("not a JSON object")]
    NotObject,
    /// A required field is missing.
    #[error("\"{0}\" is missing")]
    Missing(&'static str),
    /// A field holds a value of the wrong type or range.
    #[error("\"{field}\" must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A field that is not part of the format.
    #[error("unknown field \"{}\"", .0.escape_debug())]
    UnknownField(String),
}

/// Why reading an import file stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The line could not be read (an I/O error, or it is not UTF-8).
    #[error("reading line {line}: {source}")]
    Read {
        /// Its number, from 1.
        line: u64,
        /// The error.
        source: std::io::Error,
    },
    /// The line was read and refused.
    #[error("line {line}: {error}")]
    Line {
        /// Its number, from 1.
        line: u64,
        /// What is wrong with it.
        error: LineError,
    },
}

/// One line of an import file as a record, or what is wrong with it.
pub fn parse_line(line: &str) -> Result<NewFeedback, LineError> {
    let value: Value = serde_json::from_str(line).map_err(LineError::NotJson)?;
    let Value::Object(fields) = value else {
        return Err(LineError::NotObject);
    };
    let mut item = NewFeedback::default();
    let wrong = |field, expected| LineError::WrongType { field, expected };
    let text = |field, v: Value| match v {
        Value::String(s) => Ok(s),
        _ => Err(wrong(field, "a string")),
    };
    let optional_text = |field, v: Value| match v {
        Value::Null => Ok(None),
        v => text(field, v).map(Some),
    };
    let (mut question, mut answer, mut rating) = (false, false, false);
    for (name, v) in fields {
        match name.as_str() {
            "question" => (item.question, question) = (text("question", v)?, true),
            "answer" => (item.answer, answer) = (text("answer", v)?, true),
            "rating" => {
                item.rating = Some(
                    serde_json::from_value(v).map_err(|_| wrong("rating", "\"up\" or \"down\""))?,
                );
                rating = true;
            }
            "route" => item.route = text("route", v)?,
            "correction" => item.correction = optional_text("correction", v)?,
            "model_id" => item.model_id = optional_text("model_id", v)?,
            "model_sha256" => item.model_sha256 = optional_text("model_sha256", v)?,
            "card_ids" => {
                item.card_ids = serde_json::from_value(v)
                    .map_err(|_| wrong("card_ids", "an array of strings"))?;
            }
            "pack_versions" => {
                item.pack_versions = serde_json::from_value(v)
                    .map_err(|_| wrong("pack_versions", "an object of name: version strings"))?;
            }
            "created_at_ms" => {
                let ms = v
                    .as_i64()
                    .filter(|ms| (0..i64::MAX).contains(ms))
                    .ok_or_else(|| wrong("created_at_ms", "Unix milliseconds (an integer ≥ 0)"))?;
                item.created_at_ms = Some(ms);
            }
            // Written by `export`; a new record gets a new id, the current key and format.
            "record_id" | "key_id" | "format" => {}
            _ => return Err(LineError::UnknownField(name)),
        }
    }
    for (present, name) in [
        (question, "question"),
        (answer, "answer"),
        (rating, "rating"),
    ] {
        if !present {
            return Err(LineError::Missing(name));
        }
    }
    if item.route.is_empty() {
        item.route = "model".into();
    }
    Ok(item)
}

/// The records of the import file `reader`, in order ([`parse_line`] over each line, blank lines
/// skipped). A caller that meets an error stops there: what comes after it is not defined.
pub fn records<R: BufRead>(reader: R) -> Records<R> {
    Records {
        lines: reader.lines(),
        line: 0,
    }
}

/// The iterator of [`records`].
#[derive(Debug)]
pub struct Records<R> {
    lines: std::io::Lines<R>,
    line: u64,
}

impl<R> Records<R> {
    /// The number of the last line read (blank ones included), from 1; 0 before the first.
    pub fn line(&self) -> u64 {
        self.line
    }
}

impl<R: BufRead> Iterator for Records<R> {
    type Item = Result<NewFeedback, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let text = self.lines.next()?;
            self.line += 1;
            let line = self.line;
            let text = match text {
                Ok(text) => text,
                Err(source) => return Some(Err(ImportError::Read { line, source })),
            };
            if text.trim().is_empty() {
                continue;
            }
            return Some(parse_line(&text).map_err(|error| ImportError::Line { line, error }));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::feedback::{FeedbackConfig, FeedbackStore, FileKeyProvider, Range, Rating};

    #[test]
    fn an_export_reads_back_as_the_records_that_were_written() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Arc::new(FileKeyProvider::new(dir.path().join("keys")));
        let store = FeedbackStore::open(
            &dir.path().join("feedback.db"),
            provider,
            FeedbackConfig::default(),
        )
        .unwrap();
        let items = vec![
            NewFeedback {
                question: "திருக்குறள் 1 என்ன? \"quoted\"\nand a second line".into(),
                route: "exact:thirukkural".into(),
                answer: "அகர முதல எழுத்தெல்லாம்\t\\".into(),
                card_ids: vec!["thirukkural/kural-1".into(), "thirukkural/kural-2".into()],
                rating: Some(Rating::Up),
                correction: Some("ஆதி பகவன் முதற்றே உலகு".into()),
                model_id: Some("smollm2-135m-instruct-q8".into()),
                model_sha256: Some("ab".repeat(32)),
                pack_versions: BTreeMap::from([
                    ("thirukkural".into(), "1.2.0".into()),
                    ("helplines-tn".into(), "2025.3.1".into()),
                ]),
                created_at_ms: Some(0),
            },
            NewFeedback {
                question: "what is the helpline number?".into(),
                route: "model".into(),
                answer: String::new(),
                rating: Some(Rating::Down),
                created_at_ms: Some(1_735_689_600_000),
                ..NewFeedback::default()
            },
        ];
        store.record_batch(&items).unwrap();
        let path = dir.path().join("export.jsonl");
        let report = store.export(&path, &Range::default()).unwrap();
        assert_eq!((report.exported, report.unreadable), (2, 0));

        let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
        let mut read = records(file);
        let back: Vec<NewFeedback> = read.by_ref().map(Result::unwrap).collect();
        assert_eq!(back, items);
        assert_eq!(read.line(), 2);
        // And once more: what was imported exports the same.
        store.purge_all().unwrap();
        store.record_batch(&back).unwrap();
        let again = dir.path().join("again.jsonl");
        store.export(&again, &Range::default()).unwrap();
        let file = std::io::BufReader::new(std::fs::File::open(&again).unwrap());
        let twice: Vec<NewFeedback> = records(file).map(Result::unwrap).collect();
        assert_eq!(twice, items);
    }

    #[test]
    fn a_line_is_checked_field_by_field() {
        let ok = parse_line(r#"{"question":"q","answer":"a","rating":"down","card_ids":["c"]}"#)
            .unwrap();
        assert_eq!(ok.route, "model");
        assert_eq!(ok.rating, Some(Rating::Down));
        assert_eq!(ok.card_ids, ["c"]);
        assert_eq!(ok.created_at_ms, None);
        let ok = parse_line(
            r#"{"question":"q","answer":"a","rating":"up","correction":null,"model_id":null,
                "record_id":"00","key_id":"k-1","format":2,"route":""}"#,
        )
        .unwrap();
        assert_eq!((ok.correction, ok.model_id), (None, None));
        assert_eq!(ok.route, "model");
    }

    #[test]
    fn malformed_lines_are_refused_with_what_is_wrong() {
        for (line, message) in [
            ("[1]", "not a JSON object"),
            ("\"text\"", "not a JSON object"),
            (
                "{",
                "not JSON (EOF while parsing an object at line 1 column 1)",
            ),
            (r#"{"answer":"a","rating":"up"}"#, "\"question\" is missing"),
            (r#"{"question":"q","rating":"up"}"#, "\"answer\" is missing"),
            (r#"{"question":"q","answer":"a"}"#, "\"rating\" is missing"),
            (
                r#"{"question":"q","answer":"a","rating":"meh"}"#,
                "\"rating\" must be \"up\" or \"down\"",
            ),
            (
                r#"{"question":"q","answer":"a","rating":"up","x\n":1}"#,
                "unknown field \"x\\n\"",
            ),
            (
                r#"{"question":1,"answer":"a","rating":"up"}"#,
                "\"question\" must be a string",
            ),
            (
                r#"{"question":"q","answer":"a","rating":"up","correction":7}"#,
                "\"correction\" must be a string",
            ),
            (
                r#"{"question":"q","answer":"a","rating":"up","card_ids":"c"}"#,
                "\"card_ids\" must be an array of strings",
            ),
            (
                r#"{"question":"q","answer":"a","rating":"up","pack_versions":{"p":1}}"#,
                "\"pack_versions\" must be an object of name: version strings",
            ),
            (
                r#"{"question":"q","answer":"a","rating":"up","created_at_ms":-1}"#,
                "\"created_at_ms\" must be Unix milliseconds (an integer ≥ 0)",
            ),
            (
                r#"{"question":"q","answer":"a","rating":"up","created_at_ms":1.5}"#,
                "\"created_at_ms\" must be Unix milliseconds (an integer ≥ 0)",
            ),
        ] {
            let err = parse_line(line).unwrap_err();
            assert_eq!(err.to_string(), message, "{line}");
        }
        assert!(matches!(parse_line("{"), Err(LineError::NotJson(_))));
        assert!(matches!(
            parse_line(r#"{"question":"q","answer":"a","rating":"up","x":1}"#),
            Err(LineError::UnknownField(name)) if name == "x"
        ));
        assert!(matches!(
            parse_line(r#"{"question":"q","answer":"a","rating":"up","route":null}"#),
            Err(LineError::WrongType { field: "route", .. })
        ));
    }

    #[test]
    fn lines_are_numbered_from_one_blank_ones_included() {
        let file = "\n{\"question\":\"q1\",\"answer\":\"a\",\"rating\":\"up\"}\n  \n\
                    {\"question\":\"q2\",\"answer\":\"a\",\"rating\":\"sideways\"}\n";
        let mut read = records(file.as_bytes());
        assert_eq!(read.line(), 0);
        assert_eq!(read.next().unwrap().unwrap().question, "q1");
        assert_eq!(read.line(), 2);
        match read.next() {
            Some(Err(ImportError::Line {
                line: 4,
                error:
                    LineError::WrongType {
                        field: "rating", ..
                    },
            })) => {}
            other => panic!("{other:?}"),
        }
        assert!(read.next().is_none());
        assert_eq!(read.line(), 4);
        // A line that is not UTF-8 is a read error, numbered too.
        let bytes = b"{\"question\":\"q\",\"answer\":\"a\",\"rating\":\"up\"}\n\xff\n";
        let mut read = records(&bytes[..]);
        assert!(read.next().unwrap().is_ok());
        let err = read.next().unwrap().unwrap_err();
        assert!(matches!(err, ImportError::Read { line: 2, .. }), "{err:?}");
    }
}
