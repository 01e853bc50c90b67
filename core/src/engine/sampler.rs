//! Token selection: llama.cpp's sampler chain, and the output grammar when there is one.
//!
//! Without a grammar a token is picked by the chain in one llama.cpp call. With one, the
//! pick is the one llama.cpp's own tools make (`common_sampler_sample`): the chain picks
//! from the unconstrained candidates, and only if the grammar rejects that token are the
//! candidates filtered by the grammar *first* and picked again. Filtering first matters: top-k,
//! top-p and min-p then keep the likeliest *valid* tokens, never cut every valid one away. The
//! shortcut costs nothing in quality: greedy gets the same token, and (before truncation) a
//! random draw accepted only when valid, else drawn again among valid tokens, has exactly the
//! constrained distribution; with top-k/top-p/min-p the first cut is taken over all tokens,
//! as in llama.cpp's own sampler. It matters for speed: checking one token is cheap, filtering a
//! 262k-token vocabulary (Gemma 3) is not, and a model following its format mostly picks
//! valid tokens anyway.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token_type::LlamaTokenAttr;

use super::constraint::ConstraintError;
use super::error::EngineError;
use super::params::Sampling;

/// Picks each token of one answer.
pub(crate) struct TokenPicker {
    chain: LlamaSampler,
    grammar: Option<LlamaSampler>,
    /// The grammar is lazy (a tool call's): a trigger it cannot follow drops it.
    lazy: bool,
    n_vocab: i32,
    /// Picks the grammar overruled (for the debug log: how often the slow path ran).
    resampled: u32,
}

/// A grammar for [`TokenPicker::new`].
#[derive(Debug, Clone)]
pub(crate) struct GrammarSpec<'a> {
    /// GBNF text, start rule `root`.
    pub gbnf: &'a str,
    /// Lazy: the grammar holds only once one of these regular expressions matches the text
    /// so far, from the match's start (a tool call's marker); `None`: from the first token.
    pub lazy_triggers: Option<Vec<String>>,
}

/// What [`TokenPicker::pick`] chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    /// The next token (already accepted by the samplers unless it ends the text).
    Token(LlamaToken),
    /// The grammar admits no token of this vocabulary here: the answer cannot go on.
    DeadEnd,
}

impl TokenPicker {
    /// The chain for `sampling` (tokens in `suppressed` are never picked) and, with `grammar`,
    /// the grammar parsed against this model's vocabulary; `without_markup` keeps control
    /// tokens out of a constrained answer (for JSON).
    pub(crate) fn new(
        model: &LlamaModel,
        sampling: &Sampling,
        suppressed: &[LlamaToken],
        grammar: Option<GrammarSpec<'_>>,
        without_markup: bool,
    ) -> Result<Self, EngineError> {
        let n_vocab = model.n_vocab();
        let lazy = grammar.as_ref().is_some_and(|g| g.lazy_triggers.is_some());
        let grammar = grammar
            .map(|spec| {
                let gbnf = spec.gbnf;
                let _span = tracing::debug_span!("grammar_parse", bytes = gbnf.len()).entered();
                match &spec.lazy_triggers {
                    None => LlamaSampler::grammar(model, gbnf, "root"),
                    Some(patterns) => {
                        LlamaSampler::grammar_lazy_patterns(model, gbnf, "root", patterns, &[])
                    }
                }
                .map_err(|e| {
                    tracing::debug!(error = %e, "llama.cpp refused a grammar");
                    ConstraintError::Grammar(
                        "llama.cpp's parser refused it: a syntax error, a rule used but never \
                         defined, left recursion, or a token this model does not have (the \
                         parser's message is on standard error)"
                            .into(),
                    )
                })
            })
            .transpose()?;
        // Under a schema, markup tokens (control and unknown ones, end-of-text aside) are
        // never picked: the grammar reads them as their markup (`<start_of_turn>` fits inside
        // any JSON string), which has no place in JSON. (A GBNF grammar may name such tokens
        // on purpose; there the answer's text shows their markup, as the grammar read it.)
        let mut suppressed = suppressed.to_vec();
        if grammar.is_some() && without_markup {
            let vocab = model.vocab();
            suppressed.extend((0..n_vocab).map(LlamaToken).filter(|&t| {
                vocab
                    .attr(t)
                    .0
                    .intersects(LlamaTokenAttr::Control | LlamaTokenAttr::Unknown)
                    && !vocab.is_eog(t)
            }));
        }
        Ok(Self {
            chain: chain(sampling, &suppressed, n_vocab),
            grammar,
            lazy,
            n_vocab,
            resampled: 0,
        })
    }

    /// Lets the repeat penalty see the prompt.
    pub(crate) fn accept_prompt(&mut self, tokens: &[LlamaToken]) {
        self.chain.accept_many(tokens);
    }

    /// Picks the next token from the logits at `index` of the last decode. `is_eog` tells
    /// end-of-text tokens, which are not fed to the grammar (the text ends there).
    pub(crate) fn pick(
        &mut self,
        ctx: &LlamaContext<'_>,
        index: i32,
        is_eog: impl Fn(LlamaToken) -> bool,
    ) -> Result<Pick, EngineError> {
        let Some(grammar) = &mut self.grammar else {
            return Ok(Pick::Token(self.chain.sample(ctx, index)));
        };
        let logits = ctx.get_logits_ith(index);
        let mut candidates = candidates_of(logits);
        self.chain.apply(&mut candidates);
        let mut token = candidates.selected_token();
        if !token.is_some_and(|t| admits(grammar, t)) {
            self.resampled += 1;
            let mut candidates = candidates_of(logits);
            grammar.apply(&mut candidates);
            self.chain.apply(&mut candidates);
            token = candidates.selected_token().filter(|&t| admits(grammar, t));
        }
        let Some(token) = token else {
            return Ok(Pick::DeadEnd);
        };
        if !is_eog(token) {
            if let Err(e) = grammar.try_accept(token) {
                if !self.lazy {
                    return Err(EngineError::Decode(format!(
                        "the grammar refused a token it had admitted: {e}"
                    )));
                }
                // A lazy grammar admits everything while it waits; a token that completes its
                // trigger and goes on past it (`<tool_response>` as one token) can leave it no
                // way on. The answer goes on without it: what follows is not read as a call
                // unless it is one.
                tracing::debug!(error = %e, "a tool call's trigger could not be followed; grammar dropped");
                self.grammar = None;
            }
            self.chain.accept(token);
        }
        Ok(Pick::Token(token))
    }

    /// Whether the grammar is satisfied and admits nothing more than end-of-text: cut here,
    /// the text is complete. True without a grammar.
    pub(crate) fn grammar_finished(&mut self, is_eog: impl Fn(LlamaToken) -> bool) -> bool {
        let Some(grammar) = &mut self.grammar else {
            return true;
        };
        let mut all = LlamaTokenDataArray::from_iter(
            (0..self.n_vocab).map(|id| LlamaTokenData::new(LlamaToken(id), 0.0, 0.0)),
            false,
        );
        grammar.apply(&mut all);
        let (mut end, mut more) = (false, false);
        for t in all.data.iter().filter(|t| t.logit().is_finite()) {
            if is_eog(t.id()) {
                end = true;
            } else {
                more = true;
            }
        }
        end && !more
    }

    /// How many picks the grammar overruled.
    pub(crate) fn resampled(&self) -> u32 {
        self.resampled
    }
}

/// Whether `grammar`, in its current state, admits `token` next.
fn admits(grammar: &mut LlamaSampler, token: LlamaToken) -> bool {
    let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 0.0, 0.0)], false);
    grammar.apply(&mut one);
    one.data.first().is_some_and(|t| t.logit().is_finite())
}

fn candidates_of(logits: &[f32]) -> LlamaTokenDataArray {
    LlamaTokenDataArray::from_iter(
        (0_i32..)
            .zip(logits)
            .map(|(id, &logit)| LlamaTokenData::new(LlamaToken(id), logit, 0.0)),
        false,
    )
}

/// `temperature <= 0`: bias → penalties → greedy; otherwise bias → penalties → top-k →
/// top-p → min-p → temperature → seeded draw, the order llama.cpp's own tools use.
fn chain(s: &Sampling, suppressed: &[LlamaToken], n_vocab: i32) -> LlamaSampler {
    let mut chain = Vec::new();
    if !suppressed.is_empty() {
        let biases: Vec<_> = suppressed
            .iter()
            .map(|t| LlamaLogitBias::new(*t, f32::NEG_INFINITY))
            .collect();
        chain.push(LlamaSampler::logit_bias(n_vocab, &biases));
    }
    if s.repeat_penalty != 1.0 {
        let last_n = i32::try_from(s.repeat_last_n).unwrap_or(i32::MAX);
        chain.push(LlamaSampler::penalties(
            n_vocab,
            last_n,
            s.repeat_penalty,
            0.0,
            0.0,
        ));
    }
    if s.is_greedy() {
        chain.push(LlamaSampler::greedy());
    } else {
        if s.top_k > 0 {
            chain.push(LlamaSampler::top_k(
                i32::try_from(s.top_k).unwrap_or(i32::MAX),
            ));
        }
        if s.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(s.top_p, 1));
        }
        if s.min_p > 0.0 {
            chain.push(LlamaSampler::min_p(s.min_p, 1));
        }
        chain.push(LlamaSampler::temp(s.temperature));
        chain.push(LlamaSampler::dist(s.seed));
    }
    LlamaSampler::chain_simple(chain)
}
