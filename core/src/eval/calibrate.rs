//! Calibrating the router's search threshold on a labelled set: the route accuracy each
//! threshold would give, and the threshold in the middle of the best plateau.

use serde::Serialize;

use super::report::Outcome;

/// Route accuracy as a function of the search threshold.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// The chosen threshold: the middle of the widest run of thresholds with the best
    /// accuracy.
    pub threshold: f64,
    /// Route accuracy at that threshold.
    pub route_accuracy: f64,
    /// `(threshold, route accuracy)` from 0 to 1 in steps of 0.01.
    pub curve: Vec<(f64, f64)>,
}

/// Route accuracy of `outcomes` at `threshold`: questions a rule decided keep their route;
/// the others take the route their probe gives at that threshold.
pub fn accuracy_at<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>, threshold: f64) -> f64 {
    let (mut right, mut all) = (0usize, 0usize);
    for o in outcomes {
        let route = o.probe.map_or(o.route, |p| p.route_at(threshold));
        right += usize::from(o.expected_routes.contains(&route));
        all += 1;
    }
    if all == 0 {
        0.0
    } else {
        right as f64 / all as f64
    }
}

/// Sweeps the threshold over `outcomes`.
pub fn calibrate(outcomes: &[Outcome]) -> Calibration {
    let curve: Vec<(f64, f64)> = (0..=100)
        .map(|i| {
            let t = f64::from(i) / 100.0;
            (t, accuracy_at(outcomes, t))
        })
        .collect();
    let best = curve.iter().map(|p| p.1).fold(0.0f64, f64::max);
    // The widest run of best thresholds; its middle leaves the most room either side.
    let (mut run, mut widest) = (None::<(usize, usize)>, (0usize, 0usize));
    for (i, (_, acc)) in curve.iter().enumerate() {
        if (*acc - best).abs() < 1e-12 {
            let start = run.map_or(i, |(s, _)| s);
            run = Some((start, i));
            if i - start >= widest.1 - widest.0 {
                widest = (start, i);
            }
        } else {
            run = None;
        }
    }
    let middle = (widest.0 + widest.1) / 2;
    Calibration {
        threshold: curve[middle].0,
        route_accuracy: curve[middle].1,
        curve,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{Probe, QuestionSet};
    use crate::router::{Reason, Route};

    #[test]
    fn the_threshold_lands_between_the_questions_it_must_separate() {
        let set = QuestionSet::parse(
            "{\"question\":\"a\",\"lang\":\"en\",\"route\":\"search\",\"ids\":[]}\n\
             {\"question\":\"b\",\"lang\":\"en\",\"route\":\"generate\",\"ids\":[]}\n\
             {\"question\":\"c\",\"lang\":\"en\",\"route\":\"hybrid\",\"ids\":[]}\n",
        )
        .unwrap();
        let probe = |confidence, explain| {
            Some(Probe {
                confidence,
                key: false,
                named_pack: false,
                explain,
            })
        };
        let q = &set.questions;
        let outcomes = [
            Outcome::new(
                &q[0],
                Route::Search,
                &Reason::NoMatch,
                &[],
                probe(0.8, false),
            ),
            Outcome::new(
                &q[1],
                Route::Search,
                &Reason::NoMatch,
                &[],
                probe(0.4, false),
            ),
            Outcome::new(
                &q[2],
                Route::Hybrid,
                &Reason::NoMatch,
                &[],
                probe(0.9, true),
            ),
        ];
        let c = calibrate(&outcomes);
        assert_eq!(c.route_accuracy, 1.0);
        // Every threshold in (0.4, 0.8] separates them; the middle is chosen.
        assert!((c.threshold - 0.6).abs() < 0.011, "{}", c.threshold);
        assert_eq!(accuracy_at(&outcomes, 0.3), 2.0 / 3.0);
        assert_eq!(accuracy_at(&outcomes, 0.95), 1.0 / 3.0);
    }
}
