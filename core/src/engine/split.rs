//! Splits a streamed answer into what the user sees, the model's reasoning (`<think>…</think>`)
//! and tool calls (`<tool_call>…</tool_call>` and the like), as the text arrives.
//!
//! Markers may be split across tokens, so text that could be the start of one is held back
//! until the next piece settles it (never more than the longest marker). Inside a tool call a
//! reasoning tag is part of the call (a JSON string may hold `<think>`); inside reasoning a
//! tool marker is part of the reasoning. A block left open when the answer ends keeps its kind.

/// What a piece of the answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// Text for the user.
    Text,
    /// The model's reasoning, between reasoning tags (tags not included).
    Reasoning,
    /// A tool call, with its opening and closing markers, as the format's parser reads it.
    Call,
}

/// One piece of output, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Its kind.
    pub kind: SegmentKind,
    /// Its text.
    pub text: String,
}

/// The markers a [`Splitter`] looks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Markers {
    /// Opening and closing tag of a reasoning block, e.g. `<think>` / `</think>`.
    pub reasoning: Option<(String, String)>,
    /// How a tool call opens and closes; `None`: no tools.
    pub call: Option<CallMarkers>,
}

/// How a tool call is delimited in a format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallMarkers {
    /// Texts that open a call (any one of them).
    pub open: Vec<String>,
    /// The text that closes one; `None`: a call runs to the end of the answer.
    pub close: Option<String>,
    /// Whether a call may only open at the start of the answer (leading whitespace aside):
    /// formats whose call is a bare JSON object.
    pub only_at_start: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    Reasoning,
    Call,
}

/// The streaming splitter of one answer.
#[derive(Debug)]
pub struct Splitter {
    markers: Markers,
    state: State,
    /// Text not yet given out: it may be the start of a marker.
    pending: String,
    /// Whether any non-whitespace text has been given out (for `only_at_start` calls).
    started: bool,
    /// The open call so far (given out whole when it closes or the answer ends).
    call: String,
}

impl Splitter {
    /// A splitter for `markers`; `in_reasoning` when the prompt already opened a reasoning
    /// block (templates that end their generation prompt with `<think>`).
    pub fn new(markers: Markers, in_reasoning: bool) -> Self {
        let state = if in_reasoning && markers.reasoning.is_some() {
            State::Reasoning
        } else {
            State::Text
        };
        Self {
            markers,
            state,
            pending: String::new(),
            started: false,
            call: String::new(),
        }
    }

    /// Whether a tool call is open (started and not closed).
    pub fn in_call(&self) -> bool {
        self.state == State::Call
    }

    /// Feeds the next piece of text; returns what is settled.
    pub fn push(&mut self, piece: &str) -> Vec<Segment> {
        self.pending.push_str(piece);
        let mut out = Vec::new();
        loop {
            let progressed = match self.state {
                State::Text => self.step_text(&mut out),
                State::Reasoning => self.step_reasoning(&mut out),
                State::Call => self.step_call(&mut out),
            };
            if !progressed {
                break;
            }
        }
        merge(out)
    }

    /// The answer ended: gives out everything still held back. An open call is given out as
    /// a [`SegmentKind::Call`] (its parser decides whether it is whole).
    pub fn finish(&mut self) -> Vec<Segment> {
        let mut out = Vec::new();
        let rest = std::mem::take(&mut self.pending);
        match self.state {
            State::Text => push(&mut out, SegmentKind::Text, &rest),
            State::Reasoning => push(&mut out, SegmentKind::Reasoning, &rest),
            State::Call => {
                self.call.push_str(&rest);
                let call = std::mem::take(&mut self.call);
                push(&mut out, SegmentKind::Call, &call);
            }
        }
        merge(out)
    }

    /// Moves settled text out in the Text state; whether a marker was crossed.
    fn step_text(&mut self, out: &mut Vec<Segment>) -> bool {
        let mut openers: Vec<(&str, State)> = Vec::new();
        if let Some((open, _)) = &self.markers.reasoning {
            openers.push((open, State::Reasoning));
        }
        let call_allowed = self
            .markers
            .call
            .as_ref()
            .is_some_and(|c| !c.only_at_start || !self.started);
        if call_allowed {
            if let Some(call) = &self.markers.call {
                openers.extend(call.open.iter().map(|o| (o.as_str(), State::Call)));
            }
        }
        let only_at_start = self.markers.call.as_ref().is_some_and(|c| c.only_at_start);
        // The earliest marker that appears whole.
        let found = openers
            .iter()
            .filter_map(|&(m, s)| self.pending.find(m).map(|at| (at, m, s)))
            .filter(|&(at, _, s)| {
                // A start-only call opens only after whitespace.
                !(s == State::Call && only_at_start && !self.pending[..at].trim().is_empty())
            })
            .min_by_key(|&(at, m, _)| (at, std::cmp::Reverse(m.len())));
        if let Some((at, marker, state)) = found {
            let (marker, state) = (marker.to_owned(), state);
            let before: String = self.pending[..at].to_owned();
            self.give_text(out, &before);
            self.pending.drain(..at + marker.len());
            if state == State::Call {
                self.call = marker;
            }
            self.state = state;
            return true;
        }
        // Hold back the longest tail that could still become a marker.
        let hold = openers
            .iter()
            .map(|&(m, s)| {
                if s == State::Call && only_at_start {
                    // Before any text, whitespace and a start of the marker may lead to it.
                    let rest = self.pending.trim_start();
                    return if m.starts_with(rest) {
                        self.pending.len()
                    } else {
                        0
                    };
                }
                partial_tail(&self.pending, m)
            })
            .max()
            .unwrap_or(0);
        let settled = self.pending.len() - hold;
        if settled > 0 {
            let text: String = self.pending.drain(..settled).collect();
            self.give_text(out, &text);
        }
        false
    }

    fn step_reasoning(&mut self, out: &mut Vec<Segment>) -> bool {
        let Some((_, close)) = self.markers.reasoning.clone() else {
            self.state = State::Text;
            return true;
        };
        if let Some(at) = self.pending.find(&close) {
            let inside: String = self.pending[..at].to_owned();
            push(out, SegmentKind::Reasoning, &inside);
            self.pending.drain(..at + close.len());
            self.state = State::Text;
            return true;
        }
        let hold = partial_tail(&self.pending, &close);
        let settled = self.pending.len() - hold;
        if settled > 0 {
            let text: String = self.pending.drain(..settled).collect();
            push(out, SegmentKind::Reasoning, &text);
        }
        false
    }

    fn step_call(&mut self, out: &mut Vec<Segment>) -> bool {
        let close = self.markers.call.as_ref().and_then(|c| c.close.clone());
        let Some(close) = close else {
            self.call.push_str(&std::mem::take(&mut self.pending));
            return false;
        };
        if let Some(at) = self.pending.find(&close) {
            self.call.push_str(&self.pending[..at + close.len()]);
            self.pending.drain(..at + close.len());
            let call = std::mem::take(&mut self.call);
            push(out, SegmentKind::Call, &call);
            self.state = State::Text;
            return true;
        }
        // The call is given out whole, so nothing needs holding apart: keep collecting.
        let hold = partial_tail(&self.pending, &close);
        let settled = self.pending.len() - hold;
        let text: String = self.pending.drain(..settled).collect();
        self.call.push_str(&text);
        false
    }

    fn give_text(&mut self, out: &mut Vec<Segment>, text: &str) {
        if !text.trim().is_empty() {
            self.started = true;
        }
        push(out, SegmentKind::Text, text);
    }
}

/// The length of the longest proper prefix of `marker` that `text` ends with (at a character
/// boundary of `text`).
fn partial_tail(text: &str, marker: &str) -> usize {
    (1..marker.len().min(text.len() + 1))
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n)
                && marker.is_char_boundary(n)
                && text.ends_with(&marker[..n])
        })
        .unwrap_or(0)
}

fn push(out: &mut Vec<Segment>, kind: SegmentKind, text: &str) {
    if !text.is_empty() {
        out.push(Segment {
            kind,
            text: text.to_owned(),
        });
    }
}

/// Joins neighbouring segments of the same kind (calls stay apart: each is one call).
fn merge(segments: Vec<Segment>) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::with_capacity(segments.len());
    for s in segments {
        match out.last_mut() {
            Some(last) if last.kind == s.kind && s.kind != SegmentKind::Call => {
                last.text.push_str(&s.text);
            }
            _ => out.push(s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hermes() -> Markers {
        Markers {
            reasoning: Some(("<think>".into(), "</think>".into())),
            call: Some(CallMarkers {
                open: vec!["<tool_call>".into()],
                close: Some("</tool_call>".into()),
                only_at_start: false,
            }),
        }
    }

    /// Feeds `pieces` one by one and returns all segments, merged.
    fn run(markers: Markers, in_reasoning: bool, pieces: &[&str]) -> Vec<(SegmentKind, String)> {
        let mut s = Splitter::new(markers, in_reasoning);
        let mut all = Vec::new();
        for p in pieces {
            all.extend(s.push(p));
        }
        all.extend(s.finish());
        merge(all).into_iter().map(|s| (s.kind, s.text)).collect()
    }

    /// Every way of cutting `text` into two or three pieces gives the same segments.
    fn all_cuts(markers: &Markers, text: &str) -> Vec<(SegmentKind, String)> {
        let whole = run(markers.clone(), false, &[text]);
        let bounds: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        for &i in &bounds {
            for &j in bounds.iter().filter(|&&j| j >= i) {
                let got = run(
                    markers.clone(),
                    false,
                    &[&text[..i], &text[i..j], &text[j..]],
                );
                assert_eq!(got, whole, "cut at {i},{j} of {text:?}");
            }
        }
        whole
    }

    #[test]
    fn reasoning_split_across_tokens_is_set_apart() {
        let got = all_cuts(
            &hermes(),
            "<think>the user wants kural 1</think>Kural 1 is...",
        );
        assert_eq!(
            got,
            vec![
                (SegmentKind::Reasoning, "the user wants kural 1".into()),
                (SegmentKind::Text, "Kural 1 is...".into()),
            ]
        );
    }

    #[test]
    fn an_unclosed_block_stays_reasoning_at_the_end() {
        let got = run(
            hermes(),
            false,
            &["Let me ", "<thi", "nk>step one, step", " two"],
        );
        assert_eq!(
            got,
            vec![
                (SegmentKind::Text, "Let me ".into()),
                (SegmentKind::Reasoning, "step one, step two".into()),
            ]
        );
        // A prompt that opened the block: everything up to the close is reasoning.
        let got = run(hermes(), true, &["hmm</th", "ink>Answer."]);
        assert_eq!(
            got,
            vec![
                (SegmentKind::Reasoning, "hmm".into()),
                (SegmentKind::Text, "Answer.".into()),
            ]
        );
    }

    #[test]
    fn a_think_tag_inside_a_call_belongs_to_the_call() {
        let text = "<think>look it up</think><tool_call>\n{\"name\": \"search\", \"arguments\": {\"query\": \"<think>x</think>\"}}\n</tool_call>";
        let got = all_cuts(&hermes(), text);
        assert_eq!(
            got,
            vec![
                (SegmentKind::Reasoning, "look it up".into()),
                (
                    SegmentKind::Call,
                    "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"query\": \"<think>x</think>\"}}\n</tool_call>".into()
                ),
            ]
        );
    }

    #[test]
    fn calls_stay_separate_and_text_around_them_is_kept() {
        let got = all_cuts(
            &hermes(),
            "Sure. <tool_call>{\"a\":1}</tool_call><tool_call>{\"b\":2}</tool_call> done",
        );
        assert_eq!(
            got,
            vec![
                (SegmentKind::Text, "Sure. ".into()),
                (SegmentKind::Call, "<tool_call>{\"a\":1}</tool_call>".into()),
                (SegmentKind::Call, "<tool_call>{\"b\":2}</tool_call>".into()),
                (SegmentKind::Text, " done".into()),
            ]
        );
        // Cut inside a call: the open call is given out as it is.
        let got = run(hermes(), false, &["<tool_call>{\"na"]);
        assert_eq!(got, vec![(SegmentKind::Call, "<tool_call>{\"na".into())]);
    }

    #[test]
    fn a_start_only_call_opens_only_at_the_start() {
        let llama = Markers {
            reasoning: None,
            call: Some(CallMarkers {
                open: vec!["{\"name\"".into(), "<|python_tag|>".into()],
                close: None,
                only_at_start: true,
            }),
        };
        let got = all_cuts(&llama, "  {\"name\": \"search\", \"parameters\": {}}");
        assert_eq!(
            got,
            vec![
                (SegmentKind::Text, "  ".into()),
                (
                    SegmentKind::Call,
                    "{\"name\": \"search\", \"parameters\": {}}".into()
                )
            ]
        );
        let got = all_cuts(&llama, "Use JSON like {\"name\": 1} here.");
        assert_eq!(
            got,
            vec![(
                SegmentKind::Text,
                "Use JSON like {\"name\": 1} here.".into()
            )]
        );
    }

    #[test]
    fn plain_text_and_tamil_pass_through() {
        let got = all_cuts(&hermes(), "அறம் < 5 <b> கல்வி");
        assert_eq!(got, vec![(SegmentKind::Text, "அறம் < 5 <b> கல்வி".into())]);
    }
}
