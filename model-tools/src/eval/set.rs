//! Eval sets: JSON-lines files of prompts (scored answers) and held-out texts (perplexity,
//! divergence from a reference), with the set's own absolute thresholds.
//!
//! ```text
//! {"eval_set": {"name": "tamil", "language": "ta", "script": "tamil",
//!               "thresholds": {"min_script_share": 0.5, "min_keyword_share": 0.2}}}
//! {"id": "kural-1", "prompt": "திருக்குறளின் முதல் குறள் எது?", "keywords": ["அகர"]}
//! {"id": "ta-news-1", "text": "சென்னை தமிழ்நாட்டின் தலைநகரம் ..."}
//! ```
//!
//! The first line describes the set; every later line is a prompt (`prompt`) or a held-out
//! text (`text`). A prompt may override the set's `script`, add a `system` message, list
//! `keywords` (case-insensitive; the share found is reported) and cap `max_tokens`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::script::Script;

/// Absolute thresholds that belong to one eval set (see `docs/decisions/0009-model-gate.md`:
/// they are set per set from what a good model does, and never loosened to let a model pass).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SetThresholds {
    /// Least mean share of the expected script's letters in the answers.
    pub min_script_share: Option<f64>,
    /// Least mean share of expected keywords found.
    pub min_keyword_share: Option<f64>,
    /// Most answers (share) allowed to loop.
    pub max_loop_share: Option<f64>,
    /// Most answers (share) allowed to be empty.
    pub max_empty_share: Option<f64>,
    /// Most answers (share) allowed to leak template tokens.
    pub max_leak_share: Option<f64>,
    /// Most answers (share) allowed to merely repeat the prompt.
    pub max_echo_share: Option<f64>,
    /// Largest perplexity on the held-out texts.
    pub max_perplexity: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    eval_set: HeaderBody,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderBody {
    name: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    script: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    thresholds: SetThresholds,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: String,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    script: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    max_tokens: Option<u32>,
}

/// One prompt whose answer is scored.
#[derive(Debug, Clone, Serialize)]
pub struct EvalPrompt {
    /// Stable id, unique in the set.
    pub id: String,
    /// The user message.
    pub prompt: String,
    /// An optional system message.
    pub system: Option<String>,
    /// The script the answer should be written in.
    pub script: Option<Script>,
    /// Words the answer should contain.
    pub keywords: Vec<String>,
    /// Cap on the answer's length in tokens.
    pub max_tokens: Option<u32>,
}

/// One held-out text for perplexity and divergence.
#[derive(Debug, Clone, Serialize)]
pub struct HeldOutText {
    /// Stable id, unique in the set.
    pub id: String,
    /// The text, scored as plain text.
    pub text: String,
}

/// A loaded eval set.
#[derive(Debug, Clone, Serialize)]
pub struct EvalSet {
    /// Set name.
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// Language code, e.g. `ta`.
    pub language: Option<String>,
    /// Free-text description.
    pub description: Option<String>,
    /// The set's absolute thresholds.
    pub thresholds: SetThresholds,
    /// Prompts.
    pub prompts: Vec<EvalPrompt>,
    /// Held-out texts.
    pub texts: Vec<HeldOutText>,
}

/// Why an eval set could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {reason}")]
pub struct SetError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (0 for the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl EvalSet {
    /// Reads and checks an eval set file.
    pub fn load(path: &Path) -> Result<EvalSet, SetError> {
        let err = |line: usize, reason: String| SetError {
            path: path.to_owned(),
            line,
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(0, e.to_string()))?;
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty());
        let (n, first) = lines.next().ok_or_else(|| {
            err(
                0,
                "empty file: the first line must be {\"eval_set\": {...}}".into(),
            )
        })?;
        let header: Header = serde_json::from_str(first).map_err(|e| {
            err(
                n,
                format!("the first line must be {{\"eval_set\": {{...}}}}: {e}"),
            )
        })?;
        let set_script = match &header.eval_set.script {
            Some(name) => Some(parse_script(name).map_err(|r| err(n, r))?),
            None => match &header.eval_set.language {
                Some(lang) => Script::for_language(lang),
                None => None,
            },
        };
        let mut set = EvalSet {
            name: header.eval_set.name,
            path: path.to_owned(),
            language: header.eval_set.language,
            description: header.eval_set.description,
            thresholds: header.eval_set.thresholds,
            prompts: Vec::new(),
            texts: Vec::new(),
        };
        let mut ids = std::collections::HashSet::new();
        for (n, raw) in lines {
            let line: Line = serde_json::from_str(raw).map_err(|e| err(n, e.to_string()))?;
            if !ids.insert(line.id.clone()) {
                return Err(err(n, format!("id {:?} appears twice", line.id)));
            }
            match (line.prompt, line.text) {
                (Some(prompt), None) if !prompt.trim().is_empty() => {
                    let script = match &line.script {
                        Some(name) => Some(parse_script(name).map_err(|r| err(n, r))?),
                        None => set_script,
                    };
                    set.prompts.push(EvalPrompt {
                        id: line.id,
                        prompt,
                        system: line.system,
                        script,
                        keywords: line.keywords,
                        max_tokens: line.max_tokens,
                    });
                }
                (None, Some(text)) if !text.trim().is_empty() => {
                    set.texts.push(HeldOutText { id: line.id, text })
                }
                _ => {
                    return Err(err(
                        n,
                        "each line needs exactly one non-empty \"prompt\" or \"text\"".into(),
                    ))
                }
            }
        }
        if set.prompts.is_empty() && set.texts.is_empty() {
            return Err(err(0, "the set has no prompts and no texts".into()));
        }
        Ok(set)
    }
}

fn parse_script(name: &str) -> Result<Script, String> {
    Script::parse(name).ok_or_else(|| format!("unknown script {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("set.jsonl");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn reads_prompts_texts_and_thresholds() {
        let (_dir, path) = write(concat!(
            "{\"eval_set\": {\"name\": \"t\", \"language\": \"ta\", \"thresholds\": {\"min_script_share\": 0.5}}}\n",
            "{\"id\": \"a\", \"prompt\": \"வணக்கம்\", \"keywords\": [\"வணக்கம்\"]}\n",
            "\n",
            "{\"id\": \"b\", \"prompt\": \"Hello\", \"script\": \"latin\", \"max_tokens\": 8}\n",
            "{\"id\": \"c\", \"text\": \"சென்னை\"}\n",
        ));
        let set = EvalSet::load(&path).expect("load");
        assert_eq!(set.prompts.len(), 2);
        assert_eq!(set.texts.len(), 1);
        assert_eq!(set.prompts[0].script, Some(Script::Tamil));
        assert_eq!(set.prompts[1].script, Some(Script::Latin));
        assert_eq!(set.thresholds.min_script_share, Some(0.5));
    }

    #[test]
    fn bad_sets_are_refused_with_the_line() {
        for (body, needle) in [
            ("", "empty file"),
            ("{\"name\": \"x\"}\n", ":1:"),
            ("{\"eval_set\": {\"name\": \"x\"}}\n{\"id\": \"a\"}\n", ":2:"),
            ("{\"eval_set\": {\"name\": \"x\"}}\n{\"id\": \"a\", \"prompt\": \"p\"}\n{\"id\": \"a\", \"text\": \"t\"}\n", "twice"),
            ("{\"eval_set\": {\"name\": \"x\", \"script\": \"klingon\"}}\n{\"id\": \"a\", \"prompt\": \"p\"}\n", "klingon"),
            ("{\"eval_set\": {\"name\": \"x\", \"thresholds\": {\"min_scrpt\": 1}}}\n", "min_scrpt"),
        ] {
            let (_dir, path) = write(body);
            let err = EvalSet::load(&path).expect_err(body);
            assert!(err.to_string().contains(needle), "{body:?}: {err}");
        }
    }
}
