//! `{name}` templates filled from a rule's named capture groups.

use regex::{Captures, Regex};

use crate::text::{nfc, normalize_query};

/// One piece of a parsed template.
#[derive(Debug, Clone)]
enum Piece {
    /// Text copied as is.
    Literal(String),
    /// The text of the capture group with this index (empty when it did not participate).
    Group(usize),
}

/// A template such as `kural {n}`, checked against its rule's pattern when loaded, so filling
/// it can never refer to a group that does not exist. `{{` and `}}` stand for literal braces.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `source` (the value of the field `field`, for messages) against `regex`'s groups.
    pub(crate) fn parse(field: &str, source: &str, regex: &Regex) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = source.chars();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.as_str().starts_with('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.as_str().starts_with('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = chars.as_str();
                    let Some(end) = rest.find('}') else {
                        return Err(format!(
                            "`{field}` template {source:?} has an unclosed `{{`"
                        ));
                    };
                    let name = &rest[..end];
                    if name.is_empty() {
                        return Err(format!("`{field}` template {source:?} has an empty `{{}}`"));
                    }
                    let Some(index) = regex.capture_names().position(|n| n == Some(name)) else {
                        let defined: Vec<&str> = regex.capture_names().flatten().collect();
                        let defined = if defined.is_empty() {
                            "it defines no named groups".to_owned()
                        } else {
                            format!("it defines: {}", defined.join(", "))
                        };
                        return Err(format!(
                            "`{field}` template {source:?} uses capture group `{name}`, which \
                             the pattern does not define ({defined})"
                        ));
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(nfc(&std::mem::take(&mut literal))));
                    }
                    pieces.push(Piece::Group(index));
                    chars = rest[end + 1..].chars();
                }
                '}' => {
                    return Err(format!(
                        "`{field}` template {source:?} has an unmatched `}}` (write `}}}}`)"
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(nfc(&literal)));
        }
        Ok(Self {
            source: source.to_owned(),
            pieces,
        })
    }

    /// The template as written in the rule file.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Whether filling needs capture groups (else `is_match` is enough).
    pub(crate) fn uses_groups(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Group(_)))
    }

    /// Fills the template from `caps` (`None` when it uses no groups) and normalizes the
    /// result with [`normalize_query`], like the knowledge base normalizes its keys.
    pub(crate) fn fill(&self, caps: Option<&Captures<'_>>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Group(i) => {
                    if let Some(m) = caps.and_then(|c| c.get(*i)) {
                        out.push_str(m.as_str());
                    }
                }
            }
        }
        normalize_query(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Regex {
        Regex::new(p).unwrap()
    }

    #[test]
    fn fills_named_groups() {
        let r = re(r"^kural (?P<n>\d+)(?: (?P<x>x))?$");
        let t = Template::parse("key", "Kural {n}{x} {{lit}}", &r).unwrap();
        let caps = r.captures("kural 12").unwrap();
        assert_eq!(t.fill(Some(&caps)), "kural 12 {lit}");
        assert!(t.uses_groups());
        assert_eq!(t.source(), "Kural {n}{x} {{lit}}");
    }

    #[test]
    fn rejects_bad_templates() {
        let r = re(r"^(?P<n>\d+)$");
        let missing = Template::parse("key", "kural {m}", &r).unwrap_err();
        assert!(
            missing.contains("`m`") && missing.contains("it defines: n"),
            "{missing}"
        );
        assert!(Template::parse("key", "kural {n", &r)
            .unwrap_err()
            .contains("unclosed"));
        assert!(Template::parse("key", "kural {}", &r)
            .unwrap_err()
            .contains("empty"));
        assert!(Template::parse("key", "kural }", &r)
            .unwrap_err()
            .contains("unmatched"));
        let none = Template::parse("key", "{q}", &re("abc")).unwrap_err();
        assert!(none.contains("no named groups"), "{none}");
    }
}
