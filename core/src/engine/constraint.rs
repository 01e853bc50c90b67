//! Constrained output: a GBNF grammar or a JSON Schema that an answer must follow.
//!
//! A JSON Schema is turned into GBNF by llama.cpp's own `json_schema_to_grammar` (the
//! converter its server uses), so the two spellings end in the same grammar sampler. The
//! conversion happens when the answer is submitted, on the caller's thread: a schema that
//! cannot be used is refused before the worker sees the job. The grammar itself is parsed by
//! llama.cpp against the model's vocabulary when the answer starts, before the prompt is read.
//!
//! Bounded `number`s, which that converter leaves open, get rules of our own
//! (`number_range.rs`). The grammar enforces the form; a few schema
//! keywords have no grammar equivalent in
//! llama.cpp's converter (`multipleOf`, `uniqueItems`, `not`, a fractional bound, a `pattern`
//! it cannot translate). So a finished answer is also validated against the schema (the
//! `jsonschema` crate) and one that fails ends as `Invalid`, never as a success.

use serde::{Deserialize, Serialize};

use super::number_range;

/// Largest grammar or schema text accepted (bytes): far above any hand-written one, small
/// enough that a file picked by mistake is refused rather than parsed.
pub const MAX_CONSTRAINT_BYTES: usize = 256 * 1024;

/// Stack for the threads that run llama.cpp's grammar and schema code, which recurses once
/// per rule or `$ref` it steps into: enough for any grammar or schema under
/// [`MAX_CONSTRAINT_BYTES`] whose group nesting is within [`MAX_GROUP_DEPTH`].
pub const GRAMMAR_STACK_BYTES: usize = 64 << 20;

/// Deepest nesting of parentheses accepted in a grammar (llama.cpp's parser recurses per
/// level; generated grammars nest a few levels).
pub const MAX_GROUP_DEPTH: usize = 256;

/// What every token of an answer must keep valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputConstraint {
    /// A GBNF grammar (llama.cpp's grammar format) whose start rule is `root`.
    Grammar(String),
    /// A JSON Schema (draft 2020-12 subset that llama.cpp converts: types, `enum`, `const`,
    /// `properties`/`required`, `items` with `minItems`/`maxItems`, `minLength`/`maxLength`,
    /// `pattern`, integer `minimum`/`maximum`, local `$ref`s, `anyOf`/`oneOf`/`allOf`).
    JsonSchema(String),
}

/// Why a constraint cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConstraintError {
    /// The grammar or schema text is empty.
    #[error("the {what} is empty")]
    Empty {
        /// `"grammar"` or `"JSON schema"`.
        what: &'static str,
    },
    /// The grammar or schema text is over [`MAX_CONSTRAINT_BYTES`].
    #[error("the {what} is {bytes} bytes, over the {max}-byte limit")]
    TooLarge {
        /// `"grammar"` or `"JSON schema"`.
        what: &'static str,
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The schema is not JSON, or not a JSON object or boolean.
    #[error("the JSON schema is not valid JSON: {0}")]
    SchemaSyntax(String),
    /// llama.cpp's converter refused the schema (an unsupported keyword combination or a
    /// `$ref` it cannot resolve, such as a remote one).
    #[error("the JSON schema cannot be turned into a grammar: {0}")]
    SchemaUnsupported(String),
    /// Both a grammar and a JSON Schema were given; an answer follows one.
    #[error("give a grammar or a JSON schema, not both")]
    Both,
    /// llama.cpp's grammar parser refused the grammar.
    #[error("the grammar is invalid: {0}")]
    Grammar(String),
}

/// A constraint ready for the engine's worker.
#[derive(Debug)]
pub(crate) struct CompiledConstraint {
    /// The grammar the sampler enforces.
    pub gbnf: String,
    /// For a JSON Schema: its validator, run on the finished text (boxed: it is large, and
    /// rides in every job).
    pub validator: Option<Box<jsonschema::Validator>>,
    /// A bare GBNF grammar: it may name control tokens, so the answer's text shows their
    /// markup, exactly as the grammar read it. (A schema's answer never holds them.)
    pub shows_markup: bool,
}

impl CompiledConstraint {
    /// Whether the finished `text` satisfies the schema (always true for a bare grammar: the
    /// sampler enforced all of it).
    pub(crate) fn accepts(&self, text: &str) -> bool {
        let Some(validator) = &self.validator else {
            return true;
        };
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(value) => {
                let valid = validator.is_valid(&value);
                if !valid {
                    tracing::debug!("a grammar-complete answer failed its schema");
                }
                valid
            }
            Err(e) => {
                tracing::debug!(error = %e, "a grammar-complete answer is not JSON");
                false
            }
        }
    }
}

impl OutputConstraint {
    /// The grammar and, for a schema, its validator.
    pub(crate) fn compile(&self) -> Result<CompiledConstraint, ConstraintError> {
        let _span = tracing::debug_span!("constraint_to_gbnf").entered();
        match self {
            OutputConstraint::Grammar(text) => {
                check_size("grammar", text)?;
                if !has_root_rule(text) {
                    return Err(ConstraintError::Grammar(
                        "it defines no `root` rule (the rule every answer starts from)".into(),
                    ));
                }
                let depth = group_depth(text);
                if depth > MAX_GROUP_DEPTH {
                    return Err(ConstraintError::Grammar(format!(
                        "its parentheses nest {depth} deep, over the limit of {MAX_GROUP_DEPTH}"
                    )));
                }
                Ok(CompiledConstraint {
                    gbnf: text.clone(),
                    validator: None,
                    shows_markup: true,
                })
            }
            OutputConstraint::JsonSchema(text) => {
                check_size("JSON schema", text)?;
                let value: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| ConstraintError::SchemaSyntax(e.to_string()))?;
                if !(value.is_object() || value.is_boolean()) {
                    return Err(ConstraintError::SchemaSyntax(
                        "a schema is a JSON object (or `true`/`false`)".into(),
                    ));
                }
                if value == serde_json::Value::Bool(false) {
                    return Err(ConstraintError::SchemaUnsupported(
                        "`false` admits no value at all".into(),
                    ));
                }
                let validator = Some(Box::new(validator(&value)?));
                Ok(CompiledConstraint {
                    gbnf: schema_to_gbnf(text, &value)?,
                    validator,
                    shows_markup: false,
                })
            }
        }
    }

    /// The GBNF grammar that enforces this constraint (a grammar is returned as given, after
    /// the checks that need no model; a schema is also checked as a JSON Schema).
    pub fn to_gbnf(&self) -> Result<String, ConstraintError> {
        self.compile().map(|c| c.gbnf)
    }
}

/// llama.cpp's grammar for a schema (`value` is `text` parsed). Bounded `number`s get rules of
/// our own (llama.cpp's converter has none); if that fails anywhere, the schema is converted
/// as it is.
fn schema_to_gbnf(text: &str, value: &serde_json::Value) -> Result<String, ConstraintError> {
    if let Some(swapped) = number_range::swap(value) {
        let schema = swapped.schema.to_string();
        let spliced = on_big_stack(|| llama_cpp_2::json_schema_to_grammar(&schema))
            .and_then(Result::ok)
            .and_then(|gbnf| number_range::splice(&gbnf, &swapped.rules));
        if let Some(gbnf) = spliced {
            return Ok(gbnf);
        }
        tracing::debug!("number ranges not spliced; converting the schema as it is");
    }
    on_big_stack(|| llama_cpp_2::json_schema_to_grammar(text))
        .ok_or_else(no_thread)?
        .map_err(|e| {
            tracing::debug!(error = %e, "llama.cpp refused a JSON schema");
            ConstraintError::SchemaUnsupported(
                "llama.cpp's converter refused it (an unsupported keyword, a remote or \
                 unresolvable `$ref`, or a contradiction such as minItems > maxItems)"
                    .into(),
            )
        })
}

fn validator(schema: &serde_json::Value) -> Result<jsonschema::Validator, ConstraintError> {
    on_big_stack(|| jsonschema::validator_for(schema))
        .ok_or_else(no_thread)?
        .map_err(|e| ConstraintError::SchemaSyntax(format!("not a valid JSON Schema: {e}")))
}

/// Runs `f` on a thread with [`GRAMMAR_STACK_BYTES`] of stack: schema code recurses once per
/// `$ref` it follows, and a hostile schema chains thousands (the caller's thread may be an
/// app's with a small stack). `None` if no thread could be started.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("vazhi-schema".into())
            .stack_size(GRAMMAR_STACK_BYTES)
            .spawn_scoped(scope, f)
            .ok()?;
        match handle.join() {
            Ok(result) => Some(result),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

fn no_thread() -> ConstraintError {
    ConstraintError::SchemaUnsupported("no thread could be started to convert it".into())
}

/// How deep parentheses nest in a GBNF grammar, outside string literals, character classes
/// and comments.
fn group_depth(grammar: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut chars = grammar.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '[' => {
                let close = if c == '"' { '"' } else { ']' };
                while let Some(c) = chars.next() {
                    if c == '\\' {
                        chars.next();
                    } else if c == close {
                        break;
                    }
                }
            }
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn check_size(what: &'static str, text: &str) -> Result<(), ConstraintError> {
    if text.trim().is_empty() {
        return Err(ConstraintError::Empty { what });
    }
    if text.len() > MAX_CONSTRAINT_BYTES {
        return Err(ConstraintError::TooLarge {
            what,
            bytes: text.len(),
            max: MAX_CONSTRAINT_BYTES,
        });
    }
    if text.contains('\0') {
        let why = format!("the {what} contains a NUL byte");
        return Err(if what == "grammar" {
            ConstraintError::Grammar(why)
        } else {
            ConstraintError::SchemaSyntax(why)
        });
    }
    Ok(())
}

/// Whether some line defines `root ::= …` (GBNF comments start with `#`).
fn has_root_rule(grammar: &str) -> bool {
    grammar.lines().any(|line| {
        let line = line.trim_start();
        line.strip_prefix("root")
            .is_some_and(|rest| rest.trim_start().starts_with("::="))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_becomes_a_grammar_with_a_root() {
        let schema = r#"{"type":"object","properties":{"verdict":{"enum":["yes","no"]}},
                         "required":["verdict"]}"#;
        let gbnf = OutputConstraint::JsonSchema(schema.into())
            .to_gbnf()
            .unwrap();
        assert!(has_root_rule(&gbnf), "{gbnf}");
        assert!(gbnf.contains("\\\"yes\\\""), "{gbnf}");
    }

    #[test]
    fn number_ranges_get_rules_of_their_own() {
        let schema = r#"{"type":"object","properties":{"p":{"type":"number","minimum":0,
            "maximum":1}},"required":["p"]}"#;
        let gbnf = OutputConstraint::JsonSchema(schema.into())
            .to_gbnf()
            .unwrap();
        assert!(gbnf.contains("vazhi-number-range-0 ::= "), "{gbnf}");
        assert!(!gbnf.contains("__vazhi_number_range"), "{gbnf}");
    }

    #[test]
    fn bad_schemas_are_refused_with_their_reason() {
        let refuse = |s: &str| {
            OutputConstraint::JsonSchema(s.into())
                .to_gbnf()
                .unwrap_err()
        };
        assert!(matches!(
            refuse("{\"type\": "),
            ConstraintError::SchemaSyntax(_)
        ));
        assert!(matches!(refuse("[1, 2]"), ConstraintError::SchemaSyntax(_)));
        assert!(matches!(refuse("   "), ConstraintError::Empty { .. }));
        assert!(matches!(
            refuse("false"),
            ConstraintError::SchemaUnsupported(_)
        ));
        // A remote `$ref`: the validator (no HTTP) refuses it before llama.cpp's converter.
        assert!(matches!(
            refuse(r##"{"$ref": "https://example.invalid/s.json"}"##),
            ConstraintError::SchemaSyntax(_) | ConstraintError::SchemaUnsupported(_)
        ));
        let huge = format!(
            "{{\"description\": \"{}\"}}",
            "x".repeat(MAX_CONSTRAINT_BYTES)
        );
        assert!(matches!(refuse(&huge), ConstraintError::TooLarge { .. }));
    }

    #[test]
    fn hostile_schemas_are_refused_or_bounded_never_crash() {
        let convert = |s: &str| OutputConstraint::JsonSchema(s.into()).to_gbnf();
        // Nested past serde_json's recursion limit.
        let deep = format!(
            "{}{}",
            "{\"type\":\"array\",\"items\":".repeat(300),
            "{}".to_owned() + &"}".repeat(300)
        );
        assert!(matches!(
            convert(&deep),
            Err(ConstraintError::SchemaSyntax(_))
        ));
        // A `$ref` cycle converts (llama.cpp stops at the cycle); the grammar it makes is
        // left-recursive and llama.cpp's parser refuses it later.
        let cycle = r##"{"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}"##;
        let _ = convert(cycle);
        // A recursive but well-founded schema (a tree) is fine.
        let tree = r##"{"$defs":{"node":{"type":"object","properties":{"name":{"type":"string",
            "maxLength":8},"children":{"type":"array","maxItems":2,"items":{"$ref":"#/$defs/node"}}},
            "required":["name"]}},"$ref":"#/$defs/node"}"##;
        assert!(convert(tree).is_ok());
        // Huge bounds become huge repetitions, which llama.cpp's grammar parser refuses; the
        // conversion itself stays small.
        let huge = r#"{"type":"string","maxLength":1000000000}"#;
        assert!(convert(huge).unwrap().len() < 10_000);
        // A NUL byte cannot cross into C.
        assert!(OutputConstraint::Grammar("root ::= \"a\"\0".into())
            .to_gbnf()
            .is_err());
    }

    #[test]
    fn deep_grammars_are_refused_and_long_ref_chains_convert() {
        let nested = format!("root ::= {}\"x\"{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(matches!(
            OutputConstraint::Grammar(nested).to_gbnf(),
            Err(ConstraintError::Grammar(_))
        ));
        // Parentheses inside literals, classes and comments do not count.
        assert_eq!(group_depth("root ::= (\"((\" [(] # (((\n)"), 1);
        assert_eq!(group_depth("root ::= \"\\\"(\" ((\"a\"))"), 2);
        // A chain of 3,000 `$ref`s: llama.cpp's converter and the validator recurse through
        // it, on their own big stack.
        let defs: Vec<String> = (0..3000)
            .map(|i| format!("\"d{i}\":{{\"$ref\":\"#/$defs/d{}\"}}", i + 1))
            .chain(std::iter::once(
                "\"d3000\":{\"type\":\"integer\"}".to_owned(),
            ))
            .collect();
        let schema = format!(
            "{{\"$defs\":{{{}}},\"$ref\":\"#/$defs/d0\"}}",
            defs.join(",")
        );
        let converted = OutputConstraint::JsonSchema(schema).compile();
        assert!(
            converted.is_ok() || matches!(converted, Err(ConstraintError::SchemaUnsupported(_)))
        );
    }

    #[test]
    fn a_grammar_needs_a_root_rule() {
        let ok = OutputConstraint::Grammar("# yes or no\nroot ::= \"yes\" | \"no\"\n".into());
        assert!(ok.to_gbnf().is_ok());
        let rootless = OutputConstraint::Grammar("answer ::= \"yes\"".into());
        assert!(matches!(
            rootless.to_gbnf(),
            Err(ConstraintError::Grammar(_))
        ));
        assert!(!has_root_rule("rooted ::= \"x\""));
        assert!(!has_root_rule("# root ::= \"x\""));
    }
}
