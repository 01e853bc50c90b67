//! The eval report as Markdown (for people and pull requests) and a short terminal summary.
//! The JSON form is the report's `serde` serialisation.

use std::fmt::Write as _;

use super::{Check, EvalReport};

fn check_line(c: &Check) -> String {
    format!(
        "| {} | {} | {:?} | {:.4} | {} {:.4} | {} |",
        if c.passed { "pass" } else { "**FAIL**" },
        c.name,
        c.kind,
        c.value,
        c.relation(),
        c.limit,
        c.set.as_deref().unwrap_or("all"),
    )
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
    .replace('|', "\\|")
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.3}"))
}

impl EvalReport {
    /// The report as Markdown: verdict, checks, per-set summaries and every answer.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let verdict = if self.passed() { "PASSED" } else { "FAILED" };
        let _ = writeln!(md, "# Model gate: {verdict}\n");
        let _ = writeln!(md, "- model: `{}`", self.model.display());
        if let Some(r) = &self.reference {
            let _ = writeln!(md, "- reference: `{}`", r.display());
        }
        if let Some(d) = &self.divergence {
            let _ = writeln!(
                md,
                "- over {} positions: mean KL {:.4} nats (max {:.3}), top-1 agreement {:.1} %, perplexity {:.3} vs {:.3} (×{:.3})",
                d.positions,
                d.mean_kl(),
                d.kl_max,
                100.0 * d.top1_agreement(),
                d.candidate_perplexity(),
                d.reference_perplexity(),
                d.perplexity_ratio()
            );
        }
        let _ = writeln!(md, "- time: {:.1} s\n", self.seconds);
        let _ = writeln!(md, "## Checks\n\n| result | check | kind | value | limit | set |\n|---|---|---|---|---|---|");
        for c in &self.checks {
            let _ = writeln!(md, "{}", check_line(c));
        }
        for set in &self.sets {
            let _ = writeln!(md, "\n## Set `{}`\n", set.name);
            let _ = writeln!(
                md,
                "| model | answers | script share | keywords | loops | empty | leaks | echoes | perplexity |\n|---|---|---|---|---|---|---|---|---|"
            );
            let s = &set.summary;
            let _ = writeln!(
                md,
                "| candidate | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                s.answers,
                opt(s.mean_script_share),
                opt(s.keyword_share),
                s.loop_share,
                s.empty_share,
                s.leak_share,
                s.echo_share,
                opt(set.perplexity)
            );
            if let Some(r) = &set.reference_summary {
                let reference_ppl = set.divergence.as_ref().map(|d| d.reference_perplexity());
                let _ = writeln!(
                    md,
                    "| reference | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                    r.answers,
                    opt(r.mean_script_share),
                    opt(r.keyword_share),
                    r.loop_share,
                    r.empty_share,
                    r.leak_share,
                    r.echo_share,
                    opt(reference_ppl)
                );
            }
            if !set.prompts.is_empty() {
                let _ = writeln!(
                    md,
                    "\n| id | script | loop | answer | reference answer |\n|---|---|---|---|---|"
                );
                for p in &set.prompts {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {:.2}{}{} | {} | {} |",
                        p.id,
                        opt(p.score.script_share),
                        p.score.loop_score,
                        if p.score.leaked.is_empty() {
                            ""
                        } else {
                            " leak"
                        },
                        if p.score.empty {
                            " empty"
                        } else if p.score.echo {
                            " echo"
                        } else {
                            ""
                        },
                        one_line(&p.answer, 160),
                        p.reference_answer
                            .as_deref()
                            .map(|a| one_line(a, 160))
                            .unwrap_or_default()
                    );
                }
            }
        }
        md
    }
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in &self.checks {
            writeln!(
                f,
                "  {:4}  {:20} {:8} {:>10.4} {} {:<8.4} {}",
                if c.passed { "ok" } else { "FAIL" },
                c.name,
                format!("{:?}", c.kind).to_lowercase(),
                c.value,
                c.relation(),
                c.limit,
                c.set.as_deref().unwrap_or("all")
            )?;
        }
        let failures = self.failures().len();
        if failures == 0 {
            write!(
                f,
                "gate PASSED: {} checks in {:.1} s",
                self.checks.len(),
                self.seconds
            )
        } else {
            write!(
                f,
                "gate FAILED: {failures} of {} checks failed",
                self.checks.len()
            )
        }
    }
}
