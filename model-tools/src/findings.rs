//! Findings: the problems a check reports, each with a severity, a stable code, a message and
//! the lines concerned, shared by `validate-data` and `audit-tokenizer`.

use std::fmt;

use serde::Serialize;

/// How many line numbers a finding keeps.
pub(crate) const MAX_LINES: usize = 20;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The check fails.
    Error,
    /// Worth a look; the check still passes.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found by a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Error (fails the check) or warning.
    pub severity: Severity,
    /// Stable kebab-case identifier, e.g. `mixed-formats`.
    pub code: &'static str,
    /// What is wrong, with the numbers, and what to do about it.
    pub message: String,
    /// The first (up to 20) 1-based line numbers concerned; empty for file-wide findings.
    pub lines: Vec<usize>,
    /// How many lines or items are concerned in all.
    pub count: usize,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "ERROR",
            Severity::Warning => "WARN ",
        };
        write!(f, "{label} {:<26} {}", self.code, self.message)?;
        if !self.lines.is_empty() {
            let shown: Vec<String> = self.lines.iter().map(ToString::to_string).collect();
            let more = if self.count > self.lines.len() {
                ", …"
            } else {
                ""
            };
            write!(f, " [line {}{more}]", shown.join(", "))?;
        }
        Ok(())
    }
}

/// How many of `findings` have `severity`.
pub(crate) fn count_severity(findings: &[Finding], severity: Severity) -> usize {
    findings.iter().filter(|f| f.severity == severity).count()
}

/// Line numbers of one kind, the first few kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct LineList {
    pub(crate) lines: Vec<usize>,
    pub(crate) count: usize,
}

impl LineList {
    /// Counts `line`, keeping it if fewer than [`MAX_LINES`] are kept.
    pub(crate) fn push(&mut self, line: usize) {
        if self.lines.len() < MAX_LINES {
            self.lines.push(line);
        }
        self.count += 1;
    }
}

/// A per-line finding being accumulated.
#[derive(Debug)]
pub(crate) struct Pending {
    severity: Severity,
    summary: &'static str,
    pub(crate) first: String,
    lines: LineList,
}

/// Collects findings: per-line ones are merged by code (first detail kept, lines counted).
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub(crate) per_line: Vec<(&'static str, Pending)>,
    whole: Vec<Finding>,
}

impl Findings {
    /// Records `code` on `line`; the detail of the first occurrence is kept.
    pub(crate) fn line(
        &mut self,
        severity: Severity,
        code: &'static str,
        summary: &'static str,
        line: usize,
        detail: impl FnOnce() -> String,
    ) {
        if let Some((_, pending)) = self.per_line.iter_mut().find(|(c, _)| *c == code) {
            pending.lines.push(line);
            return;
        }
        let mut lines = LineList::default();
        lines.push(line);
        self.per_line.push((
            code,
            Pending {
                severity,
                summary,
                first: detail(),
                lines,
            },
        ));
    }

    /// Records a file-wide finding about `lines`.
    pub(crate) fn whole(
        &mut self,
        severity: Severity,
        code: &'static str,
        message: String,
        lines: &LineList,
    ) {
        self.whole.push(Finding {
            severity,
            code,
            message,
            lines: lines.lines.clone(),
            count: lines.count.max(1),
        });
    }

    /// All findings, errors first, then by first line.
    pub(crate) fn into_sorted(self) -> Vec<Finding> {
        let mut all: Vec<Finding> = self
            .per_line
            .into_iter()
            .map(|(code, p)| {
                let message = if p.lines.count == 1 {
                    format!("{}: {}", p.summary, p.first)
                } else {
                    format!(
                        "{} ({} lines); first: {}",
                        p.summary, p.lines.count, p.first
                    )
                };
                Finding {
                    severity: p.severity,
                    code,
                    message,
                    lines: p.lines.lines,
                    count: p.lines.count,
                }
            })
            .chain(self.whole)
            .collect();
        all.sort_by_key(|f| (f.severity, f.lines.first().copied().unwrap_or(0)));
        all
    }
}

/// "1 error", "2 errors".
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}
