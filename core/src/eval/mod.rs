//! Measuring answers before changing them: a labelled question set ([`QuestionSet`]) run
//! through the same path as an answer without a model — the router, then the knowledge base —
//! scored like a search engine (recall@1, recall@3, MRR) and by route accuracy, overall, per
//! language and per phrasing tag ([`Report`]).
//!
//! Each question is asked of an [`Assistant`] that has no model, exactly as `vazhi ask
//! --no-model` asks it; the cards it sends, in order, are the ranking. A question counts toward
//! recall and MRR when its label names records, and toward route accuracy always.
//!
//! ```no_run
//! use vazhi_core::assistant::{Assistant, AssistantConfig};
//! use vazhi_core::eval::{evaluate, QuestionSet};
//! use vazhi_core::knowledge::KnowledgeBase;
//! use vazhi_core::router::Router;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let kb = KnowledgeBase::open("knowledge.db".as_ref())?;
//! let assistant = Assistant::new(kb, Router::builtin()?, None, AssistantConfig::default());
//! let set = QuestionSet::read("assets/eval/questions/dev.jsonl".as_ref())?;
//! let report = evaluate(&assistant, &set)?;
//! println!("recall@3 {:?}", report.overall.recall_at_3);
//! # Ok(())
//! # }
//! ```

mod calibrate;
pub mod facts;
mod report;
mod set;

pub use calibrate::{accuracy_at, calibrate, Calibration};
pub use report::{Figures, Outcome, Probe, Report};
pub use set::{Question, QuestionSet, RecordRef, SetError, MAX_SET_BYTES};

use crate::assistant::{Assistant, AssistantError, AssistantEvent};
use crate::knowledge::KnowledgeError;
use crate::router::Reason;
use crate::text::{normalize_query, truncate_query};

/// Why a set could not be evaluated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The set could not be read.
    #[error(transparent)]
    Set(#[from] SetError),
    /// Labels name records that no installed pack holds: a typo, or a pack is missing.
    #[error("the question set names {} record(s) that no installed pack holds: {}", .0.len(), .0.join(", "))]
    UnknownRecords(Vec<String>),
    /// The assistant has a model: evaluation measures the answer without one, and a model
    /// would only make it slow.
    #[error("evaluate with an assistant that has no model loaded")]
    ModelLoaded,
    /// The knowledge base failed.
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
    /// Answering a question failed.
    #[error("question {id}: {source}")]
    Answer {
        /// The question's id.
        id: String,
        /// What failed.
        source: AssistantError,
    },
}

/// Asks every question of `set` of `assistant` (which must have no model) and scores the
/// answers. Every record the labels name must exist in the assistant's knowledge base.
pub fn evaluate(assistant: &Assistant, set: &QuestionSet) -> Result<Report, EvalError> {
    let _span = tracing::info_span!("kb_eval", questions = set.questions.len()).entered();
    if assistant.has_model() {
        return Err(EvalError::ModelLoaded);
    }
    let kb = assistant.knowledge();
    let mut unknown = Vec::new();
    for record in set.record_refs() {
        if !kb.contains_record(record.pack.as_deref(), &record.id)? {
            unknown.push(record.to_string());
        }
    }
    if !unknown.is_empty() {
        return Err(EvalError::UnknownRecords(unknown));
    }
    let mut outcomes = Vec::with_capacity(set.questions.len());
    for question in &set.questions {
        let mut routed = None;
        let mut cards = Vec::new();
        for event in assistant.ask(&question.question) {
            match event {
                AssistantEvent::Routed { route, reason } => routed = Some((route, reason)),
                AssistantEvent::Card(card) => cards.push(card),
                AssistantEvent::Token { .. }
                | AssistantEvent::Reasoning(_)
                | AssistantEvent::ToolCall { .. }
                | AssistantEvent::Done(_) => {}
                AssistantEvent::Failed(source) => {
                    return Err(EvalError::Answer {
                        id: question.id.clone(),
                        source,
                    })
                }
            }
        }
        let (route, reason) = routed.ok_or_else(|| EvalError::Answer {
            id: question.id.clone(),
            source: AssistantError::Engine(crate::engine::EngineError::Shutdown),
        })?;
        // What the router's probe saw, so the threshold can be calibrated; a rule's decision
        // does not depend on it.
        let probe = match reason {
            Reason::Rule { .. } | Reason::Empty => None,
            _ => {
                let corrected = kb.correct_spelling(&question.question)?;
                let normalized = normalize_query(truncate_query(&corrected));
                let (content, explain) = assistant.router().strip_explain_words(&normalized);
                let found = if content.is_empty() {
                    None
                } else {
                    kb.retrieve(&content, 1, None)?.evidence()
                };
                Some(Probe {
                    confidence: found.as_ref().map_or(0.0, |e| e.confidence),
                    key: found.as_ref().is_some_and(|e| e.key.is_some()),
                    named_pack: found.is_some_and(|e| e.named_pack.is_some()),
                    explain,
                })
            }
        };
        outcomes.push(Outcome::new(question, route, &reason, &cards, probe));
    }
    Ok(Report::new(assistant.config().search_cards, outcomes))
}

/// A card with only a pack and an id, for the tests of this module.
#[cfg(test)]
pub(crate) fn test_card(pack: &str, id: &str) -> crate::knowledge::Card {
    crate::knowledge::Card {
        pack: pack.into(),
        pack_title: String::new(),
        pack_version: "1".into(),
        licence: String::new(),
        id: id.into(),
        title: String::new(),
        body: String::new(),
        lang: String::new(),
        tags: Vec::new(),
        source: String::new(),
    }
}
