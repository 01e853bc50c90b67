//! Snippets: the part of a record's body where a query's words are, matches in `[` `]`, cut
//! from the original text (the index holds only analyzed terms).

use std::collections::HashSet;

use super::analyzer;
use super::index::TermCache;
use super::query::is_word_char;

/// Words in a snippet.
pub const SNIPPET_WORDS: usize = 16;
/// Words of a body looked at when choosing the snippet; a long body's later words are not.
const SCAN_WORDS: usize = 2_000;

/// The `SNIPPET_WORDS`-word window of `body` holding the most distinct query terms (the
/// earliest such window), matched words in brackets, `…` where text was cut. A body without a
/// match gives its opening words.
pub fn snippet(body: &str, query_terms: &HashSet<String>, cache: &mut TermCache) -> String {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in body.char_indices() {
        match (is_word_char(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
                if spans.len() == SCAN_WORDS {
                    break;
                }
            }
            _ => {}
        }
    }
    if let (Some(s), true) = (start, spans.len() < SCAN_WORDS) {
        spans.push((s, body.len()));
    }
    if spans.is_empty() {
        return String::new();
    }
    // Which term each word matches, if any.
    let matched: Vec<Option<String>> = spans
        .iter()
        .map(|&(s, e)| {
            let terms = cache.analyze(&body[s..e]);
            terms
                .split(' ')
                .find(|t| query_terms.contains(*t))
                .map(str::to_owned)
        })
        .collect();
    let window = SNIPPET_WORDS.min(spans.len());
    let distinct_in = |from: usize| {
        matched[from..from + window]
            .iter()
            .flatten()
            .collect::<HashSet<_>>()
            .len()
    };
    let mut best = (0, distinct_in(0));
    for from in 1..=spans.len() - window {
        let n = distinct_in(from);
        if n > best.1 {
            best = (from, n);
        }
    }
    // Slide right so the first match has a little context before it (the window loses only
    // unmatched words on its left).
    let first_match = (best.0..best.0 + window)
        .find(|&i| matched[i].is_some())
        .unwrap_or(best.0);
    let first = first_match
        .saturating_sub(3)
        .clamp(best.0, spans.len() - window);
    let last = first + window - 1;
    let mut out = String::new();
    if first > 0 {
        out.push('…');
    }
    let mut cursor = spans[first].0;
    for (i, &(s, e)) in spans.iter().enumerate().take(last + 1).skip(first) {
        out.push_str(&body[cursor..s]);
        if matched[i].is_some() {
            out.push('[');
            out.push_str(&body[s..e]);
            out.push(']');
        } else {
            out.push_str(&body[s..e]);
        }
        cursor = e;
    }
    if spans[last].1 < body.len() {
        let rest = &body[spans[last].1..];
        if rest.chars().any(is_word_char) {
            out.push('…');
        } else {
            out.push_str(rest);
        }
    }
    out
}

/// The index terms of a query's words, for [`snippet`].
pub fn query_terms(words: &[analyzer::QueryWord]) -> HashSet<String> {
    words
        .iter()
        .filter(|w| !w.stop)
        .flat_map(|w| w.terms.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snip(body: &str, query: &str) -> String {
        let words = analyzer::query_words(query);
        snippet(body, &query_terms(&words), &mut TermCache::default())
    }

    #[test]
    fn matches_are_bracketed_in_the_original_text() {
        assert_eq!(
            snip(
                "The Kaveri river flows; Rivers of Tamil Nadu.",
                "rivers kaveri"
            ),
            "The [Kaveri] [river] flows; [Rivers] of Tamil Nadu."
        );
        assert_eq!(snip("நட்பின் பெருமை", "நட்பு"), "[நட்பின்] பெருமை");
    }

    #[test]
    fn long_bodies_are_cut_around_the_matches() {
        // Consonants only: the English stemmer leaves such words as they are.
        const C: &[u8] = b"bcdfgjklmnpqrtvwxz";
        let word = |i: u8| {
            let (a, b) = (C[usize::from(i) / C.len()], C[usize::from(i) % C.len()]);
            format!("q{}{}", char::from(a), char::from(b))
        };
        let body = (0..100).map(word).collect::<Vec<_>>().join(" ");
        let s = snip(&body, &word(50));
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains(&format!("[{}]", word(50))), "{s}");
        assert_eq!(s.matches('[').count(), 1);
        assert_eq!(s.split_whitespace().count(), SNIPPET_WORDS);
        let none = snip(&body, "absent");
        assert!(none.starts_with("qbb qbc") && none.ends_with('…'), "{none}");
    }
}
