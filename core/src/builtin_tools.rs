//! The knowledge base as tools a model may call: `lookup(pack, key)` and `search(query)`.
//!
//! What they return reaches the app as `Card` events, like every other record, and reaches
//! the model as a tool result: compact JSON of the records, cut to the configured byte cap.
//! Facts come from the data; the model only chooses what to fetch.

use serde_json::{json, Value};

use crate::engine::{ToolCall, ToolSpec};
use crate::knowledge::{Card, KnowledgeBase, KnowledgeError};

/// Name of the built-in exact lookup.
pub const LOOKUP: &str = "lookup";
/// Name of the built-in search.
pub const SEARCH: &str = "search";

/// The built-in tools, exactly as answers offer them (an answer's tool equal to one of these
/// is run by the assistant, not sent to the app).
pub fn builtin_tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec::new(
            LOOKUP,
            "Fetch one record of the offline knowledge packs by its pack name and key \
             (for example pack \"thirukkural\", key \"1\").",
            &json!({
                "type": "object",
                "properties": {
                    "pack": {"type": "string", "maxLength": 64},
                    "key": {"type": "string", "maxLength": 64}
                },
                "required": ["pack", "key"]
            }),
        ),
        ToolSpec::new(
            SEARCH,
            "Search the offline knowledge packs; returns the best matching records.",
            &json!({
                "type": "object",
                "properties": {"query": {"type": "string", "maxLength": 100}},
                "required": ["query"]
            }),
        ),
    ]
}

/// Whether `tool` is one of [`builtin_tools`].
pub fn is_builtin(tool: &ToolSpec) -> bool {
    builtin_tools().iter().any(|b| b == tool)
}

/// Runs a built-in call: the records it found (for `Card` events) and the text the model
/// gets. A call with missing arguments is answered with an error text, not an error: the
/// model may try again.
pub fn run_builtin(
    kb: &KnowledgeBase,
    call: &ToolCall,
    search_limit: usize,
) -> Result<(Vec<Card>, String), KnowledgeError> {
    let arg = |name: &str| call.arguments.get(name).and_then(Value::as_str);
    let cards: Vec<Card> = match call.name.as_str() {
        LOOKUP => match (arg("pack"), arg("key")) {
            (Some(pack), Some(key)) => kb.lookup(pack, key)?.into_iter().collect(),
            _ => return Ok((Vec::new(), error_text("lookup needs a pack and a key"))),
        },
        SEARCH => match arg("query") {
            Some(query) if !query.trim().is_empty() => kb
                .retrieve(query, search_limit, None)?
                .hits
                .into_iter()
                .map(|h| h.card)
                .collect(),
            _ => return Ok((Vec::new(), error_text("search needs a query"))),
        },
        other => {
            return Ok((
                Vec::new(),
                error_text(&format!("no built-in tool {other:?}")),
            ))
        }
    };
    let text = if cards.is_empty() {
        json!({"records": [], "note": "nothing found"}).to_string()
    } else {
        let records: Vec<Value> = cards
            .iter()
            .map(|c| {
                json!({"pack": c.pack, "id": c.id, "title": c.title, "text": c.body, "source": c.source})
            })
            .collect();
        json!({ "records": records }).to_string()
    };
    Ok((cards, text))
}

fn error_text(message: &str) -> String {
    json!({ "error": message }).to_string()
}

/// `text` cut to at most `max` bytes at a character boundary, with a note when cut.
pub fn cap_result(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    const NOTE: &str = " …[cut]";
    let mut end = max.saturating_sub(NOTE.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    tracing::debug!(bytes = text.len(), max, "tool result cut to its cap");
    format!("{}{NOTE}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid_tools_and_recognised() {
        let tools = builtin_tools();
        crate::engine::tools::check_tools(&tools).unwrap();
        assert!(tools.iter().all(is_builtin));
        let mut imitation = tools[1].clone();
        imitation.description = "my own search".into();
        assert!(!is_builtin(&imitation));
    }

    #[test]
    fn results_are_cut_at_character_boundaries() {
        let text = "அறம்".repeat(100);
        let cut = cap_result(text.clone(), 50);
        assert!(cut.len() <= 50, "{}", cut.len());
        assert!(cut.ends_with("[cut]"));
        assert_eq!(cap_result("short".into(), 50), "short");
    }
}
