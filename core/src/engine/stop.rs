//! Stop strings over a text stream.
//!
//! Generation stops when the produced text contains one of the caller's stop strings; the stop
//! string itself is never shown. Text that could still turn out to be the start of a stop
//! string is held back until it is decided, so the caller never sees text that is later taken
//! back.

/// Filters streamed text against a set of stop strings.
#[derive(Debug)]
pub struct StopFilter {
    stops: Vec<String>,
    held: String,
}

/// What the filter decided for one chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// Text that is safe to show; generation goes on.
    Continue(String),
    /// A stop string was found: show this text, then stop.
    Stopped(String),
}

impl StopFilter {
    /// A filter for `stops`; empty strings are ignored.
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Feeds a chunk of text.
    pub fn push(&mut self, text: &str) -> StopOutcome {
        if self.stops.is_empty() {
            return StopOutcome::Continue(text.to_owned());
        }
        self.held.push_str(text);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min();
        if let Some(at) = first_stop {
            let shown = self.held[..at].to_owned();
            self.held.clear();
            return StopOutcome::Stopped(shown);
        }
        // Keep the longest suffix of `held` that is a proper prefix of some stop string.
        let keep = self.longest_partial_suffix();
        let cut = self.held.len() - keep;
        let shown = self.held[..cut].to_owned();
        self.held.drain(..cut);
        StopOutcome::Continue(shown)
    }

    /// Ends the stream: text held back as a possible stop prefix is released.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    fn longest_partial_suffix(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            let max = stop.len().saturating_sub(1).min(self.held.len());
            for len in (best + 1..=max).rev() {
                let start = self.held.len() - len;
                if self.held.is_char_boundary(start) && stop.starts_with(&self.held[start..]) {
                    best = len;
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(stops: &[&str]) -> StopFilter {
        StopFilter::new(&stops.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn stop_across_chunks_is_hidden() {
        let mut f = filter(&["<|end|>"]);
        assert_eq!(f.push("Hello <|"), StopOutcome::Continue("Hello ".into()));
        assert_eq!(f.push("en"), StopOutcome::Continue(String::new()));
        assert_eq!(f.push("d|> tail"), StopOutcome::Stopped(String::new()));
    }

    #[test]
    fn false_alarm_is_released() {
        let mut f = filter(&["STOP"]);
        assert_eq!(f.push("ST"), StopOutcome::Continue(String::new()));
        assert_eq!(f.push("AR"), StopOutcome::Continue("STAR".into()));
        assert_eq!(f.push("ST"), StopOutcome::Continue(String::new()));
        assert_eq!(f.finish(), "ST");
    }

    #[test]
    fn earliest_of_several_stops_wins_and_multibyte_is_safe() {
        let mut f = filter(&["முடிவு", "\n\n"]);
        assert_eq!(
            f.push("வணக்கம்\n\nமுடிவு"),
            StopOutcome::Stopped("வணக்கம்".into())
        );
        let mut g = filter(&["முடிவு"]);
        assert_eq!(g.push("அ மு"), StopOutcome::Continue("அ ".into()));
    }

    #[test]
    fn no_stops_is_passthrough() {
        let mut f = filter(&[]);
        assert_eq!(f.push("x"), StopOutcome::Continue("x".into()));
    }
}
