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
//! - a variable or namespace attribute holds the largest value ever assigned to it, found by
//!   running the assignments to a fixed point: a value that keeps growing is refused;
//! - a value that accumulates inside a loop (`ns.text = ns.text ~ m.content`) is allowed only
//!   in a single loop over the conversation itself, where the passes are bounded by it;
//! - recursive macros and `for … recursive` loops are refused (minijinja's recursion limit
//!   bounds depth, not the doubling one level can do).
//!
//! Real templates (ChatML, Gemma, Llama, Qwen) store a few slices of the conversation and
//! print the rest, far inside the bounds. See decision 0003.

use std::collections::{HashMap, HashSet};

use minijinja::machinery::ast::{self, BinOpKind, CallArg, Expr, Stmt};
use minijinja::machinery::{parse, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::ValueKind;

/// Most a stored or computed value may hold, in multiples of the conversation's size.
pub const MAX_PER_INPUT: u64 = 64;
/// Most a stored or computed value may hold beyond that, in bytes.
pub const MAX_FIXED: u64 = 1 << 20;
/// Fixed-point passes over the template before a still-growing value is refused.
const MAX_PASSES: usize = 12;
/// Bytes a number, boolean or other small value counts for.
const SMALL: u64 = 32;

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
    let Ok(tree) = parse(source, "chat", SyntaxConfig, ws) else {
        return Ok(());
    };
    let mut a = Analysis::default();
    a.collect_macros(&tree)?;
    a.check_macro_recursion()?;
    for pass in 0.. {
        a.changed = false;
        a.stmt(&tree)?;
        if !a.changed {
            return Ok(());
        }
        if pass + 1 >= MAX_PASSES {
            return Err(Unbounded(
                "a stored value keeps growing with every pass (it is built from itself)".into(),
            ));
        }
    }
    unreachable!()
}

/// How a loop bounds the passes of its body.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LoopKind {
    /// Over the conversation (or a slice, filter or attribute of it): at most its size.
    Input,
    /// Over something else: bounded only by fuel.
    Other,
}

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
    changed: bool,
}

fn too_big(what: &str, size: Size) -> Unbounded {
    Unbounded(format!(
        "{what} can grow past the bound ({} × the conversation + {} bytes; the limit is {MAX_PER_INPUT} × + {MAX_FIXED} bytes)",
        size.per_input, size.fixed
    ))
}

impl<'a> Analysis<'a> {
    fn collect_macros(&mut self, stmt: &'a Stmt<'a>) -> Result<(), Unbounded> {
        let children: &'a [Stmt<'a>] = match stmt {
            Stmt::Macro(m) => {
                self.macros.insert(m.name.to_owned(), &m.body[..]);
                &m.body[..]
            }
            _ => return self.collect_in(stmt),
        };
        for c in children {
            self.collect_macros(c)?;
        }
        Ok(())
    }

    fn collect_in(&mut self, stmt: &'a Stmt<'a>) -> Result<(), Unbounded> {
        for c in children(stmt) {
            self.collect_macros(c)?;
        }
        Ok(())
    }

    /// Refuses a macro that calls itself, directly or through others.
    fn check_macro_recursion(&self) -> Result<(), Unbounded> {
        let calls: HashMap<&str, HashSet<String>> = self
            .macros
            .iter()
            .map(|(name, body)| {
                let mut called = HashSet::new();
                for s in body.iter() {
                    called_in_stmt(s, &mut called);
                }
                called.retain(|c| self.macros.contains_key(c));
                (name.as_str(), called)
            })
            .collect();
        for start in calls.keys() {
            let mut seen = HashSet::new();
            let mut todo: Vec<&str> = calls[start].iter().map(String::as_str).collect();
            while let Some(m) = todo.pop() {
                if m == *start {
                    return Err(Unbounded(format!("macro `{start}` calls itself")));
                }
                if seen.insert(m) {
                    todo.extend(calls[m].iter().map(String::as_str));
                }
            }
        }
        Ok(())
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
        let mut out = Size::default();
        for s in body {
            out = out.plus(self.stmt(s)?);
        }
        Ok(out)
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
                let kind = if self.is_input(&f.iter) {
                    LoopKind::Input
                } else {
                    LoopKind::Other
                };
                // The loop target holds one item: no larger than the sequence.
                for name in target_names(&f.target) {
                    if kind == LoopKind::Input {
                        self.input_names.insert(name.clone());
                    }
                    self.store(name, iter)?;
                }
                if let Some(filter) = &f.filter_expr {
                    self.expr(filter)?;
                }
                self.loops.push(kind);
                let body = self.stmts(&f.body);
                self.loops.pop();
                let body = body?;
                let else_body = self.stmts(&f.else_body)?;
                // What a loop prints is bounded at render time by the output limit; as a
                // value (a macro's or a block's) it is bounded only over the conversation.
                Ok(match kind {
                    LoopKind::Input => body.per_pass().max(else_body),
                    LoopKind::Other if body == Size::default() => else_body,
                    LoopKind::Other => Size {
                        per_input: u64::MAX,
                        fixed: u64::MAX,
                    },
                })
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
                let out = self.stmts(&m.body);
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
        let mut refs = HashSet::new();
        referenced_in(value, &mut refs, &self.input_names);
        let self_referential = keys.iter().any(|k| refs.contains(k));
        if self_referential && !self.loops.is_empty() {
            // Accumulation: fine once per item of the conversation, nowhere else.
            if self.loops != [LoopKind::Input] {
                return Err(Unbounded(format!(
                    "`{}` is built from itself inside a loop that is not over the conversation",
                    keys.first().map_or("", |k| k.trim_start_matches('.'))
                )));
            }
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
            let increment = increment?.per_pass();
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
        for k in keys {
            self.store(k, size)?;
        }
        Ok(())
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
            // Sequences of small values cost more than their text.
            "list" | "split" | "batch" | "slice" | "items" | "dictsort" | "chars" => base.times(8),
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
                    "range" => Size::bytes(SMALL),
                    "raise_exception" => Size::default(),
                    "strftime_now" => Size::bytes(SMALL),
                    "dict" => sum,
                    "loop" => {
                        return Err(Unbounded("recursive loops are not allowed".into()));
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
                    "split" | "splitlines" | "items" | "keys" | "values" => receiver.times(8),
                    _ => receiver.plus(Size::bytes(SMALL)),
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
                    BinOpKind::Concat | BinOpKind::Add => l.plus(r),
                    BinOpKind::Mul => {
                        // Repetition by a constant multiplies; by anything else is
                        // unbounded (minijinja caps one repetition at 100 MB, not a chain).
                        match (const_int_expr(&b.left), const_int_expr(&b.right)) {
                            (_, Some(n)) => l.times(n.max(1)),
                            (Some(n), _) => r.times(n.max(1)),
                            _ if is_numeric(&b.left) || is_numeric(&b.right) => Size::bytes(SMALL),
                            _ => {
                                return Err(Unbounded(
                                    "a repetition (`*`) by a value the template computes".into(),
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
                let mut sum = Size::bytes(SMALL);
                for item in &l.items {
                    sum = sum.plus(self.expr(item)?.plus(Size::bytes(SMALL)));
                }
                sum
            }
            Expr::Map(m) => {
                let mut sum = Size::bytes(SMALL);
                for (k, v) in m.keys.iter().zip(&m.values) {
                    sum = sum.plus(self.expr(k)?).plus(self.expr(v)?);
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
fn referenced(e: &Expr<'_>, out: &mut HashSet<String>) {
    referenced_in(e, out, &HashSet::new());
}

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

/// The macros a statement calls by name.
fn called_in_stmt(stmt: &Stmt<'_>, out: &mut HashSet<String>) {
    let mut exprs: Vec<&Expr<'_>> = Vec::new();
    match stmt {
        Stmt::EmitExpr(e) => exprs.push(&e.expr),
        Stmt::ForLoop(f) => {
            exprs.push(&f.iter);
            if let Some(x) = &f.filter_expr {
                exprs.push(x);
            }
        }
        Stmt::IfCond(i) => exprs.push(&i.expr),
        Stmt::WithBlock(w) => exprs.extend(w.assignments.iter().map(|(_, v)| v)),
        Stmt::Set(s) => exprs.push(&s.expr),
        Stmt::SetBlock(s) => {
            if let Some(f) = &s.filter {
                exprs.push(f);
            }
        }
        Stmt::FilterBlock(f) => exprs.push(&f.filter),
        Stmt::CallBlock(c) => {
            called_in_expr(&c.call.expr, out);
            for s in &c.macro_decl.body {
                called_in_stmt(s, out);
            }
        }
        Stmt::Do(d) => called_in_expr(&d.call.expr, out),
        _ => {}
    }
    for e in exprs {
        let mut names = HashSet::new();
        referenced(e, &mut names);
        out.extend(names.into_iter().filter(|n| !n.starts_with('.')));
    }
    for c in children(stmt) {
        called_in_stmt(c, out);
    }
}

fn called_in_expr(e: &Expr<'_>, out: &mut HashSet<String>) {
    let mut names = HashSet::new();
    referenced(e, &mut names);
    out.extend(names.into_iter().filter(|n| !n.starts_with('.')));
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

fn is_numeric(e: &Expr<'_>) -> bool {
    matches!(e, Expr::Const(c) if c.value.kind() == ValueKind::Number)
        || matches!(e, Expr::Filter(f) if matches!(f.name, "length" | "count" | "int" | "float"))
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
        refused("{% set n = messages|length %}{{ 'x' * (n * 1000000) }}");
        // A recursive macro that doubles its argument.
        let m = refused("{% macro d(s, n) %}{% if n > 0 %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}{% endif %}{% endmacro %}{{ d('x', 60) }}");
        assert!(m.contains("calls itself"), "{m}");
        // Accumulation inside a loop that is not over the conversation.
        refused("{% set ns = namespace(s='') %}{% for i in range(100000) %}{% set ns.s = ns.s ~ messages[0].content %}{% endfor %}{{ ns.s }}");
        // Replacing every character with a long string, again and again.
        refused("{% set s = messages[0].content %}{% set s = s.replace('', 'abcdefghij') %}{% set s = s.replace('', 'abcdefghij') %}{% set s = s.replace('', 'abcdefghij') %}{{ s }}");
        refused("{% for x in messages recursive %}{{ loop(x.children) }}{% endfor %}");
    }
}
