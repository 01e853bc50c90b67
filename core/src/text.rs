//! Text normalization shared by the [router](crate::router) and the knowledge base.
//!
//! Queries reach Vazhi typed on phone keyboards in English, Tamil and other Indian languages:
//! the same word may arrive precomposed (NFC) or decomposed (NFD), in upper or lower case, with
//! native digits (`௧௨௩`, `१२३`) instead of ASCII ones, and with stray control characters or
//! runs of whitespace. [`normalize_query`] maps all of those to one canonical form, so that
//! routing rules and the search index only ever see that form.
//!
//! Case folding uses [`str::to_lowercase`] (full Unicode lowercase mapping, including the
//! context-sensitive Greek final sigma) rather than the `caseless` crate's full case folding:
//! the scripts Vazhi targets either have no case (Tamil, Devanagari, …) or fold correctly by
//! lowercasing (Latin), and it saves a dependency. The visible difference is that a few
//! characters whose full folding expands (German `ß` → `ss`) are kept as they are.

use unicode_normalization::{IsNormalized, UnicodeNormalization};

/// The most bytes of a query that are routed or searched; longer input is cut by
/// [`truncate_query`]. Real questions are far shorter; the cap bounds the work done on a
/// pasted wall of text.
pub const MAX_QUERY_BYTES: usize = 4096;

/// The code point of digit zero of every decimal digit run (Unicode general category `Nd`),
/// sorted. Unicode guarantees each such run is ten contiguous code points, zero to nine, so a
/// character's value is its distance from the run's zero.
const DIGIT_ZEROS: &[u32] = &[
    0x0030,  // ASCII
    0x0660,  // Arabic-Indic
    0x06F0,  // Extended Arabic-Indic
    0x07C0,  // NKo
    0x0966,  // Devanagari
    0x09E6,  // Bengali
    0x0A66,  // Gurmukhi
    0x0AE6,  // Gujarati
    0x0B66,  // Oriya
    0x0BE6,  // Tamil
    0x0C66,  // Telugu
    0x0CE6,  // Kannada
    0x0D66,  // Malayalam
    0x0DE6,  // Sinhala Lith
    0x0E50,  // Thai
    0x0ED0,  // Lao
    0x0F20,  // Tibetan
    0x1040,  // Myanmar
    0x1090,  // Myanmar Shan
    0x17E0,  // Khmer
    0x1810,  // Mongolian
    0x1946,  // Limbu
    0x19D0,  // New Tai Lue
    0x1A80,  // Tai Tham Hora
    0x1A90,  // Tai Tham Tham
    0x1B50,  // Balinese
    0x1BB0,  // Sundanese
    0x1C40,  // Lepcha
    0x1C50,  // Ol Chiki
    0xA620,  // Vai
    0xA8D0,  // Saurashtra
    0xA900,  // Kayah Li
    0xA9D0,  // Javanese
    0xA9F0,  // Myanmar Tai Laing
    0xAA50,  // Cham
    0xABF0,  // Meetei Mayek
    0xFF10,  // Fullwidth
    0x104A0, // Osmanya
    0x10D30, // Hanifi Rohingya
    0x10D40, // Garay
    0x11066, // Brahmi
    0x110F0, // Sora Sompeng
    0x11136, // Chakma
    0x111D0, // Sharada
    0x112F0, // Khudawadi
    0x11450, // Newa
    0x114D0, // Tirhuta
    0x11650, // Modi
    0x116C0, // Takri
    0x116D0, // Myanmar Pao
    0x116DA, // Myanmar Eastern Pwo Karen
    0x11730, // Ahom
    0x118E0, // Warang Citi
    0x11950, // Dives Akuru
    0x11BF0, // Sunuwar
    0x11C50, // Bhaiksuki
    0x11D50, // Masaram Gondi
    0x11DA0, // Gunjala Gondi
    0x11F50, // Kawi
    0x16130, // Gurung Khema
    0x16A60, // Mro
    0x16AC0, // Tangsa
    0x16B50, // Pahawh Hmong
    0x16D70, // Kirat Rai
    0x1CCF0, // Outlined
    0x1D7CE, // Mathematical bold
    0x1D7D8, // Mathematical double-struck
    0x1D7E2, // Mathematical sans-serif
    0x1D7EC, // Mathematical sans-serif bold
    0x1D7F6, // Mathematical monospace
    0x1E140, // Nyiakeng Puachue Hmong
    0x1E2F0, // Wancho
    0x1E4F0, // Nag Mundari
    0x1E5F1, // Ol Onal
    0x1E950, // Adlam
    0x1FBF0, // Segmented
];

/// The ASCII digit for `c` when `c` is a decimal digit (`Nd`) of any script, else `None`.
///
/// ```
/// assert_eq!(vazhi_core::text::ascii_digit('௫'), Some('5'));
/// assert_eq!(vazhi_core::text::ascii_digit('९'), Some('9'));
/// assert_eq!(vazhi_core::text::ascii_digit('x'), None);
/// ```
pub fn ascii_digit(c: char) -> Option<char> {
    let cp = u32::from(c);
    if cp < 0x80 {
        return c.is_ascii_digit().then_some(c);
    }
    // Index of the first zero above `cp`; the run that may hold `cp` starts just before it.
    let above = DIGIT_ZEROS.partition_point(|&zero| zero <= cp);
    let zero = DIGIT_ZEROS[above.checked_sub(1)?];
    let value = cp - zero;
    // `value < 10`, so the sum is an ASCII digit.
    (value < 10).then(|| char::from(b'0' + value as u8))
}

/// Whether `c` is removed outright by [`normalize_query`]: control characters (`Cc`, other than whitespace,
/// which becomes a space) and a few invisible format characters that arrive by copy and paste
/// and would otherwise split words (zero-width space, word joiner, byte-order mark, soft
/// hyphen). Zero-width joiner and non-joiner are kept: they are part of Indic orthography.
pub fn is_dropped(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200B}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}')
}

/// Normalizes a query for routing and searching.
///
/// In order: lowercase ([`str::to_lowercase`], see the module docs); whitespace of every kind
/// (`\n`, `\t`, no-break space, …) becomes a space and other control characters are removed;
/// Unicode NFC; decimal digits of every script become ASCII digits ([`ascii_digit`]); runs of
/// spaces collapse to one and the ends are trimmed. The result is idempotent:
/// `normalize_query(&normalize_query(s)) == normalize_query(s)`.
///
/// Input is not truncated here: callers routing untrusted input cut it with
/// [`truncate_query`] first.
///
/// ```
/// use vazhi_core::text::normalize_query;
/// assert_eq!(normalize_query("  KURAL \t 5 "), "kural 5");
/// assert_eq!(normalize_query("குறள் ௧௨௩"), "குறள் 123");
/// ```
pub fn normalize_query(s: &str) -> String {
    // Removal happens before NFC so that a dropped character between a base and its combining
    // mark does not prevent their composition.
    let cleaned: String = s
        .to_lowercase()
        .chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some(' ')
            } else if is_dropped(c) {
                None
            } else {
                Some(c)
            }
        })
        .collect();
    let mut out = String::with_capacity(cleaned.len());
    let mut pending_space = false;
    // Most text is already NFC (packs are stored so): skip composing when a quick check can
    // tell.
    let composed: Box<dyn Iterator<Item = char>> = if is_surely_nfc(&cleaned) {
        Box::new(cleaned.chars())
    } else {
        Box::new(cleaned.nfc())
    };
    for c in composed {
        if c == ' ' {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(ascii_digit(c).unwrap_or(c));
    }
    out
}

/// Unicode NFC only, keeping case, digits and whitespace: for text that is indexed or shown
/// (record keys, titles, bodies) where the original form must survive.
pub fn nfc(s: &str) -> String {
    if is_surely_nfc(s) {
        return s.to_owned();
    }
    s.nfc().collect()
}

/// Whether `s` is certainly in NFC, cheaply: ASCII and Tamil text is checked letter by letter
/// (Unicode's quick check answers "maybe" for every Tamil ா, which NFC composes only after ெ
/// or ே), anything else by the quick check. `false` means "compose to be sure".
pub fn is_surely_nfc(s: &str) -> bool {
    let mut previous = '\0';
    let mut other_scripts = false;
    for c in s.chars() {
        if c.is_ascii() {
        } else if ('\u{0B80}'..='\u{0BFF}').contains(&c) {
            // The Tamil compositions: ொ ோ ௌ from ெ/ே + ா/ௗ, and ஔ from ஒ + ௗ.
            let joins = matches!(
                (previous, c),
                ('\u{0BC6}' | '\u{0BC7}', '\u{0BBE}') | ('\u{0BC6}' | '\u{0B92}', '\u{0BD7}')
            );
            if joins {
                return false;
            }
        } else {
            other_scripts = true;
        }
        previous = c;
    }
    !other_scripts || unicode_normalization::is_nfc_quick(s.chars()) == IsNormalized::Yes
}

/// `s` cut to at most [`MAX_QUERY_BYTES`] bytes, at a character boundary.
pub fn truncate_query(s: &str) -> &str {
    if s.len() <= MAX_QUERY_BYTES {
        return s;
    }
    let mut end = MAX_QUERY_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The optimal-string-alignment distance between `a` and `b` (insertions, deletions,
/// substitutions and swaps of neighbours, each 1), or `None` when it is over `max`. Linear in
/// memory, `O(len × len)` in time; callers compare words, not texts.
///
/// ```
/// use vazhi_core::text::edit_distance;
/// assert_eq!(edit_distance("explian", "explain", 2), Some(1));
/// assert_eq!(edit_distance("frendship", "friendship", 1), Some(1));
/// assert_eq!(edit_distance("kural", "rural", 0), None);
/// ```
pub fn edit_distance(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let width = b.len() + 1;
    let mut before: Vec<usize> = vec![0; width];
    let mut previous: Vec<usize> = (0..width).collect();
    let mut current: Vec<usize> = vec![0; width];
    for i in 1..=a.len() {
        current[0] = i;
        let mut row_min = current[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
            row_min = row_min.min(d);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    let d = previous[b.len()];
    (d <= max).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cheap_nfc_check_never_calls_unnormalized_text_normal() {
        for text in [
            "plain ascii",
            "தமிழ் கொம்பு கோல் ஔவை",
            "கொ\u{0BC6}\u{0BBE}ம்பு",
            "\u{0B92}\u{0BD7}வை",
            "e\u{0301}",
            "é ü",
            "हिन्दी",
            "\u{0BC6}\u{0BD7}",
        ] {
            let truly = unicode_normalization::is_nfc(text);
            if is_surely_nfc(text) {
                assert!(truly, "{text:?} called NFC");
            }
            assert_eq!(nfc(text), text.nfc().collect::<String>());
        }
        assert!(is_surely_nfc("தமிழ் கொம்பு"));
        assert!(!is_surely_nfc("கொ\u{0BC6}\u{0BBE}"));
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", "", 0), Some(0));
        assert_eq!(edit_distance("abc", "abc", 0), Some(0));
        assert_eq!(edit_distance("ambulence", "ambulance", 1), Some(1));
        assert_eq!(edit_distance("kurl", "kural", 1), Some(1));
        assert_eq!(edit_distance("meening", "meaning", 1), Some(1));
        assert_eq!(edit_distance("ab", "ba", 1), Some(1));
        assert_eq!(edit_distance("abcdef", "badcfe", 2), None);
        assert_eq!(edit_distance("abcdef", "badcfe", 3), Some(3));
        assert_eq!(edit_distance("கண்", "கணினி", 1), None);
        assert_eq!(edit_distance("short", "much longer", 3), None);
    }

    #[test]
    fn tamil_digits_become_ascii() {
        assert_eq!(normalize_query("குறள் ௧௨௩"), "குறள் 123");
        assert_eq!(normalize_query("௦௧௨௩௪௫௬௭௮௯"), "0123456789");
    }

    #[test]
    fn case_and_spaces() {
        assert_eq!(normalize_query("KURAL  5"), "kural 5");
        assert_eq!(normalize_query("  Kural\t\n 5\r\n"), "kural 5");
        assert_eq!(normalize_query("a\u{00A0}\u{2003}b"), "a b");
    }

    #[test]
    fn nfd_tamil_equals_nfc() {
        // கொ: NFC is க + U+0BCA; NFD is க + U+0BC6 + U+0BBE.
        let nfc_text = "\u{0B95}\u{0BCA}\u{0B9F}\u{0BC1} \u{0BE7}";
        let nfd_text = "\u{0B95}\u{0BC6}\u{0BBE}\u{0B9F}\u{0BC1} \u{0BE7}";
        assert_ne!(nfc_text, nfd_text);
        assert_eq!(normalize_query(nfd_text), normalize_query(nfc_text));
        assert_eq!(
            normalize_query(nfd_text),
            "\u{0B95}\u{0BCA}\u{0B9F}\u{0BC1} 1"
        );
        assert_eq!(nfc(nfd_text), nfc_text);
    }

    #[test]
    fn other_scripts_digits() {
        assert_eq!(normalize_query("१२३"), "123"); // Devanagari
        assert_eq!(normalize_query("১২৩"), "123"); // Bengali
        assert_eq!(normalize_query("౧౨౩"), "123"); // Telugu
        assert_eq!(normalize_query("೧೨೩"), "123"); // Kannada
        assert_eq!(normalize_query("൧൨൩"), "123"); // Malayalam
        assert_eq!(normalize_query("૧૨૩"), "123"); // Gujarati
        assert_eq!(normalize_query("੧੨੩"), "123"); // Gurmukhi
        assert_eq!(normalize_query("୧୨୩"), "123"); // Oriya
        assert_eq!(normalize_query("١٢٣"), "123"); // Arabic-Indic
        assert_eq!(normalize_query("۱۲۳"), "123"); // Extended Arabic-Indic
        assert_eq!(normalize_query("๑๒๓"), "123"); // Thai
        assert_eq!(normalize_query("၁၂၃"), "123"); // Myanmar
        assert_eq!(normalize_query("１２３"), "123"); // Fullwidth
    }

    #[test]
    fn digit_table_covers_every_nd_character() {
        // Cross-check against the regex crate's Unicode tables: every `Nd` character maps to
        // the ASCII digit of its value, and nothing else maps.
        let nd = regex::Regex::new(r"^\p{Nd}$").unwrap();
        let mut buf = [0u8; 4];
        let mut seen = 0;
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let is_nd = nd.is_match(c.encode_utf8(&mut buf));
            match ascii_digit(c) {
                Some(d) => {
                    assert!(is_nd, "{c:?} is not Nd");
                    let zero = char::from_u32(u32::from(c) - (u32::from(d) - u32::from('0')));
                    assert!(nd.is_match(zero.unwrap().encode_utf8(&mut buf)));
                    seen += 1;
                }
                None => assert!(
                    !is_nd,
                    "{:?} (U+{:04X}) is Nd but not mapped",
                    c,
                    u32::from(c)
                ),
            }
        }
        assert_eq!(seen, DIGIT_ZEROS.len() * 10);
        assert!(DIGIT_ZEROS.windows(2).all(|w| w[0] + 10 <= w[1]));
    }

    #[test]
    fn controls_removed() {
        assert_eq!(normalize_query("a\u{0}b\u{7}c\u{1b}[0m"), "abc[0m");
        assert_eq!(normalize_query("kural\u{200B}5"), "kural5");
        assert_eq!(normalize_query("\u{FEFF}kural 5"), "kural 5");
        // A dropped character between a base and its mark does not block composition.
        assert_eq!(
            normalize_query("\u{0B95}\u{0BC6}\u{0}\u{0BBE}"),
            "\u{0B95}\u{0BCA}"
        );
        // ZWJ / ZWNJ are orthographic in Indic scripts and kept.
        assert_eq!(
            normalize_query("\u{0D28}\u{0D4D}\u{200D}"),
            "\u{0D28}\u{0D4D}\u{200D}"
        );
    }

    #[test]
    fn empty_and_blank() {
        assert_eq!(normalize_query(""), "");
        assert_eq!(normalize_query(" \t\n\r "), "");
        assert_eq!(normalize_query("\u{0}\u{1}"), "");
    }

    #[test]
    fn idempotent() {
        for s in [
            "KURAL  ௫",
            "  Ünïcödé\tTEXT ",
            "Σίσυφος ΟΔΟΣ",
            "\u{0B95}\u{0BC6}\u{0BBE}",
        ] {
            let once = normalize_query(s);
            assert_eq!(normalize_query(&once), once, "{s:?}");
        }
    }

    #[test]
    fn truncation_at_char_boundary() {
        assert_eq!(truncate_query("short"), "short");
        let long = "க".repeat(MAX_QUERY_BYTES); // 3 bytes each
        let cut = truncate_query(&long);
        assert!(cut.len() <= MAX_QUERY_BYTES && cut.len() > MAX_QUERY_BYTES - 3);
        assert!(cut.chars().all(|c| c == 'க'));
        let exact = "a".repeat(MAX_QUERY_BYTES + 1);
        assert_eq!(truncate_query(&exact).len(), MAX_QUERY_BYTES);
    }
}
