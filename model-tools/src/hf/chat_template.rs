//! The chat template of a Hugging Face model directory, found by one rule for every reader:
//! `convert` writes it into the GGUF, `audit-tokenizer` checks it and `train` renders the
//! conversations with it, so the template a model is trained with is the one it ships with.
//!
//! The rule is `transformers`' (`PreTrainedTokenizerBase.from_pretrained`): a separate
//! template file takes priority over the entry in the tokenizer config.
//! 1. `chat_template.jinja`, with each `additional_chat_templates/<name>.jinja` as a named
//!    template beside it (the main one is then named `default`);
//! 2. `tokenizer_config.json`'s `chat_template`: a string, or a list of
//!    `{"name": …, "template": …}` objects;
//! 3. `chat_template.json`'s `chat_template` (the file processors saved), in the same forms.
//!
//! A `null` entry, a list without one usable template, or an entry of another type counts as
//! none (the last with a warning), and the next source is tried.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{
    read_json_if_exists, HfError, ADDITIONAL_CHAT_TEMPLATES, CHAT_TEMPLATE_JINJA,
    CHAT_TEMPLATE_JSON, TOKENIZER_CONFIG_JSON,
};

/// A chat template: one, or several by name (`default` is the main one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTemplate {
    /// A single template.
    Single(String),
    /// Named templates, `(name, template)` in file order.
    Named(Vec<(String, String)>),
}

impl ChatTemplate {
    /// The template used when none is asked for by name: the single one, else the one named
    /// `default`, else the first.
    pub fn main(&self) -> Option<&str> {
        match self {
            ChatTemplate::Single(text) => Some(text),
            ChatTemplate::Named(list) => list
                .iter()
                .find(|(name, _)| name == "default")
                .or_else(|| list.first())
                .map(|(_, text)| text.as_str()),
        }
    }
}

/// A chat template and the file it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundChatTemplate {
    /// The template(s).
    pub template: ChatTemplate,
    /// The file name it came from ([`CHAT_TEMPLATE_JINJA`], [`TOKENIZER_CONFIG_JSON`] or
    /// [`CHAT_TEMPLATE_JSON`]).
    pub source: &'static str,
}

/// Finds the chat template of the model directory `dir` by the rule in the module docs.
/// `tokenizer_config` is the parsed `tokenizer_config.json` object, if the directory has one.
/// `Ok(None)` when there is no template; `Err` only when a template file exists but cannot be
/// read or parsed.
pub fn load_chat_template(
    dir: &Path,
    tokenizer_config: Option<&Map<String, Value>>,
) -> Result<Option<FoundChatTemplate>, HfError> {
    let jinja = dir.join(CHAT_TEMPLATE_JINJA);
    if jinja.is_file() {
        return Ok(Some(FoundChatTemplate {
            template: jinja_templates(dir, &jinja)?,
            source: CHAT_TEMPLATE_JINJA,
        }));
    }
    if let Some(entry) = tokenizer_config.and_then(|c| c.get("chat_template")) {
        if let Some(template) = template_entry(entry, TOKENIZER_CONFIG_JSON) {
            return Ok(Some(FoundChatTemplate {
                template,
                source: TOKENIZER_CONFIG_JSON,
            }));
        }
    }
    if let Some(json) = read_json_if_exists(&dir.join(CHAT_TEMPLATE_JSON))? {
        if let Some(template) = json
            .get("chat_template")
            .and_then(|entry| template_entry(entry, CHAT_TEMPLATE_JSON))
        {
            return Ok(Some(FoundChatTemplate {
                template,
                source: CHAT_TEMPLATE_JSON,
            }));
        }
    }
    Ok(None)
}

/// `chat_template.jinja`, named `default` beside the sorted
/// `additional_chat_templates/*.jinja` when there are any.
fn jinja_templates(dir: &Path, jinja: &Path) -> Result<ChatTemplate, HfError> {
    let main = read_text(jinja)?;
    let mut extra: Vec<PathBuf> = std::fs::read_dir(dir.join(ADDITIONAL_CHAT_TEMPLATES))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jinja"))
                .collect()
        })
        .unwrap_or_default();
    if extra.is_empty() {
        return Ok(ChatTemplate::Single(main));
    }
    extra.sort();
    let mut list = vec![("default".to_owned(), main)];
    for path in extra {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        list.push((name, read_text(&path)?));
    }
    Ok(ChatTemplate::Named(list))
}

/// A `chat_template` JSON entry of the file `file`; `None` for null, a list without a usable
/// template, or another type (warned about).
fn template_entry(entry: &Value, file: &str) -> Option<ChatTemplate> {
    match entry {
        Value::String(text) => Some(ChatTemplate::Single(text.clone())),
        Value::Array(list) => {
            let named: Vec<(String, String)> = list
                .iter()
                .filter_map(|item| {
                    let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                    let template = item.get("template").and_then(Value::as_str)?;
                    Some((name.to_owned(), template.to_owned()))
                })
                .collect();
            (!named.is_empty()).then_some(ChatTemplate::Named(named))
        }
        Value::Null => None,
        _ => {
            tracing::warn!(
                file,
                "chat_template is neither a string nor a list; ignored"
            );
            None
        }
    }
}

fn read_text(path: &Path) -> Result<String, HfError> {
    std::fs::read_to_string(path).map_err(|source| HfError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(value: Value) -> Map<String, Value> {
        value.as_object().expect("object").clone()
    }

    fn load(dir: &Path, tokenizer_config: Option<Value>) -> Option<FoundChatTemplate> {
        let tokenizer_config = tokenizer_config.map(config);
        load_chat_template(dir, tokenizer_config.as_ref()).expect("load")
    }

    #[test]
    fn the_jinja_file_wins_over_the_tokenizer_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(CHAT_TEMPLATE_JINJA), "J").expect("write");
        let found = load(dir.path(), Some(json!({"chat_template": "T"}))).expect("template");
        assert_eq!(found.source, CHAT_TEMPLATE_JINJA);
        assert_eq!(found.template, ChatTemplate::Single("J".into()));
    }

    #[test]
    fn additional_templates_are_named_beside_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(CHAT_TEMPLATE_JINJA), "J").expect("write");
        let extra = dir.path().join(ADDITIONAL_CHAT_TEMPLATES);
        std::fs::create_dir(&extra).expect("mkdir");
        std::fs::write(extra.join("tool_use.jinja"), "T").expect("write");
        std::fs::write(extra.join("notes.txt"), "not a template").expect("write");
        std::fs::write(extra.join("rag.jinja"), "R").expect("write");
        let found = load(dir.path(), None).expect("template");
        assert_eq!(
            found.template,
            ChatTemplate::Named(vec![
                ("default".into(), "J".into()),
                ("rag".into(), "R".into()),
                ("tool_use".into(), "T".into()),
            ])
        );
        assert_eq!(found.template.main(), Some("J"));
    }

    #[test]
    fn tokenizer_config_string_and_named_list() {
        let dir = tempfile::tempdir().expect("tempdir");
        let found = load(dir.path(), Some(json!({"chat_template": "T"}))).expect("template");
        assert_eq!(found.source, TOKENIZER_CONFIG_JSON);
        assert_eq!(found.template.main(), Some("T"));

        let list = json!({"chat_template": [
            {"name": "tool_use", "template": "U"},
            {"name": "default", "template": "D"},
            {"name": "broken"}
        ]});
        let found = load(dir.path(), Some(list)).expect("template");
        assert_eq!(
            found.template,
            ChatTemplate::Named(vec![
                ("tool_use".into(), "U".into()),
                ("default".into(), "D".into())
            ])
        );
        assert_eq!(found.template.main(), Some("D"));
        // Without a `default`, the first one is the main template.
        let list = json!({"chat_template": [{"name": "a", "template": "A"}]});
        let found = load(dir.path(), Some(list)).expect("template");
        assert_eq!(found.template.main(), Some("A"));
    }

    #[test]
    fn chat_template_json_is_the_last_resort() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(CHAT_TEMPLATE_JSON),
            json!({"chat_template": [{"name": "default", "template": "P"}]}).to_string(),
        )
        .expect("write");
        let found = load(dir.path(), Some(json!({"chat_template": "T"}))).expect("template");
        assert_eq!(found.source, TOKENIZER_CONFIG_JSON);
        // A null, empty or mistyped tokenizer_config entry falls through to it.
        for entry in [json!(null), json!([]), json!(42)] {
            let found = load(dir.path(), Some(json!({ "chat_template": entry }))).expect("found");
            assert_eq!(found.source, CHAT_TEMPLATE_JSON);
            assert_eq!(found.template.main(), Some("P"));
        }
        assert_eq!(
            load(dir.path(), None).expect("found").source,
            CHAT_TEMPLATE_JSON
        );
    }

    #[test]
    fn no_template_anywhere() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path(), None), None);
        assert_eq!(load(dir.path(), Some(json!({"bos_token": "<s>"}))), None);
    }

    #[test]
    fn an_unreadable_template_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(CHAT_TEMPLATE_JSON), "{not json").expect("write");
        assert!(load_chat_template(dir.path(), None).is_err());
    }
}
