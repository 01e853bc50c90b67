//! What a word is, for the index and for queries alike.
//!
//! User text never becomes FTS syntax: the [analyzer](super::analyzer) cuts text into words
//! with [`is_word_char`] — letters, numbers, marks and private-use characters form words;
//! everything else separates them — and search quotes every term it sends to FTS5
//! (`"term"`, inner quotes doubled), so `AND`, `NEAR(`, `col:x`, `*`, `"` and friends are
//! only ever words or nothing. Marks count as word characters so that Tamil and Devanagari
//! words stay whole (`தமிழ்`, not `தம` + `ழ`).

/// Whether `c` is a word character for the index's `unicode61 categories 'L* N* Co M*'`.
pub fn is_word_char(c: char) -> bool {
    // Fast paths for the scripts most text is in; the rest asks Unicode's tables.
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    if ('\u{0B80}'..='\u{0BFF}').contains(&c) {
        // Tamil: letters, vowel signs, virama, digits and number signs are word characters;
        // the calendar and currency symbols (௳–௺) are not.
        return !('\u{0BF3}'..='\u{0BFA}').contains(&c);
    }
    c.is_alphanumeric()
        || unicode_normalization::char::is_combining_mark(c)
        || matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}')
}

/// `term` as an FTS5 string: quoted, inner quotes doubled.
pub fn quoted(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_word_characters_and_syntax_is_not() {
        assert!("தமிழ்".chars().all(is_word_char));
        assert!("हिन्दी".chars().all(is_word_char));
        assert!(!"\"*:()^-".chars().any(is_word_char));
        assert!(!'௹'.is_alphanumeric() && !is_word_char('௹'));
        assert!("௧௨".chars().all(is_word_char));
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
    }
}
