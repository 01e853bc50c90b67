//! Streaming sentence splitting: text goes in as the model writes it, whole sentences come out
//! as soon as they are known to be whole.
//!
//! A sentence ends at a line break, or at `.` `!` `?` (and `।` `॥` `。` `！` `？`) followed by
//! a space, once the next word shows it is not an abbreviation ("Dr. Kalam"), an initial
//! ("A. P. J."), a list number ("1. Call"), or a sentence going on in lowercase. Inside
//! an open quotation a stop does not end the sentence, so a quote is checked whole. The
//! pieces put together are exactly the text that went in: a sentence carries the spaces
//! after it.

/// Longest sentence held back, in bytes: a longer run without a stop comes out at a space.
pub const MAX_SENTENCE_BYTES: usize = 2048;

/// Words that end with a dot without ending a sentence (lowercase, without the dot).
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "sr", "jr", "prof", "no", "nos", "vs", "etc", "eg", "e.g", "ie",
    "i.e", "govt", "approx", "fig", "vol", "ch", "sec", "dept", "est", "tel", "ph", "mt", "rs",
    "smt", "shri", "thiru", "tmt",
];

/// Splits streamed text into sentences.
#[derive(Debug, Default)]
pub struct SentenceSplitter {
    /// The sentence in progress (and, after a possible end, the spaces that follow it).
    pending: String,
}

impl SentenceSplitter {
    /// A splitter with nothing held back.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `text`; the sentences it completes, in order.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        let mut done = Vec::new();
        for c in text.chars() {
            self.pending.push(c);
            if c == '\n' {
                done.push(std::mem::take(&mut self.pending));
                continue;
            }
            if let Some(end) = self.end_before_last() {
                let rest = self.pending.split_off(end);
                done.push(std::mem::replace(&mut self.pending, rest));
            } else if self.pending.len() >= MAX_SENTENCE_BYTES
                && (c.is_whitespace() || self.pending.len() >= MAX_SENTENCE_BYTES + 256)
            {
                // At a space, or anywhere in text without spaces.
                done.push(std::mem::take(&mut self.pending));
            }
        }
        done
    }

    /// The text still held back (a sentence without its end), if any; the splitter is empty
    /// afterwards.
    pub fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }

    /// The text held back now.
    pub fn pending(&self) -> &str {
        &self.pending
    }

    /// When the last character pushed is the first one after a sentence end (a stop, spaces),
    /// the byte offset where the next sentence starts.
    fn end_before_last(&self) -> Option<usize> {
        let text = self.pending.as_str();
        let (last_at, last) = text.char_indices().next_back()?;
        if last.is_whitespace() {
            return None;
        }
        let body = &text[..last_at];
        // Scripts written without spaces end a sentence at their full stop itself.
        if body.ends_with(['。', '！', '？']) {
            return Some(last_at);
        }
        let trimmed = body.trim_end();
        if trimmed.len() == body.len() {
            return None; // no space before the last character
        }
        // Closing quotes and brackets may follow the stop: `said “go.” Then`.
        let core = trimmed.trim_end_matches(['"', '”', '’', '\'', ')', ']', '»']);
        let stop = core.chars().next_back()?;
        if !matches!(stop, '.' | '!' | '?' | '।' | '॥' | '。' | '！' | '？') {
            return None;
        }
        if stop == '.' {
            if last.is_lowercase() {
                return None; // "the no. of calls", "etc. and"
            }
            let word = core[..core.len() - 1]
                .rsplit(char::is_whitespace)
                .next()
                .unwrap_or("")
                .trim_start_matches(['(', '"', '“', '‘', '\'']);
            let lower = word.to_lowercase();
            let single_letter = word.chars().count() == 1 && word.chars().all(char::is_alphabetic);
            let list_number = !word.is_empty()
                && word.chars().all(|c| c.is_ascii_digit())
                && word.len() <= 2
                && core[..core.len() - 1 - word.len()].trim().is_empty();
            if single_letter || list_number || ABBREVIATIONS.contains(&lower.as_str()) {
                return None;
            }
        }
        // A stop inside an open quotation does not end the sentence.
        if open_quote(trimmed) {
            return None;
        }
        Some(last_at)
    }
}

/// Longest quotation held together, in bytes: a quotation mark left open longer than this is
/// a stray one, and sentences end again.
const MAX_OPEN_QUOTE_BYTES: usize = 600;

/// Whether `text` leaves a quotation open (more “ than ”, or an odd number of `"`) that opened
/// less than [`MAX_OPEN_QUOTE_BYTES`] ago.
fn open_quote(text: &str) -> bool {
    let count = |c: char| text.chars().filter(|&x| x == c).count();
    let open = count('“') > count('”') || count('"') % 2 == 1;
    open && text
        .rfind(['“', '"'])
        .is_some_and(|at| text.len() - at <= MAX_OPEN_QUOTE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `text` fed in pieces of `step` characters.
    fn split(text: &str, step: usize) -> Vec<String> {
        let mut splitter = SentenceSplitter::new();
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        for piece in chars.chunks(step) {
            out.extend(splitter.push(&piece.iter().collect::<String>()));
        }
        out.extend(splitter.finish());
        out
    }

    #[test]
    fn sentences_come_out_whole_whatever_the_pieces() {
        let text = "Call 112 now. Dr. Kalam said “be brave. always.” Then 1. Go!\nநன்றி. Done";
        let want = vec![
            "Call 112 now. ",
            "Dr. Kalam said “be brave. always.” ",
            "Then 1. ",
            "Go!\n",
            "நன்றி. ",
            "Done",
        ];
        for step in 1..8 {
            let got = split(text, step);
            assert_eq!(got, want, "step {step}");
            assert_eq!(got.concat(), text);
        }
    }

    #[test]
    fn list_numbers_initials_and_lowercase_go_on() {
        assert_eq!(
            split(
                "1. Call 100. A. P. J. Abdul Kalam wrote it. the no. is 5.",
                3
            ),
            vec![
                "1. Call 100. ",
                "A. P. J. Abdul Kalam wrote it. the no. is 5."
            ]
        );
    }

    #[test]
    fn a_sentence_held_back_until_the_next_word_starts() {
        let mut splitter = SentenceSplitter::new();
        assert!(splitter.push("It is 112. ").is_empty());
        assert_eq!(splitter.pending(), "It is 112. ");
        assert_eq!(splitter.push("N"), vec!["It is 112. "]);
        assert_eq!(splitter.finish().as_deref(), Some("N"));
        assert_eq!(splitter.finish(), None);
    }

    #[test]
    fn stray_quotes_and_unspaced_scripts_do_not_hold_text_back() {
        let stray = format!("He said \"stop. {}", "Call 1930 now. ".repeat(60));
        let got = split(&stray, 5);
        assert!(got.len() > 10, "{}", got.len());
        assert_eq!(got.concat(), stray);
        assert_eq!(split("你好。我是。", 1), vec!["你好。", "我是。"]);
    }

    #[test]
    fn a_run_without_stops_comes_out_at_the_cap() {
        let text = "word ".repeat(MAX_SENTENCE_BYTES);
        let got = split(&text, 7);
        assert!(got.len() > 1);
        assert!(got.iter().all(|s| s.len() <= MAX_SENTENCE_BYTES + 8));
        assert_eq!(got.concat(), text);
        let unspaced = "அ".repeat(MAX_SENTENCE_BYTES);
        let got = split(&unspaced, 3);
        assert!(got.len() > 1);
        assert_eq!(got.concat(), unspaced);
    }
}
