//! Turning user text into a safe FTS5 query.
//!
//! User text never becomes FTS syntax: the text is cut into words the way the index's
//! tokenizer cuts it (letters, numbers, marks and private-use characters form words; everything
//! else separates them), and each word is emitted as a quoted string with a prefix star —
//! `"கண்"*` — so `AND`, `NEAR(`, `col:x`, `*`, `"` and friends are only ever words or nothing.
//! The prefix star lets a word find the longer words that extend it (`கண்` finds `கண்கள்`,
//! "eyes") without matching mid-letter: the virama in `கண்` is part of the word, so `கணினி`
//! (`க ண ி …`) does not start with it.

use crate::text::normalize_query;

/// Most words taken from one query.
pub const MAX_QUERY_WORDS: usize = 32;

/// Whether `c` is a word character for the index's `unicode61 categories 'L* N* Co M*'`.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || unicode_normalization::char::is_combining_mark(c)
        || matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}')
}

/// The words of `text` after query normalization (NFC, case-folded, ASCII digits).
pub fn words(text: &str) -> Vec<String> {
    normalize_query(text)
        .split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
        .take(MAX_QUERY_WORDS)
        .map(str::to_owned)
        .collect()
}

/// The FTS5 MATCH expression for `text` with every word as a prefix, or `None` when it has no
/// words.
pub fn fts_match(text: &str) -> Option<String> {
    expression(text, "*")
}

/// The same with whole words only: much cheaper for short, common words, whose prefix expands
/// to many index terms. Search tries it first and adds prefix matches only when it finds too
/// few.
pub fn fts_match_exact(text: &str) -> Option<String> {
    expression(text, "")
}

fn expression(text: &str, suffix: &str) -> Option<String> {
    let words = words(text);
    if words.is_empty() {
        return None;
    }
    Some(
        words
            .iter()
            .map(|w| format!("\"{}\"{suffix}", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Whether every query word starts some word of `text` at a whole letter: the character after
/// the match must not be a combining mark. FTS5's prefix query `"கண"*` also matches `கணினி`
/// (`க ண ி …`) and `கண்கள்` (`க ண ் …`), cutting a letter in two; this check drops such hits.
pub fn matches_whole_letters(query_words: &[String], text: &str) -> bool {
    let text = normalize_query(text);
    let text_words: Vec<&str> = text
        .split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
        .collect();
    query_words.iter().all(|q| {
        text_words.iter().any(|w| {
            w.strip_prefix(q.as_str()).is_some_and(|rest| {
                !rest
                    .chars()
                    .next()
                    .is_some_and(unicode_normalization::char::is_combining_mark)
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_in_user_text_becomes_words() {
        assert_eq!(
            fts_match("multi-agent").as_deref(),
            Some("\"multi\"* \"agent\"*")
        );
        assert_eq!(fts_match("a'b").as_deref(), Some("\"a\"* \"b\"*"));
        assert_eq!(
            fts_match("NEAR(x y) AND col:foo").as_deref(),
            Some("\"near\"* \"x\"* \"y\"* \"and\"* \"col\"* \"foo\"*")
        );
        assert_eq!(fts_match("\""), None);
        assert_eq!(fts_match("*"), None);
        assert_eq!(fts_match(""), None);
    }

    #[test]
    fn tamil_words_stay_whole() {
        assert_eq!(words("தமிழ் மொழி"), vec!["தமிழ்", "மொழி"]);
        assert_eq!(words("குறள் ௧௨"), vec!["குறள்", "12"]);
        assert_eq!(words("हिन्दी भाषा"), vec!["हिन्दी", "भाषा"]);
    }

    #[test]
    fn prefixes_must_end_at_a_whole_letter() {
        let q = |s: &str| words(s);
        assert!(matches_whole_letters(&q("கண்"), "கண்கள் இரண்டு"));
        assert!(!matches_whole_letters(&q("கண்"), "கணினி"));
        assert!(!matches_whole_letters(&q("கண"), "கணினி கண்கள்"));
        assert!(matches_whole_letters(&q("rive"), "Rivers of India"));
        assert!(!matches_whole_letters(&q("ह"), "हिन्दी"));
    }

    #[test]
    fn long_queries_are_capped() {
        assert_eq!(words(&"word ".repeat(1000)).len(), MAX_QUERY_WORDS);
    }
}
