//! Records as the model reads them: the user turn that quotes the records an answer explains,
//! each body cut to fit the model's context.
//!
//! A record body may be far longer than a small model's context (bodies are accepted up to
//! 64 KiB). Rather than fail, [`fit_prompt`] shrinks the quoted bodies until the user turn fits
//! both the engine's message cap and its context (measured with the model's own tokenizer),
//! cutting each at a line or word boundary and saying so with [`CUT_MARKER`]. The user still
//! sees every card whole: only the model's copy is cut.

use crate::engine::{Engine, EngineError};
use crate::knowledge::Card;

/// Ends a body that was cut to fit.
pub const CUT_MARKER: &str = "[… the rest of this record is left out here]";

/// Tokens kept free for the system prompt, the chat template and earlier turns.
const RESERVED_TOKENS: usize = 256;

/// The user turn for `question`: with `records`, each body cut to at most `body_bytes` in all
/// (shared among them; a short body leaves its share to the others). No records: the
/// question alone.
pub fn grounded_prompt(question: &str, records: &[Card], body_bytes: usize) -> String {
    if records.is_empty() {
        return question.to_owned();
    }
    let caps = shares(records, body_bytes);
    let mut prompt =
        String::from("Records from the knowledge base (the user already sees them verbatim):\n");
    for (i, (card, cap)) in records.iter().zip(caps).enumerate() {
        prompt.push_str(&format!(
            "\n[{}] {}\n{}\n",
            i + 1,
            card.title,
            cut(&card.body, cap)
        ));
    }
    prompt.push_str(&format!(
        "\nUsing only these records, explain in simple words; do not copy them out again.\nQuestion: {question}"
    ));
    prompt
}

/// Each body's byte cap: equal shares of `total`, a short body's unused share going to the
/// longer ones.
fn shares(records: &[Card], total: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by_key(|&i| records[i].body.len());
    let mut caps = vec![0; records.len()];
    let mut left = total;
    for (done, &i) in order.iter().enumerate() {
        let share = left / (records.len() - done);
        caps[i] = records[i].body.len().min(share);
        left -= caps[i];
    }
    caps
}

/// `body` cut to at most `max` bytes (plus the marker), at a line break or space when one is
/// near the end.
fn cut(body: &str, max: usize) -> String {
    if body.len() <= max {
        return body.to_owned();
    }
    let mut end = max;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let head = &body[..end];
    let near = end.saturating_sub(end / 5);
    let end = head
        .rfind('\n')
        .filter(|&i| i >= near)
        .or_else(|| head.rfind(' ').filter(|&i| i >= near))
        .unwrap_or(end);
    format!("{}\n{CUT_MARKER}", body[..end].trim_end())
}

/// The grounded user turn for `engine`: bodies shrunk until it fits the engine's message cap
/// and leaves `max_tokens` (plus room for the system prompt and template) in its context.
pub fn fit_prompt(
    engine: &Engine,
    question: &str,
    records: &[Card],
    max_tokens: usize,
) -> Result<String, EngineError> {
    if records.is_empty() {
        return Ok(question.to_owned());
    }
    let n_ctx = engine.info().plan.n_ctx as usize;
    let budget = n_ctx
        .saturating_sub(max_tokens)
        .saturating_sub(RESERVED_TOKENS)
        .max(n_ctx / 4);
    let overhead =
        grounded_prompt(question, records, 0).len() + records.len() * (CUT_MARKER.len() + 2);
    let full: usize = records.iter().map(|c| c.body.len()).sum();
    let mut body_bytes = full.min(engine.max_prompt_bytes().saturating_sub(overhead));
    for _ in 0..6 {
        let prompt = grounded_prompt(question, records, body_bytes);
        let tokens = engine.tokenize(&prompt)?.len();
        if tokens <= budget || body_bytes == 0 {
            return Ok(prompt);
        }
        // Scale the bodies by how far over we are, with a margin.
        let ratio = budget as f64 / tokens as f64 * 0.9;
        body_bytes = ((body_bytes as f64) * ratio) as usize;
    }
    Ok(grounded_prompt(question, records, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(title: &str, body: &str) -> Card {
        Card {
            pack: "p".into(),
            pack_title: String::new(),
            pack_version: "1".into(),
            licence: String::new(),
            id: title.into(),
            title: title.into(),
            body: body.into(),
            lang: String::new(),
            tags: Vec::new(),
            source: String::new(),
        }
    }

    #[test]
    fn bodies_are_cut_with_a_marker_and_short_ones_kept() {
        let long = "line one of a long record\n".repeat(4_000);
        let records = [card("short", "கண் ஒளி"), card("long", &long)];
        let prompt = grounded_prompt("why", &records, 1_000);
        assert!(prompt.contains("கண் ஒளி"));
        assert!(prompt.contains(CUT_MARKER));
        assert!(prompt.len() < 1_500, "{}", prompt.len());
        // Cut at a line break, never inside a character.
        let tamil = "தமிழ் ".repeat(1_000);
        let cut_body = cut(&tamil, 101);
        assert!(cut_body.ends_with(CUT_MARKER));
        assert!(cut_body.starts_with("தமிழ் தமிழ்"));
        assert_eq!(grounded_prompt("hi", &[], 10), "hi");
    }

    #[test]
    fn shares_go_to_the_bodies_that_need_them() {
        let records = [card("a", &"x".repeat(10)), card("b", &"y".repeat(500))];
        assert_eq!(shares(&records, 200), vec![10, 190]);
    }
}
