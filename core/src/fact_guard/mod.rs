//! The fact guard: every sentence the model writes is checked against what it was given (the
//! question, the cards, the app's system prompt, the tools' results: the [`Evidence`]); a
//! sentence with a checkable fact found in none of them is *unsupported*.
//!
//! Checked facts ([`ClaimKind`]): numbers in any script's digits, phone numbers, years,
//! quoted phrases, and English names (capitalised words; one alone only inside a sentence).
//! A sentence without any is not checkable and passes. What happens to an unsupported sentence is the
//! [`FactPolicy`]: marked (the default), dropped, or the answer stops there.
//!
//! The guard works on the stream: [`FactGuard::push`] takes text as it comes and gives back
//! each sentence once it is whole ([`SentenceSplitter`]), so only the sentence in progress is
//! held back.
//!
//! ```
//! use vazhi_core::fact_guard::{Evidence, FactGuard};
//!
//! let evidence = Evidence::new(["1930 is the national cyber crime helpline.", "cyber fraud?"]);
//! let mut guard = FactGuard::new(evidence);
//! let mut sentences = guard.push("Call 1930 at once. Or call 1903 if it is busy. ");
//! sentences.extend(guard.finish());
//! assert!(sentences[0].unsupported.is_empty());
//! assert_eq!(sentences[1].unsupported[0].text, "1903");
//! ```
//!
//! It reads the surface of the text: a fact restated in other words ("one thousand three
//! hundred and thirty"), or an invented fact without digits, quotes or capitals, passes
//! unseen; a number the model computed correctly but the records do not hold is flagged.
//! Its precision and recall on labelled answers are measured by `core/tests/fact_guard.rs`.

mod claims;
mod sentences;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use claims::{claims, Claim, ClaimKind, Evidence};
pub use sentences::{SentenceSplitter, MAX_SENTENCE_BYTES};

/// What the assistant does with a sentence whose facts are not in the records or the question.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactPolicy {
    /// No check: the model's tokens stream as they come.
    Off,
    /// Send it with its `unsupported` flag set (the default).
    #[default]
    Mark,
    /// Leave it out of the answer (and of the conversation's history).
    Drop,
    /// End the answer before it: the model is stopped, the answer finishes `unsupported`.
    Stop,
}

impl FactPolicy {
    /// The snake_case name: `off`, `mark`, `drop`, `stop`.
    pub fn as_str(self) -> &'static str {
        match self {
            FactPolicy::Off => "off",
            FactPolicy::Mark => "mark",
            FactPolicy::Drop => "drop",
            FactPolicy::Stop => "stop",
        }
    }

    /// The policy named `name` (as [`as_str`](Self::as_str) writes it), if any.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Off, Self::Mark, Self::Drop, Self::Stop]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

impl fmt::Display for FactPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One whole sentence, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSentence {
    /// The sentence as written, with the spaces after it.
    pub text: String,
    /// Its claims found neither in the records nor in the question; empty: supported or not
    /// checkable.
    pub unsupported: Vec<Claim>,
}

/// The claims of `sentence` that `evidence` does not hold.
pub fn unsupported_claims(sentence: &str, evidence: &Evidence) -> Vec<Claim> {
    claims(sentence)
        .into_iter()
        .filter(|claim| !evidence.supports(claim))
        .collect()
}

/// Checks streamed text sentence by sentence against its evidence.
#[derive(Debug)]
pub struct FactGuard {
    evidence: Evidence,
    splitter: SentenceSplitter,
}

impl FactGuard {
    /// A guard over `evidence`.
    pub fn new(evidence: Evidence) -> Self {
        Self {
            evidence,
            splitter: SentenceSplitter::new(),
        }
    }

    /// Adds evidence found while answering (a tool's result).
    pub fn add_evidence(&mut self, text: &str) {
        self.evidence.add(text);
    }

    /// Adds model text; the sentences it completes, checked.
    pub fn push(&mut self, text: &str) -> Vec<CheckedSentence> {
        self.splitter
            .push(text)
            .into_iter()
            .map(|s| self.check(s))
            .collect()
    }

    /// The last sentence (without its end), checked; the guard is empty afterwards.
    pub fn finish(&mut self) -> Option<CheckedSentence> {
        self.splitter.finish().map(|s| self.check(s))
    }

    fn check(&self, text: String) -> CheckedSentence {
        let unsupported = unsupported_claims(&text, &self.evidence);
        if !unsupported.is_empty() {
            tracing::debug!(claims = unsupported.len(), "unsupported sentence");
        }
        CheckedSentence { text, unsupported }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_by_name() {
        for policy in [
            FactPolicy::Off,
            FactPolicy::Mark,
            FactPolicy::Drop,
            FactPolicy::Stop,
        ] {
            assert_eq!(FactPolicy::parse(policy.as_str()), Some(policy));
        }
        assert_eq!(FactPolicy::parse("warn"), None);
        assert_eq!(FactPolicy::default(), FactPolicy::Mark);
    }

    #[test]
    fn the_guard_checks_each_sentence_as_it_completes() {
        let evidence = Evidence::new(["Kural 5: the poet Thiruvalluvar", "explain kural 5"]);
        let mut guard = FactGuard::new(evidence);
        let mut out = Vec::new();
        for piece in [
            "Kural 5 is by Thiru",
            "valluvar. It was written",
            " in 1812 by Kamban Nadar.",
        ] {
            out.extend(guard.push(piece));
        }
        out.extend(guard.finish());
        assert_eq!(out.len(), 2);
        assert!(out[0].unsupported.is_empty());
        let kinds: Vec<_> = out[1].unsupported.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, vec![ClaimKind::Year, ClaimKind::Name]);
    }
}
