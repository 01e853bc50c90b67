//! Scores one generated answer: script share, loops, leaked template tokens, emptiness and
//! expected keywords.
//!
//! These are the symptoms real quantized models showed — an answer in the wrong script, the
//! same phrase forever, `<|im_end|>` printed as text, nothing at all — so each is measured on
//! its own and reported per answer. `model-tools train` scores its in-training samples with
//! the same functions.

use std::collections::HashSet;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use crate::data::TEMPLATE_MARKERS;
use crate::script::{Script, ScriptMix};

/// A loop score at or above this marks an answer as looping.
pub const LOOP_THRESHOLD: f64 = 0.5;

/// The scores of one answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AnswerScore {
    /// Share of the answer's letters written in the expected script (`None` when no script is
    /// expected or the answer has no letters).
    pub script_share: Option<f64>,
    /// The script most of the answer's letters are in.
    pub dominant_script: Option<Script>,
    /// 0 (no repetition) to 1 (one unit repeated throughout); see [`loop_score`].
    pub loop_score: f64,
    /// `loop_score >= LOOP_THRESHOLD`.
    pub looping: bool,
    /// Template markers found in the text.
    pub leaked: Vec<String>,
    /// Nothing but whitespace.
    pub empty: bool,
    /// The answer only repeats the prompt back (see [`echoes_prompt`]).
    pub echo: bool,
    /// Expected keywords found.
    pub keywords_found: usize,
    /// Expected keywords in all.
    pub keywords_total: usize,
}

/// Scores `answer` to `prompt` against an expected script and keywords. A keyword may list
/// alternatives separated by `|` (`seven|7`): any one of them counts.
pub fn score_answer(
    prompt: &str,
    answer: &str,
    script: Option<Script>,
    keywords: &[String],
) -> AnswerScore {
    let mix = ScriptMix::measure(answer);
    let script_share = match script {
        Some(s) if mix.letters() > 0 => Some(mix.share(s)),
        Some(_) => Some(0.0),
        None => None,
    };
    let loop_score = loop_score(answer);
    let haystack = normalise(answer);
    let keywords_found = keywords
        .iter()
        .filter(|k| {
            k.split('|')
                .any(|alt| haystack.contains(&normalise(alt.trim())))
        })
        .count();
    AnswerScore {
        script_share,
        dominant_script: mix.dominant(),
        loop_score,
        looping: loop_score >= LOOP_THRESHOLD,
        leaked: leaked_markers(answer),
        empty: answer.trim().is_empty(),
        echo: echoes_prompt(prompt, answer),
        keywords_found,
        keywords_total: keywords.len(),
    }
}

fn normalise(text: &str) -> String {
    text.nfc().collect::<String>().to_lowercase()
}

/// Whether `answer` merely repeats the prompt: it has at least two words and every one of its
/// first twelve words occurs in the prompt (case, Unicode form and punctuation ignored; the
/// last may be cut off mid-word, as a capped answer is). Small models that cannot write a
/// language often parrot the question, which would otherwise score as a perfect script
/// share; an answer that restates the question *and adds to it* ("The capital of Zorvia is
/// Melantis") is not an echo.
pub fn echoes_prompt(prompt: &str, answer: &str) -> bool {
    fn words(text: &str) -> Vec<String> {
        normalise(text)
            .split_whitespace()
            .map(|w| {
                w.trim_matches(|c: char| {
                    c == '\u{fffd}' || c.is_ascii_punctuation() || "“”‘’«»¿¡…।॥、。".contains(c)
                })
                .to_owned()
            })
            .filter(|w| !w.is_empty())
            .collect()
    }
    let prompt_words = words(prompt);
    let answer_words: Vec<String> = words(answer).into_iter().take(12).collect();
    let Some((last, rest)) = answer_words.split_last() else {
        return false;
    };
    answer_words.len() >= 2
        && rest.iter().all(|w| prompt_words.contains(w))
        && prompt_words.iter().any(|p| p.starts_with(last.as_str()))
}

/// The template markers that appear in `text`.
pub fn leaked_markers(text: &str) -> Vec<String> {
    TEMPLATE_MARKERS
        .iter()
        .filter(|m| text.contains(*m))
        .map(|m| (*m).to_owned())
        .collect()
}

/// How much of `text` is repetition, from 0 to 1: the larger of
/// - the share of word trigrams that already occurred earlier in the text (catches a sentence
///   said over and over), and
/// - the share of the text covered by its longest periodic tail — a unit of 1 to 32
///   characters repeated at least four times up to the end (catches `systemsystemsystem…`
///   and `!!!!!!!!`, which have no words to count).
///
/// Short answers (under 12 words and 24 characters) score 0: there is too little to judge.
pub fn loop_score(text: &str) -> f64 {
    let words: Vec<&str> = text.split_whitespace().collect();
    let chars: Vec<char> = text.trim_end().chars().collect();
    if words.len() < 12 && chars.len() < 24 {
        return 0.0;
    }
    let mut repeated_trigrams = 0.0;
    if words.len() >= 12 {
        let mut seen = HashSet::new();
        let trigrams: Vec<_> = words.windows(3).collect();
        let repeats = trigrams.iter().filter(|t| !seen.insert(**t)).count();
        repeated_trigrams = repeats as f64 / trigrams.len() as f64;
    }
    repeated_trigrams.max(periodic_tail_share(&chars))
}

fn periodic_tail_share(chars: &[char]) -> f64 {
    let n = chars.len();
    let mut best = 0usize;
    for period in 1..=32.min(n / 4) {
        // Length of the tail in which chars[i] == chars[i + period].
        let mut len = period;
        while len < n && chars[n - 1 - len] == chars[n - 1 - len + period] {
            len += 1;
        }
        if len >= period * 4 {
            best = best.max(len);
        }
    }
    best as f64 / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_tamil_answer_scores_clean() {
        let answer = "அகர முதல எழுத்தெல்லாம் ஆதி பகவன் முதற்றே உலகு என்பது முதல் குறள்.";
        let s = score_answer(
            "முதல் குறள் எது?",
            answer,
            Some(Script::Tamil),
            &["அகர".into(), "பகவன்".into()],
        );
        assert!(s.script_share.expect("share") > 0.99, "{s:?}");
        assert!(!s.looping && s.leaked.is_empty() && !s.empty);
        assert_eq!((s.keywords_found, s.keywords_total), (2, 2));
    }

    #[test]
    fn english_answer_to_a_tamil_prompt_has_low_share() {
        let s = score_answer(
            "முதல் குறள்?",
            "The first couplet is about the letter A.",
            Some(Script::Tamil),
            &[],
        );
        assert_eq!(s.script_share, Some(0.0));
        assert_eq!(s.dominant_script, Some(Script::Latin));
    }

    #[test]
    fn loops_are_caught_with_and_without_words() {
        let sentence = "the capital of France is Paris. ".repeat(8);
        assert!(loop_score(&sentence) > 0.6, "{}", loop_score(&sentence));
        let glued = format!("Sure! {}", "system".repeat(20));
        assert!(loop_score(&glued) > 0.8, "{}", loop_score(&glued));
        assert!(score_answer("?", &glued, None, &[]).looping);
        let prose = "Chennai is the capital of Tamil Nadu. It lies on the Coromandel Coast \
                     of the Bay of Bengal and is one of the largest cities of India, known for \
                     its music season, temples and long beach.";
        assert!(loop_score(prose) < 0.1, "{}", loop_score(prose));
        assert_eq!(loop_score("ok ok ok"), 0.0, "too short to judge");
    }

    #[test]
    fn leaks_empties_and_keywords() {
        let s = score_answer(
            "Capital?",
            "Paris<|im_end|>\n<|im_start|>user",
            None,
            &["PARIS".into(), "Lyon".into(), "seven|7".into()],
        );
        assert_eq!(
            s.leaked,
            vec!["<|im_start|>".to_owned(), "<|im_end|>".to_owned()]
        );
        assert_eq!(s.keywords_found, 1);
        assert!(score_answer("?", " \n ", Some(Script::Latin), &[]).empty);
        assert_eq!(
            score_answer("?", "", Some(Script::Latin), &[]).script_share,
            Some(0.0)
        );
        let s = score_answer(
            "Days?",
            "There are 7 days in a week.",
            None,
            &["seven|7".into()],
        );
        assert_eq!(s.keywords_found, 1, "alternatives");
    }

    #[test]
    fn echoes_are_caught() {
        let prompt = "திருக்குறளின் முதல் குறள் எது?";
        assert!(echoes_prompt(prompt, "திருக்குறளின் முதல் குறள் எ\u{fffd}"));
        assert!(echoes_prompt(
            prompt,
            "திருக்குறளின்   முதல் குறள் எது? திருக்குறளின்"
        ));
        assert!(!echoes_prompt(
            prompt,
            "அகர முதல எழுத்தெல்லாம் ஆதி பகவன் முதற்றே உலகு."
        ));
        assert!(
            !echoes_prompt("What is 2+2?", "4"),
            "short answers are not echoes"
        );
        assert!(
            !echoes_prompt(
                "What is the capital of the planet Zorvia?",
                "The capital of the planet Zorvia is Melantis."
            ),
            "restating the question and answering it is not an echo"
        );
        assert!(!echoes_prompt(
            "ஜோர்வியா கிரகத்தின் தலைநகரம் எது?",
            "ஜோர்வியா கிரகத்தின் தலைநகரம் மெலாண்டிஸ்."
        ));
        assert!(echoes_prompt(
            "What is the capital of the planet Zorvia?",
            "What is the capital of the planet"
        ));
    }
}
