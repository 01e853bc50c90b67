//! Task presets: a rule that names a `task` has the model answer with that task's system
//! prompt, JSON Schema, token budget and temperature, and may attach knowledge cards chosen
//! by the answer's fields (the code attaches them, not the model).
//!
//! ```toml
//! [task.scam-check]
//! system_prompt = "You check messages for scams. …"
//! schema = '''{"type": "object", "properties": {"verdict": {"enum": ["scam", "suspicious", "safe"]}}, …}'''
//! max_tokens = 200
//! temperature = 0.0
//!
//! [[task.scam-check.attach]]      # after the answer: when `verdict` is one of `values`,
//! field = "verdict"               # the record `key` of `pack` follows as a card
//! values = ["scam", "suspicious"]
//! pack = "helplines"
//! key = "cyber crime helpline"
//!
//! [[rule]]
//! name = "scam-check-en"
//! pattern = '^is\s+this\s+a\s+scam\s*:?\s*\S.*$'
//! route = "generate"
//! task = "scam-check"
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RouterError;
use crate::engine::{GenerateParams, OutputConstraint};
use crate::text::normalize_query;

/// Longest task system prompt, in bytes.
pub const MAX_TASK_PROMPT_BYTES: usize = 8 * 1024;
/// Longest task schema, in bytes.
pub const MAX_TASK_SCHEMA_BYTES: usize = 64 * 1024;
/// Most tokens a task may give its answer.
pub const MAX_TASK_TOKENS: u32 = 4096;

/// A task as written in a rules file (`[task.NAME]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTask {
    system_prompt: String,
    schema: String,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    attach: Vec<Attachment>,
}

/// A card the code attaches after a task's answer, chosen by one of its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// A property of the answer's top-level object.
    pub field: String,
    /// The values of `field` that attach the card (strings, or numbers and booleans as JSON
    /// writes them).
    pub values: Vec<String>,
    /// The record's pack.
    pub pack: String,
    /// The record's key (normalized like the knowledge base's keys).
    pub key: String,
}

/// A task preset: how the model answers questions that a rule naming it matches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    /// The task's name (`[task.NAME]`).
    pub name: String,
    /// The system prompt the answer is written under (in place of the assistant's).
    pub system_prompt: String,
    /// The JSON Schema the answer follows.
    pub schema: String,
    /// Most tokens for the answer (else the assistant's setting).
    pub max_tokens: Option<u32>,
    /// Sampling temperature (else the assistant's setting).
    pub temperature: Option<f32>,
    /// Cards attached by the answer's fields.
    pub attach: Vec<Attachment>,
}

impl Task {
    /// Checks a task read from a file: a usable schema (converted to a grammar here, so a bad
    /// one fails when the rules load, not when a user asks), bounded prompt and budget.
    pub(super) fn compile(name: String, raw: RawTask) -> Result<Self, RouterError> {
        let invalid = |reason: String| RouterError::InvalidTask {
            task: name.clone(),
            reason,
        };
        if name.trim().is_empty() {
            return Err(invalid("the task name is empty".into()));
        }
        if raw.system_prompt.trim().is_empty() {
            return Err(invalid("`system_prompt` is empty".into()));
        }
        if raw.system_prompt.len() > MAX_TASK_PROMPT_BYTES {
            return Err(invalid(format!(
                "`system_prompt` is {} bytes, over the {MAX_TASK_PROMPT_BYTES}-byte limit",
                raw.system_prompt.len()
            )));
        }
        if raw.schema.len() > MAX_TASK_SCHEMA_BYTES {
            return Err(invalid(format!(
                "`schema` is {} bytes, over the {MAX_TASK_SCHEMA_BYTES}-byte limit",
                raw.schema.len()
            )));
        }
        OutputConstraint::JsonSchema(raw.schema.clone())
            .to_gbnf()
            .map_err(|e| invalid(format!("`schema` cannot be used: {e}")))?;
        if let Some(n) = raw.max_tokens {
            if n == 0 || n > MAX_TASK_TOKENS {
                return Err(invalid(format!(
                    "`max_tokens` must be from 1 to {MAX_TASK_TOKENS}, not {n}"
                )));
            }
        }
        if let Some(t) = raw.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(invalid(format!(
                    "`temperature` must be from 0 to 2, not {t}"
                )));
            }
        }
        let mut attach = raw.attach;
        for a in &mut attach {
            if a.field.is_empty() || a.values.is_empty() || a.pack.trim().is_empty() {
                return Err(invalid(
                    "an `attach` entry needs `field`, `values` and `pack`".into(),
                ));
            }
            a.key = normalize_query(&a.key);
            if a.key.is_empty() {
                return Err(invalid("an `attach` entry's `key` is empty".into()));
            }
        }
        Ok(Self {
            name,
            system_prompt: raw.system_prompt,
            schema: raw.schema,
            max_tokens: raw.max_tokens,
            temperature: raw.temperature,
            attach,
        })
    }

    /// `base` with this task's schema, token budget and temperature.
    pub fn params(&self, base: &GenerateParams) -> GenerateParams {
        let mut params = base.clone();
        params.constraint = Some(OutputConstraint::JsonSchema(self.schema.clone()));
        if let Some(n) = self.max_tokens {
            params.max_tokens = n;
        }
        if let Some(t) = self.temperature {
            params.sampling.temperature = t;
        }
        // A task's answer is data: no tool calls.
        params.tools.clear();
        params
    }

    /// The records (pack, key) to attach for `answer`, in the order written.
    pub fn attachments(&self, answer: &Value) -> Vec<(&str, &str)> {
        self.attach
            .iter()
            .filter(|a| {
                answer.get(&a.field).is_some_and(|v| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    a.values.contains(&text)
                })
            })
            .map(|a| (a.pack.as_str(), a.key.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(schema: &str, attach: Vec<Attachment>) -> Result<Task, RouterError> {
        Task::compile(
            "t".into(),
            RawTask {
                system_prompt: "Judge it.".into(),
                schema: schema.into(),
                max_tokens: Some(100),
                temperature: Some(0.0),
                attach,
            },
        )
    }

    const VERDICT: &str = r#"{"type":"object","properties":{"verdict":{"enum":["scam","safe"]},"score":{"type":"integer"}},"required":["verdict"]}"#;

    #[test]
    fn attachments_follow_the_answer_fields() {
        let t = task(
            VERDICT,
            vec![Attachment {
                field: "verdict".into(),
                values: vec!["scam".into(), "3".into()],
                pack: "helplines".into(),
                key: "Cyber Crime Helpline".into(),
            }],
        )
        .unwrap();
        let scam: Value = serde_json::json!({"verdict": "scam"});
        assert_eq!(
            t.attachments(&scam),
            vec![("helplines", "cyber crime helpline")]
        );
        assert!(t
            .attachments(&serde_json::json!({"verdict": "safe"}))
            .is_empty());
        assert!(t
            .attachments(&serde_json::json!({"other": "scam"}))
            .is_empty());
        assert!(t.attachments(&serde_json::json!("scam")).is_empty());
        let params = t.params(&GenerateParams::default());
        assert_eq!(params.max_tokens, 100);
        assert!(matches!(
            params.constraint,
            Some(OutputConstraint::JsonSchema(_))
        ));
    }

    #[test]
    fn bad_tasks_are_refused_with_the_reason() {
        let err = task("{not json", Vec::new()).unwrap_err().to_string();
        assert!(err.contains("`schema` cannot be used"), "{err}");
        let err = Task::compile(
            "t".into(),
            RawTask {
                system_prompt: " ".into(),
                schema: VERDICT.into(),
                max_tokens: None,
                temperature: None,
                attach: Vec::new(),
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("system_prompt"), "{err}");
        let bad_attach = Attachment {
            field: "verdict".into(),
            values: Vec::new(),
            pack: "helplines".into(),
            key: "x".into(),
        };
        assert!(task(VERDICT, vec![bad_attach]).is_err());
    }
}
