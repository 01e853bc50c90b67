//! Measuring the fact guard on hand-labelled answers: each sentence of a real model answer is
//! labelled `supported`, `unsupported` or `none` (nothing checkable) by a person reading it
//! against the cards; the guard's verdicts are scored with "unsupported" as the positive
//! class ([`score_guard`]).
//!
//! The labels judge meaning, not the guard's rules: a sentence that invents a place with one
//! capitalised word, or a number spelled out, is `unsupported` even though the guard cannot
//! see it — recall says how much of what people would flag the guard flags.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fact_guard::{unsupported_claims, Evidence};

/// A person's label for one sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactLabel {
    /// Its checkable facts are all in the cards or the question.
    Supported,
    /// It states a checkable fact (number, date, name, quote, title, place) that the cards
    /// and the question do not give.
    Unsupported,
    /// It states nothing checkable (advice, a paraphrase, a greeting).
    None,
}

/// One card an answer was given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelledCard {
    /// Record id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
}

/// One sentence of an answer and its label (`None` until labelled).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelledSentence {
    /// The sentence as the model wrote it.
    pub text: String,
    /// The label.
    pub label: Option<FactLabel>,
}

/// One real answer of a model, sentence by sentence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelledAnswer {
    /// A unique id.
    pub id: String,
    /// The model that wrote it.
    pub model: String,
    /// The question's language (`en`, `ta`).
    pub lang: String,
    /// `dev` (the guard's rules may be tuned on it) or `test` (reported, never tuned on).
    pub split: String,
    /// The question.
    pub question: String,
    /// The system prompt the model answered under (the app's own words count as evidence).
    pub system_prompt: String,
    /// The cards the answer was grounded on.
    pub cards: Vec<LabelledCard>,
    /// The answer's sentences.
    pub sentences: Vec<LabelledSentence>,
}

impl LabelledAnswer {
    /// What the guard checks this answer's sentences against.
    pub fn evidence(&self) -> Evidence {
        let mut evidence = Evidence::new(
            [self.question.as_str(), &self.system_prompt]
                .into_iter()
                .chain(self.cards.iter().flat_map(|c| [c.title.as_str(), &c.body])),
        );
        evidence.add_record_numbers(self.cards.len());
        evidence
    }
}

/// Reads a JSON Lines file of labelled answers.
pub fn read_labelled(path: &Path) -> Result<Vec<LabelledAnswer>, std::io::Error> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} line {}: {e}", path.display(), i + 1),
                )
            })
        })
        .collect()
}

/// Counts of the guard's verdicts against the labels; "unsupported" is the positive class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GuardCounts {
    /// Flagged and labelled unsupported.
    pub true_positives: u32,
    /// Flagged but labelled supported or none.
    pub false_positives: u32,
    /// Labelled unsupported but not flagged.
    pub false_negatives: u32,
    /// Neither flagged nor labelled unsupported.
    pub true_negatives: u32,
}

impl GuardCounts {
    /// Flagged sentences that people also flag; `None` when nothing was flagged.
    pub fn precision(&self) -> Option<f64> {
        let flagged = self.true_positives + self.false_positives;
        (flagged > 0).then(|| f64::from(self.true_positives) / f64::from(flagged))
    }

    /// Sentences people flag that the guard flags too; `None` when none is labelled so.
    pub fn recall(&self) -> Option<f64> {
        let wanted = self.true_positives + self.false_negatives;
        (wanted > 0).then(|| f64::from(self.true_positives) / f64::from(wanted))
    }

    /// All sentences counted.
    pub fn sentences(&self) -> u32 {
        self.true_positives + self.false_positives + self.false_negatives + self.true_negatives
    }

    fn add(&mut self, flagged: bool, unsupported: bool) {
        match (flagged, unsupported) {
            (true, true) => self.true_positives += 1,
            (true, false) => self.false_positives += 1,
            (false, true) => self.false_negatives += 1,
            (false, false) => self.true_negatives += 1,
        }
    }
}

/// The guard's scores on labelled answers: overall, per model and per language.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GuardScores {
    /// All sentences.
    pub overall: GuardCounts,
    /// Per model.
    pub by_model: BTreeMap<String, GuardCounts>,
    /// Per language.
    pub by_lang: BTreeMap<String, GuardCounts>,
    /// Per split (`dev`, `test`).
    pub by_split: BTreeMap<String, GuardCounts>,
    /// Sentences without a label (not counted).
    pub unlabelled: u32,
}

/// Runs the guard over every labelled sentence of `answers` and scores it.
pub fn score_guard(answers: &[LabelledAnswer]) -> GuardScores {
    let mut scores = GuardScores::default();
    for answer in answers {
        let evidence = answer.evidence();
        for sentence in &answer.sentences {
            let Some(label) = sentence.label else {
                scores.unlabelled += 1;
                continue;
            };
            let flagged = !unsupported_claims(&sentence.text, &evidence).is_empty();
            let unsupported = label == FactLabel::Unsupported;
            scores.overall.add(flagged, unsupported);
            scores
                .by_model
                .entry(answer.model.clone())
                .or_default()
                .add(flagged, unsupported);
            scores
                .by_lang
                .entry(answer.lang.clone())
                .or_default()
                .add(flagged, unsupported);
            scores
                .by_split
                .entry(answer.split.clone())
                .or_default()
                .add(flagged, unsupported);
        }
    }
    scores
}
