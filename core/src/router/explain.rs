//! Explain words: the words that ask for an explanation ("explain", "why", "what does",
//! `விளக்க*`). A question holding one goes Hybrid when it finds records, and the words
//! themselves are not searched for: they say what the user wants done, not what about.
//!
//! Each entry is a word or a phrase, compared word by word with the normalized query; an
//! entry ending in `*` matches any word that starts with its last word (Tamil inflects by
//! suffix: `விளக்க*` finds விளக்கம், விளக்கு, விளக்கவும்). Latin words of six letters or more
//! also match with one typing slip (`explian`, `meening`): shorter ones would catch real words
//! (`meat` is not `meant`), and so would Tamil ones (`மருத்துவமனை`, hospital, is one code
//! point from `கருத்த*`).

use super::RouterError;
use crate::knowledge::query::is_word_char;
use crate::text::{edit_distance, normalize_query};

/// Shortest word compared with one slip allowed.
const FUZZY_LETTERS: usize = 6;

/// Whether query word `w` is explain word `p` (a prefix when `prefix`).
fn word_matches(w: &str, p: &str, prefix: bool) -> bool {
    if (prefix && w.starts_with(p)) || w == p {
        return true;
    }
    // Slips are Latin typing's: in Tamil one code point is a vowel sign or a consonant of a
    // syllable, and one changed (மருத்த for கருத்த) is another word.
    if !w.is_ascii() || !p.is_ascii() {
        return false;
    }
    let (wn, pn) = (w.chars().count(), p.chars().count());
    if wn < FUZZY_LETTERS || pn < FUZZY_LETTERS {
        return false;
    }
    if prefix {
        // The word's beginning, one letter longer or shorter than the stem for a slip that
        // adds or drops a letter.
        (pn.saturating_sub(1)..=pn + 1).any(|n| {
            let head: String = w.chars().take(n).collect();
            head.chars().count() == n && edit_distance(&head, p, 1).is_some()
        })
    } else {
        edit_distance(w, p, 1).is_some()
    }
}

/// The configured explain words, ready to match.
#[derive(Debug, Clone, Default)]
pub struct ExplainWords {
    /// Each entry's words; `true` when its last word is a prefix.
    phrases: Vec<(Vec<String>, bool)>,
}

fn split(text: &str) -> Vec<&str> {
    text.split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
        .collect()
}

impl ExplainWords {
    /// Parses the `explain_words` setting.
    pub fn parse(entries: &[String]) -> Result<Self, RouterError> {
        let mut phrases = Vec::with_capacity(entries.len());
        for entry in entries {
            let (text, prefix) = match entry.trim().strip_suffix('*') {
                Some(stem) => (stem, true),
                None => (entry.as_str(), false),
            };
            let normalized = normalize_query(text);
            let words: Vec<String> = split(&normalized).into_iter().map(str::to_owned).collect();
            if words.is_empty() {
                return Err(RouterError::InvalidSettings(format!(
                    "explain word {entry:?} is empty"
                )));
            }
            phrases.push((words, prefix));
        }
        // Longest phrases first, so that "what does" is taken whole.
        phrases.sort_by_key(|(words, _)| std::cmp::Reverse(words.len()));
        Ok(Self { phrases })
    }

    /// The words of `query` (normalized) without its explain words, space-separated, and
    /// whether it had any.
    pub fn strip(&self, query: &str) -> (String, bool) {
        let words = split(query);
        let mut kept = Vec::with_capacity(words.len());
        let mut found = false;
        let mut i = 0;
        'words: while i < words.len() {
            for (phrase, prefix) in &self.phrases {
                let n = phrase.len();
                if i + n > words.len() {
                    continue;
                }
                let matches = phrase
                    .iter()
                    .enumerate()
                    .all(|(j, p)| word_matches(words[i + j], p, *prefix && j == n - 1));
                if matches {
                    found = true;
                    i += n;
                    continue 'words;
                }
            }
            kept.push(words[i]);
            i += 1;
        }
        (kept.join(" "), found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(entries: &[&str]) -> ExplainWords {
        ExplainWords::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn whole_words_phrases_and_prefixes() {
        let w = words(&["why", "what does", "விளக்க*", "explain*"]);
        assert_eq!(w.strip("why rivers"), ("rivers".into(), true));
        assert_eq!(w.strip("rivers, why?"), ("rivers".into(), true));
        assert_eq!(w.strip("whyte rivers"), ("whyte rivers".into(), false));
        assert_eq!(w.strip("what does it mean"), ("it mean".into(), true));
        assert_eq!(w.strip("what it does"), ("what it does".into(), false));
        assert_eq!(w.strip("நதி விளக்குக"), ("நதி".into(), true));
        assert_eq!(w.strip("explained kural 5"), ("kural 5".into(), true));
        // One slip in a long word; none in a short one.
        let w = words(&["explain*", "meaning", "meant", "why"]);
        assert_eq!(w.strip("explian kural 3"), ("kural 3".into(), true));
        assert_eq!(w.strip("kural 1 meening"), ("kural 1".into(), true));
        assert_eq!(w.strip("eating meat"), ("eating meat".into(), false));
        assert_eq!(w.strip("whx rivers"), ("whx rivers".into(), false));
        // Tamil letters take no slip: hospital is not "opinion".
        let w = words(&["கருத்த*"]);
        assert_eq!(w.strip("மருத்துவமனை போக"), ("மருத்துவமனை போக".into(), false));
        assert_eq!(w.strip("கருத்து என்ன"), ("என்ன".into(), true));
        assert!(ExplainWords::parse(&["*".to_owned()]).is_err());
    }
}
