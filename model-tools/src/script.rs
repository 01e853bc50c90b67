//! Unicode script measurement: which writing systems the letters of a text belong to.
//!
//! Used to check that training data, evaluation answers and generated text are written in the
//! script of the target language (Tamil data that is really 70 % English is the most common
//! silent data fault). Only *letters and combining marks* count: digits, punctuation, spaces,
//! symbols and emoji carry no script and are ignored. Scripts are decided by explicit Unicode
//! block ranges; combining diacritics of the generic blocks (U+0300–U+036F and friends) count
//! towards the script of the letter they follow (Vietnamese written in NFD stays Latin).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// A writing system, as far as the model-build checks care about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Script {
    /// Latin, with Latin-1 Supplement, Extended A/B/C/D/E, IPA and Extended Additional.
    Latin,
    /// Tamil (U+0B80–U+0BFF) and Tamil Supplement (U+11FC0–U+11FFF).
    Tamil,
    /// Devanagari (Hindi, Sanskrit, Marathi, Nepali).
    Devanagari,
    /// Malayalam.
    Malayalam,
    /// Telugu.
    Telugu,
    /// Kannada.
    Kannada,
    /// Bengali (Bangla, Assamese).
    Bengali,
    /// Gujarati.
    Gujarati,
    /// Gurmukhi (Punjabi).
    Gurmukhi,
    /// Oriya (Odia).
    Oriya,
    /// Sinhala.
    Sinhala,
    /// Arabic (Arabic, Urdu, Persian).
    Arabic,
    /// Cyrillic.
    Cyrillic,
    /// Greek.
    Greek,
    /// Hebrew.
    Hebrew,
    /// Thai.
    Thai,
    /// Han ideographs (Chinese; Kanji in Japanese).
    Han,
    /// Japanese Hiragana and Katakana.
    Kana,
    /// Korean Hangul.
    Hangul,
    /// A letter of any other script (Armenian, Georgian, Ethiopic, …).
    Other,
}

/// Number of scripts.
const SCRIPT_COUNT: usize = 20;

/// Every script, in declaration order (the index of a script in this list is its slot).
static ALL: [Script; SCRIPT_COUNT] = [
    Script::Latin,
    Script::Tamil,
    Script::Devanagari,
    Script::Malayalam,
    Script::Telugu,
    Script::Kannada,
    Script::Bengali,
    Script::Gujarati,
    Script::Gurmukhi,
    Script::Oriya,
    Script::Sinhala,
    Script::Arabic,
    Script::Cyrillic,
    Script::Greek,
    Script::Hebrew,
    Script::Thai,
    Script::Han,
    Script::Kana,
    Script::Hangul,
    Script::Other,
];

impl Script {
    /// Every script, `Other` last.
    pub fn all() -> &'static [Script] {
        &ALL
    }

    /// The lowercase name used in reports and JSON (`"tamil"`).
    pub fn name(self) -> &'static str {
        match self {
            Script::Latin => "latin",
            Script::Tamil => "tamil",
            Script::Devanagari => "devanagari",
            Script::Malayalam => "malayalam",
            Script::Telugu => "telugu",
            Script::Kannada => "kannada",
            Script::Bengali => "bengali",
            Script::Gujarati => "gujarati",
            Script::Gurmukhi => "gurmukhi",
            Script::Oriya => "oriya",
            Script::Sinhala => "sinhala",
            Script::Arabic => "arabic",
            Script::Cyrillic => "cyrillic",
            Script::Greek => "greek",
            Script::Hebrew => "hebrew",
            Script::Thai => "thai",
            Script::Han => "han",
            Script::Kana => "kana",
            Script::Hangul => "hangul",
            Script::Other => "other",
        }
    }

    /// The script a language is normally written in.
    ///
    /// Takes an ISO 639-1 (`ta`) or ISO 639-3 (`tam`) code, case-insensitive; a BCP 47 tag
    /// (`ta-IN`, `sr-Latn`) is reduced to its language, except that an explicit script subtag
    /// wins. Japanese maps to [`Script::Kana`]; use [`Script::writing_system`] to accept its
    /// Kanji too. `None` for codes this table does not know.
    pub fn for_language(code: &str) -> Option<Script> {
        let lower = code.trim().to_ascii_lowercase();
        let mut parts = lower.split(['-', '_']);
        let language = parts.next().unwrap_or_default();
        for subtag in parts {
            if subtag.len() == 4 {
                if let Some(script) = Script::parse(subtag) {
                    return Some(script);
                }
            }
        }
        let script = match language {
            "ta" | "tam" => Script::Tamil,
            "hi" | "hin" | "sa" | "san" | "mr" | "mar" | "ne" | "nep" | "kok" | "mai" | "bho"
            | "doi" | "brx" => Script::Devanagari,
            "ml" | "mal" => Script::Malayalam,
            "te" | "tel" => Script::Telugu,
            "kn" | "kan" => Script::Kannada,
            "bn" | "ben" | "as" | "asm" => Script::Bengali,
            "gu" | "guj" => Script::Gujarati,
            "pa" | "pan" => Script::Gurmukhi,
            "or" | "ori" | "ory" => Script::Oriya,
            "si" | "sin" => Script::Sinhala,
            "ar" | "ara" | "ur" | "urd" | "fa" | "fas" | "per" | "ps" | "pus" | "sd" | "snd" => {
                Script::Arabic
            }
            "ru" | "rus" | "uk" | "ukr" | "be" | "bel" | "bg" | "bul" | "sr" | "srp" | "mk"
            | "mkd" | "kk" | "kaz" | "ky" | "kir" | "mn" | "mon" | "tg" | "tgk" => Script::Cyrillic,
            "el" | "ell" | "gre" => Script::Greek,
            "he" | "heb" | "yi" | "yid" => Script::Hebrew,
            "th" | "tha" => Script::Thai,
            "zh" | "zho" | "chi" | "cmn" | "yue" => Script::Han,
            "ja" | "jpn" => Script::Kana,
            "ko" | "kor" => Script::Hangul,
            "en" | "eng" | "vi" | "vie" | "fr" | "fra" | "fre" | "de" | "deu" | "ger" | "es"
            | "spa" | "it" | "ita" | "pt" | "por" | "nl" | "nld" | "dut" | "pl" | "pol" | "cs"
            | "ces" | "cze" | "sk" | "slk" | "ro" | "ron" | "rum" | "hu" | "hun" | "fi" | "fin"
            | "sv" | "swe" | "da" | "dan" | "no" | "nor" | "nb" | "nob" | "nn" | "nno" | "is"
            | "isl" | "tr" | "tur" | "id" | "ind" | "ms" | "msa" | "may" | "tl" | "tgl" | "fil"
            | "sw" | "swa" | "ca" | "cat" | "hr" | "hrv" | "sl" | "slv" | "lt" | "lit" | "lv"
            | "lav" | "et" | "est" | "ga" | "gle" | "cy" | "cym" | "eu" | "eus" | "af" | "afr"
            | "sq" | "sqi" | "az" | "aze" | "uz" | "uzb" | "ha" | "hau" | "yo" | "yor" | "ig"
            | "ibo" | "zu" | "zul" | "xh" | "xho" | "so" | "som" | "mt" | "mlt" | "la" | "lat"
            | "eo" | "epo" => Script::Latin,
            _ => return None,
        };
        Some(script)
    }

    /// Parse a script from its lowercase name (`"tamil"`) or its ISO 15924 code (`"Taml"`),
    /// case-insensitive. `Hans`/`Hant`/`Hani` are Han, `Hira`/`Kana`/`Hrkt` are Kana.
    pub fn parse(name: &str) -> Option<Script> {
        let lower = name.trim().to_ascii_lowercase();
        if let Some(script) = ALL.iter().copied().find(|s| s.name() == lower) {
            return Some(script);
        }
        let script = match lower.as_str() {
            "latn" => Script::Latin,
            "taml" => Script::Tamil,
            "deva" => Script::Devanagari,
            "mlym" => Script::Malayalam,
            "telu" => Script::Telugu,
            "knda" => Script::Kannada,
            "beng" | "bangla" => Script::Bengali,
            "gujr" => Script::Gujarati,
            "guru" => Script::Gurmukhi,
            "orya" | "odia" => Script::Oriya,
            "sinh" => Script::Sinhala,
            "arab" => Script::Arabic,
            "cyrl" => Script::Cyrillic,
            "grek" => Script::Greek,
            "hebr" => Script::Hebrew,
            "hani" | "hans" | "hant" => Script::Han,
            "hira" | "hrkt" | "hiragana" | "katakana" => Script::Kana,
            "hang" | "kore" => Script::Hangul,
            _ => return None,
        };
        Some(script)
    }

    /// The scripts that together write the language whose main script this is: Japanese
    /// ([`Script::Kana`]) is written with Kana *and* Han, every other script stands alone.
    pub fn writing_system(self) -> &'static [Script] {
        match self {
            Script::Kana => &[Script::Kana, Script::Han],
            _ => std::slice::from_ref(&ALL[self.slot()]),
        }
    }

    /// Position of this script in [`Script::all`].
    fn slot(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Inclusive code point ranges of each script's blocks (letters, marks and the few digits and
/// signs inside them; those are filtered out by [`script_of`] through the Unicode properties).
const BLOCKS: &[(u32, u32, Script)] = &[
    (0x0041, 0x005A, Script::Latin),
    (0x0061, 0x007A, Script::Latin),
    (0x00AA, 0x00AA, Script::Latin),
    (0x00BA, 0x00BA, Script::Latin),
    (0x00C0, 0x00D6, Script::Latin),
    (0x00D8, 0x00F6, Script::Latin),
    (0x00F8, 0x024F, Script::Latin), // Latin-1 letters, Latin Extended-A and -B
    (0x0250, 0x02AF, Script::Latin), // IPA Extensions
    (0x0370, 0x03FF, Script::Greek),
    (0x0400, 0x052F, Script::Cyrillic), // Cyrillic and Cyrillic Supplement
    (0x0590, 0x05FF, Script::Hebrew),
    (0x0600, 0x06FF, Script::Arabic),
    (0x0750, 0x077F, Script::Arabic), // Arabic Supplement
    (0x0870, 0x08FF, Script::Arabic), // Arabic Extended-B and -A
    (0x0900, 0x097F, Script::Devanagari),
    (0x0980, 0x09FF, Script::Bengali),
    (0x0A00, 0x0A7F, Script::Gurmukhi),
    (0x0A80, 0x0AFF, Script::Gujarati),
    (0x0B00, 0x0B7F, Script::Oriya),
    (0x0B80, 0x0BFF, Script::Tamil),
    (0x0C00, 0x0C7F, Script::Telugu),
    (0x0C80, 0x0CFF, Script::Kannada),
    (0x0D00, 0x0D7F, Script::Malayalam),
    (0x0D80, 0x0DFF, Script::Sinhala),
    (0x0E00, 0x0E7F, Script::Thai),
    (0x1100, 0x11FF, Script::Hangul),       // Hangul Jamo
    (0x1C80, 0x1C8F, Script::Cyrillic),     // Cyrillic Extended-C
    (0x1D00, 0x1D7F, Script::Latin),        // Phonetic Extensions
    (0x1E00, 0x1EFF, Script::Latin),        // Latin Extended Additional (Vietnamese)
    (0x1F00, 0x1FFF, Script::Greek),        // Greek Extended
    (0x2C60, 0x2C7F, Script::Latin),        // Latin Extended-C
    (0x2DE0, 0x2DFF, Script::Cyrillic),     // Cyrillic Extended-A
    (0x3005, 0x3005, Script::Han),          // ideographic iteration mark
    (0x3040, 0x30FF, Script::Kana),         // Hiragana and Katakana
    (0x3130, 0x318F, Script::Hangul),       // Hangul Compatibility Jamo
    (0x31F0, 0x31FF, Script::Kana),         // Katakana Phonetic Extensions
    (0x3400, 0x4DBF, Script::Han),          // CJK Extension A
    (0x4E00, 0x9FFF, Script::Han),          // CJK Unified Ideographs
    (0xA640, 0xA69F, Script::Cyrillic),     // Cyrillic Extended-B
    (0xA720, 0xA7FF, Script::Latin),        // Latin Extended-D
    (0xA8E0, 0xA8FF, Script::Devanagari),   // Devanagari Extended
    (0xA960, 0xA97F, Script::Hangul),       // Hangul Jamo Extended-A
    (0xAB30, 0xAB6F, Script::Latin),        // Latin Extended-E
    (0xAC00, 0xD7FF, Script::Hangul),       // Hangul Syllables and Jamo Extended-B
    (0xF900, 0xFAFF, Script::Han),          // CJK Compatibility Ideographs
    (0xFB00, 0xFB06, Script::Latin),        // Latin ligatures
    (0xFB1D, 0xFB4F, Script::Hebrew),       // Hebrew presentation forms
    (0xFB50, 0xFDFF, Script::Arabic),       // Arabic Presentation Forms-A
    (0xFE70, 0xFEFF, Script::Arabic),       // Arabic Presentation Forms-B
    (0xFF21, 0xFF3A, Script::Latin),        // fullwidth capitals
    (0xFF41, 0xFF5A, Script::Latin),        // fullwidth small letters
    (0xFF66, 0xFF9F, Script::Kana),         // halfwidth Katakana
    (0xFFA0, 0xFFDC, Script::Hangul),       // halfwidth Hangul
    (0x11B00, 0x11B5F, Script::Devanagari), // Devanagari Extended-A
    (0x11FC0, 0x11FFF, Script::Tamil),      // Tamil Supplement
    (0x1B000, 0x1B16F, Script::Kana),       // Kana Supplement and Extended-A
    (0x20000, 0x2FA1F, Script::Han),        // CJK Extensions B–F and Compatibility Supplement
    (0x30000, 0x323AF, Script::Han),        // CJK Extensions G and H
];

/// Blocks of combining marks that belong to no script of their own: they take the script of
/// the letter they follow.
const INHERITED_MARKS: &[(u32, u32)] = &[
    (0x0300, 0x036F), // Combining Diacritical Marks
    (0x1AB0, 0x1AFF), // Combining Diacritical Marks Extended
    (0x1DC0, 0x1DFF), // Combining Diacritical Marks Supplement
    (0x20D0, 0x20FF), // Combining Diacritical Marks for Symbols
    (0xFE20, 0xFE2F), // Combining Half Marks
];

fn in_ranges(code: u32, ranges: &[(u32, u32)]) -> bool {
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&code))
}

/// Whether `c` is a letter or combining mark (digits, including letter-like numerals such as
/// Roman numerals, are not).
fn is_letter_or_mark(c: char) -> bool {
    !c.is_numeric() && (c.is_alphabetic() || unicode_normalization::char::is_combining_mark(c))
}

/// Whether `c` is a generic combining diacritic whose script is that of the preceding letter.
fn is_inherited_mark(c: char) -> bool {
    in_ranges(u32::from(c), INHERITED_MARKS)
}

/// The script of a letter or combining mark; `None` for everything that is not counted
/// (digits, punctuation, spaces, symbols, emoji, joiners) and for the generic combining
/// diacritics (U+0300–U+036F, …), whose script is that of the letter they follow — see
/// [`ScriptMix::measure`]. A letter outside the known blocks is [`Script::Other`].
pub fn script_of(c: char) -> Option<Script> {
    if c.is_ascii() {
        return c.is_ascii_alphabetic().then_some(Script::Latin);
    }
    if is_inherited_mark(c) || !is_letter_or_mark(c) {
        return None;
    }
    let code = u32::from(c);
    let script = match BLOCKS.binary_search_by(|&(lo, hi, _)| {
        if hi < code {
            std::cmp::Ordering::Less
        } else if lo > code {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }) {
        Ok(index) => BLOCKS[index].2,
        Err(_) => Script::Other,
    };
    Some(script)
}

/// How many letters (and combining marks) of each script a text holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptMix {
    counts: [usize; SCRIPT_COUNT],
}

impl ScriptMix {
    /// Count the letters of `text` per script. Generic combining diacritics count towards the
    /// script of the letter before them (and are dropped when no letter precedes them).
    pub fn measure(text: &str) -> ScriptMix {
        let mut mix = ScriptMix::default();
        let mut last: Option<Script> = None;
        for c in text.chars() {
            if let Some(script) = script_of(c) {
                mix.counts[script.slot()] += 1;
                last = Some(script);
            } else if is_inherited_mark(c) {
                if let Some(script) = last {
                    mix.counts[script.slot()] += 1;
                }
            } else if !is_joiner(c) {
                last = None;
            }
        }
        mix
    }

    /// Add the counts of another measurement (to aggregate over many samples).
    pub fn add(&mut self, other: &ScriptMix) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
    }

    /// Number of counted letters and marks, all scripts together.
    pub fn letters(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Number of letters of one script.
    pub fn count(&self, script: Script) -> usize {
        self.counts[script.slot()]
    }

    /// Share (0.0–1.0) of the letters that are in `script`; 0.0 when there are no letters.
    pub fn share(&self, script: Script) -> f64 {
        self.share_of(std::slice::from_ref(&script))
    }

    /// Share (0.0–1.0) of the letters that are in any of `scripts` (for example
    /// [`Script::writing_system`]); 0.0 when there are no letters.
    pub fn share_of(&self, scripts: &[Script]) -> f64 {
        let letters = self.letters();
        if letters == 0 {
            return 0.0;
        }
        let mut wanted = 0;
        for (slot, script) in ALL.iter().enumerate() {
            if scripts.contains(script) {
                wanted += self.counts[slot];
            }
        }
        wanted as f64 / letters as f64
    }

    /// The script with the most letters (the earlier one in [`Script::all`] on a tie); `None`
    /// when there are no letters.
    pub fn dominant(&self) -> Option<Script> {
        let mut best: Option<(Script, usize)> = None;
        for (slot, &count) in self.counts.iter().enumerate() {
            if count > 0 && best.is_none_or(|(_, best_count)| count > best_count) {
                best = Some((ALL[slot], count));
            }
        }
        best.map(|(script, _)| script)
    }

    /// The scripts present with their letter counts, most frequent first.
    pub fn counts(&self) -> Vec<(Script, usize)> {
        let mut present: Vec<(Script, usize)> = ALL
            .iter()
            .copied()
            .zip(self.counts.iter().copied())
            .filter(|&(_, count)| count > 0)
            .collect();
        present.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        present
    }

    /// The share of every script present, keyed by script (for reports).
    pub fn shares(&self) -> BTreeMap<Script, f64> {
        let letters = self.letters();
        self.counts()
            .into_iter()
            .map(|(script, count)| (script, count as f64 / letters.max(1) as f64))
            .collect()
    }

    /// Human-readable summary such as `latin 74.0 %, tamil 26.0 %` (`no letters` when empty).
    pub fn describe(&self) -> String {
        let letters = self.letters();
        if letters == 0 {
            return "no letters".to_string();
        }
        self.counts()
            .iter()
            .map(|&(script, count)| {
                format!("{script} {:.1} %", 100.0 * count as f64 / letters as f64)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Serialize for ScriptMix {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<Script, usize> = self.counts().into_iter().collect();
        map.serialize(serializer)
    }
}

/// Zero-width joiners and non-joiners shape Indic and Arabic text inside a word: they do not
/// end the word, so a following diacritic still belongs to the letter before them.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_sorted_and_disjoint() {
        for pair in BLOCKS.windows(2) {
            assert!(pair[0].0 <= pair[0].1, "range {:X?} is reversed", pair[0]);
            assert!(
                pair[0].1 < pair[1].0,
                "{:X?} overlaps or precedes {:X?}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn slots_match_the_list() {
        for (slot, &script) in Script::all().iter().enumerate() {
            assert_eq!(script.slot(), slot, "{script}");
        }
    }

    #[test]
    fn tamil_text_is_all_tamil() {
        let mix = ScriptMix::measure("திருக்குறள் உலகப் பொதுமறை என்று போற்றப்படுகிறது.");
        assert!(mix.letters() > 30, "letters counted: {}", mix.letters());
        assert_eq!(mix.share(Script::Tamil), 1.0);
        assert_eq!(mix.dominant(), Some(Script::Tamil));
        // The pulli (virama) U+0BCD is a combining mark and counts as Tamil.
        assert_eq!(script_of('\u{0BCD}'), Some(Script::Tamil));
        // Tamil digits and the rupee sign are not letters.
        assert_eq!(script_of('௧'), None);
        assert_eq!(script_of('\u{0BF9}'), None);
        assert_eq!(
            script_of('\u{11FC0}'),
            None,
            "Tamil Supplement fraction is a number"
        );
        assert_eq!(
            script_of('\u{11FFF}'),
            None,
            "end of text mark is punctuation"
        );
    }

    #[test]
    fn mixed_text_share_is_exact() {
        // "abc" = 3 Latin letters; "தமிழ்" = த, ம, ி, ழ, ் = 5 Tamil letters and marks; the
        // digits, space, comma and emoji are not counted.
        let mix = ScriptMix::measure("abc, 123 தமிழ் 😀!");
        assert_eq!(mix.count(Script::Latin), 3);
        assert_eq!(mix.count(Script::Tamil), 5);
        assert_eq!(mix.letters(), 8);
        assert_eq!(mix.share(Script::Tamil), 5.0 / 8.0);
        assert_eq!(mix.share(Script::Latin), 3.0 / 8.0);
        assert_eq!(mix.share_of(&[Script::Latin, Script::Tamil]), 1.0);
        assert_eq!(mix.dominant(), Some(Script::Tamil));
        assert_eq!(mix.describe(), "tamil 62.5 %, latin 37.5 %");
    }

    #[test]
    fn vietnamese_with_diacritics_is_latin() {
        let nfc = "Tiếng Việt có dấu: đường phố Hà Nội";
        let mix = ScriptMix::measure(nfc);
        assert_eq!(mix.share(Script::Latin), 1.0, "{}", mix.describe());
        let letters = nfc.chars().filter(|c| c.is_alphabetic()).count();
        assert_eq!(mix.letters(), letters);
        // NFD: the combining circumflex and acute count towards the preceding Latin letter.
        let nfd = "Vie\u{0302}\u{0323}t";
        let mix = ScriptMix::measure(nfd);
        assert_eq!(mix.count(Script::Latin), 6);
        assert_eq!(mix.letters(), 6);
        assert_eq!(
            script_of('\u{0301}'),
            None,
            "inherited mark alone has no script"
        );
        // A mark with no letter before it is dropped.
        assert_eq!(ScriptMix::measure(" \u{0301}").letters(), 0);
        assert_eq!(ScriptMix::measure("ệ").share(Script::Latin), 1.0);
    }

    #[test]
    fn digits_punctuation_symbols_are_not_counted() {
        let mix = ScriptMix::measure("0123456789 .,;:!? -+*/ € ₹ © 😀 🇮🇳 ¼ Ⅻ ٣ ५ \u{200D}\t\n");
        assert_eq!(mix.letters(), 0, "{:?}", mix.counts());
        assert_eq!(mix.share(Script::Latin), 0.0);
        assert_eq!(mix.dominant(), None);
        assert_eq!(mix.describe(), "no letters");
        assert_eq!(script_of('×'), None);
        assert_eq!(script_of('ª'), Some(Script::Latin));
    }

    #[test]
    fn other_scripts_are_recognised() {
        let cases = [
            ('क', Script::Devanagari),
            ('ം', Script::Malayalam),
            ('త', Script::Telugu),
            ('ಕ', Script::Kannada),
            ('ক', Script::Bengali),
            ('ક', Script::Gujarati),
            ('ਕ', Script::Gurmukhi),
            ('କ', Script::Oriya),
            ('ක', Script::Sinhala),
            ('ب', Script::Arabic),
            ('ж', Script::Cyrillic),
            ('λ', Script::Greek),
            ('ש', Script::Hebrew),
            ('ก', Script::Thai),
            ('漢', Script::Han),
            ('か', Script::Kana),
            ('カ', Script::Kana),
            ('한', Script::Hangul),
            ('ß', Script::Latin),
            ('ő', Script::Latin),
            ('Ա', Script::Other),
        ];
        for (c, script) in cases {
            assert_eq!(script_of(c), Some(script), "{c:?} (U+{:04X})", u32::from(c));
        }
    }

    #[test]
    fn languages_and_names_resolve() {
        assert_eq!(Script::for_language("ta"), Some(Script::Tamil));
        assert_eq!(Script::for_language("TAM"), Some(Script::Tamil));
        assert_eq!(Script::for_language("ta-IN"), Some(Script::Tamil));
        for code in ["sa", "hi", "mr", "ne"] {
            assert_eq!(
                Script::for_language(code),
                Some(Script::Devanagari),
                "{code}"
            );
        }
        for code in ["en", "vi", "fr", "de", "es"] {
            assert_eq!(Script::for_language(code), Some(Script::Latin), "{code}");
        }
        assert_eq!(Script::for_language("sr-Latn"), Some(Script::Latin));
        assert_eq!(Script::for_language("ur"), Some(Script::Arabic));
        assert_eq!(Script::for_language("ja"), Some(Script::Kana));
        assert_eq!(Script::for_language("xx"), None);
        assert_eq!(Script::Kana.writing_system(), &[Script::Kana, Script::Han]);
        assert_eq!(Script::Tamil.writing_system(), &[Script::Tamil]);
        for &script in Script::all() {
            assert_eq!(Script::parse(script.name()), Some(script));
            assert_eq!(Script::parse(&script.name().to_uppercase()), Some(script));
        }
        assert_eq!(Script::parse("Taml"), Some(Script::Tamil));
        assert_eq!(Script::parse("klingon"), None);
        let json = serde_json::to_string(&Script::Devanagari).expect("serialize");
        assert_eq!(json, "\"devanagari\"");
    }

    #[test]
    fn japanese_counts_kanji_with_kana() {
        let mix = ScriptMix::measure("日本語を話します");
        // 日 本 語 話 are Han; を し ま す are Kana.
        assert_eq!(mix.count(Script::Han), 4);
        assert_eq!(mix.count(Script::Kana), 4);
        assert_eq!(mix.share_of(Script::Kana.writing_system()), 1.0);
    }

    #[test]
    fn aggregates_add_up_and_serialize() {
        let mut total = ScriptMix::measure("abc");
        total.add(&ScriptMix::measure("தமிழ"));
        assert_eq!(total.count(Script::Latin), 3);
        assert_eq!(total.count(Script::Tamil), 4);
        let json = serde_json::to_value(&total).expect("serialize");
        assert_eq!(json["latin"], 3);
        assert_eq!(json["tamil"], 4);
        assert_eq!(total.shares()[&Script::Tamil], 4.0 / 7.0);
    }
}
