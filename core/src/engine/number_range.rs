//! Ranges for JSON Schema `number`s, which llama.cpp's schema converter does not enforce.
//!
//! Before conversion each `{"type": "number"}` whose `minimum`/`maximum`/`exclusiveMinimum`/
//! `exclusiveMaximum` are whole numbers is swapped for a placeholder constant; after it, the
//! placeholder's literal in the grammar is replaced by a rule generated here: a sign, an
//! integer part within the range (no leading zeros) and a fraction of the kind the bound
//! needs (any, all zeros, or with a non-zero digit), never an exponent. If the placeholder is
//! not found where expected, the caller converts the schema unchanged (and the validator still
//! catches a number out of range).

use serde_json::{Map, Value};

/// Largest bound magnitude handled (beyond it the schema is left unchanged).
const MAX_BOUND: f64 = 1e15;
/// Fraction digits a number may have.
const FRACTION_DIGITS: usize = 15;
/// Digits of an unbounded integer part.
const INTEGER_DIGITS: usize = 16;
/// A rule no text matches.
const NOTHING: &str = "[^\\x00-\\U0010FFFF]";

/// A schema with its bounded numbers swapped for placeholders, and their rules.
#[derive(Debug)]
pub(crate) struct Swapped {
    /// The schema to convert.
    pub schema: Value,
    /// Per placeholder: the literal llama.cpp writes for it and the rule that replaces it.
    pub rules: Vec<(String, String, String)>,
}

/// Swaps the bounded numbers of `schema`; `None` if it has none.
pub(crate) fn swap(schema: &Value) -> Option<Swapped> {
    let mut schema = schema.clone();
    let mut rules = Vec::new();
    visit(&mut schema, &mut rules);
    (!rules.is_empty()).then_some(Swapped { schema, rules })
}

/// Replaces each placeholder literal in `gbnf` by its rule; `None` if one is missing.
pub(crate) fn splice(gbnf: &str, rules: &[(String, String, String)]) -> Option<String> {
    let mut out = gbnf.to_owned();
    for (literal, name, rule) in rules {
        if !out.contains(literal.as_str()) {
            return None;
        }
        out = out.replace(literal.as_str(), name);
        out.push_str(&format!("{name} ::= {rule}\n"));
    }
    Some(out)
}

fn visit(node: &mut Value, rules: &mut Vec<(String, String, String)>) {
    match node {
        Value::Object(map) => {
            if let Some(rule) = bounded_number(map) {
                let n = rules.len();
                let placeholder = format!("__vazhi_number_range_{n}__");
                let literal = format!("\"\\\"{placeholder}\\\"\"");
                rules.push((literal, format!("vazhi-number-range-{n}"), rule));
                *node = serde_json::json!({ "const": placeholder });
                return;
            }
            for (key, value) in map.iter_mut() {
                // Data, not schemas: never rewritten.
                if !matches!(key.as_str(), "enum" | "const" | "default" | "examples") {
                    visit(value, rules);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| visit(v, rules)),
        _ => {}
    }
}

/// The rule for `map` if it is a `number` with whole bounds and nothing else to enforce.
fn bounded_number(map: &Map<String, Value>) -> Option<String> {
    if map.get("type")?.as_str()? != "number" {
        return None;
    }
    const ANNOTATIONS: [&str; 6] = [
        "type",
        "title",
        "description",
        "examples",
        "default",
        "$comment",
    ];
    let mut bounds = Bounds::default();
    for (key, value) in map {
        let side = match key.as_str() {
            "minimum" => &mut bounds.min,
            "exclusiveMinimum" => &mut bounds.min_exclusive,
            "maximum" => &mut bounds.max,
            "exclusiveMaximum" => &mut bounds.max_exclusive,
            k if ANNOTATIONS.contains(&k) => continue,
            _ => return None,
        };
        let v = value.as_f64()?;
        if v.fract() != 0.0 || v.abs() > MAX_BOUND {
            return None;
        }
        *side = Some(v as i64);
    }
    let lower = tighter(
        bounds.min.map(|v| (v, false)),
        bounds.min_exclusive.map(|v| (v, true)),
        true,
    );
    let upper = tighter(
        bounds.max.map(|v| (v, false)),
        bounds.max_exclusive.map(|v| (v, true)),
        false,
    );
    if lower.is_none() && upper.is_none() {
        return None;
    }
    Some(rule(lower, upper))
}

#[derive(Default)]
struct Bounds {
    min: Option<i64>,
    min_exclusive: Option<i64>,
    max: Option<i64>,
    max_exclusive: Option<i64>,
}

/// The stricter of an inclusive and an exclusive bound on the same side.
fn tighter(a: Option<(i64, bool)>, b: Option<(i64, bool)>, lower: bool) -> Option<(i64, bool)> {
    match (a, b) {
        (Some(x), Some(y)) => {
            let x_stricter = if x.0 == y.0 {
                x.1
            } else {
                (x.0 > y.0) == lower
            };
            Some(if x_stricter { x } else { y })
        }
        (x, None) => x,
        (None, y) => y,
    }
}

/// What a number's fraction may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frac {
    Any,
    Zero,
    NonZero,
}

/// Integer part in `lo..=hi` (`hi` `None`: unbounded), with a fraction of kind `frac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    lo: u64,
    hi: Option<u64>,
    frac: Frac,
}

const ALL: Piece = Piece {
    lo: 0,
    hi: None,
    frac: Frac::Any,
};

fn piece(lo: u64, hi: Option<u64>, frac: Frac) -> Piece {
    Piece { lo, hi, frac }
}

fn intersect(a: Piece, b: Piece) -> Option<Piece> {
    let lo = a.lo.max(b.lo);
    let hi = match (a.hi, b.hi) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    };
    if hi.is_some_and(|hi| hi < lo) {
        return None;
    }
    let frac = match (a.frac, b.frac) {
        (Frac::Any, f) | (f, Frac::Any) => f,
        (f, g) if f == g => f,
        _ => return None,
    };
    Some(Piece { lo, hi, frac })
}

fn combine(lower: Vec<Piece>, upper: Vec<Piece>) -> Vec<Piece> {
    lower
        .iter()
        .flat_map(|&l| upper.iter().filter_map(move |&u| intersect(l, u)))
        .collect()
}

/// Pieces of `x ≥ 0` (as `n + f`) and of `x ≤ 0` (as `-(m + f)`) within the bounds.
fn pieces(lower: Option<(i64, bool)>, upper: Option<(i64, bool)>) -> (Vec<Piece>, Vec<Piece>) {
    let u = |v: i64| v.unsigned_abs();
    // Non-negative side, constraints on n.
    let pos_lower = match lower {
        None => vec![ALL],
        Some((l, false)) if l <= 0 => vec![ALL],
        Some((l, false)) => vec![piece(u(l), None, Frac::Any)],
        Some((l, true)) if l < 0 => vec![ALL],
        Some((l, true)) => vec![
            piece(u(l) + 1, None, Frac::Any),
            piece(u(l), Some(u(l)), Frac::NonZero),
        ],
    };
    let pos_upper = match upper {
        None => vec![ALL],
        Some((h, false)) if h < 0 => vec![],
        Some((0, false)) => vec![piece(0, Some(0), Frac::Zero)],
        Some((h, false)) => vec![
            piece(0, Some(u(h) - 1), Frac::Any),
            piece(u(h), Some(u(h)), Frac::Zero),
        ],
        Some((h, true)) if h <= 0 => vec![],
        Some((h, true)) => vec![piece(0, Some(u(h) - 1), Frac::Any)],
    };
    // Negative side, constraints on m (x = -(m + f)).
    let neg_lower = match lower {
        None => vec![ALL],
        Some((l, false)) if l > 0 => vec![],
        Some((0, false)) => vec![piece(0, Some(0), Frac::Zero)],
        Some((l, false)) => vec![
            piece(0, Some(u(l) - 1), Frac::Any),
            piece(u(l), Some(u(l)), Frac::Zero),
        ],
        Some((l, true)) if l >= 0 => vec![],
        Some((l, true)) => vec![piece(0, Some(u(l) - 1), Frac::Any)],
    };
    let neg_upper = match upper {
        None => vec![ALL],
        Some((h, false)) if h >= 0 => vec![ALL],
        Some((h, false)) => vec![piece(u(h), None, Frac::Any)],
        Some((h, true)) if h > 0 => vec![ALL],
        Some((h, true)) => vec![
            piece(u(h) + 1, None, Frac::Any),
            piece(u(h), Some(u(h)), Frac::NonZero),
        ],
    };
    (combine(pos_lower, pos_upper), combine(neg_lower, neg_upper))
}

fn rule(lower: Option<(i64, bool)>, upper: Option<(i64, bool)>) -> String {
    let (positive, negative) = pieces(lower, upper);
    let mut alternatives: Vec<String> = positive.iter().map(|p| render(p, "")).collect();
    alternatives.extend(negative.iter().map(|p| render(p, "\"-\" ")));
    if alternatives.is_empty() {
        // An empty range (minimum above maximum): nothing can match.
        return NOTHING.into();
    }
    format!("({})", alternatives.join(" | "))
}

fn render(p: &Piece, sign: &str) -> String {
    let frac = match p.frac {
        Frac::Any => format!("(\".\" [0-9]{{1,{FRACTION_DIGITS}}})?"),
        Frac::Zero => format!("(\".\" \"0\"{{1,{FRACTION_DIGITS}}})?"),
        Frac::NonZero => format!(
            "\".\" \"0\"{{0,{}}} [1-9] [0-9]{{0,{}}}",
            FRACTION_DIGITS - 1,
            FRACTION_DIGITS - 1
        ),
    };
    format!("{sign}{} {frac}", integers(p.lo, p.hi))
}

/// Non-negative integers in `lo..=hi` (`hi` `None`: any larger), without leading zeros.
fn integers(lo: u64, hi: Option<u64>) -> String {
    let digits = |v: u64| v.to_string().len();
    let mut alternatives = Vec::new();
    let top = hi.unwrap_or(10u64.pow(digits(lo) as u32) - 1);
    for len in digits(lo)..=digits(top) {
        let first = if len == 1 {
            0
        } else {
            10u64.pow(len as u32 - 1)
        };
        let last = 10u64.pow(len as u32) - 1;
        let (a, b) = (lo.max(first), top.min(last));
        if a <= b {
            alternatives.extend(same_length(
                a.to_string().as_bytes(),
                b.to_string().as_bytes(),
            ));
        }
    }
    if hi.is_none() {
        let len = digits(lo);
        if len < INTEGER_DIGITS {
            alternatives.push(format!("[1-9] [0-9]{{{len},{}}}", INTEGER_DIGITS - 1));
        }
    }
    format!("({})", alternatives.join(" | "))
}

/// Numbers between `lo` and `hi`, digit strings of the same length.
fn same_length(lo: &[u8], hi: &[u8]) -> Vec<String> {
    let n = lo.len() - 1;
    let any = |n: usize| {
        if n == 0 {
            String::new()
        } else {
            format!(" [0-9]{{{n}}}")
        }
    };
    if lo[0] == hi[0] {
        if n == 0 {
            return vec![format!("\"{}\"", lo[0] as char)];
        }
        return same_length(&lo[1..], &hi[1..])
            .into_iter()
            .map(|rest| format!("\"{}\" ({rest})", lo[0] as char))
            .collect();
    }
    let lo_rest_zero = lo[1..].iter().all(|&d| d == b'0');
    let hi_rest_nine = hi[1..].iter().all(|&d| d == b'9');
    let mut out = Vec::new();
    let mut from = lo[0];
    if !lo_rest_zero {
        let nines = vec![b'9'; n];
        out.extend(
            same_length(&lo[1..], &nines)
                .into_iter()
                .map(|rest| format!("\"{}\" ({rest})", lo[0] as char)),
        );
        from += 1;
    }
    let to = if hi_rest_nine { hi[0] } else { hi[0] - 1 };
    if from <= to {
        out.push(format!("[{}-{}]{}", from as char, to as char, any(n)));
    }
    if !hi_rest_nine {
        let zeros = vec![b'0'; n];
        out.extend(
            same_length(&zeros, &hi[1..])
                .into_iter()
                .map(|rest| format!("\"{}\" ({rest})", hi[0] as char)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule as a Rust regex (the GBNF subset used here maps one to one).
    fn as_regex(rule: &str) -> regex::Regex {
        let mut re = String::from("^");
        let mut chars = rule.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    for c in chars.by_ref() {
                        if c == '"' {
                            break;
                        }
                        re.push_str(&regex::escape(&c.to_string()));
                    }
                }
                ' ' => {}
                _ => re.push(c),
            }
        }
        re.push('$');
        regex::Regex::new(&re).unwrap()
    }

    fn truth(x: f64, lower: Option<(i64, bool)>, upper: Option<(i64, bool)>) -> bool {
        lower.is_none_or(|(l, e)| if e { x > l as f64 } else { x >= l as f64 })
            && upper.is_none_or(|(h, e)| if e { x < h as f64 } else { x <= h as f64 })
    }

    #[test]
    fn the_rule_admits_exactly_the_numbers_in_range() {
        let bounds = [
            -120i64, -100, -11, -10, -9, -1, 0, 1, 5, 9, 10, 19, 99, 100, 101, 999, 1000,
        ];
        let mut sides: Vec<Option<(i64, bool)>> = vec![None];
        for &b in &bounds {
            sides.push(Some((b, false)));
            sides.push(Some((b, true)));
        }
        let samples: Vec<String> = (-1300..=1300)
            .flat_map(|i: i64| {
                [
                    format!("{i}"),
                    format!("{i}.5"),
                    format!("{i}.0"),
                    format!("{i}.05"),
                ]
            })
            .chain([
                "-0".into(),
                "-0.5".into(),
                "0.001".into(),
                "12345678".into(),
            ])
            .collect();
        for &lower in &sides {
            for &upper in &sides {
                if lower.is_none() && upper.is_none() {
                    continue;
                }
                let rule = rule(lower, upper);
                if rule == NOTHING {
                    assert!(samples
                        .iter()
                        .all(|s| !truth(s.parse().unwrap(), lower, upper)));
                    continue;
                }
                let re = as_regex(&rule);
                for s in &samples {
                    let x: f64 = s.parse().unwrap();
                    assert_eq!(
                        re.is_match(s),
                        truth(x, lower, upper),
                        "{s} with {lower:?}..{upper:?}: {rule}"
                    );
                }
            }
        }
    }

    #[test]
    fn integer_ranges_have_no_leading_zeros() {
        let re = as_regex(&integers(7, Some(1234)));
        for v in 0..2000u64 {
            assert_eq!(re.is_match(&v.to_string()), (7..=1234).contains(&v), "{v}");
        }
        assert!(!re.is_match("007"));
        let open = as_regex(&integers(42, None));
        assert!(open.is_match("42") && open.is_match("100000") && !open.is_match("41"));
    }

    #[test]
    fn bounded_numbers_are_swapped_data_is_not() {
        let schema: Value = serde_json::from_str(
            r#"{"type":"object","properties":{"p":{"type":"number","minimum":0,"maximum":1},
            "q":{"type":"number","minimum":0.5},"r":{"type":"number","maximum":3,"multipleOf":2},
            "s":{"const":{"type":"number","minimum":0}}}}"#,
        )
        .unwrap();
        let swapped = swap(&schema).unwrap();
        assert_eq!(swapped.rules.len(), 1);
        assert_eq!(
            swapped.schema["properties"]["p"]["const"],
            "__vazhi_number_range_0__"
        );
        assert_eq!(swapped.schema["properties"]["q"], schema["properties"]["q"]);
        assert_eq!(swapped.schema["properties"]["s"], schema["properties"]["s"]);
        assert!(swap(&serde_json::json!({"type": "number"})).is_none());
    }
}
