//! Compares two models' next-token distributions on the same tokens: KL divergence, top-1
//! agreement and each model's log-likelihood of the actual text.
//!
//! These are the measures llama.cpp's `llama-perplexity --kl-divergence` reports, computed
//! here over the logits of [`Engine::logits`](vazhi_core::engine::Engine::logits). They
//! hold for small models too — a 135M model writes poor Tamil in F32 already, but its
//! quantized copy must still predict what the F32 one predicts.

use serde::Serialize;
use vazhi_core::engine::TokenLogits;

/// Running sums over positions; merge several texts by [`add`](Divergence::add)ing them.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Divergence {
    /// Positions compared.
    pub positions: usize,
    /// Σ KL(reference ‖ candidate), in nats.
    pub kl_sum: f64,
    /// Largest KL at one position.
    pub kl_max: f64,
    /// Positions where both models' most likely token is the same.
    pub top1_same: usize,
    /// Σ −log p_reference(actual next token).
    pub reference_nll: f64,
    /// Σ −log p_candidate(actual next token).
    pub candidate_nll: f64,
}

impl Divergence {
    /// Mean KL divergence per position.
    pub fn mean_kl(&self) -> f64 {
        self.kl_sum / self.positions.max(1) as f64
    }

    /// Share of positions with the same top-1 token.
    pub fn top1_agreement(&self) -> f64 {
        self.top1_same as f64 / self.positions.max(1) as f64
    }

    /// The reference's perplexity on the texts.
    pub fn reference_perplexity(&self) -> f64 {
        (self.reference_nll / self.positions.max(1) as f64).exp()
    }

    /// The candidate's perplexity on the texts.
    pub fn candidate_perplexity(&self) -> f64 {
        (self.candidate_nll / self.positions.max(1) as f64).exp()
    }

    /// Candidate perplexity over reference perplexity.
    pub fn perplexity_ratio(&self) -> f64 {
        self.candidate_perplexity() / self.reference_perplexity()
    }

    /// Adds another comparison's sums to this one.
    pub fn add(&mut self, other: &Divergence) {
        self.positions += other.positions;
        self.kl_sum += other.kl_sum;
        self.kl_max = self.kl_max.max(other.kl_max);
        self.top1_same += other.top1_same;
        self.reference_nll += other.reference_nll;
        self.candidate_nll += other.candidate_nll;
    }
}

/// Why two logit sets cannot be compared.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CompareError {
    /// The models have different vocabularies.
    #[error("the models' vocabularies differ ({reference} vs {candidate} tokens): compare a model only with its own reference")]
    Vocabulary {
        /// Reference vocabulary size.
        reference: usize,
        /// Candidate vocabulary size.
        candidate: usize,
    },
    /// The logits are not for the same tokens.
    #[error("the logits were computed for different token sequences")]
    Tokens,
}

/// Compares `candidate` with `reference`, position by position.
pub fn compare(
    reference: &TokenLogits,
    candidate: &TokenLogits,
) -> Result<Divergence, CompareError> {
    if reference.n_vocab != candidate.n_vocab {
        return Err(CompareError::Vocabulary {
            reference: reference.n_vocab,
            candidate: candidate.n_vocab,
        });
    }
    if reference.tokens != candidate.tokens
        || reference.positions() != candidate.positions()
        || reference.tokens.len() != reference.positions() + 1
        || reference.logits.len() != reference.positions() * reference.n_vocab
        || candidate.logits.len() != candidate.positions() * candidate.n_vocab
    {
        return Err(CompareError::Tokens);
    }
    let mut d = Divergence::default();
    let mut p_ref = Vec::with_capacity(reference.n_vocab);
    let mut p_cand = Vec::with_capacity(reference.n_vocab);
    for i in 0..reference.positions() {
        let (Some(r), Some(c)) = (reference.row(i), candidate.row(i)) else {
            return Err(CompareError::Tokens);
        };
        log_softmax(r, &mut p_ref);
        log_softmax(c, &mut p_cand);
        let kl: f64 = p_ref
            .iter()
            .zip(&p_cand)
            .map(|(&lr, &lc)| lr.exp() * (lr - lc))
            .sum::<f64>()
            .max(0.0);
        d.positions += 1;
        d.kl_sum += kl;
        d.kl_max = d.kl_max.max(kl);
        if argmax(r) == argmax(c) {
            d.top1_same += 1;
        }
        let next = reference
            .tokens
            .get(i + 1)
            .and_then(|&t| usize::try_from(t).ok())
            .ok_or(CompareError::Tokens)?;
        d.reference_nll -= p_ref.get(next).copied().unwrap_or(f64::NEG_INFINITY);
        d.candidate_nll -= p_cand.get(next).copied().unwrap_or(f64::NEG_INFINITY);
    }
    Ok(d)
}

fn log_softmax(logits: &[f32], out: &mut Vec<f64>) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let log_sum = sum.ln() + max;
    out.clear();
    out.extend(logits.iter().map(|&l| l as f64 - log_sum));
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(tokens: Vec<i32>, rows: &[[f32; 3]]) -> TokenLogits {
        TokenLogits {
            tokens,
            n_vocab: 3,
            logits: rows.iter().flatten().copied().collect(),
        }
    }

    #[test]
    fn identical_models_agree_completely() {
        let a = logits(vec![0, 1, 2], &[[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]]);
        let d = compare(&a, &a).expect("compare");
        assert_eq!(d.positions, 2);
        assert!(d.mean_kl().abs() < 1e-12);
        assert_eq!(d.top1_agreement(), 1.0);
        assert!((d.perplexity_ratio() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn kl_matches_a_hand_computation() {
        // Reference: uniform over 3 tokens. Candidate: softmax(ln 2, 0, 0) = (1/2, 1/4, 1/4).
        let r = logits(vec![0, 0], &[[0.0, 0.0, 0.0]]);
        let c = logits(vec![0, 0], &[[2f32.ln(), 0.0, 0.0]]);
        let d = compare(&r, &c).expect("compare");
        let third: f64 = 1.0 / 3.0;
        let expected = third * ((third / 0.5).ln() + 2.0 * (third / 0.25).ln());
        assert!(
            (d.mean_kl() - expected).abs() < 1e-6,
            "{} vs {expected}",
            d.mean_kl()
        );
        assert!((d.reference_perplexity() - 3.0).abs() < 1e-9);
        assert!(
            (d.candidate_perplexity() - 2.0).abs() < 1e-6,
            "{}",
            d.candidate_perplexity()
        );
        assert_eq!(
            d.top1_agreement(),
            1.0,
            "ties resolve to the first token in both"
        );
    }

    #[test]
    fn mismatched_inputs_are_refused() {
        let a = logits(vec![0, 1], &[[0.0, 1.0, 2.0]]);
        let b = logits(vec![0, 2], &[[0.0, 1.0, 2.0]]);
        assert_eq!(compare(&a, &b), Err(CompareError::Tokens));
        let c = TokenLogits {
            tokens: vec![0, 1],
            n_vocab: 4,
            logits: vec![0.0; 4],
        };
        assert!(matches!(
            compare(&a, &c),
            Err(CompareError::Vocabulary { .. })
        ));
    }
}
