//! The gate: thresholds turn measurements into a pass or a fail, one named check at a time.
//!
//! Relative checks compare the candidate with its reference (KL divergence, top-1 agreement,
//! perplexity ratio, and answers' script share, loops and leaks against the reference's own
//! answers): they hold for models of every size. Absolute checks come from each eval set's
//! own thresholds.

use serde::{Deserialize, Serialize};

/// Thresholds for the relative checks (a candidate against its reference).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GateThresholds {
    /// Largest mean KL divergence per token, in nats.
    pub max_mean_kl: f64,
    /// Least share of positions where both models' top token agrees.
    pub min_top1_agreement: f64,
    /// Largest candidate/reference perplexity ratio on the held-out texts.
    pub max_perplexity_ratio: f64,
    /// How far the candidate's mean script share may fall below the reference's.
    pub max_script_share_drop: f64,
    /// How many more answers (as a share of prompts) may loop than the reference's.
    pub max_extra_loop_share: f64,
    /// How many more answers (as a share of prompts) may leak template tokens, be empty or
    /// merely repeat the prompt than the reference's.
    pub max_extra_broken_share: f64,
}

impl Default for GateThresholds {
    /// Defaults measured on the test models (docs/decisions/0009-model-gate.md): a sound
    /// Q4_K_M stays well inside them; a model with one damaged layer does not.
    fn default() -> Self {
        Self {
            max_mean_kl: 0.10,
            min_top1_agreement: 0.75,
            max_perplexity_ratio: 1.12,
            max_script_share_drop: 0.10,
            max_extra_loop_share: 0.20,
            max_extra_broken_share: 0.10,
        }
    }
}

/// Whether a check compares with the reference or with the eval set's own bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Candidate against reference.
    Relative,
    /// Candidate against the eval set's threshold.
    Absolute,
}

/// One named check and its outcome.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    /// The eval set it belongs to (`None`: all sets together).
    pub set: Option<String>,
    /// What is measured, e.g. `mean_kl`.
    pub name: &'static str,
    /// Relative or absolute.
    pub kind: CheckKind,
    /// The measured value.
    pub value: f64,
    /// The threshold.
    pub limit: f64,
    /// `true` when the value must be at most the limit, `false` for at least.
    pub at_most: bool,
    /// Whether the value is within the limit.
    pub passed: bool,
}

impl Check {
    /// A check that `value` is at most `limit`.
    pub fn at_most(
        set: Option<&str>,
        name: &'static str,
        kind: CheckKind,
        value: f64,
        limit: f64,
    ) -> Check {
        Check {
            set: set.map(str::to_owned),
            name,
            kind,
            value,
            limit,
            at_most: true,
            passed: value.is_finite() && value <= limit,
        }
    }

    /// A check that `value` is at least `limit`.
    pub fn at_least(
        set: Option<&str>,
        name: &'static str,
        kind: CheckKind,
        value: f64,
        limit: f64,
    ) -> Check {
        Check {
            set: set.map(str::to_owned),
            name,
            kind,
            value,
            limit,
            at_most: false,
            passed: value.is_finite() && value >= limit,
        }
    }

    /// `≤` or `≥`.
    pub fn relation(&self) -> &'static str {
        if self.at_most {
            "≤"
        } else {
            "≥"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_compare_and_refuse_nan() {
        assert!(Check::at_most(None, "kl", CheckKind::Relative, 0.05, 0.1).passed);
        assert!(!Check::at_most(None, "kl", CheckKind::Relative, 0.2, 0.1).passed);
        assert!(!Check::at_most(None, "kl", CheckKind::Relative, f64::NAN, 0.1).passed);
        assert!(Check::at_least(Some("ta"), "top1", CheckKind::Relative, 0.9, 0.85).passed);
        assert!(!Check::at_least(Some("ta"), "top1", CheckKind::Relative, 0.8, 0.85).passed);
    }

    #[test]
    fn thresholds_parse_partially() {
        let t: GateThresholds = serde_json::from_str(r#"{"max_mean_kl": 0.05}"#).expect("parse");
        assert_eq!(t.max_mean_kl, 0.05);
        assert_eq!(
            t.min_top1_agreement,
            GateThresholds::default().min_top1_agreement
        );
        assert!(serde_json::from_str::<GateThresholds>(r#"{"max_kl": 1}"#).is_err());
    }
}
