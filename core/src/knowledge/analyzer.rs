//! The analyzer: one function turns text into index terms, at import and at query time, so
//! that an inflected or romanized query word meets the record words it stands for.
//!
//! Text is normalized like a query ([`normalize_query`]: NFC, lowercase, ASCII digits), cut
//! into words the way the index's tokenizer cuts them ([`is_word_char`]), and split where a
//! word changes between digits and letters (`25வது` → `25` `வது`, `10th` → `10` `th`). Then,
//! by script:
//!
//! - **Latin:** the Snowball English stemmer (`friendship`, `kurals` → `kural`). A Latin query
//!   word is also read as romanized Tamil (`mazhai`, `natpu`) and may match Tamil words
//!   through their phonetic key (below); records' Latin words are indexed as English only.
//! - **Tamil:** a light stemmer over a coarse phonetic spelling of the word. The word is read
//!   as phonemes (`நட்பை` → n a ṭ p ai), then coarsened to what romanized typing keeps apart:
//!   voicing and the retroflex/dental pairs merge (ட த → t, ண ந ன ங ஞ → n, ல ள ழ → l, ர ற → r,
//!   ச ஜ ஸ ஷ → s), vowel length goes, doubled consonants collapse. Case endings and
//!   postpositions are stripped, longest first, up to three times (`-கள்`, `-ஐ`, `-இன்`,
//!   `-இனால்`, `-இல்`, `-க்கு`, `-இடம்`, `-உடைய`, `-உடைமை`, `-ஆமை`, `-க்கான`, `-உம்`, …), with the
//!   glide (`y`/`v`) or doubled consonant at the join, and a final short `i` or `u` is dropped
//!   (`நட்பு` and `நட்பை` → `natp`). The term is that key behind a private-use marker
//!   (U+E000), so Tamil keys never collide with English stems. Only whole words are compared,
//!   never prefixes, so `கண்` (`kan`) stays apart from `கணினி` (`kanin`).
//! - **Everything else** (Devanagari, …): the normalized word.
//!
//! Stop words (English, Tamil in script and romanized, basic Hindi and Sanskrit in
//! Devanagari) are not indexed and do not count as query words; ordinal endings (`th`,
//! `வது`) are stop words too.
//!
//! [`ANALYZER_VERSION`] is stored in the database; a change to anything here that changes a
//! term must bump it, and opening a database analyzed by another version re-indexes it.

use std::collections::HashSet;
use std::sync::OnceLock;

use rust_stemmers::{Algorithm, Stemmer};

use super::query::is_word_char;
use crate::text::normalize_query;

/// The version of the analysis; stored with the index, which is rebuilt when it differs.
pub const ANALYZER_VERSION: u32 = 2;

/// Marks a term made from a Tamil phonetic key.
pub const TAMIL_MARK: char = '\u{E000}';

/// How a word is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Latin letters.
    Latin,
    /// Tamil letters.
    Tamil,
    /// Digits only.
    Digits,
    /// Any other script.
    Other,
}

/// One word of a query, analyzed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryWord {
    /// The word as normalized.
    pub word: String,
    /// A stop word: not searched for, not counted.
    pub stop: bool,
    /// The index terms that stand for it; a record holding any of them has the word.
    pub terms: Vec<String>,
}

/// The words of `text` after normalization, split where digits meet letters or the script
/// changes; each with its script.
pub fn words(text: &str) -> Vec<(String, Script)> {
    let mut out = Vec::new();
    for_each_word(text, |word, script| out.push((word.to_owned(), script)));
    out
}

/// Calls `f` with each word of `text` (as [`words`] cuts them), without allocating a string per
/// word.
pub fn for_each_word(text: &str, mut f: impl FnMut(&str, Script)) {
    let normalized = normalize_query(text);
    for raw in normalized.split(|c: char| !is_word_char(c)) {
        if !raw.is_empty() {
            split_word(raw, &mut f);
        }
    }
}

fn split_word(raw: &str, f: &mut impl FnMut(&str, Script)) {
    let mut start = 0;
    let mut current: Option<Script> = None;
    for (i, c) in raw.char_indices() {
        // Combining marks belong to the letter before them.
        let script = match (char_script(c), current) {
            (None, Some(s)) => s,
            (None, None) => Script::Other,
            (Some(s), _) => s,
        };
        if let Some(cur) = current {
            if cur != script {
                f(&raw[start..i], cur);
                start = i;
            }
        }
        current = Some(script);
    }
    if let Some(cur) = current {
        f(&raw[start..], cur);
    }
}

/// The script of a base character, `None` for combining marks and joiners.
fn char_script(c: char) -> Option<Script> {
    if c.is_ascii() {
        return Some(if c.is_ascii_digit() {
            Script::Digits
        } else if c.is_ascii_alphabetic() {
            Script::Latin
        } else {
            Script::Other
        });
    }
    if ('\u{0B80}'..='\u{0BFF}').contains(&c) {
        // Tamil vowel signs and virama are combining marks, but the word stays Tamil.
        return Some(Script::Tamil);
    }
    if unicode_normalization::char::is_combining_mark(c) || matches!(c, '\u{200C}' | '\u{200D}') {
        None
    } else if ('\u{00C0}'..='\u{024F}').contains(&c) && c.is_alphabetic() {
        Some(Script::Latin)
    } else {
        Some(Script::Other)
    }
}

fn english() -> &'static Stemmer {
    static STEMMER: OnceLock<Stemmer> = OnceLock::new();
    STEMMER.get_or_init(|| Stemmer::create(Algorithm::English))
}

/// The index term of one word, or `None` for a stop word.
pub fn index_term(word: &str, script: Script) -> Option<String> {
    if is_stop_word(word) {
        return None;
    }
    Some(match script {
        Script::Latin => english().stem(word).into_owned(),
        Script::Tamil => tamil_term(word)?,
        Script::Digits | Script::Other => word.to_owned(),
    })
}

/// Appends the index terms of `text` to `out`, space-separated.
pub fn index_text(text: &str, out: &mut String) {
    for_each_word(text, |word, script| {
        if let Some(term) = index_term(word, script) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&term);
        }
    });
}

/// The words of a query, each with the terms that stand for it.
pub fn query_words(text: &str) -> Vec<QueryWord> {
    words(text)
        .into_iter()
        .map(|(word, script)| {
            let stop = is_stop_word(&word)
                || (script == Script::Latin && is_romanized_tamil_stop_word(&word));
            let mut terms = Vec::new();
            if !stop {
                if let Some(term) = index_term(&word, script) {
                    terms.push(term);
                }
                if script == Script::Latin {
                    if let Some(key) = romanized_term(&word) {
                        if !terms.contains(&key) {
                            terms.push(key);
                        }
                    }
                }
            }
            QueryWord { word, stop, terms }
        })
        .collect()
}

/// The terms of `text` with stop words kept, space-separated: how keys are compared, so that
/// `book of virtue` and `Books of Virtue` meet.
pub fn key_terms(text: &str) -> String {
    let mut out = String::new();
    for_each_word(text, |word, script| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&key_term(word, script));
    });
    out
}

/// One word's term for key comparison (stop words keep theirs).
pub fn key_term(word: &str, script: Script) -> String {
    match script {
        Script::Latin => english().stem(word).into_owned(),
        Script::Tamil => tamil_term(word).unwrap_or_else(|| word.to_owned()),
        Script::Digits | Script::Other => word.to_owned(),
    }
}

/// The term a Latin word has when read as romanized Tamil (`mazhai` → the term of `மழை`), if
/// it can be read so.
pub fn romanized_key_term(word: &str) -> Option<String> {
    romanized_term(word)
}

// --- Tamil ----------------------------------------------------------------------------------

/// Coarse phonetic units: consonants `k s t n p m y r l v`, vowels `a i u e o`, and two
/// diphthongs written internally as `A` (ai) and `W` (au).
type Units = Vec<u8>;

fn tamil_term(word: &str) -> Option<String> {
    let units = tamil_units(word);
    (!units.is_empty()).then(|| marked(&stem(units)))
}

fn romanized_term(word: &str) -> Option<String> {
    // Short words and words with letters outside a–z are not romanized Tamil.
    if word.len() < 3 || !word.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let units = romanized_units(word);
    (units.len() >= 2).then(|| marked(&stem(units)))
}

fn marked(units: &[u8]) -> String {
    let mut s = String::with_capacity(units.len() + 4);
    s.push(TAMIL_MARK);
    for &u in units {
        match u {
            b'A' => s.push_str("ai"),
            b'W' => s.push_str("au"),
            other => s.push(char::from(other)),
        }
    }
    s
}

fn tamil_consonant(c: char) -> Option<Option<u8>> {
    Some(match c {
        'க' | 'ஹ' => Some(b'k'),
        'ங' | 'ஞ' | 'ண' | 'ந' | 'ன' => Some(b'n'),
        'ச' | 'ஜ' | 'ஶ' | 'ஷ' | 'ஸ' => Some(b's'),
        'ட' | 'த' => Some(b't'),
        'ப' => Some(b'p'),
        'ம' => Some(b'm'),
        'ய' => Some(b'y'),
        'ர' | 'ற' => Some(b'r'),
        'ல' | 'ள' | 'ழ' => Some(b'l'),
        'வ' => Some(b'v'),
        _ => return None,
    })
}

fn tamil_vowel(c: char) -> Option<u8> {
    Some(match c {
        'அ' | 'ஆ' | 'ா' => b'a',
        'இ' | 'ஈ' | 'ி' | 'ீ' => b'i',
        'உ' | 'ஊ' | 'ு' | 'ூ' => b'u',
        'எ' | 'ஏ' | 'ெ' | 'ே' => b'e',
        'ஐ' | 'ை' => b'A',
        'ஒ' | 'ஓ' | 'ொ' | 'ோ' => b'o',
        'ஔ' | 'ௌ' => b'W',
        _ => return None,
    })
}

fn is_vowel_sign(c: char) -> bool {
    matches!(c, '\u{0BBE}'..='\u{0BCC}')
}

/// A Tamil word as coarse units: a consonant takes the vowel sign after it, or none after a
/// virama, or the inherent `a`.
fn tamil_units(word: &str) -> Units {
    let chars: Vec<char> = word.chars().collect();
    let mut units = Vec::with_capacity(chars.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(consonant) = tamil_consonant(c) {
            if let Some(u) = consonant {
                units.push(u);
            }
            match chars.get(i + 1) {
                Some('\u{0BCD}') => i += 1,
                Some(&sign) if is_vowel_sign(sign) => {
                    if let Some(v) = tamil_vowel(sign) {
                        units.push(v);
                    }
                    i += 1;
                }
                _ => units.push(b'a'),
            }
        } else if let Some(v) = tamil_vowel(c) {
            units.push(v);
        }
        i += 1;
    }
    collapse(units)
}

/// Romanized Tamil as coarse units (`zh` → l, `th`/`dh`/`d` → t, `aa` → a, `ai` → ai, …).
fn romanized_units(word: &str) -> Units {
    const RULES: &[(&str, &[u8])] = &[
        ("ndr", b"nr"),
        ("ttr", b"r"),
        ("tr", b"r"),
        ("zh", b"l"),
        ("sh", b"s"),
        ("ch", b"s"),
        ("th", b"t"),
        ("dh", b"t"),
        ("kh", b"k"),
        ("gh", b"k"),
        ("ph", b"p"),
        ("bh", b"p"),
        ("ng", b"nk"),
        ("nj", b"ns"),
        ("aa", b"a"),
        ("ee", b"i"),
        ("ii", b"i"),
        ("oo", b"u"),
        ("uu", b"u"),
        ("ai", b"A"),
        ("ay", b"A"),
        ("au", b"W"),
        ("ow", b"W"),
    ];
    let bytes = word.as_bytes();
    let mut units = Vec::with_capacity(bytes.len());
    let mut i = 0;
    'outer: while i < bytes.len() {
        for (pattern, out) in RULES {
            if bytes[i..].starts_with(pattern.as_bytes()) {
                units.extend_from_slice(out);
                i += pattern.len();
                continue 'outer;
            }
        }
        match bytes[i] {
            b'k' | b'g' | b'c' | b'q' => units.push(b'k'),
            b'j' | b's' | b'x' => units.push(b's'),
            b't' | b'd' => units.push(b't'),
            b'n' => units.push(b'n'),
            b'p' | b'b' | b'f' => units.push(b'p'),
            b'm' => units.push(b'm'),
            b'y' => units.push(b'y'),
            b'r' => units.push(b'r'),
            b'l' | b'z' => units.push(b'l'),
            b'v' | b'w' => units.push(b'v'),
            b'a' => units.push(b'a'),
            b'i' => units.push(b'i'),
            b'u' => units.push(b'u'),
            b'e' => units.push(b'e'),
            b'o' => units.push(b'o'),
            _ => {} // h and anything else carry no Tamil letter of their own
        }
        i += 1;
    }
    collapse(units)
}

/// Doubled units become one (`kk` → k): Tamil doubles consonants at joins and romanized
/// spellings double or not at will.
fn collapse(mut units: Units) -> Units {
    units.dedup();
    units
}

fn is_vowel(u: u8) -> bool {
    matches!(u, b'a' | b'i' | b'u' | b'e' | b'o' | b'A' | b'W')
}

/// Case endings, postpositions and clitics, in coarse units (doubles collapsed), longest
/// first.
const SUFFIXES: &[&[u8]] = &[
    b"itamiruntu", // -இடமிருந்து, from
    b"inal",       // -இனால், by
    b"iliruntu",   // -இலிருந்து, from
    b"utAmA",      // -உடைமை, possession of (அன்புடைமை)
    b"utAya",      // -உடைய, of
    b"ukana",      // -உக்கான, for
    b"inmA",       // -இன்மை, absence of
    b"itam",       // -இடம், to (a person)
    b"utan",       // -உடன், with
    b"kana",       // -க்கான, for
    b"amA",        // -ஆமை, not doing (வெகுளாமை)
    b"otu",        // -ஓடு / -ஒடு, with
    b"uku",        // -உக்கு, to
    b"kal",        // -கள், plural
    b"ana",        // -ஆன, -ish
    b"aka",        // -ஆக, as
    b"ku",         // -க்கு / -கு, to
    b"in",         // -இன், of
    b"il",         // -இல், in
    b"um",         // -உம், and / also
    b"A",          // -ஐ, object
];

/// Verb endings, in coarse units, longest first: tense and person (present `-கிறார்`,
/// completive `-விட்டது`, past `-ந்தது`), the conditional (`-த்தால்`), the verbal noun
/// (`-தல்`, `-ப்பது`) and the participle (`-ந்து`). Stripped at most twice (a completive
/// leaves a participle: `புகுந்து-விட்டான்`), before the case endings, and only where at least
/// three units of root stay: `அடிக்கிறார்` and `அடித்தல்` meet at the root `அடி`,
/// `புகுந்துவிட்டான்` and `புகுந்தால்` at `புகு`. (Not `-த்து`: `கருத்து` would leave
/// `கருத்தை`.)
const VERB_SUFFIXES: &[&[u8]] = &[
    b"kinranar", // -கின்றனர்
    b"kinrana",  // -கின்றன
    b"kiratu",   // -கிறது
    b"kiranka",  // -கிறாங்க
    b"kinrar",   // -கின்றார்
    b"vitatu",   // -விட்டது
    b"kirar",    // -கிறார்
    b"kiran",    // -கிறான்
    b"kiral",    // -கிறாள்
    b"kiren",    // -கிறேன்
    b"kirom",    // -கிறோம்
    b"kirir",    // -கிறீர்(கள்)
    b"vitan",    // -விட்டான்
    b"vitar",    // -விட்டார்
    b"vital",    // -விட்டாள்
    b"viten",    // -விட்டேன்
    b"ntatu",    // -ந்தது
    b"ntal",     // -ந்தால்
    b"ntan",     // -ந்தான்
    b"ntar",     // -ந்தார்
    b"tatu",     // -த்தது
    b"patu",     // -ப்பது
    b"vatu",     // -வது
    b"ntu",      // -ந்து
    b"tal",      // -த்தல், -த்தால்
    b"tan",      // -த்தான்
    b"tar",      // -த்தார்
];

/// Strips suffixes (see the module docs); the result is never shorter than two units and
/// always keeps a vowel.
fn stem(mut units: Units) -> Units {
    let keeps_a_root = |u: &[u8]| u.len() >= 2 && u.iter().any(|&x| is_vowel(x));
    let mut stripped = false;
    let keeps_a_verb_root = |u: &[u8]| u.len() >= 3 && u.iter().any(|&x| is_vowel(x));
    for _ in 0..2 {
        let Some(suffix) = VERB_SUFFIXES
            .iter()
            .find(|s| units.ends_with(s) && keeps_a_verb_root(&units[..units.len() - s.len()]))
        else {
            break;
        };
        units.truncate(units.len() - suffix.len());
    }
    for _ in 0..3 {
        let Some(suffix) = SUFFIXES
            .iter()
            .find(|s| units.ends_with(s) && keeps_a_root(&units[..units.len() - s.len()]))
        else {
            break;
        };
        units.truncate(units.len() - suffix.len());
        stripped = true;
        // The glide between a vowel and a vowel-initial suffix: கல்வி-ய்-இன், பூ-வ்-ஐ.
        if let [.., before, glide] = units[..] {
            let glide_after = match glide {
                b'y' => matches!(before, b'i' | b'e' | b'A'),
                b'v' => matches!(before, b'a' | b'u' | b'o'),
                _ => false,
            };
            if glide_after && keeps_a_root(&units[..units.len() - 1]) {
                units.pop();
            }
        }
    }
    // The oblique -அத்து- of -அம் nouns: அறத்தின் → அறம்.
    if stripped && units.ends_with(b"at") && units.len() > 2 {
        let last = units.len() - 1;
        units[last] = b'm';
    }
    // A final short i or u: நட்பு, நட்பை and நட்பின் meet at `natp`, கல்வி and கல்வியின் at
    // `kalv`. (A final a stays: `கண` is not `கண்`.)
    if let [.., before, last] = units[..] {
        if matches!(last, b'i' | b'u')
            && !is_vowel(before)
            && keeps_a_root(&units[..units.len() - 1])
        {
            units.pop();
        }
    }
    units
}

// --- Stop words -----------------------------------------------------------------------------

/// English function words and request words that carry nothing to search for.
const ENGLISH_STOP: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "just",
    "me",
    "more",
    "most",
    "my",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "out",
    "over",
    "own",
    "please",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "abt",
    "pls",
    "plz",
    "u",
    "ur",
    "wat",
    "whats",
    "tell",
    "show",
    "give",
    "want",
    "need",
    "know",
    "let",
    "say",
    "says",
    "said",
    "someone",
    "something",
    "anyone",
    "anything",
    "list",
    "st",
    "nd",
    "rd",
    "th",
];

/// Tamil function words, question words and request verbs, in script and romanized.
const TAMIL_STOP: &[&str] = &[
    "பற்றி",
    "பற்றிய",
    "குறித்து",
    "என்ன",
    "எது",
    "எந்த",
    "யார்",
    "எப்படி",
    "ஏன்",
    "எங்கே",
    "எப்போது",
    "எவ்வளவு",
    "ஒரு",
    "இந்த",
    "அந்த",
    "இது",
    "அது",
    "மற்றும்",
    "உள்ள",
    "என்று",
    "என",
    "நான்",
    "எனக்கு",
    "என்",
    "நீ",
    "உன்",
    "உங்கள்",
    "நீங்கள்",
    "தான்",
    "மட்டும்",
    "ஆகும்",
    "சொல்",
    "சொல்லு",
    "சொல்லுங்க",
    "சொல்லுங்கள்",
    "கூறு",
    "கூறுக",
    "தருக",
    "தா",
    "காட்டு",
    "வேண்டும்",
    "வேணும்",
    "பண்ணு",
    "பண்ணுங்க",
    "பண்ணணும்",
    "செய்",
    "செய்ய",
    "வது",
    "ஆவது",
    "ஆம்",
    "ம்",
    "எதற்கு",
    "எதுக்கு",
    "உடனே",
    "இப்போது",
    "இப்பொழுது",
    "சொல்கிறார்",
    "சொல்கிறது",
    "சொல்றார்",
    "சொல்லுது",
    "கூறுகிறார்",
    "கூறுகிறது",
    "ஆச்சு",
    "இருக்கு",
    // Pronouns and question words in their case forms: who, whom, where, me, my, someone.
    "யாரை",
    "யாரிடம்",
    "யாருக்கு",
    "எங்கு",
    "எங்கள்",
    "நாங்கள்",
    "நாம்",
    "என்னை",
    "என்னைப்",
    "என்னுடைய",
    "எனது",
    "அவர்",
    "அவன்",
    "அவள்",
    "அவர்கள்",
    "ஒருவர்",
    "யாரோ",
    "செய்வது",
    "pathi",
    "patri",
    "enna",
    "edhu",
    "ethu",
    "yaar",
    "eppadi",
    "oru",
    "indha",
    "intha",
    "antha",
    "andha",
    "naan",
    "enakku",
    "nee",
    "unga",
    "thaan",
    "sollu",
    "sollunga",
    "sollungal",
    "sol",
    "venum",
    "vendum",
    "pannu",
    "pannunga",
    "pannanum",
    "vathu",
    "aavathu",
];

/// Basic Hindi and Sanskrit function words (Devanagari).
const DEVANAGARI_STOP: &[&str] = &[
    "है",
    "हैं",
    "था",
    "थे",
    "थी",
    "हो",
    "का",
    "की",
    "के",
    "में",
    "से",
    "को",
    "पर",
    "और",
    "या",
    "यह",
    "वह",
    "ये",
    "वे",
    "क्या",
    "कैसे",
    "कौन",
    "कब",
    "कहाँ",
    "भी",
    "तो",
    "ही",
    "एक",
    "नहीं",
    "न",
    "लिए",
    "इस",
    "उस",
    "कर",
    "करें",
    "बताओ",
    "बताइए",
    "च",
    "वा",
    "हि",
    "तु",
    "एव",
    "अपि",
    "इति",
    "सः",
    "सा",
    "तत्",
    "अस्ति",
    "भवति",
    "अयम्",
    "इदम्",
];

fn stop_words() -> &'static HashSet<String> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        ENGLISH_STOP
            .iter()
            .chain(TAMIL_STOP)
            .chain(DEVANAGARI_STOP)
            .map(|w| normalize_query(w))
            .collect()
    })
}

/// Whether `word` (normalized) is a stop word.
pub fn is_stop_word(word: &str) -> bool {
    stop_words().contains(word)
}

/// Tamil particles that code-mixed questions write apart in Latin letters ("police ku",
/// "phone la"): too short to read as romanized Tamil, and nothing to search for.
const ROMANIZED_PARTICLES: &[&str] = &["ku", "kku", "la", "le", "ah", "nu", "na"];

/// Whether a Latin query word reads as a Tamil stop word (`udane` as `உடனே`, `yaarai` as
/// `யாரை`) or is a Tamil particle. Only queries use it: records' Latin words are English.
/// Words under four letters, and words with an `h` first (romanized reading drops it), read
/// as too many English words (`add`, `hit`, `hence`) to count.
fn is_romanized_tamil_stop_word(word: &str) -> bool {
    if ROMANIZED_PARTICLES.contains(&word) {
        return true;
    }
    if word.len() < 4 || word.starts_with('h') {
        return false;
    }
    static KEYS: OnceLock<HashSet<String>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        TAMIL_STOP
            .iter()
            .filter_map(|w| tamil_term(&normalize_query(w)))
            .collect()
    });
    romanized_term(word).is_some_and(|k| keys.contains(&k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        let mut out = String::new();
        index_text(text, &mut out);
        out.split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn term(word: &str) -> String {
        let t = terms(word);
        assert_eq!(t.len(), 1, "{word}: {t:?}");
        t[0].clone()
    }

    fn same(words: &[&str]) {
        let first = term(words[0]);
        for w in &words[1..] {
            assert_eq!(term(w), first, "{w} vs {}", words[0]);
        }
    }

    #[test]
    fn tamil_case_endings_and_postpositions_meet_their_stem() {
        same(&[
            "நட்பு",
            "நட்பை",
            "நட்பின்",
            "நட்புக்கு",
            "நட்பில்",
            "நட்பிடம்",
            "நட்புடைய",
            "நட்பும்",
        ]);
        same(&["குறள்", "குறள்கள்", "குறளின்", "குறளை", "குறளுக்கு"]);
        same(&["கல்வி", "கல்வியின்", "கல்வியை", "கல்விக்கு"]);
        same(&["மழை", "மழையை", "மழையின்"]);
        same(&["பெண்", "பெண்கள்", "பெண்களுக்கு", "பெண்களுக்கான"]);
        same(&["குழந்தை", "குழந்தைகள்", "குழந்தைகளுக்கு"]);
        same(&["அன்பு", "அன்புடைமை", "அன்பின்"]);
        same(&["வெகுளி", "வெகுளாமை"]);
        same(&["அறம்", "அறத்தின்"]);
        same(&["பூ", "பூவை"]);
        same(&["தீ", "தீயினால்"]);
    }

    #[test]
    fn whole_words_only_so_a_short_word_never_matches_inside_a_longer_one() {
        assert_ne!(term("கண்"), term("கணினி"));
        assert_ne!(term("கண்"), term("கணினியின்"));
        assert_eq!(term("கண்"), term("கண்கள்"));
        assert_ne!(term("கல்"), term("கல்வி"));
    }

    #[test]
    fn romanized_tamil_meets_tamil_script() {
        let roman = |w: &str| romanized_term(w).unwrap();
        assert_eq!(roman("mazhai"), term("மழை"));
        assert_eq!(roman("natpu"), term("நட்பு"));
        assert_eq!(roman("natpai"), term("நட்பை"));
        assert_eq!(roman("kalvi"), term("கல்வி"));
        assert_eq!(roman("kuzhandhai"), term("குழந்தை"));
        assert_eq!(roman("anbudaimai"), term("அன்புடைமை"));
        assert_eq!(roman("virunthombal"), term("விருந்தோம்பல்"));
        assert_eq!(roman("pengal"), term("பெண்கள்"));
        assert_eq!(roman("udhavi"), term("உதவி"));
        assert_eq!(roman("ezhuthellam"), term("எழுத்தெல்லாம்"));
        assert_eq!(roman("kadavul"), term("கடவுள்"));
    }

    #[test]
    fn misspelt_tamil_letters_of_one_sound_meet() {
        assert_eq!(term("ஆம்புலண்ஸ்"), term("ஆம்புலன்ஸ்"));
        assert_eq!(term("வாழ்த்து"), term("வாழ்து"));
    }

    #[test]
    fn english_words_are_stemmed_and_stop_words_dropped() {
        assert_eq!(
            terms("The kurals about Friendship"),
            ["kural", "friendship"]
        );
        same(&["gambling", "gambled"]);
        assert_eq!(terms("what is it"), Vec::<String>::new());
    }

    #[test]
    fn digits_and_letters_are_split_and_ordinals_dropped() {
        assert_eq!(terms("25வது குறள்"), vec!["25".to_owned(), term("குறள்")]);
        assert_eq!(terms("the 10th kural"), ["10", "kural"]);
        assert_eq!(terms("குறள் ௧௨"), vec![term("குறள்"), "12".to_owned()]);
    }

    #[test]
    fn query_words_carry_every_term_that_stands_for_them() {
        let q = query_words("mazhai pathi kural");
        assert!(!q[0].stop && q[0].terms.contains(&term("மழை")));
        assert!(q[1].stop && q[1].terms.is_empty());
        assert!(q[2].terms.contains(&"kural".to_owned()));
        assert!(q[2].terms.contains(&term("குறள்")));
        // Devanagari: stop words go, other words stay as they are.
        let hi = query_words("भारत की राजधानी क्या है");
        let kept: Vec<_> = hi
            .iter()
            .filter(|w| !w.stop)
            .map(|w| w.word.as_str())
            .collect();
        assert_eq!(kept, ["भारत", "राजधानी"]);
    }

    #[test]
    fn romanized_tamil_stop_words_drop_out_of_queries_but_english_words_stay() {
        let kept = |q: &str| -> Vec<String> {
            query_words(q)
                .into_iter()
                .filter(|w| !w.stop)
                .map(|w| w.word)
                .collect()
        };
        // உடனே, எங்கே are stop words in Tamil letters; "ku" is the dative written apart.
        assert_eq!(kept("udane ambulance venum"), ["ambulance"]);
        assert_eq!(kept("police ku enge phone"), ["police", "phone"]);
        // English words that happen to read as one (அது, இது) are not dropped.
        assert_eq!(kept("add hit far hence"), ["add", "hit", "far", "hence"]);
    }

    #[test]
    fn keys_keep_their_stop_words() {
        assert_eq!(key_terms("Books of Virtue"), key_terms("book of virtue"));
        assert_ne!(key_terms("book of virtue"), key_terms("book virtue"));
    }
}
