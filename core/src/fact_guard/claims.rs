//! The checkable facts in a sentence ([`claims`]) and the evidence they are checked against
//! ([`Evidence`]).
//!
//! A claim is something a reader could look up: a number (in any script's digits), a phone
//! number, a year, a quoted phrase, or an English name (two or more capitalised words, or one
//! inside a sentence, where English capitalises only names). Each
//! is compared in a normal form: numbers as ASCII digits without group separators or leading
//! zeros, phone numbers as their digits, quotes as lowercase words, names word by word.

use std::collections::HashSet;

use serde::Serialize;

use crate::text::{ascii_digit, normalize_query};

/// What kind of fact a [`Claim`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    /// A number, in any script's digits (`1,330`, `௫`, `3.5`).
    Number,
    /// A string that looks like a phone number: 7 to 15 digits, in groups or not
    /// (`+91 98765 43210`, `1800-11-4000`).
    Phone,
    /// A four-digit number from 1000 to 2199, read as a year (the check is a number's).
    Year,
    /// A phrase in quotation marks.
    Quote,
    /// An English name: two or more capitalised words, or one inside a sentence (`Tamil Nadu`,
    /// `Sanskrit` in "written in Sanskrit", `Indian Cyber Crime
    /// Coordination Centre`).
    Name,
}

impl ClaimKind {
    /// The snake_case name (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimKind::Number => "number",
            ClaimKind::Phone => "phone",
            ClaimKind::Year => "year",
            ClaimKind::Quote => "quote",
            ClaimKind::Name => "name",
        }
    }
}

/// One checkable fact in a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claim {
    /// What kind of fact.
    pub kind: ClaimKind,
    /// The fact as written in the sentence.
    pub text: String,
}

/// Fewest and most digits of a phone number.
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

/// Longest quotation checked, in characters: a longer "quote" is more likely a stray mark.
const MAX_QUOTE_CHARS: usize = 400;

/// Words that start a sentence (or a clause) with a capital without being part of a name:
/// "The Indian Cyber Crime Coordination Centre" is checked as "Indian Cyber Crime …".
const NOT_NAME_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "because",
    "before", "both", "but", "by", "call", "can", "contact", "dial", "do", "does", "each", "every",
    "for", "from", "go", "he", "her", "here", "his", "how", "i", "if", "in", "is", "it", "its",
    "just", "let", "many", "may", "most", "my", "never", "no", "not", "now", "of", "on", "once",
    "one", "only", "or", "our", "please", "remember", "she", "so", "some", "such", "that", "the",
    "their", "then", "there", "these", "they", "this", "those", "to", "try", "use", "we", "what",
    "when", "where", "which", "while", "who", "why", "with", "yes", "you", "your",
];

/// Small words allowed inside a name ("Ministry of Home Affairs") but not at its ends.
const NAME_JOINERS: &[&str] = &[
    "of", "the", "and", "for", "de", "da", "di", "van", "von", "&",
];

/// The checkable facts in `sentence`, in order of appearance (numbers first, then quotes,
/// then names).
pub fn claims(sentence: &str) -> Vec<Claim> {
    let mut found = numbers(sentence);
    found.extend(quotes(sentence));
    found.extend(names(sentence));
    found
}

/// One run of digits (with the separators inside it) found in a text.
#[derive(Debug)]
struct DigitRun {
    /// The run as written.
    text: String,
    /// Its digits, ASCII, in order.
    digits: String,
    /// Digit groups as written (split at every separator).
    groups: Vec<String>,
    /// Whether a separator inside it was a space or a hyphen (phone-like grouping).
    spaced: bool,
    /// Whether it starts with `+`.
    plus: bool,
    /// A decimal part after a `.`, kept apart from the digits (`3.5` → `3` and `5`).
    decimal: Option<String>,
    /// Byte offset where it starts.
    start: usize,
}

/// Splits `text` into digit runs. Inside a run a single `,` followed by a digit joins groups
/// (`1,330`, `1,00,000`); a `.` followed by digits starts the decimal part (`3.5`); a single
/// space or hyphen joins groups of 2 to 5 digits when the whole reads as a phone number
/// (`98765 43210`, `1800-11-4000`, `+91 44 2345 6789`), and otherwise the groups are numbers of
/// their own (`112 100`, `2023-24`).
fn digit_runs(text: &str) -> Vec<DigitRun> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let digit = |i: usize| chars.get(i).and_then(|&(_, c)| ascii_digit(c));
    let offset = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    let mut runs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if digit(i).is_none() {
            i += 1;
            continue;
        }
        let plus = i > 0 && chars[i - 1].1 == '+';
        let start = if plus { i - 1 } else { i };
        let mut run = DigitRun {
            text: String::new(),
            digits: String::new(),
            groups: vec![String::new()],
            spaced: false,
            plus,
            decimal: None,
            start: offset(start),
        };
        // Where each group starts, to split a run that is not a phone number after all.
        let mut group_starts = vec![i];
        let mut hyphen = false;
        let mut j = i;
        loop {
            while let Some(d) = digit(j) {
                run.digits.push(d);
                match run.decimal.as_mut() {
                    Some(decimal) => decimal.push(d),
                    None => run.groups.last_mut().expect("a group").push(d),
                }
                j += 1;
            }
            let Some(&(_, sep)) = chars.get(j) else { break };
            if digit(j + 1).is_none() || run.decimal.is_some() {
                break;
            }
            let group_len = run.groups.last().map_or(0, String::len);
            let next_len = (j + 1..chars.len())
                .take_while(|&k| digit(k).is_some())
                .count();
            match sep {
                // A thousands separator ("1,330", "1,00,000"), not a list ("1,2,3").
                ',' if !run.spaced && (2..=3).contains(&next_len) && run.groups[0].len() <= 3 => {}
                '.' if !run.spaced && run.groups.len() == 1 => {
                    run.decimal = Some(String::new());
                    j += 1;
                    continue;
                }
                ' ' | '-'
                    if (2..=5).contains(&group_len)
                        && (2..=5).contains(&next_len)
                        && run.groups.len() < 5
                        && (run.groups.len() == 1 || run.spaced) =>
                {
                    run.spaced = true;
                    hyphen |= sep == '-';
                }
                _ => break,
            }
            run.groups.push(String::new());
            group_starts.push(j + 1);
            j += 1;
        }
        run.text = text[run.start..offset(j)].to_owned();
        let phone_like = run.plus || hyphen || run.groups.iter().any(|g| g.len() >= 4);
        if run.spaced && !(phone_like && PHONE_DIGITS.contains(&run.digits.len())) {
            // Numbers side by side: each group is a number of its own.
            for (n, (&from, group)) in group_starts.iter().zip(&run.groups).enumerate() {
                let from = if n == 0 { start } else { from };
                let to = from + group.len() + usize::from(n == 0 && plus);
                runs.push(DigitRun {
                    text: text[offset(from)..offset(to)].to_owned(),
                    digits: group.clone(),
                    groups: vec![group.clone()],
                    spaced: false,
                    plus: n == 0 && plus,
                    decimal: None,
                    start: offset(from),
                });
            }
        } else {
            runs.push(run);
        }
        i = j.max(i + 1);
    }
    runs
}

/// `digits` without leading zeros ("0" stays).
fn strip_zeros(digits: &str) -> &str {
    let stripped = digits.trim_start_matches('0');
    if stripped.is_empty() && !digits.is_empty() {
        "0"
    } else {
        stripped
    }
}

/// The number and phone claims in `sentence`. A list marker at the start ("1." "2)") is not a
/// claim.
fn numbers(sentence: &str) -> Vec<Claim> {
    let mut out = Vec::new();
    for run in digit_runs(sentence) {
        let before = sentence[..run.start].trim();
        let after = &sentence[run.start + run.text.len()..];
        if before.is_empty()
            && run.groups.len() == 1
            && run.digits.len() <= 2
            && (after.starts_with(". ") || after.starts_with(") ") || after.starts_with('.'))
            && run.decimal.is_none()
        {
            continue;
        }
        let ungrouped = run.groups.len() == 1;
        let kind = if (run.spaced || run.plus || ungrouped)
            && PHONE_DIGITS.contains(&run.digits.len())
            && run.decimal.is_none()
        {
            ClaimKind::Phone
        } else if run.groups.len() == 1
            && run.decimal.is_none()
            && run.digits.len() == 4
            && (1000..=2199).contains(&run.digits.parse::<u32>().unwrap_or(0))
        {
            ClaimKind::Year
        } else {
            ClaimKind::Number
        };
        // "[2]": a reference to the second quoted record, checked against how many there were.
        let text = run.text.trim();
        let text = if before.ends_with('[') && after.starts_with(']') && run.groups.len() == 1 {
            format!("[{text}]")
        } else {
            text.to_owned()
        };
        out.push(Claim { kind, text });
    }
    out
}

/// Opening and closing quotation marks checked, in pairs.
const QUOTE_PAIRS: &[(char, char)] = &[
    ('“', '”'),
    ('"', '"'),
    ('«', '»'),
    ('‘', '’'),
    ('\'', '\''),
    ('„', '“'),
];

/// The quoted phrases in `sentence`. A single quote counts only where it cannot be an
/// apostrophe: after a space (or the start) and before a non-letter.
fn quotes(sentence: &str) -> Vec<Claim> {
    let chars: Vec<char> = sentence.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let Some(&(_, close)) = QUOTE_PAIRS.iter().find(|(open, _)| *open == chars[i]) else {
            i += 1;
            continue;
        };
        let single = matches!(chars[i], '\'' | '‘');
        if single && i > 0 && chars[i - 1].is_alphanumeric() {
            i += 1;
            continue;
        }
        let end = (i + 1..chars.len()).find(|&k| {
            chars[k] == close && (!single || chars.get(k + 1).is_none_or(|c| !c.is_alphanumeric()))
        });
        let Some(end) = end else {
            i += 1;
            continue;
        };
        let inner: String = chars[i + 1..end].iter().collect();
        if inner.chars().any(char::is_alphanumeric) && inner.chars().count() <= MAX_QUOTE_CHARS {
            out.push(Claim {
                kind: ClaimKind::Quote,
                text: inner.trim().to_owned(),
            });
        }
        i = end + 1;
    }
    out
}

/// Whether `word` starts with a capital Latin letter.
fn capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_ascii_uppercase())
}

/// A word with the punctuation around it (and a possessive `'s`) removed.
fn bare_word(word: &str) -> &str {
    let w = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '&');
    w.strip_suffix("'s")
        .or_else(|| w.strip_suffix("’s"))
        .unwrap_or(w)
}

/// The English names in `sentence`: runs of two or more capitalised words (small joiners such
/// as "of" allowed inside) without a leading sentence word such as "The" or "Call", and single
/// capitalised words inside a sentence ("written in Sanskrit"), where English capitalises only
/// names. A word that starts the sentence, or follows a colon, a stop, a dash or an opening
/// quote or bracket, is capitalised by grammar and is a name only with others.
fn names(sentence: &str) -> Vec<Claim> {
    let mut out = Vec::new();
    // The run of capitalised words, each with whether it stands where grammar capitalises.
    let mut current: Vec<(&str, bool)> = Vec::new();
    let lower_in = |w: &str, list: &[&str]| list.contains(&w.to_lowercase().as_str());
    let flush = |current: &mut Vec<(&str, bool)>, out: &mut Vec<Claim>| {
        // A word where grammar capitalises ("Visit the National Portal", "Call Ministry of
        // …") may or may not belong to the name: the rest is checked without it.
        if current.first().is_some_and(|(_, initial)| *initial) {
            current.remove(0);
        }
        while current
            .last()
            .is_some_and(|(w, _)| lower_in(w, NAME_JOINERS))
        {
            current.pop();
        }
        while current
            .first()
            .is_some_and(|(w, _)| lower_in(w, NOT_NAME_WORDS) || lower_in(w, NAME_JOINERS))
        {
            current.remove(0);
        }
        let capitals = current.iter().filter(|(w, _)| capitalised(w)).count();
        let single_name = match current.as_slice() {
            [(word, initial)] => !initial && word.chars().count() >= 3 && !word.starts_with("I'"),
            _ => false,
        };
        if capitals >= 2 || single_name {
            out.push(Claim {
                kind: ClaimKind::Name,
                text: current
                    .iter()
                    .map(|(w, _)| *w)
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
        current.clear();
    };
    let mut initial = true;
    for raw in sentence.split_whitespace() {
        // Markdown emphasis and headings are not part of the words: "**Important:** Never".
        let raw = raw.trim_matches(['*', '_', '#', '`']);
        let word = bare_word(raw);
        let ends_clause = raw
            .trim_end_matches(['\'', '"', '”', '’', ')'])
            .ends_with([',', '.', ';', ':', '!', '?']);
        let opens = raw.starts_with(['"', '“', '‘', '\'', '(', '[', '«']);
        let is_name_word = capitalised(word) && word.chars().any(char::is_alphabetic);
        let is_joiner = !current.is_empty() && lower_in(word, NAME_JOINERS);
        if is_name_word || is_joiner {
            current.push((word, initial || opens));
        } else {
            flush(&mut current, &mut out);
        }
        // "Chennai, Tamil Nadu": a comma ends a name.
        let initial_letter = word.chars().count() == 1 && raw.ends_with('.');
        if ends_clause && !initial_letter {
            flush(&mut current, &mut out);
        }
        // What follows a stop, a colon, a dash, a bullet or a bare number ("[1]", "1.") is
        // capitalised by grammar.
        initial = (raw
            .trim_end_matches(['\'', '"', '”', '’', ')'])
            .ends_with(['.', ':', '!', '?', ';'])
            && !initial_letter)
            || !raw.chars().any(char::is_alphabetic);
    }
    flush(&mut current, &mut out);
    out
}

/// Lowercase words of `text` (numbers folded to ASCII), for quotes and names.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric() && !is_mark(c))
        .filter(|w| !w.is_empty())
        .map(normalize_query)
}

/// Whether `c` is a combining mark (Tamil vowel signs and virama are `Mc`/`Mn`).
fn is_mark(c: char) -> bool {
    matches!(u32::from(c), 0x0300..=0x036F | 0x0900..=0x0DFF | 0x200C | 0x200D)
        && !c.is_alphanumeric()
}

/// What a sentence's claims are checked against: the question and the records the model was
/// given (and the results of tools it called).
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// Every number's digits (leading zeros stripped), every group of a grouped number, and
    /// every phone number's digits.
    numbers: HashSet<String>,
    /// Phone-like digit strings of 7 or more digits.
    phones: Vec<String>,
    /// Every word, lowercase.
    words: HashSet<String>,
    /// All text as lowercase words joined by single spaces, for quotes.
    joined: String,
    /// How many records the prompt quoted as `[1]` … `[n]`.
    records: usize,
}

impl Evidence {
    /// Evidence from these texts.
    pub fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut evidence = Self::default();
        for text in texts {
            evidence.add(text);
        }
        evidence
    }

    /// Adds the numbers `1` to `n`: a grounded prompt numbers the records it quotes `[1]` …
    /// `[n]`, and the model may refer to them so.
    pub fn add_record_numbers(&mut self, n: usize) {
        self.records = self.records.max(n);
    }

    /// Adds a text (a card, a tool result, the question).
    pub fn add(&mut self, text: &str) {
        for run in digit_runs(text) {
            // Whole numbers only: "1800-11-4000" does not hold 4000, nor "19.30" 1930.
            let whole = strip_zeros(&run.groups.concat()).to_owned();
            if let Some(decimal) = &run.decimal {
                self.numbers.insert(format!("{whole}.{decimal}"));
                self.numbers
                    .insert(format!("{whole}.{}", decimal.trim_end_matches('0')));
            }
            self.numbers.insert(whole);
            if run.digits.len() >= *PHONE_DIGITS.start() {
                self.phones.push(phone_digits(&run.digits, run.plus));
            }
        }
        let mut joined = String::new();
        for word in words(text) {
            self.words.insert(word.clone());
            joined.push(' ');
            joined.push_str(&word);
        }
        self.joined.push_str(&joined);
        self.joined.push(' ');
    }

    /// Whether `claim` is found here.
    pub fn supports(&self, claim: &Claim) -> bool {
        match claim.kind {
            ClaimKind::Number | ClaimKind::Year => {
                let Some(run) = digit_runs(&claim.text).into_iter().next() else {
                    return true;
                };
                let whole = strip_zeros(&run.groups.concat()).to_owned();
                if claim.text.starts_with('[') {
                    let k: usize = whole.parse().unwrap_or(0);
                    return (1..=self.records).contains(&k) || self.numbers.contains(&whole);
                }
                match &run.decimal {
                    Some(decimal) => {
                        self.numbers.contains(&format!("{whole}.{decimal}"))
                            // "3.50" for "3.5"
                            || self.numbers.contains(&format!("{whole}.{}", decimal.trim_end_matches('0')))
                    }
                    None => self.numbers.contains(&whole),
                }
            }
            ClaimKind::Phone => {
                let Some(run) = digit_runs(&claim.text).into_iter().next() else {
                    return true;
                };
                let digits = phone_digits(&run.digits, run.plus);
                self.numbers.contains(&digits)
                    || self.phones.iter().any(|known| same_phone(known, &digits))
            }
            ClaimKind::Quote => {
                let wanted: Vec<String> = words(&claim.text).collect();
                if wanted.is_empty() {
                    return true;
                }
                let needle = format!(" {} ", wanted.join(" "));
                self.joined.contains(&needle)
            }
            ClaimKind::Name => words(&claim.text)
                .filter(|w| !NAME_JOINERS.contains(&w.as_str()))
                .all(|w| self.words.contains(&w)),
        }
    }
}

/// A phone number's digits without a leading trunk zero or India's `+91`.
fn phone_digits(digits: &str, plus: bool) -> String {
    let digits = if plus || digits.len() == 12 {
        digits.strip_prefix("91").unwrap_or(digits)
    } else {
        digits
    };
    digits.trim_start_matches('0').to_owned()
}

/// Whether two phone numbers' digits name the same line: equal, or one the other's tail with
/// at least 8 digits (an area code left out).
fn same_phone(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short == long || (short.len() >= 8 && long.ends_with(short))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<(ClaimKind, String)> {
        claims(s).into_iter().map(|c| (c.kind, c.text)).collect()
    }

    #[test]
    fn numbers_in_any_script_and_grouping() {
        assert_eq!(
            kinds("Thirukkural has 1,330 couplets in 133 chapters."),
            vec![
                (ClaimKind::Number, "1,330".into()),
                (ClaimKind::Number, "133".into())
            ]
        );
        assert_eq!(
            kinds("குறள் ௫ கூறுகிறது"),
            vec![(ClaimKind::Number, "௫".into())]
        );
        assert_eq!(
            kinds("It costs 3.5 rupees"),
            vec![(ClaimKind::Number, "3.5".into())]
        );
        assert_eq!(
            kinds("Written in 1812 by him"),
            vec![(ClaimKind::Year, "1812".into())]
        );
        assert_eq!(kinds("1. Call now"), vec![]);
    }

    #[test]
    fn phone_numbers_in_their_usual_shapes() {
        for phone in [
            "+91 98765 43210",
            "1800-11-4000",
            "9876543210",
            "044 2345 6789",
        ] {
            let found = kinds(&format!("Call {phone} today"));
            assert_eq!(found, vec![(ClaimKind::Phone, phone.to_owned())], "{phone}");
        }
        // Two helpline numbers side by side are two numbers.
        assert_eq!(
            kinds("Dial 112 100 now")
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>(),
            vec![ClaimKind::Number, ClaimKind::Number]
        );
    }

    #[test]
    fn quotes_but_not_apostrophes() {
        assert_eq!(
            kinds("He said “be kind” and it's Valluvar's 'first' line"),
            vec![
                (ClaimKind::Quote, "be kind".into()),
                (ClaimKind::Quote, "first".into()),
                (ClaimKind::Name, "Valluvar".into())
            ]
        );
    }

    #[test]
    fn names_without_sentence_words() {
        assert_eq!(
            kinds("The Indian Cyber Crime Coordination Centre runs it."),
            vec![(
                ClaimKind::Name,
                "Indian Cyber Crime Coordination Centre".into()
            )]
        );
        assert_eq!(
            kinds("Call Ministry of Home Affairs, Tamil Nadu."),
            vec![
                (ClaimKind::Name, "Ministry of Home Affairs".into()),
                (ClaimKind::Name, "Tamil Nadu".into())
            ]
        );
        assert_eq!(
            kinds("It is written in Sanskrit. Paris is big."),
            vec![(ClaimKind::Name, "Sanskrit".into())]
        );
        assert!(kinds("The kural says: Love is life. I'm here.").is_empty());
    }

    #[test]
    fn evidence_supports_what_it_holds() {
        let evidence = Evidence::new([
            "1930 is the national cyber crime helpline of the Indian Cyber Crime Coordination Centre (I4C). Call 1800-11-4000.",
            "explain kural ௫",
        ]);
        let check = |s: &str| {
            claims(s)
                .iter()
                .map(|c| evidence.supports(c))
                .collect::<Vec<_>>()
        };
        assert_eq!(check("Call 1930 now."), vec![true]);
        assert_eq!(check("Call 1903 now."), vec![false]);
        assert_eq!(check("Kural 5 says so."), vec![true]);
        assert_eq!(check("Call 1800 11 4000."), vec![true]);
        assert_eq!(check("Call +91 1800-11-4000."), vec![true]);
        assert_eq!(check("The Cyber Crime Centre helps."), vec![true]);
        assert_eq!(check("The Cyber Police Centre helps."), vec![false]);
        assert_eq!(
            check("It says “the national cyber crime helpline”."),
            vec![true]
        );
        assert_eq!(check("It says “the national crime helpline”."), vec![false]);
    }
}
