//! What an evaluation found: one [`Outcome`] per question and the [`Figures`] they add up to.

use std::collections::BTreeMap;

use serde::Serialize;

use super::set::Question;
use crate::knowledge::Card;
use crate::router::{Reason, Route};

/// How one question was answered, against its label.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The question's id in the set.
    pub id: String,
    /// The question.
    pub question: String,
    /// Its language.
    pub lang: String,
    /// Its phrasing tags.
    pub tags: Vec<String>,
    /// The routes its label accepts.
    pub expected_routes: Vec<Route>,
    /// The route taken.
    pub route: Route,
    /// Why the router took it.
    pub reason: String,
    /// The records its label accepts (`pack/id` or `id`).
    pub expected_ids: Vec<String>,
    /// The cards the answer showed, in order, as `pack/id`.
    pub cards: Vec<String>,
    /// The 1-based position of the first accepted card, if any was shown.
    pub rank: Option<usize>,
    /// What the router's probe saw, when no rule decided (for calibrating the threshold).
    pub probe: Option<Probe>,
}

/// The router's view of a question no rule matched.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Probe {
    /// The best record's confidence (0 when search found nothing).
    pub confidence: f64,
    /// The whole question is a key of the best record.
    pub key: bool,
    /// The question names a pack: answered from it whatever the threshold.
    pub named_pack: bool,
    /// The question holds an explain word.
    pub explain: bool,
}

impl Probe {
    /// The route the router takes for this question at `threshold`.
    pub fn route_at(&self, threshold: f64) -> Route {
        let found = self.named_pack || self.confidence >= threshold;
        match (self.key, found, self.explain) {
            (true, _, false) => Route::Lookup,
            (false, true, false) => Route::Search,
            (true, _, true) | (false, true, true) => Route::Hybrid,
            (false, false, _) => Route::Generate,
        }
    }
}

impl Outcome {
    /// Scores one answer: the route it took and the cards it showed.
    pub fn new(
        question: &Question,
        route: Route,
        reason: &Reason,
        cards: &[Card],
        probe: Option<Probe>,
    ) -> Self {
        let rank = cards
            .iter()
            .position(|card| question.ids.iter().any(|r| r.matches(card)))
            .map(|i| i + 1);
        Self {
            id: question.id.clone(),
            question: question.question.clone(),
            lang: question.lang.clone(),
            tags: question.tags.clone(),
            expected_routes: question.routes.clone(),
            route,
            reason: reason.to_string(),
            expected_ids: question.ids.iter().map(ToString::to_string).collect(),
            cards: cards
                .iter()
                .map(|c| format!("{}/{}", c.pack, c.id))
                .collect(),
            rank,
            probe,
        }
    }

    /// Whether the label names records (so the question counts toward recall and MRR).
    pub fn labelled(&self) -> bool {
        !self.expected_ids.is_empty()
    }

    /// Whether the route taken is one the label accepts.
    pub fn route_correct(&self) -> bool {
        self.expected_routes.contains(&self.route)
    }

    /// Whether an accepted record was among the first `k` cards.
    pub fn found_within(&self, k: usize) -> bool {
        self.rank.is_some_and(|r| r <= k)
    }

    /// Whether this question counts as missed: the wrong route, or (when labelled) no accepted
    /// record among the first three cards.
    pub fn missed(&self) -> bool {
        !self.route_correct() || (self.labelled() && !self.found_within(3))
    }
}

/// The scores of a group of questions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Questions in the group.
    pub questions: usize,
    /// Of those, questions whose label names records.
    pub labelled: usize,
    /// Share of labelled questions whose first card is an accepted record; `None` when none
    /// is labelled.
    pub recall_at_1: Option<f64>,
    /// Share of labelled questions with an accepted record among the first three cards.
    pub recall_at_3: Option<f64>,
    /// Mean reciprocal rank of the first accepted card over labelled questions (0 when none
    /// was shown), over the cards the answer shows.
    pub mrr: Option<f64>,
    /// Share of all questions routed as their label accepts.
    pub route_accuracy: f64,
}

impl Figures {
    /// The figures of `outcomes`.
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Self {
        let (mut questions, mut labelled, mut at1, mut at3, mut rr, mut routed) =
            (0usize, 0usize, 0usize, 0usize, 0.0f64, 0usize);
        for o in outcomes {
            questions += 1;
            routed += usize::from(o.route_correct());
            if o.labelled() {
                labelled += 1;
                at1 += usize::from(o.found_within(1));
                at3 += usize::from(o.found_within(3));
                rr += o.rank.map_or(0.0, |r| 1.0 / r as f64);
            }
        }
        let share = |n: usize, of: usize| (of > 0).then(|| n as f64 / of as f64);
        Self {
            questions,
            labelled,
            recall_at_1: share(at1, labelled),
            recall_at_3: share(at3, labelled),
            mrr: (labelled > 0).then(|| rr / labelled as f64),
            route_accuracy: share(routed, questions).unwrap_or(0.0),
        }
    }
}

/// A whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Questions asked.
    pub questions: usize,
    /// The most cards an answer shows (the assistant's `search_cards`; Hybrid answers show
    /// `grounding_cards`).
    pub cards_per_answer: usize,
    /// All questions.
    pub overall: Figures,
    /// Per language (`lang`).
    pub by_lang: BTreeMap<String, Figures>,
    /// Per phrasing tag; a question counts under each of its tags.
    pub by_tag: BTreeMap<String, Figures>,
    /// Every question's outcome, in set order.
    #[serde(skip)]
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// Adds up `outcomes`.
    pub fn new(cards_per_answer: usize, outcomes: Vec<Outcome>) -> Self {
        let mut langs: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
        let mut tags: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
        for o in &outcomes {
            langs.entry(&o.lang).or_default().push(o);
            for tag in &o.tags {
                tags.entry(tag).or_default().push(o);
            }
        }
        let figures = |groups: BTreeMap<&str, Vec<&Outcome>>| {
            groups
                .into_iter()
                .map(|(name, group)| (name.to_owned(), Figures::of(group)))
                .collect()
        };
        Self {
            questions: outcomes.len(),
            cards_per_answer,
            overall: Figures::of(&outcomes),
            by_lang: figures(langs),
            by_tag: figures(tags),
            outcomes,
        }
    }

    /// The questions missed (see [`Outcome::missed`]), in set order.
    pub fn missed(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| o.missed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{test_card, QuestionSet};

    #[test]
    fn figures_count_ranks_and_routes() {
        let set = QuestionSet::parse(
            "{\"question\":\"a\",\"lang\":\"en\",\"route\":\"search\",\"ids\":[\"p/x\"],\"tags\":[\"t\"]}\n\
             {\"question\":\"b\",\"lang\":\"en\",\"route\":\"search\",\"ids\":[\"p/x\",\"y\"]}\n\
             {\"question\":\"c\",\"lang\":\"ta\",\"route\":[\"lookup\",\"search\"],\"ids\":[\"p/x\"]}\n\
             {\"question\":\"d\",\"lang\":\"ta\",\"route\":\"generate\",\"ids\":[]}\n",
        )
        .unwrap();
        let q = &set.questions;
        let reason = Reason::NoMatch;
        let outcomes = vec![
            // First card right, right route.
            Outcome::new(
                &q[0],
                Route::Search,
                &reason,
                &[test_card("p", "x"), test_card("p", "z")],
                None,
            ),
            // Third card right (the bare id matches), wrong route.
            Outcome::new(
                &q[1],
                Route::Hybrid,
                &reason,
                &[
                    test_card("p", "z"),
                    test_card("p", "w"),
                    test_card("p", "y"),
                ],
                None,
            ),
            // Fourth card right: outside recall@3, but counted in MRR.
            Outcome::new(
                &q[2],
                Route::Lookup,
                &reason,
                &[
                    test_card("p", "a"),
                    test_card("p", "b"),
                    test_card("p", "c"),
                    test_card("p", "x"),
                ],
                None,
            ),
            // Unlabelled: only its route counts.
            Outcome::new(&q[3], Route::Search, &reason, &[test_card("p", "x")], None),
        ];
        assert_eq!(outcomes[1].rank, Some(3));
        let report = Report::new(4, outcomes);
        let all = &report.overall;
        assert_eq!((all.questions, all.labelled), (4, 3));
        assert_eq!(all.recall_at_1, Some(1.0 / 3.0));
        assert_eq!(all.recall_at_3, Some(2.0 / 3.0));
        let mrr = all.mrr.unwrap();
        assert!(
            (mrr - (1.0 + 1.0 / 3.0 + 0.25) / 3.0).abs() < 1e-12,
            "{mrr}"
        );
        assert_eq!(all.route_accuracy, 0.5);
        let ta = &report.by_lang["ta"];
        assert_eq!(
            (ta.questions, ta.labelled, ta.recall_at_3),
            (2, 1, Some(0.0))
        );
        assert_eq!(ta.route_accuracy, 0.5);
        assert_eq!(report.by_tag["t"].recall_at_1, Some(1.0));
        let missed: Vec<_> = report.missed().map(|o| o.question.as_str()).collect();
        assert_eq!(missed, ["b", "c", "d"]);
    }

    #[test]
    fn a_group_without_labels_has_no_recall() {
        let f = Figures::of(&[]);
        assert_eq!((f.questions, f.recall_at_1, f.mrr), (0, None, None));
        assert_eq!(f.route_accuracy, 0.0);
    }
}
