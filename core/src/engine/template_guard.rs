//! A static bound on what a chat template can build, checked before it is ever rendered.
//!
//! A model file's `tokenizer.chat_template` is code from whoever made the file. minijinja's
//! fuel bounds how many instructions a render runs and our writer bounds what it prints, but
//! nothing in minijinja bounds a string a template builds and keeps: `{% set ns.s = ns.s ~
//! ns.s %}` in a loop of forty passes asks for a terabyte on a few hundred instructions of fuel.
//! So before a template is used, this module walks its syntax tree and bounds the size of
//! every value it can store or compute, as a multiple of the conversation (`per_input`) plus a
//! constant (`fixed`), and refuses the template when a bound passes [`MAX_PER_INPUT`] or
//! [`MAX_FIXED`], or cannot be found:
//!
//! - `~`, `+`, list and map literals add; `*` by a constant multiplies, by anything else is
//!   unbounded; filters and string methods that grow text (`replace`, `join`, `indent`,
//!   `tojson`, …) multiply by what their arguments allow;
//! - a variable or namespace attribute holds the largest value ever assigned to it; a loop's
//!   body is run to a fixed point, and a value that still grows after 12 passes is refused;
//! - a value that accumulates inside a loop (`ns.text = ns.text ~ m.content`) is bounded by
//!   what the loops around it allow: a loop over the conversation passes at most its size, a
//!   `range` its constant or minijinja's cap (100 000), a loop over a value the template built
//!   at most that value's size, and its items add up to no more than it; a namespace made
//!   afresh inside a loop carries nothing between that loop's passes; a value built from two copies of a carried value (`ns.s = ns.s ~ ns.s`), or quoting itself
//!   (`ns.s = ns.s|tojson`, a namespace printed whole), is refused;
//! - a recursive macro may walk down its data, but not call itself with an argument built twice
//!   from its own parameters (`d(s ~ s)`); `for … recursive` loops are refused.
//!
//! `cargo run --release --example template_corpus -- DIR` runs real templates through it
//! (58 of llama.cpp's 70 pass; decision 0003 lists the rest and says why).

use std::collections::{HashMap, HashSet};

use minijinja::machinery::ast::{self, BinOpKind, CallArg, Expr, Stmt};
use minijinja::machinery::{parse, tokenize, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::ValueKind;

/// Most a stored or computed value may hold, in multiples of the conversation's size (which
/// `EngineConfig::max_prompt_bytes` bounds). Generous: real tool-calling templates reach a few
/// hundred; doubling passes it within a dozen steps.
pub const MAX_PER_INPUT: u64 = 4096;
/// Most a stored or computed value may hold beyond that, in bytes.
pub const MAX_FIXED: u64 = 16 << 20;
/// Passes over a loop's body before a value that still grows is refused.
const MAX_PASSES: usize = 12;
/// What a literal repeated by a computed count (`'<img>' * n`) may become, per byte of it.
const COMPUTED_REPEAT: u64 = 4096;
/// Bytes a number, boolean or other small value counts for.
const SMALL: u64 = 32;
/// Bytes a list or map item adds when printed, beyond the item: quotes, `, `, `: `.
const ITEM: u64 = 4;

/// An upper bound on a value's size: `per_input` × the conversation + `fixed` bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Size {
    per_input: u64,
    fixed: u64,
}

impl Size {
    const INPUT: Size = Size {
        per_input: 1,
        fixed: 0,
    };

    fn bytes(n: u64) -> Self {
        Size {
            per_input: 0,
            fixed: n,
        }
    }

    fn plus(self, other: Size) -> Size {
        Size {
            per_input: self.per_input.saturating_add(other.per_input),
            fixed: self.fixed.saturating_add(other.fixed),
        }
    }

    fn max(self, other: Size) -> Size {
        Size {
            per_input: self.per_input.max(other.per_input),
            fixed: self.fixed.max(other.fixed),
        }
    }

    fn times(self, n: u64) -> Size {
        Size {
            per_input: self.per_input.saturating_mul(n),
            fixed: self.fixed.saturating_mul(n),
        }
    }

    /// The bound when all of it is paid once per pass of a loop over the conversation: the
    /// passes are at most the conversation's bytes, so constants become multiples of it.
    fn per_pass(self) -> Size {
        Size {
            per_input: self.per_input.saturating_add(self.fixed.max(1)),
            fixed: 0,
        }
    }

    fn within_limits(self) -> bool {
        self.per_input <= MAX_PER_INPUT && self.fixed <= MAX_FIXED
    }
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unbounded(pub String);

/// Refuses `source` unless every value it can build is bounded (see the module docs). Run it
/// before compiling: minijinja's compiler folds constants, so compiling `'x' * 100000000`
/// already builds the string. A template that does not parse passes here, for the compiler
/// to report.
pub fn check(source: &str) -> Result<(), Unbounded> {
    let ws = WhitespaceConfig {
        keep_trailing_newline: false,
        lstrip_blocks: true,
        trim_blocks: true,
    };
    check_tag_lengths(source, ws)?;
    let Ok(tree) = parse(source, "chat", SyntaxConfig, ws) else {
        return Ok(());
    };
    let mut a = Analysis::default();
    a.collect_macros(&tree);
    a.stmt(&tree)?;
    Ok(())
}

/// Most operators, names and brackets one `{{ }}` or `{% %}` tag may hold.
///
/// minijinja's parser caps how deeply statements and parentheses nest, but parses a chain of
/// operators (`a ~ a ~ a ~ …`), attributes, calls or filters in a loop into a tree as deep as
/// the chain is long, and every later walk of that tree (this guard, the compiler, dropping
/// it) recurses once per link: a few thousand links overflow a thread's stack. Each link
/// takes at least one token, so counting a tag's tokens bounds the depth before the tree is
/// built. Literals, commas and colons do not deepen it and are not counted. The longest tag
/// of llama.cpp's 70 real templates has 43.
pub const MAX_TAG_TOKENS: usize = 256;

/// Refuses a template with a tag of more than [`MAX_TAG_TOKENS`] chaining tokens.
fn check_tag_lengths(source: &str, ws: WhitespaceConfig) -> Result<(), Unbounded> {
    use minijinja::machinery::Token;
    let mut in_tag = 0usize;
    let mut longest = 0usize;
    for token in tokenize(source, false, SyntaxConfig, ws) {
        // A template that does not tokenize is left for the compiler to report.
        let Ok((token, _)) = token else { return Ok(()) };
        match token {
            Token::VariableStart | Token::BlockStart => in_tag = 0,
            Token::TemplateData(_)
            | Token::VariableEnd
            | Token::BlockEnd
            | Token::Str(_)
            | Token::String(_)
            | Token::Int(_)
            | Token::Int128(_)
            | Token::Float(_)
            | Token::Comma
            | Token::Colon => {}
            _ => {
                in_tag += 1;
                longest = longest.max(in_tag);
                if in_tag > MAX_TAG_TOKENS {
                    return Err(Unbounded(format!(
                        "a tag holds more than {MAX_TAG_TOKENS} operators and names"
                    )));
                }
            }
        }
    }
    tracing::trace!(longest, "template tag lengths");
    Ok(())
}

/// How a loop bounds the passes of its body.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LoopKind {
    /// Over the conversation (or a slice, filter or attribute of it): at most its size.
    Input,
    /// Over `range(…)`: its constant bound, or minijinja's cap on any range.
    Range(u64),
    /// Over a value the template built, of at most this size: it has no more items than
    /// bytes (plus the empty ends a `split` can give), and its items add up to no more than
    /// it.
    Over(Size),
}

impl LoopKind {
    /// What `increment`, paid once per pass, adds up to over all passes.
    fn total(self, increment: Size) -> Size {
        match self {
            LoopKind::Range(n) => increment.times(n),
            LoopKind::Input => increment.per_pass(),
            LoopKind::Over(whole) => {
                let passes = whole.plus(Size::bytes(2));
                // The constant part is paid per pass; the part that grows with the input
                // is (at most) the items themselves, which add up to the whole.
                let per_item = Size::bytes(increment.fixed);
                let items = if increment.per_input > 0 {
                    whole.max(Size {
                        per_input: increment.per_input,
                        fixed: 0,
                    })
                } else {
                    Size::default()
                };
                Size {
                    per_input: per_item.fixed.saturating_mul(passes.per_input),
                    fixed: per_item.fixed.saturating_mul(passes.fixed),
                }
                .plus(items)
            }
        }
    }
}

/// minijinja refuses a `range` of more items than this.
const RANGE_CAP: u64 = 100_000;

#[derive(Default)]
struct Analysis<'a> {
    /// Largest value ever stored under a name (variables by name, namespace attributes as
    /// `.attr`).
    stored: HashMap<String, Size>,
    /// Names bound to input (loop targets over the conversation, macro arguments).
    input_names: HashSet<String>,
    /// Each macro's body.
    macros: HashMap<String, &'a [Stmt<'a>]>,
    /// Each macro's output bound, once known.
    macro_output: HashMap<String, Size>,
    /// Loops around the statement being analyzed.
    loops: Vec<LoopKind>,
    /// Names that hold numbers (counters, lengths): `+` on them adds, it does not concatenate.
    numeric: HashSet<String>,
    /// Macros whose body is being analyzed: a call to one of them is recursion.
    in_macro: Vec<String>,
    /// Each macro's parameter names.
    macro_params: HashMap<String, Vec<String>>,
    /// Names assigned inside each enclosing loop's body: the values carried between passes.
    loop_assigned: Vec<HashSet<String>>,
    /// Names bound to a `namespace()`: printed or concatenated whole, a namespace is the text
    /// of all its attributes (`ns.w = ns.s ~ ns` doubles `w`).
    namespaces: HashSet<String>,
    /// Where each namespace was last made: the statement lists around it (by number) and
    /// how many loops were around it.
    namespace_made: HashMap<String, (Vec<u64>, usize)>,
    /// The statement lists around the statement being analyzed, numbered as they are met.
    blocks: Vec<u64>,
    next_block: u64,
    changed: bool,
}

fn too_big(what: &str, size: Size) -> Unbounded {
    Unbounded(format!(
        "{what} can grow past the bound ({} × the conversation + {} bytes; the limit is {MAX_PER_INPUT} × + {MAX_FIXED} bytes)",
        size.per_input, size.fixed
    ))
}

impl<'a> Analysis<'a> {
    /// Records every macro's body and parameters, wherever it is defined.
    fn collect_macros(&mut self, stmt: &'a Stmt<'a>) {
        if let Stmt::Macro(m) = stmt {
            self.macros.insert(m.name.to_owned(), &m.body[..]);
            self.macro_params.insert(
                m.name.to_owned(),
                m.args.iter().flat_map(target_names).collect(),
            );
        }
        for c in children(stmt) {
            self.collect_macros(c);
        }
    }

    fn store(&mut self, key: String, size: Size) -> Result<(), Unbounded> {
        if !size.within_limits() {
            return Err(too_big(&format!("`{}`", key.trim_start_matches('.')), size));
        }
        let old = self.stored.get(&key).copied().unwrap_or_default();
        let new = old.max(size);
        if new != old {
            self.stored.insert(key, new);
            self.changed = true;
        }
        Ok(())
    }

    fn stmts(&mut self, body: &'a [Stmt<'a>]) -> Result<Size, Unbounded> {
        self.next_block += 1;
        self.blocks.push(self.next_block);
        let mut out = Ok(Size::default());
        for s in body {
            out = out.and_then(|o| Ok(o.plus(self.stmt(s)?)));
        }
        self.blocks.pop();
        out
    }

    /// How many of the enclosing loops an assignment to `target` is outside of, as far as
    /// carrying a value goes: for `ns.attr`, when `ns = namespace(…)` was made earlier in a
    /// statement list around this one, inside those loops, each of their passes starts
    /// afresh. Otherwise none.
    fn fresh_in_loop(&self, target: &Expr<'_>) -> usize {
        let Expr::GetAttr(g) = target else { return 0 };
        let Expr::Var(v) = &g.expr else { return 0 };
        match self.namespace_made.get(v.id) {
            Some((blocks, depth)) if self.blocks.starts_with(blocks) => *depth,
            _ => 0,
        }
    }

    /// Analyzes a statement; returns a bound on what it prints per execution.
    fn stmt(&mut self, stmt: &'a Stmt<'a>) -> Result<Size, Unbounded> {
        match stmt {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::EmitRaw(r) => Ok(Size::bytes(r.raw.len() as u64)),
            Stmt::ForLoop(f) => {
                if f.recursive {
                    return Err(Unbounded("recursive loops are not allowed".into()));
                }
                let iter = self.expr(&f.iter)?;
                let kind = if let Some(n) = range_len(&f.iter) {
                    LoopKind::Range(n)
                } else if self.is_input(&f.iter) {
                    LoopKind::Input
                } else {
                    LoopKind::Over(iter)
                };
                // The loop target holds one item: no larger than the sequence (a number, for
                // a range).
                for name in target_names(&f.target) {
                    match kind {
                        LoopKind::Input => {
                            self.input_names.insert(name.clone());
                        }
                        LoopKind::Range(_) => {
                            self.numeric.insert(name.clone());
                            self.store(name, Size::bytes(SMALL))?;
                            continue;
                        }
                        LoopKind::Over(_) => {}
                    }
                    self.store(name, iter)?;
                }
                if let Some(filter) = &f.filter_expr {
                    self.expr(filter)?;
                }
                // The body again until what it stores stops growing: values carried from one
                // pass to the next.
                let outer_changed = std::mem::replace(&mut self.changed, false);
                let mut passes = 0;
                let mut assigned = HashSet::new();
                for s in &f.body {
                    assigned_in(s, &mut assigned);
                }
                self.loop_assigned.push(assigned);
                self.loops.push(kind);
                let body = loop {
                    self.changed = false;
                    let body = self.stmts(&f.body);
                    passes += 1;
                    match body {
                        Err(e) => break Err(e),
                        Ok(b) if !self.changed => break Ok(b),
                        Ok(_) if passes >= MAX_PASSES => {
                            break Err(Unbounded(
                                "a value stored in a loop keeps growing with every pass".into(),
                            ))
                        }
                        Ok(_) => {}
                    }
                };
                self.loops.pop();
                self.loop_assigned.pop();
                self.changed = outer_changed || passes > 1;
                let body = body?;
                let else_body = self.stmts(&f.else_body)?;
                // What a loop prints is bounded at render time by the output limit; as a
                // value (a macro's or a block's) it is bounded only over the conversation.
                // (Over anything else its passes are bounded by fuel; counted the same way.)
                Ok(kind.total(body).max(else_body))
            }
            Stmt::IfCond(i) => {
                self.expr(&i.expr)?;
                let t = self.stmts(&i.true_body)?;
                let f = self.stmts(&i.false_body)?;
                Ok(t.max(f))
            }
            Stmt::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    let size = self.expr(value)?;
                    for name in target_names(target) {
                        self.store(name, size)?;
                    }
                }
                self.stmts(&w.body)
            }
            Stmt::Set(s) => {
                self.assign(&s.target, &s.expr)?;
                Ok(Size::default())
            }
            Stmt::SetBlock(s) => {
                let mut size = self.stmts(&s.body)?;
                if let Some(filter) = &s.filter {
                    size = self.filter_chain(filter, size)?;
                }
                for name in target_names(&s.target) {
                    self.store(name, size)?;
                }
                Ok(Size::default())
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled)?;
                Ok(self.stmts(&a.body)?.times(6))
            }
            Stmt::FilterBlock(f) => {
                let body = self.stmts(&f.body)?;
                self.filter_chain(&f.filter, body)
            }
            Stmt::Block(b) => self.stmts(&b.body),
            Stmt::Macro(m) => {
                let saved = self.input_names.clone();
                for arg in &m.args {
                    for name in target_names(arg) {
                        self.input_names.insert(name);
                    }
                }
                for d in &m.defaults {
                    self.expr(d)?;
                }
                self.in_macro.push(m.name.to_owned());
                let out = self.stmts(&m.body);
                self.in_macro.pop();
                self.input_names = saved;
                let out = out?;
                let old = self.macro_output.get(m.name).copied().unwrap_or_default();
                if out.max(old) != old {
                    self.macro_output.insert(m.name.to_owned(), out.max(old));
                    self.changed = true;
                }
                // Defining a macro stores it under its name.
                Ok(Size::default())
            }
            Stmt::CallBlock(c) => {
                let inner = self.stmts(&c.macro_decl.body)?;
                let call = self.call(&c.call)?;
                Ok(call.plus(inner))
            }
            Stmt::Do(d) => {
                self.call(&d.call)?;
                Ok(Size::default())
            }
            Stmt::Import(_) | Stmt::FromImport(_) | Stmt::Extends(_) | Stmt::Include(_) => {
                // No loader is configured: these fail at render time.
                Ok(Size::default())
            }
            Stmt::Continue(_) | Stmt::Break(_) => Ok(Size::default()),
        }
    }

    /// `set target = expr`, with the loop rule for values built from themselves.
    fn assign(&mut self, target: &'a Expr<'a>, value: &'a Expr<'a>) -> Result<(), Unbounded> {
        let keys = target_names(target);
        if matches!(value, Expr::Call(c) if matches!(&c.expr, Expr::Var(v) if v.id == "namespace"))
        {
            self.namespaces.extend(keys.iter().cloned());
            for k in &keys {
                self.namespace_made
                    .insert(k.clone(), (self.blocks.clone(), self.loops.len()));
            }
        }
        if self.holds_namespace(value) {
            // A namespace inside a namespace can come to hold itself (`ns.me = ns`), and
            // printing a cycle recurses without end: refused. A plain variable holding one is a
            // namespace for every other rule.
            if keys.iter().any(|k| k.starts_with('.')) {
                return Err(Unbounded(
                    "a namespace is stored inside a namespace (it can come to hold itself)".into(),
                ));
            }
            self.namespaces.extend(keys.iter().cloned());
        }
        if self.is_numeric(value) {
            for k in &keys {
                self.numeric.insert(k.clone());
            }
            for k in keys {
                self.store(k, Size::bytes(SMALL))?;
            }
            return Ok(());
        }
        let mut grown = HashSet::new();
        self.grown_refs(value, false, &mut grown);
        // Doubling: a value carried between passes of a loop, built from two of them (or one
        // twice): `ns.s = ns.s ~ ns.s`, `a = b ~ b`.
        if let Some(carried) = self.loop_assigned.last() {
            let mut uses = Vec::new();
            self.grown_uses(value, false, &mut uses);
            let twice = uses
                .iter()
                .any(|u| carried.contains(u) && uses.iter().filter(|v| *v == u).count() >= 2);
            if twice {
                return Err(Unbounded(format!(
                    "`{}` doubles with every pass of a loop",
                    keys.first().map_or("", |k| k.trim_start_matches('.'))
                )));
            }
        }
        let self_referential = keys.iter().any(|k| grown.contains(k));
        // (A plain variable quoting itself in a loop over the conversation is usually rebuilt
        // from the data each pass, `arguments = arguments|tojson`: allowed there.)
        let carries_over = keys.iter().any(|k| k.starts_with('.'))
            || self.loops.iter().any(|k| *k != LoopKind::Input);
        if self_referential
            && !self.loops.is_empty()
            && carries_over
            && self.quotes(value, &keys, false)
        {
            // `x = [x]|string`, `ns.s = ns.s|tojson`, `ns.w = ns.s ~ ns`: each pass escapes
            // the quotes the last one wrote, so the text can double.
            return Err(Unbounded(format!(
                "`{}` quotes or nests itself with every pass of a loop",
                keys.first().map_or("", |k| k.trim_start_matches('.'))
            )));
        }
        if self_referential && !self.loops.is_empty() {
            // Accumulation (`ns.text = ns.text ~ m.content`): bounded when every loop around it
            // walks the conversation (or data taken from it) or a constant range; a loop over
            // anything else could pass without end under fuel.
            let saved: Vec<(String, Option<Size>)> = keys
                .iter()
                .map(|k| (k.clone(), self.stored.insert(k.clone(), Size::default())))
                .collect();
            let increment = self.expr(value);
            for (k, old) in saved {
                match old {
                    Some(s) => self.stored.insert(k, s),
                    None => self.stored.remove(&k),
                };
            }
            // Only the loops inside the one that makes the namespace afresh carry the value
            // from pass to pass.
            let from = self.fresh_in_loop(target);
            let increment = self
                .loops
                .get(from..)
                .unwrap_or_default()
                .iter()
                .rev()
                .fold(increment?, |inc, kind| kind.total(inc));
            for k in keys {
                let start = self.stored.get(&k).copied().unwrap_or_default();
                // Only the first value outside the loop and the increments: store the sum
                // once, not once per fixed-point pass.
                let total = start.max(increment.plus(Size::bytes(SMALL)));
                self.store(k, total)?;
            }
            return Ok(());
        }
        let size = self.expr(value)?;
        // A part of the conversation under another name (`tool_calls = message.tool_calls`):
        // loops over it are loops over the conversation.
        if grown.is_empty() && self.is_input(value) {
            for k in &keys {
                self.input_names.insert(k.clone());
            }
        }
        for k in keys {
            self.store(k, size)?;
        }
        Ok(())
    }

    /// Whether `e` is a number (a counter, a length, arithmetic on them).
    fn is_numeric(&self, e: &Expr<'_>) -> bool {
        match e {
            Expr::Const(c) => c.value.kind() == ValueKind::Number,
            Expr::Var(v) => self.numeric.contains(v.id),
            Expr::GetAttr(g) => {
                matches!(&g.expr, Expr::Var(v) if v.id == "loop")
                    || self.numeric.contains(&format!(".{}", g.name))
            }
            Expr::Filter(f) => matches!(
                f.name,
                "length" | "count" | "int" | "float" | "round" | "abs" | "sum" | "wordcount"
            ),
            Expr::UnaryOp(u) => self.is_numeric(&u.expr),
            Expr::BinOp(b) => match b.op {
                BinOpKind::Add => self.is_numeric(&b.left) || self.is_numeric(&b.right),
                BinOpKind::Mul => self.is_numeric(&b.left) && self.is_numeric(&b.right),
                BinOpKind::Sub | BinOpKind::Div | BinOpKind::FloorDiv | BinOpKind::Pow => true,
                BinOpKind::Rem => self.is_numeric(&b.left),
                _ => false,
            },
            _ => false,
        }
    }

    /// The variables and namespace attributes `e` builds a larger value from: those under `~`,
    /// a non-numeric `+` or `*`, a list or map literal, or a filter or method that grows text.
    /// `x.function`, `x | trim`, `x[1:]` do not grow `x`.
    fn grown_refs(&self, e: &Expr<'_>, building: bool, out: &mut HashSet<String>) {
        const GROWING: &[&str] = &[
            "replace",
            "join",
            "format",
            "indent",
            "center",
            "ljust",
            "rjust",
            "zfill",
            "wordwrap",
            "tojson",
            "escape",
            "e",
            "forceescape",
            "urlencode",
            "pprint",
            "expandtabs",
            "list",
            "batch",
            "items",
            "dictsort",
            "string",
        ];
        match e {
            Expr::Var(v) if building && self.namespaces.contains(v.id) => {
                out.extend(self.stored.keys().filter(|k| k.starts_with('.')).cloned());
            }
            Expr::Var(_) | Expr::GetAttr(_) | Expr::GetItem(_) | Expr::Slice(_) if building => {
                let mut refs = HashSet::new();
                referenced_in(e, &mut refs, &self.input_names);
                out.extend(refs);
            }
            Expr::BinOp(b) => {
                let grows = match b.op {
                    BinOpKind::Concat | BinOpKind::Rem => true,
                    BinOpKind::Add | BinOpKind::Mul => !self.is_numeric(e),
                    _ => false,
                };
                self.grown_refs(&b.left, building || grows, out);
                self.grown_refs(&b.right, building || grows, out);
            }
            Expr::List(l) => l.items.iter().for_each(|x| self.grown_refs(x, true, out)),
            Expr::Map(m) => m.values.iter().for_each(|x| self.grown_refs(x, true, out)),
            Expr::Filter(f) => {
                let grows = building || GROWING.contains(&f.name);
                if let Some(x) = &f.expr {
                    self.grown_refs(x, grows, out);
                }
                for a in &f.args {
                    if let CallArg::Pos(x) | CallArg::Kwarg(_, x) = a {
                        self.grown_refs(x, grows, out);
                    }
                }
            }
            Expr::Call(c) => {
                // `dict(a=x)` holds `x` as a map literal does.
                let grows = building
                    || matches!(&c.expr, Expr::GetAttr(g) if GROWING.contains(&g.name))
                    || matches!(&c.expr, Expr::Var(v) if v.id == "dict");
                if let Expr::GetAttr(g) = &c.expr {
                    self.grown_refs(&g.expr, grows, out);
                }
                for a in &c.args {
                    if let CallArg::Pos(x) | CallArg::Kwarg(_, x) = a {
                        self.grown_refs(x, grows, out);
                    }
                }
            }
            Expr::IfExpr(i) => {
                self.grown_refs(&i.true_expr, building, out);
                if let Some(f) = &i.false_expr {
                    self.grown_refs(f, building, out);
                }
            }
            _ => {}
        }
    }

    /// Like [`Self::grown_refs`], each use counted: the names read in a growing position.
    fn grown_uses(&self, e: &Expr<'_>, building: bool, out: &mut Vec<String>) {
        let mut refs = HashSet::new();
        match e {
            // A namespace printed whole is every attribute.
            Expr::Var(v) if building && self.namespaces.contains(v.id) => {
                out.extend(self.stored.keys().filter(|k| k.starts_with('.')).cloned());
            }
            Expr::Var(v) if building => out.push(v.id.to_owned()),
            Expr::GetAttr(g) if building => {
                referenced_in(e, &mut refs, &self.input_names);
                if refs.contains(&format!(".{}", g.name)) {
                    out.push(format!(".{}", g.name));
                } else {
                    self.grown_uses(&g.expr, building, out);
                }
            }
            Expr::GetItem(g) if building => self.grown_uses(&g.expr, building, out),
            Expr::Slice(x) if building => self.grown_uses(&x.expr, building, out),
            // A repetition's count is not text: the size bound weighs repetitions.
            Expr::BinOp(b) if matches!(b.op, BinOpKind::Mul) => {}
            Expr::BinOp(b) => {
                let grows = match b.op {
                    BinOpKind::Concat | BinOpKind::Rem => true,
                    BinOpKind::Add => !self.is_numeric(e),
                    _ => false,
                };
                self.grown_uses(&b.left, building || grows, out);
                self.grown_uses(&b.right, building || grows, out);
            }
            Expr::List(l) => l.items.iter().for_each(|x| self.grown_uses(x, true, out)),
            Expr::Filter(f) => {
                if let Some(x) = &f.expr {
                    self.grown_uses(x, building, out);
                }
                for a in &f.args {
                    if let CallArg::Pos(x) | CallArg::Kwarg(_, x) = a {
                        self.grown_uses(x, building, out);
                    }
                }
            }
            Expr::IfExpr(i) => {
                self.grown_uses(&i.true_expr, building, out);
                if let Some(f) = &i.false_expr {
                    self.grown_uses(f, building, out);
                }
            }
            _ => {}
        }
    }

    /// Whether `e` reads one of `keys` where it gets quoted: inside a list or map literal, a
    /// quoting filter (`tojson`, `string`, `pprint`, `escape`, `urlencode`), or as part of a
    /// namespace printed whole.
    fn quotes(&self, e: &Expr<'_>, keys: &[String], quoting: bool) -> bool {
        let reads_key = |e: &Expr<'_>| {
            let mut refs = HashSet::new();
            referenced_in(e, &mut refs, &self.input_names);
            keys.iter().any(|k| refs.contains(k))
        };
        match e {
            Expr::Var(v) if self.namespaces.contains(v.id) => {
                keys.iter().any(|k| k.starts_with('.'))
            }
            Expr::Var(_) | Expr::GetAttr(_) | Expr::GetItem(_) | Expr::Slice(_) => {
                quoting && reads_key(e)
            }
            Expr::BinOp(b) => {
                self.quotes(&b.left, keys, quoting) || self.quotes(&b.right, keys, quoting)
            }
            Expr::List(l) => l.items.iter().any(|x| self.quotes(x, keys, true)),
            Expr::Map(m) => m.values.iter().any(|x| self.quotes(x, keys, true)),
            // `dict(a=x)` nests like `{'a': x}`: a value nested in itself once per pass is as
            // deep as the loop is long, and printing, measuring or dropping it recurses that
            // deep (a stack overflow, found by probing after the fuzzer's crashes).
            Expr::Call(c) if matches!(&c.expr, Expr::Var(v) if v.id == "dict" || v.id == "namespace") => {
                c.args.iter().any(|a| match a {
                    CallArg::Pos(x) | CallArg::Kwarg(_, x) => self.quotes(x, keys, true),
                    _ => false,
                })
            }
            Expr::Filter(f) => {
                let q = quoting
                    || matches!(
                        f.name,
                        "tojson"
                            | "string"
                            | "pprint"
                            | "escape"
                            | "e"
                            | "forceescape"
                            | "urlencode"
                            // These nest: each item (or group) becomes a list of its own.
                            | "batch"
                            | "slice"
                            | "groupby"
                            | "dictsort"
                            | "items"
                    );
                f.expr.as_ref().is_some_and(|x| self.quotes(x, keys, q))
            }
            Expr::IfExpr(i) => {
                self.quotes(&i.true_expr, keys, quoting)
                    || i.false_expr
                        .as_ref()
                        .is_some_and(|f| self.quotes(f, keys, quoting))
            }
            _ => false,
        }
    }

    /// Whether `e` is, or holds, a namespace object (not one of its attributes).
    fn holds_namespace(&self, e: &Expr<'_>) -> bool {
        match e {
            Expr::Var(v) => self.namespaces.contains(v.id),
            Expr::Call(c) => {
                matches!(&c.expr, Expr::Var(v) if v.id == "namespace")
                    || c.args.iter().any(|a| match a {
                        CallArg::Pos(x) | CallArg::Kwarg(_, x) => self.holds_namespace(x),
                        _ => false,
                    })
            }
            Expr::List(l) => l.items.iter().any(|x| self.holds_namespace(x)),
            Expr::Map(m) => m.values.iter().any(|x| self.holds_namespace(x)),
            Expr::BinOp(b) => self.holds_namespace(&b.left) || self.holds_namespace(&b.right),
            Expr::IfExpr(i) => {
                self.holds_namespace(&i.true_expr)
                    || i.false_expr
                        .as_ref()
                        .is_some_and(|f| self.holds_namespace(f))
            }
            Expr::Filter(f) => f.expr.as_ref().is_some_and(|x| self.holds_namespace(x)),
            _ => false,
        }
    }

    /// Whether a loop over `e` is a loop over the conversation.
    fn is_input(&self, e: &Expr<'_>) -> bool {
        match e {
            Expr::Var(v) => is_input_global(v.id) || self.input_names.contains(v.id),
            Expr::GetAttr(g) => self.is_input(&g.expr),
            Expr::GetItem(g) => self.is_input(&g.expr),
            Expr::Slice(s) => self.is_input(&s.expr),
            Expr::Filter(f) => f.expr.as_ref().is_some_and(|x| self.is_input(x)),
            Expr::Call(c) => match &c.expr {
                // messages.items(), m.content.split(...)
                Expr::GetAttr(g) => self.is_input(&g.expr),
                _ => false,
            },
            _ => false,
        }
    }

    fn filter_chain(&mut self, filter: &'a Expr<'a>, input: Size) -> Result<Size, Unbounded> {
        // A filter block's filter is a Filter expression whose `expr` is None.
        match filter {
            Expr::Filter(f) => {
                let base = match &f.expr {
                    Some(inner) => self.filter_chain(inner, input)?,
                    None => input,
                };
                self.apply_filter(f.name, base, &f.args)
            }
            other => self.expr(other),
        }
    }

    fn args(&mut self, args: &'a [CallArg<'a>]) -> Result<Vec<Size>, Unbounded> {
        args.iter()
            .map(|a| match a {
                CallArg::Pos(e)
                | CallArg::Kwarg(_, e)
                | CallArg::PosSplat(e)
                | CallArg::KwargSplat(e) => self.expr(e),
            })
            .collect()
    }

    fn apply_filter(
        &mut self,
        name: &str,
        base: Size,
        args: &'a [CallArg<'a>],
    ) -> Result<Size, Unbounded> {
        let sizes = self.args(args)?;
        let arg = |i: usize| sizes.get(i).copied().unwrap_or_default();
        let sum_args = sizes.iter().fold(Size::default(), |a, s| a.plus(*s));
        let out = match name {
            // Text that grows by a factor its arguments set.
            "replace" => replace_bound(base, args, arg(1)),
            "join" => base.times(arg(0).fixed.saturating_add(1)).plus(arg(0)),
            "indent" => base.times(
                const_int(args.first())
                    .unwrap_or(u64::MAX)
                    .saturating_add(2),
            ),
            "center" | "ljust" | "rjust" => {
                base.plus(Size::bytes(const_int(args.first()).unwrap_or(u64::MAX)))
            }
            "wordwrap" => base.times(2),
            "tojson" | "escape" | "e" | "forceescape" | "urlencode" | "pprint" => {
                base.times(6).plus(Size::bytes(SMALL))
            }
            "format" => base.plus(sum_args).times(2),
            _ => base.plus(sum_args),
        };
        Ok(out)
    }

    fn call(&mut self, call: &'a ast::Call<'a>) -> Result<Size, Unbounded> {
        match &call.expr {
            Expr::Var(v) => {
                let sizes = self.args(&call.args)?;
                let sum = sizes.iter().fold(Size::default(), |a, s| a.plus(*s));
                Ok(match v.id {
                    "namespace" => {
                        for a in call.args.iter() {
                            if let CallArg::Kwarg(k, e) = a {
                                let size = self.expr(e)?;
                                self.store(format!(".{k}"), size)?;
                            }
                        }
                        sum
                    }
                    // Printed or joined, a range is its numbers.
                    "range" => Size::bytes(range_args_len(&call.args).saturating_mul(8).max(SMALL)),
                    "raise_exception" => Size::default(),
                    "strftime_now" => Size::bytes(SMALL),
                    "dict" => sum,
                    "loop" => {
                        return Err(Unbounded("recursive loops are not allowed".into()));
                    }
                    name if self.in_macro.iter().any(|m| m == name) => {
                        // Recursion: fine while it walks down the data (`render(x.items)`,
                        // `render({"type": t})`), refused when an argument is built from the
                        // macro's own parameters twice (`d(s ~ s)` doubles per level).
                        let params = self.macro_params.get(name).cloned().unwrap_or_default();
                        for a in call.args.iter() {
                            if let CallArg::Pos(x) | CallArg::Kwarg(_, x) = a {
                                let mut uses = Vec::new();
                                self.grown_uses(x, false, &mut uses);
                                if uses.iter().filter(|u| params.contains(*u)).count() >= 2 {
                                    return Err(Unbounded(format!(
                                        "macro `{name}` calls itself with an argument that doubles"
                                    )));
                                }
                            }
                        }
                        Size::INPUT
                    }
                    name => match self.macros.get(name) {
                        Some(_) => self.macro_output.get(name).copied().unwrap_or_default(),
                        // `caller()` inside a call block, or an unknown function: its
                        // arguments' size.
                        None => sum.plus(Size::bytes(SMALL)),
                    },
                })
            }
            // A method: `text.replace(a, b)`, `sep.join(items)`, `text.strip()`.
            Expr::GetAttr(g) => {
                let receiver = self.expr(&g.expr)?;
                let sizes = self.args(&call.args)?;
                let arg = |i: usize| sizes.get(i).copied().unwrap_or_default();
                Ok(match g.name {
                    "replace" => replace_bound(receiver, &call.args, arg(1)),
                    "join" => arg(0)
                        .times(receiver.fixed.saturating_add(1))
                        .plus(receiver),
                    "format" => sizes.iter().fold(receiver, |a, s| a.plus(*s)).times(2),
                    "center" | "ljust" | "rjust" | "zfill" => receiver.plus(Size::bytes(
                        const_int(call.args.first()).unwrap_or(u64::MAX),
                    )),
                    "expandtabs" => receiver.times(8),
                    // Parts of the receiver, or the receiver changed in place.
                    _ => receiver,
                })
            }
            other => {
                let f = self.expr(other)?;
                let sizes = self.args(&call.args)?;
                Ok(sizes.iter().fold(f, |a, s| a.plus(*s)))
            }
        }
    }

    /// A bound on the value of `e`; refuses it when over the limits.
    fn expr(&mut self, e: &'a Expr<'a>) -> Result<Size, Unbounded> {
        let size = self.expr_inner(e)?;
        if size.within_limits() {
            Ok(size)
        } else {
            Err(too_big("an expression", size))
        }
    }

    fn expr_inner(&mut self, e: &'a Expr<'a>) -> Result<Size, Unbounded> {
        Ok(match e {
            Expr::Var(v) if self.namespaces.contains(v.id) => self
                .stored
                .iter()
                .filter(|(k, _)| k.starts_with('.'))
                .fold(Size::bytes(SMALL), |a, (_, s)| a.plus(*s)),
            Expr::Var(v) => {
                if let Some(s) = self.stored.get(v.id) {
                    *s
                } else if self.macros.contains_key(v.id) {
                    Size::bytes(SMALL)
                } else {
                    // The conversation, a loop or macro argument bound to it, or undefined.
                    Size::INPUT
                }
            }
            Expr::Const(c) => Size::bytes(const_len(&c.value)),
            Expr::Slice(s) => {
                for x in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(x)?;
                }
                self.expr(&s.expr)?
            }
            Expr::UnaryOp(u) => self.expr(&u.expr)?,
            Expr::BinOp(b) => {
                let l = self.expr(&b.left)?;
                let r = self.expr(&b.right)?;
                match b.op {
                    BinOpKind::Add if self.is_numeric(e) => Size::bytes(SMALL),
                    BinOpKind::Concat | BinOpKind::Add => l.plus(r),
                    BinOpKind::Mul => {
                        // Repetition by a constant multiplies; by anything else is
                        // unbounded (minijinja caps one repetition at 100 MB, not a chain).
                        match (const_int_expr(&b.left), const_int_expr(&b.right)) {
                            (_, Some(n)) => l.times(n.max(1)),
                            (Some(n), _) => r.times(n.max(1)),
                            _ if self.is_numeric(e) => Size::bytes(SMALL),
                            // A literal repeated by a computed count (`'<img>' * n`).
                            _ if matches!(&b.left, Expr::Const(_)) => l.times(COMPUTED_REPEAT),
                            _ if matches!(&b.right, Expr::Const(_)) => r.times(COMPUTED_REPEAT),
                            _ => {
                                return Err(Unbounded(
                                    "a repetition (`*`) of a computed value by a computed count"
                                        .into(),
                                ))
                            }
                        }
                    }
                    // `'%s' % x` formats.
                    BinOpKind::Rem => l.plus(r).times(2),
                    BinOpKind::ScAnd | BinOpKind::ScOr => l.max(r),
                    _ => Size::bytes(SMALL),
                }
            }
            Expr::Compare(c) => {
                self.expr(&c.expr)?;
                for op in &c.ops {
                    self.expr(&op.expr)?;
                }
                Size::bytes(SMALL)
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr)?;
                let t = self.expr(&i.true_expr)?;
                let f = match &i.false_expr {
                    Some(f) => self.expr(f)?,
                    None => Size::default(),
                };
                t.max(f)
            }
            Expr::Filter(f) => {
                let base = match &f.expr {
                    Some(x) => self.expr(x)?,
                    None => Size::default(),
                };
                self.apply_filter(f.name, base, &f.args)?
            }
            Expr::Test(t) => {
                self.expr(&t.expr)?;
                self.args(&t.args)?;
                Size::bytes(SMALL)
            }
            Expr::GetAttr(g) => {
                let base = self.expr(&g.expr)?;
                // A namespace attribute has its own stored bound; anything else is part of
                // what it is read from.
                match self.stored.get(&format!(".{}", g.name)) {
                    Some(s) if !self.is_input(&g.expr) => *s,
                    _ => base,
                }
            }
            Expr::GetItem(g) => {
                self.expr(&g.subscript_expr)?;
                self.expr(&g.expr)?
            }
            Expr::Call(c) => self.call(c)?,
            Expr::List(l) => {
                let mut sum = Size::bytes(2);
                for item in &l.items {
                    sum = sum.plus(self.expr(item)?.plus(Size::bytes(ITEM)));
                }
                sum
            }
            Expr::Map(m) => {
                let mut sum = Size::bytes(2);
                for (k, v) in m.keys.iter().zip(&m.values) {
                    sum = sum
                        .plus(self.expr(k)?)
                        .plus(self.expr(v)?)
                        .plus(Size::bytes(2 * ITEM));
                }
                sum
            }
        })
    }
}

/// The names an assignment target binds: `x`, `a, b`, `ns.attr` (as `.attr`).
fn target_names(target: &Expr<'_>) -> Vec<String> {
    match target {
        Expr::Var(v) => vec![v.id.to_owned()],
        Expr::GetAttr(g) => vec![format!(".{}", g.name)],
        Expr::List(l) => l.items.iter().flat_map(target_names).collect(),
        _ => Vec::new(),
    }
}

/// The variables and namespace attributes `e` reads (an attribute of the conversation, such
/// as `m.content`, is not a namespace attribute).
fn referenced_in(e: &Expr<'_>, out: &mut HashSet<String>, inputs: &HashSet<String>) {
    let referenced = |e: &Expr<'_>, out: &mut HashSet<String>| referenced_in(e, out, inputs);
    let args_referenced = |args: &[CallArg<'_>], out: &mut HashSet<String>| {
        for a in args {
            match a {
                CallArg::Pos(e)
                | CallArg::Kwarg(_, e)
                | CallArg::PosSplat(e)
                | CallArg::KwargSplat(e) => referenced_in(e, out, inputs),
            }
        }
    };
    match e {
        Expr::Var(v) => {
            out.insert(v.id.to_owned());
        }
        Expr::Const(_) => {}
        Expr::Slice(s) => {
            referenced(&s.expr, out);
            for x in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                referenced(x, out);
            }
        }
        Expr::UnaryOp(u) => referenced(&u.expr, out),
        Expr::BinOp(b) => {
            referenced(&b.left, out);
            referenced(&b.right, out);
        }
        Expr::Compare(c) => {
            referenced(&c.expr, out);
            for op in &c.ops {
                referenced(&op.expr, out);
            }
        }
        Expr::IfExpr(i) => {
            referenced(&i.test_expr, out);
            referenced(&i.true_expr, out);
            if let Some(f) = &i.false_expr {
                referenced(f, out);
            }
        }
        Expr::Filter(f) => {
            if let Some(x) = &f.expr {
                referenced(x, out);
            }
            args_referenced(&f.args, out);
        }
        Expr::Test(t) => {
            referenced(&t.expr, out);
            args_referenced(&t.args, out);
        }
        Expr::GetAttr(g) => {
            let of_input =
                matches!(&g.expr, Expr::Var(v) if is_input_global(v.id) || inputs.contains(v.id));
            if !of_input {
                out.insert(format!(".{}", g.name));
            }
            referenced(&g.expr, out);
        }
        Expr::GetItem(g) => {
            referenced(&g.expr, out);
            referenced(&g.subscript_expr, out);
        }
        Expr::Call(c) => {
            referenced(&c.expr, out);
            args_referenced(&c.args, out);
        }
        Expr::List(l) => l.items.iter().for_each(|x| referenced(x, out)),
        Expr::Map(m) => m
            .keys
            .iter()
            .chain(&m.values)
            .for_each(|x| referenced(x, out)),
    }
}

/// The names a statement (and those nested in it) assigns.
fn assigned_in(stmt: &Stmt<'_>, out: &mut HashSet<String>) {
    match stmt {
        Stmt::Set(s) => out.extend(target_names(&s.target)),
        Stmt::SetBlock(s) => out.extend(target_names(&s.target)),
        _ => {}
    }
    for c in children(stmt) {
        assigned_in(c, out);
    }
}

/// A statement's nested statements.
fn children<'s, 'a>(stmt: &'s Stmt<'a>) -> Vec<&'s Stmt<'a>> {
    match stmt {
        Stmt::Template(t) => t.children.iter().collect(),
        Stmt::ForLoop(f) => f.body.iter().chain(&f.else_body).collect(),
        Stmt::IfCond(i) => i.true_body.iter().chain(&i.false_body).collect(),
        Stmt::WithBlock(w) => w.body.iter().collect(),
        Stmt::SetBlock(s) => s.body.iter().collect(),
        Stmt::AutoEscape(a) => a.body.iter().collect(),
        Stmt::FilterBlock(f) => f.body.iter().collect(),
        Stmt::Block(b) => b.body.iter().collect(),
        Stmt::Macro(m) => m.body.iter().collect(),
        _ => Vec::new(),
    }
}

/// The conversation's names in the render context.
fn is_input_global(name: &str) -> bool {
    matches!(name, "messages" | "tools" | "documents")
}

fn const_len(v: &minijinja::Value) -> u64 {
    match v.kind() {
        ValueKind::String => v.as_str().map_or(SMALL, |s| s.len() as u64),
        _ => SMALL,
    }
}

fn const_int_expr(e: &Expr<'_>) -> Option<u64> {
    match e {
        Expr::Const(c) if c.value.kind() == ValueKind::Number => {
            i64::try_from(c.value.clone()).ok().map(|n| n.max(0) as u64)
        }
        _ => None,
    }
}

fn const_int(arg: Option<&CallArg<'_>>) -> Option<u64> {
    match arg? {
        CallArg::Pos(e) | CallArg::Kwarg(_, e) => const_int_expr(e),
        _ => None,
    }
}

/// The passes of a loop over `range(…)`: its largest constant argument, or minijinja's cap
/// on any range when an argument is computed.
fn range_len(e: &Expr<'_>) -> Option<u64> {
    let Expr::Call(c) = e else { return None };
    let Expr::Var(v) = &c.expr else { return None };
    if v.id != "range" {
        return None;
    }
    Some(range_args_len(&c.args))
}

/// [`range_len`] given the arguments.
fn range_args_len(args: &[CallArg<'_>]) -> u64 {
    let mut most = 0u64;
    for a in args {
        match const_int(Some(a)) {
            Some(n) => most = most.max(n),
            None => return RANGE_CAP,
        }
    }
    most.min(RANGE_CAP)
}

/// `replace(old, new)`: each occurrence of `old` becomes `new`, so the text grows by
/// `len(new) / len(old)`, or by `len(new) + 1` per character when `old` is empty.
fn replace_bound(base: Size, args: &[CallArg<'_>], new: Size) -> Size {
    let old_len = match args.first() {
        Some(CallArg::Pos(Expr::Const(c))) => c.value.as_str().map(|s| s.len() as u64),
        _ => None,
    };
    match (old_len, new.per_input) {
        (Some(old), 0) if old > 0 => base.times(new.fixed.div_ceil(old).max(1)),
        (Some(_), 0) => base.times(new.fixed.saturating_add(1)),
        // A replacement built from the conversation: quadratic.
        _ => Size {
            per_input: u64::MAX,
            fixed: u64::MAX,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) {
        if let Err(e) = check(src) {
            panic!("refused {src:?}: {e}");
        }
    }

    fn refused(src: &str) -> String {
        match check(src) {
            Ok(()) => panic!("accepted {src:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn real_templates_pass() {
        for name in ["smollm2", "gemma3"] {
            let path = format!(
                "{}/tests/fixtures/chat_templates/{name}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let fixture: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let source = fixture["chat_template"].as_str().expect("template field");
            ok(source);
        }
        // Accumulating over the conversation, a Llama-style system message, Qwen-style
        // namespace flags, a macro that is called.
        ok("{% set ns = namespace(text='') %}{% for m in messages %}{% set ns.text = ns.text ~ m.content ~ '\\n' %}{% endfor %}{{ ns.text }}");
        ok("{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content']|trim %}{% set messages = messages[1:] %}{% else %}{% set system_message = '' %}{% endif %}{{ system_message }}{% for m in messages %}{{ m.content }}{% endfor %}");
        ok("{% set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}{% for m in messages[::-1] %}{% set index = (messages|length - 1) - loop.index0 %}{% if ns.multi_step_tool and m.role == 'user' %}{% set ns.multi_step_tool = false %}{% set ns.last_query_index = index %}{% endif %}{% endfor %}{{ ns.last_query_index }}");
        ok("{% macro turn(role, text) %}<|{{ role }}|>{{ text | trim }}{% endmacro %}{% for m in messages %}{{ turn(m.role, m.content) }}{% endfor %}");
        ok("{{ '-' * 20 }}{% set content = messages[0].content.split('</think>')[-1].strip() %}{{ content.replace('\\n', ' ') }}");
    }

    #[test]
    fn doubling_repetition_recursion_and_loops_over_stored_data_are_refused() {
        // Namespace doubling in a loop.
        refused("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}");
        // A straight-line chain of doublings.
        let chain: String = (0..40)
            .map(|i| format!("{{% set v{} = v{i} ~ v{i} %}}", i + 1))
            .collect();
        refused(&format!(
            "{{% set v0 = messages[0].content %}}{chain}{{{{ v40 }}}}"
        ));
        // A huge constant repetition, and a repetition by a computed count.
        refused("{% set s = 'x' * 100000000 %}{{ s }}");
        refused("{% set s = messages[0].content %}{{ s * (messages|length) }}");
        // A recursive macro that doubles its argument.
        let m = refused("{% macro d(s, n) %}{% if n > 0 %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}{% endif %}{% endmacro %}{{ d('x', 60) }}");
        assert!(m.contains("calls itself"), "{m}");
        // A macro that walks down the data may recurse (tool schemas).
        ok("{% macro render(v) %}{% if v is mapping %}{% for k, x in v|dictsort %}{{ k }}: {{ render(x) }}{% endfor %}{% else %}{{ v }}{% endif %}{% endmacro %}{{ render(messages[0]) }}");
        // Counters are numbers, not text.
        ok("{% set ns = namespace(i=0) %}{% for i in range(100000) %}{% set ns.i = ns.i + 1 %}{% endfor %}{{ ns.i }}");
        // A namespace made afresh in each pass of an outer loop carries nothing between its
        // passes (Gemma 4's tool responses); a list built from the conversation may be walked
        // again (Kimi K3's tool-call ids, muse's recipients).
        ok("{% for m in messages %}{% for k in range(loop.index0 + 1, messages|length) %}{% set ns = namespace(s='') %}{% for part in messages[k].content %}{% set ns.s = ns.s + part %}{% endfor %}{{ ns.s }}{% endfor %}{% endfor %}");
        ok("{% set st = namespace(ids=[]) %}{% for m in messages %}{% set st.ids = st.ids + [m.role] %}{% endfor %}{% set out = namespace(s=[]) %}{% for id in st.ids %}{% if id not in out.s %}{% set out.s = out.s + [id|string] %}{% endif %}{% endfor %}{{ out.s|join(',') }}");
        // ...but a namespace made before the outer loop carries over all its passes, and a
        // computed range is as long as minijinja allows (100 000).
        refused("{% set ns = namespace(s='') %}{% for k in range(messages|length * 1000) %}{% for part in messages %}{% set ns.s = ns.s ~ part.content %}{% endfor %}{% endfor %}{{ ns.s }}");
        // A loop over stored data adds up its items: walking a list built from the whole
        // conversation, again appending the whole conversation each pass, is refused.
        refused("{% set st = namespace(l=[]) %}{% for m in messages %}{% set st.l = st.l + [m.content] %}{% endfor %}{% set ns = namespace(s='') %}{% for x in st.l %}{% for y in st.l %}{% set ns.s = ns.s ~ (messages|tojson) ~ (messages|tojson) %}{% endfor %}{% endfor %}{{ ns.s }}");
        // Accumulation inside a loop whose range is computed, and one whose constant range
        // multiplies it past the bound.
        refused("{% set ns = namespace(s='', n=[]) %}{% for i in range(messages|length * 100000) %}{% set ns.s = ns.s ~ messages[0].content %}{% endfor %}{{ ns.s }}");
        refused("{% set ns = namespace(s='') %}{% for i in range(100000) %}{% set ns.s = ns.s ~ messages[0].content %}{% endfor %}{{ ns.s }}");
        // Doubling through the namespace's own text (found by fuzzing).
        refused("{% set ns = namespace(s='x') %}{% for i in range(46) %}{% set ns.w = ns.s ~ ns %}{% endfor %}{{ ns.s }}");
        // Doubling through quoting: each pass escapes the quotes of the last.
        refused("{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s | tojson %}{% endfor %}{{ ns.s }}");
        refused(
            "{% set s = 'x' %}{% for i in range(60) %}{% set s = [s]|string %}{% endfor %}{{ s }}",
        );
        // Doubling through a list, and through `+`.
        refused("{% set ns = namespace(l=['x']) %}{% for m in messages %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}");
        refused("{% set ns = namespace(s='x') %}{% for i in range(3) %}{% for m in messages %}{% set ns.s = ns.s + ns.s %}{% endfor %}{% endfor %}{{ ns.s }}");
        // Replacing every character with a long string, again and again.
        refused("{% set s = messages[0].content %}{% set s = s.replace('', 'abcdefghij') %}{% set s = s.replace('', 'abcdefghij') %}{% set s = s.replace('', 'abcdefghij') %}{% set s = s.replace('', 'abcdefghij') %}{{ s }}");
        refused("{% for x in messages recursive %}{{ loop(x.children) }}{% endfor %}");
        // Nesting through `dict(…)` or a nesting filter, and a namespace holding itself: each
        // overflowed the stack when printed (found by probing after the fuzzer's crashes).
        refused("{% set ns = namespace(d=none) %}{% for i in range(100000) %}{% set ns.d = dict(a=ns.d) %}{% endfor %}{{ ns.d|length }}");
        refused("{% set ns = namespace(l=[1]) %}{% for i in range(100000) %}{% set ns.l = ns.l|batch(1) %}{% endfor %}{{ ns.l }}");
        let m = refused("{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns }}");
        assert!(m.contains("inside a namespace"), "{m}");
        refused("{% set ns = namespace(a=1) %}{% set alias = [ns] %}{% set ns.me = alias %}{{ ns|tojson }}");
    }

    #[test]
    fn long_chains_are_refused_before_they_are_parsed() {
        // 3 000 links overflowed a 1 MiB stack in this guard (found by fuzzing, on 8 MiB).
        let chain = |n: usize| format!("{{{{ {} }}}}", vec!["m"; n].join(" ~ "));
        let m = refused(&chain(3000));
        assert!(m.contains("operators"), "{m}");
        // The longest tag allowed, on a 512 KiB stack (an iOS secondary thread's), through the
        // guard, the compiler and a render.
        let longest = chain(MAX_TAG_TOKENS / 2);
        let rendered = std::thread::Builder::new()
            .stack_size(512 << 10)
            .spawn(move || {
                let t = crate::engine::template::ChatTemplate::new(&longest, "", "").unwrap();
                t.render(&[crate::engine::Message::user("hi")], true)
                    .map(|s| s.len())
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(rendered.is_ok(), "{rendered:?}");
    }
}
