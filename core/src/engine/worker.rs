//! The engine's worker thread: it alone owns the llama.cpp model and context.
//!
//! Callers talk to it through a job channel and get events back through a per-answer channel,
//! so no caller thread ever blocks on token generation. The worker keeps the tokens currently
//! in the KV cache and, for each new prompt, evaluates only what differs from them: a follow-up
//! turn in a conversation re-reads only the new messages.

use std::num::NonZeroU32;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use zeroize::Zeroizing;

use super::backend::{backend, count_llama_load};
use super::cancel::CancelHandle;
use super::constraint::CompiledConstraint;
use super::error::EngineError;
use super::memory::{KvCacheKind, MemoryPlan};
use super::message::{Message, Role};
use super::metrics::{peak_rss_bytes, Metrics, TemplateKind};
use super::params::GenerateParams;
use super::reference::{greedy_loop, ReferenceRun};
use super::sampler::{GrammarSpec, Pick, TokenPicker};
use super::split::{CallMarkers, Markers, Segment, SegmentKind, Splitter};
use super::stop::{StopFilter, StopOutcome};
use super::template::{self, ChatTemplate, RenderExtras};
use super::tools::{ToolCall, ToolChoice, ToolError, ToolFormat};
use super::utf8::Utf8Stream;
use super::{Answer, Event, FinishReason, Scores, TokenLogits, TokenScore};

/// How prompts are built for this model.
#[derive(Debug)]
pub(crate) enum PromptTemplate {
    /// The model's own template.
    Jinja(Box<ChatTemplate>),
    /// llama.cpp's built-in matcher, given a template name or source it recognises.
    Builtin(String),
}

impl PromptTemplate {
    /// The tool-call format the template teaches, or why there is none.
    pub(crate) fn tool_format(&self) -> Result<ToolFormat, ToolError> {
        match self {
            PromptTemplate::Jinja(t) => ToolFormat::detect(t.source()),
            PromptTemplate::Builtin(_) => Err(ToolError::TemplateWithoutTools),
        }
    }

    /// SHA-256 of what shapes the prompt: the Jinja source, or llama.cpp's template name.
    pub(crate) fn sha256(&self) -> String {
        use sha2::{Digest, Sha256};
        let (tag, text) = match self {
            PromptTemplate::Jinja(t) => ("jinja\0", t.source()),
            PromptTemplate::Builtin(name) => ("builtin\0", name.as_str()),
        };
        let mut hasher = Sha256::new();
        hasher.update(tag.as_bytes());
        hasher.update(text.as_bytes());
        crate::fsutil::hex(&hasher.finalize())
    }

    pub(crate) fn kind(&self) -> TemplateKind {
        match self {
            PromptTemplate::Jinja(_) => TemplateKind::Jinja,
            PromptTemplate::Builtin(name) => TemplateKind::LlamaBuiltin(if name.len() > 32 {
                "model".to_owned()
            } else {
                name.clone()
            }),
        }
    }
}

/// Everything the worker needs to start.
#[derive(Debug)]
pub(crate) struct WorkerSetup {
    pub path: PathBuf,
    pub plan: MemoryPlan,
    pub threads: usize,
    pub n_batch: u32,
    /// Prompt tokens decoded between checks for cancel and unload.
    pub prompt_chunk: u32,
    pub template: PromptTemplate,
    pub bos_token: Option<String>,
    pub sliding_window: Option<u32>,
    pub load_ms_before: u64,
    /// Set by `Engine::unload`: the running answer stops, queued jobs fail with `Shutdown`.
    pub stopping: Arc<AtomicBool>,
}

/// A conversation whose history the worker updates when an answer ends.
#[derive(Debug, Clone)]
pub(crate) struct SessionLink {
    /// Unique in the process: the worker remembers which conversation filled its KV cache.
    /// Replaced when the conversation is cleared.
    pub id: Arc<AtomicU64>,
    pub history: Arc<Mutex<Vec<Message>>>,
    pub in_flight: Arc<AtomicBool>,
}

/// A conversation's KV cache as llama.cpp serialises one sequence: the tokens whose entries it
/// holds, in position order, and the sequence's state bytes (wiped when dropped: they hold the
/// conversation).
pub(crate) struct KvSnapshot {
    pub tokens: Vec<i32>,
    pub state: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for KvSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvSnapshot")
            .field("tokens", &self.tokens.len())
            .field("state_bytes", &self.state.len())
            .finish()
    }
}

/// The tools of one answer, ready for the worker.
#[derive(Debug)]
pub(crate) struct ToolSetup {
    /// The call format of the template.
    pub format: ToolFormat,
    /// The call grammar; `None` when no call is to be parsed ([`ToolChoice::None`]).
    pub grammar: Option<String>,
}

/// The reasoning block's tags.
const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";

/// One answer to produce.
#[derive(Debug)]
pub(crate) struct GenerateJob {
    pub messages: Vec<Message>,
    pub params: GenerateParams,
    /// `params.constraint`, converted on the caller's thread.
    pub constraint: Option<CompiledConstraint>,
    /// `params.tools`, checked against the template on the caller's thread.
    pub tools: Option<ToolSetup>,
    pub events: Sender<Event>,
    pub cancel: CancelHandle,
    pub started: Instant,
    pub session: Option<SessionLink>,
}

/// Work for the worker.
#[derive(Debug)]
pub(crate) enum Job {
    Generate(Box<GenerateJob>),
    Score {
        text: String,
        reply: SyncSender<Result<Scores, EngineError>>,
    },
    Tokenize {
        text: String,
        reply: SyncSender<Result<Vec<i32>, EngineError>>,
    },
    Logits {
        tokens: Vec<i32>,
        reply: SyncSender<Result<TokenLogits, EngineError>>,
    },
    Prompt {
        messages: Vec<Message>,
        reply: SyncSender<Result<(String, Vec<i32>), EngineError>>,
    },
    Reference {
        prompt: Vec<i32>,
        max_tokens: usize,
        reply: SyncSender<Result<ReferenceRun, EngineError>>,
    },
    /// The KV cache of conversation `session`, or `None` when the cache holds another's.
    SaveState {
        session: u64,
        reply: SyncSender<Result<Option<KvSnapshot>, EngineError>>,
    },
    /// Replaces the KV cache with a snapshot, now conversation `session`'s.
    LoadState {
        session: u64,
        snapshot: KvSnapshot,
        reply: SyncSender<Result<(), EngineError>>,
    },
}

/// Loads the model, reports the load time (ms) through `ready`, then serves jobs until the
/// channel closes.
pub(crate) fn run(
    setup: WorkerSetup,
    ready: SyncSender<Result<u64, EngineError>>,
    jobs: Receiver<Job>,
) {
    let started = Instant::now();
    let backend = match backend() {
        Ok(b) => b,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let model = {
        let _span = tracing::info_span!("model_load").entered();
        count_llama_load();
        match LlamaModel::load_from_file(backend, &setup.path, &LlamaModelParams::default()) {
            Ok(m) => m,
            Err(e) => {
                let _ = ready.send(Err(EngineError::Load(e.to_string())));
                return;
            }
        }
    };
    let threads = i32::try_from(setup.threads).unwrap_or(i32::MAX);
    let mut ctx_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(setup.plan.n_ctx))
        .with_n_batch(setup.n_batch)
        .with_n_ubatch(setup.n_batch)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        // Sliding-window layers keep only their window (plus one micro-batch), not n_ctx
        // cells: Gemma 3 270M's KV cache shrinks from 72 to 27 MiB at n_ctx 4096.
        // `truncate_cache` re-reads the prompt when the window no longer covers a kept prefix.
        .with_swa_full(false);
    if setup.plan.kv_cache == KvCacheKind::Q8_0 {
        ctx_params = ctx_params
            .with_type_k(KvCacheType::Q8_0)
            .with_type_v(KvCacheType::Q8_0)
            .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED);
    }
    let ctx = match model.new_context(backend, ctx_params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(EngineError::Context(e.to_string())));
            return;
        }
    };
    let load_ms =
        setup.load_ms_before + u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if ready.send(Ok(load_ms)).is_err() {
        return;
    }
    // Reasoning blocks are split out only for a model that knows them: one whose template
    // writes `<think>` or whose vocabulary has it as a token. Another model's `<think>` is text.
    let reasoning_tags = matches!(&setup.template, PromptTemplate::Jinja(t) if t.source().contains(THINK_OPEN))
        || one_token(&model, THINK_OPEN).is_some();
    let mut worker = Worker {
        model: &model,
        ctx,
        batch: LlamaBatch::new(setup.n_batch as usize, 1),
        cached: Vec::new(),
        owner: None,
        setup,
        load_ms,
        reasoning_tags,
    };
    while let Ok(job) = jobs.recv() {
        if worker.setup.stopping.load(Ordering::Acquire) {
            refuse(job);
            continue;
        }
        match job {
            Job::Generate(job) => worker.serve_generate(*job),
            Job::Score { text, reply } => {
                let result = catch_unwind(AssertUnwindSafe(|| worker.score(&text)))
                    .unwrap_or_else(|p| Err(worker.after_panic(&p)));
                let _ = reply.send(result);
            }
            Job::Tokenize { text, reply } => {
                let result = catch_unwind(AssertUnwindSafe(|| worker.tokenize_text(&text)))
                    .unwrap_or_else(|p| Err(worker.after_panic(&p)));
                let _ = reply.send(result.map(|t| t.iter().map(|t| t.0).collect()));
            }
            Job::Logits { tokens, reply } => {
                let result = catch_unwind(AssertUnwindSafe(|| worker.logits(&tokens)))
                    .unwrap_or_else(|p| Err(worker.after_panic(&p)));
                let _ = reply.send(result);
            }
            Job::Reference {
                prompt,
                max_tokens,
                reply,
            } => {
                let result =
                    catch_unwind(AssertUnwindSafe(|| worker.reference(&prompt, max_tokens)))
                        .unwrap_or_else(|p| Err(worker.after_panic(&p)));
                let _ = reply.send(result);
            }
            Job::SaveState { session, reply } => {
                let result = catch_unwind(AssertUnwindSafe(|| worker.save_state(session)))
                    .unwrap_or_else(|p| Err(worker.after_panic(&p)));
                let _ = reply.send(result);
            }
            Job::LoadState {
                session,
                snapshot,
                reply,
            } => {
                let result =
                    catch_unwind(AssertUnwindSafe(|| worker.load_state(session, &snapshot)))
                        .unwrap_or_else(|p| Err(worker.after_panic(&p)));
                let _ = reply.send(result);
            }
            Job::Prompt { messages, reply } => {
                let result = catch_unwind(AssertUnwindSafe(|| {
                    worker
                        .prompt_tokens(&messages, &RenderExtras::default())
                        .map(|(text, tokens)| (text, tokens.iter().map(|t| t.0).collect()))
                }))
                .unwrap_or_else(|p| Err(worker.after_panic(&p)));
                let _ = reply.send(result);
            }
        }
    }
}

/// Answers a job that arrived after `unload` with `Shutdown`.
fn refuse(job: Job) {
    match job {
        Job::Generate(job) => {
            if let Some(link) = &job.session {
                update_history(link, None);
                link.in_flight.store(false, Ordering::Release);
            }
            let _ = job.events.send(Event::Failed(EngineError::Shutdown));
        }
        Job::Score { reply, .. } => drop(reply.send(Err(EngineError::Shutdown))),
        Job::Tokenize { reply, .. } => drop(reply.send(Err(EngineError::Shutdown))),
        Job::Logits { reply, .. } => drop(reply.send(Err(EngineError::Shutdown))),
        Job::Prompt { reply, .. } => drop(reply.send(Err(EngineError::Shutdown))),
        Job::Reference { reply, .. } => drop(reply.send(Err(EngineError::Shutdown))),
        Job::SaveState { reply, .. } => drop(reply.send(Err(EngineError::Shutdown))),
        Job::LoadState { reply, .. } => drop(reply.send(Err(EngineError::Shutdown))),
    }
}

struct Worker<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    /// Tokens whose KV entries are in the cache, in position order.
    cached: Vec<LlamaToken>,
    /// The conversation ([`SessionLink::id`]) whose answer filled the cache; `None` after an
    /// answer without one, or any other use of the cache.
    owner: Option<u64>,
    setup: WorkerSetup,
    load_ms: u64,
    /// The model knows `<think>` blocks (its template or vocabulary has them).
    reasoning_tags: bool,
}

/// What the prompt-building step produced.
struct Prompt {
    tokens: Vec<LlamaToken>,
    dropped_turns: u32,
    /// The template's generation prompt opened a reasoning block (`…<think>\n`).
    opens_reasoning: bool,
}

impl Worker<'_> {
    fn serve_generate(&mut self, job: GenerateJob) {
        let events = job.events.clone();
        let session = job.session.clone();
        let result = catch_unwind(AssertUnwindSafe(|| self.generate(job)))
            .unwrap_or_else(|p| Err(self.after_panic(&p)));
        // The session is free again before the caller hears that the answer ended, so a
        // follow-up sent right after `Done` is accepted — unless the answer called tools: the
        // session then waits for their results (or for them to be discarded).
        if let Some(link) = &session {
            update_history(link, result.as_ref().ok());
            let awaits_results = result.as_ref().is_ok_and(|a| !a.tool_calls.is_empty());
            if !awaits_results {
                link.in_flight.store(false, Ordering::Release);
            }
        }
        let _ = match result {
            Ok(answer) => events.send(Event::Done(answer)),
            Err(e) => events.send(Event::Failed(e)),
        };
    }

    fn after_panic(&mut self, payload: &Box<dyn std::any::Any + Send>) -> EngineError {
        // The context may hold half-evaluated state: forget it.
        self.ctx.clear_kv_cache();
        self.cached.clear();
        self.owner = None;
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        tracing::error!(%what, "engine worker panicked");
        EngineError::Decode(format!("internal error: {what}"))
    }

    fn generate(&mut self, job: GenerateJob) -> Result<Answer, EngineError> {
        let _span = tracing::info_span!("generate", max_tokens = job.params.max_tokens).entered();
        job.params.validate()?;
        let suppressed = self.resolve_suppressed(&job.params.suppress)?;
        let calls = job.tools.as_ref().filter(|t| t.grammar.is_some());
        let grammar = match (&job.constraint, calls) {
            (Some(c), _) => Some(GrammarSpec {
                gbnf: &c.gbnf,
                lazy_triggers: None,
            }),
            (None, Some(tools)) => Some(GrammarSpec {
                gbnf: tools.grammar.as_deref().unwrap_or_default(),
                lazy_triggers: (job.params.tool_choice == ToolChoice::Auto)
                    .then(|| tools.format.trigger_patterns()),
            }),
            (None, None) => None,
        };
        // A schema's answer is JSON from its first token: no markup tokens in it, and a
        // `<think>` inside one of its strings is data, not reasoning.
        let schema_answer = job.constraint.as_ref().is_some_and(|c| !c.shows_markup);
        // The grammar is parsed before the prompt is read: a bad one costs no evaluation.
        let mut picker = TokenPicker::new(
            self.model,
            &job.params.sampling,
            &suppressed,
            grammar,
            schema_answer,
        )?;
        let show_markup = job.constraint.as_ref().is_some_and(|c| c.shows_markup);
        let extras = RenderExtras {
            tools: if job.params.tools.is_empty() {
                None
            } else {
                Some(
                    job.params
                        .tools
                        .iter()
                        .map(|t| t.to_template_value())
                        .collect::<Result<_, _>>()?,
                )
            },
            enable_thinking: job.params.enable_thinking,
        };
        let prompt = self.fit_prompt(&job.messages, job.params.max_tokens, &extras)?;
        let call_format = calls.map(|t| t.format);
        let markers = Markers {
            reasoning: (self.reasoning_tags && !schema_answer)
                .then(|| (THINK_OPEN.to_owned(), THINK_CLOSE.to_owned())),
            call: call_format.map(ToolFormat::markers),
        };
        // Markers a model writes as one special token: their text must reach the splitter.
        let markup_tokens: Vec<LlamaToken> = markup_texts(&markers)
            .into_iter()
            .filter_map(|t| one_token(self.model, t))
            .collect();
        let mut splitter = Splitter::new(markers, prompt.opens_reasoning);
        if prompt.tokens.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let n_ctx = self.setup.plan.n_ctx as usize;

        // Reuse the common prefix of the cache; always re-evaluate at least the last token so
        // there are fresh logits to sample from.
        let reuse = if job.params.reuse_kv_cache {
            common_prefix(&self.cached, &prompt.tokens).min(prompt.tokens.len() - 1)
        } else {
            0
        };
        // From here the cache holds this answer's conversation (if any): an answer refused
        // before this point left the cache, and its owner, as they were.
        self.owner = job
            .session
            .as_ref()
            .map(|link| link.id.load(Ordering::Acquire));
        let reused = self.truncate_cache(reuse);
        let prompt_started = Instant::now();
        let mut logits_index = {
            let _span = tracing::debug_span!("prompt_eval", tokens = prompt.tokens.len() - reused)
                .entered();
            self.eval_prompt(&prompt.tokens[reused..], &job.cancel)?
        };
        let prompt_secs = prompt_started.elapsed().as_secs_f64();

        if job.params.sampling.repeat_penalty != 1.0 {
            picker.accept_prompt(&prompt.tokens);
        }
        let vocab = self.model.vocab();
        let is_eog = |t| vocab.is_eog(t);
        let mut utf8 = Utf8Stream::new();
        let mut stops = StopFilter::new(&job.params.stop);
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut call_texts: Vec<String> = Vec::new();
        let mut tokens = Vec::new();
        let mut first_token_at = None;
        let decode_started = Instant::now();
        let _decode_span = tracing::debug_span!("decode").entered();
        let emit = |piece: String, text: &mut String| -> bool {
            if piece.is_empty() {
                return true;
            }
            text.push_str(&piece);
            job.events.send(Event::Token(piece)).is_ok()
        };
        let show_reasoning = job.params.show_reasoning;
        let think = |piece: String, reasoning: &mut String| -> bool {
            if !show_reasoning || piece.is_empty() {
                return true;
            }
            reasoning.push_str(&piece);
            job.events.send(Event::Reasoning(piece)).is_ok()
        };
        // Text through the stop strings to the caller, reasoning to the caller if asked for,
        // calls kept for parsing. While generating (`to_the_end` false) it stops at the first
        // stop string or gone caller and says why; for the last text it goes on to the end
        // (the text holds everything, calls after a stop string are kept) and only reports a
        // stop string.
        let deliver = |segments: Vec<Segment>,
                       to_the_end: bool,
                       stops: &mut StopFilter,
                       text: &mut String,
                       reasoning: &mut String,
                       call_texts: &mut Vec<String>|
         -> Option<FinishReason> {
            let mut stopped = false;
            for segment in segments {
                match segment.kind {
                    SegmentKind::Text if stopped => {}
                    SegmentKind::Text => match stops.push(&segment.text) {
                        StopOutcome::Continue(shown) => {
                            if !emit(shown, text) && !to_the_end {
                                return Some(FinishReason::Cancelled);
                            }
                        }
                        StopOutcome::Stopped(shown) => {
                            emit(shown, text);
                            if !to_the_end {
                                return Some(FinishReason::StopString);
                            }
                            stopped = true;
                        }
                    },
                    SegmentKind::Reasoning => {
                        if !think(segment.text, reasoning) && !to_the_end {
                            return Some(FinishReason::Cancelled);
                        }
                    }
                    SegmentKind::Call => call_texts.push(segment.text),
                }
            }
            stopped.then_some(FinishReason::StopString)
        };
        let mut finish = loop {
            if job.cancel.is_cancelled() || self.setup.stopping.load(Ordering::Acquire) {
                break FinishReason::Cancelled;
            }
            if tokens.len() >= job.params.max_tokens as usize {
                break FinishReason::MaxTokens;
            }
            let token = match picker.pick(&self.ctx, logits_index, is_eog)? {
                Pick::Token(token) => token,
                Pick::DeadEnd => {
                    tracing::warn!("the output grammar admits no token of this model here");
                    break FinishReason::Incomplete;
                }
            };
            first_token_at.get_or_insert_with(|| job.started.elapsed());
            if vocab.is_eog(token) {
                break FinishReason::EndOfText;
            }
            tokens.push(token.0);
            let special = show_markup || markup_tokens.contains(&token);
            let piece = utf8.push(&vocab.token_to_piece(token, special, None));
            let segments = splitter.push(&piece);
            if let Some(finish) = deliver(
                segments,
                false,
                &mut stops,
                &mut text,
                &mut reasoning,
                &mut call_texts,
            ) {
                break finish;
            }
            if self.cached.len() >= n_ctx {
                break FinishReason::ContextFull;
            }
            logits_index = self.decode_one(token)?;
        };
        drop(_decode_span);
        if finish != FinishReason::StopString {
            let mut rest = splitter.push(&utf8.finish());
            rest.extend(splitter.finish());
            let last = deliver(
                rest,
                true,
                &mut stops,
                &mut text,
                &mut reasoning,
                &mut call_texts,
            );
            if last.is_some() {
                finish = FinishReason::StopString;
            } else {
                emit(stops.finish(), &mut text);
            }
        }
        let tool_calls = match call_format {
            Some(format) if finish != FinishReason::Cancelled => {
                let cut = matches!(finish, FinishReason::MaxTokens | FinishReason::ContextFull);
                // Ids go on from the calls already in the conversation: unique within it.
                let earlier = job.messages.iter().map(|m| m.tool_calls.len()).sum();
                match read_calls(format, &call_texts, cut, earlier) {
                    Ok(calls) if !calls.is_empty() => {
                        finish = FinishReason::ToolCalls;
                        calls
                    }
                    Ok(_) => {
                        if job.params.tool_choice == ToolChoice::Required
                            && finish != FinishReason::StopString
                        {
                            finish = FinishReason::Incomplete;
                        }
                        Vec::new()
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "a tool call did not parse");
                        finish = match finish {
                            FinishReason::MaxTokens
                            | FinishReason::ContextFull
                            | FinishReason::StopString => FinishReason::Incomplete,
                            _ => FinishReason::Invalid,
                        };
                        Vec::new()
                    }
                }
            }
            _ => Vec::new(),
        };
        // A constrained answer cut before its grammar was satisfied does not parse: say so.
        // Cut where the grammar admits only end-of-text, it is complete. A stop string always
        // leaves it incomplete: the grammar read the stop string, the text does not show it.
        if let Some(constraint) = &job.constraint {
            finish = match finish {
                // A dead end where only end-of-text remains (the caller suppressed it) is a
                // complete answer too.
                FinishReason::MaxTokens | FinishReason::ContextFull | FinishReason::Incomplete
                    if picker.grammar_finished(is_eog) =>
                {
                    FinishReason::EndOfText
                }
                FinishReason::MaxTokens | FinishReason::ContextFull | FinishReason::StopString => {
                    FinishReason::Incomplete
                }
                other => other,
            };
            if finish == FinishReason::EndOfText && !constraint.accepts(&text) {
                finish = FinishReason::Invalid;
            }
            tracing::debug!(resampled = picker.resampled(), "grammar overruled picks");
        }
        let decode_secs = decode_started.elapsed().as_secs_f64();
        let evaluated = prompt.tokens.len() - reused;
        let metrics = Metrics {
            load_ms: self.load_ms,
            prompt_tokens: count(prompt.tokens.len()),
            cached_prompt_tokens: count(reused),
            generated_tokens: count(tokens.len()),
            time_to_first_token_ms: first_token_at.unwrap_or_default().as_secs_f64() * 1e3,
            prompt_tokens_per_s: rate(evaluated, prompt_secs),
            generation_tokens_per_s: rate(tokens.len(), decode_secs),
            peak_rss_bytes: peak_rss_bytes(),
            template: self.setup.template.kind(),
            threads: self.setup.threads,
            n_ctx: self.setup.plan.n_ctx,
            dropped_turns: prompt.dropped_turns,
        };
        tracing::debug!(?finish, generated = tokens.len(), "answer finished");
        Ok(Answer {
            text,
            tool_calls,
            reasoning,
            tokens,
            finish,
            metrics,
        })
    }

    /// Token ids for the `suppress` strings; each must be a single token.
    fn resolve_suppressed(&self, strings: &[String]) -> Result<Vec<LlamaToken>, EngineError> {
        strings
            .iter()
            .map(|s| {
                one_token(self.model, s).ok_or_else(|| {
                    EngineError::InvalidParams(format!(
                        "suppressed string {s:?} is not a single token of this model"
                    ))
                })
            })
            .collect()
    }

    /// Renders and tokenizes the conversation, dropping the oldest turns (never the system
    /// prompt, never the newest message) until it leaves room for the answer.
    fn fit_prompt(
        &self,
        messages: &[Message],
        max_tokens: u32,
        extras: &RenderExtras,
    ) -> Result<Prompt, EngineError> {
        let n_ctx = self.setup.plan.n_ctx as usize;
        let reserve = (max_tokens as usize).min(n_ctx / 4).max(1);
        let system = usize::from(messages.first().is_some_and(|m| m.role == Role::System));
        let mut window: Vec<Message> = messages.to_vec();
        let mut dropped = 0u32;
        loop {
            let (text, tokens) = self.prompt_tokens(&window, extras)?;
            if tokens.len() + reserve <= n_ctx {
                return Ok(Prompt {
                    tokens,
                    dropped_turns: dropped,
                    opens_reasoning: text.trim_end().ends_with(THINK_OPEN),
                });
            }
            // Drop the oldest whole turn after the system prompt (a user message and all
            // that answered it: tool calls, results, the reply), or a lone message; never
            // the newest turn.
            let turns = window.len() - system;
            let next_user = window[system + 1..]
                .iter()
                .position(|m| m.role == Role::User)
                .map(|at| at + 1);
            let take = match next_user {
                Some(at) => at,
                None if window[system].role != Role::User && turns > 1 => 1,
                None => 0,
            };
            if take == 0 {
                return Err(EngineError::ContextOverflow {
                    needed: tokens.len() + reserve,
                    n_ctx: self.setup.plan.n_ctx,
                });
            }
            window.drain(system..system + take);
            dropped += u32::try_from(take).unwrap_or(u32::MAX);
        }
    }

    fn render(&self, messages: &[Message], extras: &RenderExtras) -> Result<String, EngineError> {
        let _span = tracing::debug_span!("render_template", messages = messages.len()).entered();
        match &self.setup.template {
            PromptTemplate::Jinja(t) => Ok(t.render_with(messages, true, extras)?),
            PromptTemplate::Builtin(_) if extras.tools.is_some() => {
                Err(ToolError::TemplateWithoutTools.into())
            }
            PromptTemplate::Builtin(name) => {
                let template = LlamaChatTemplate::new(name)
                    .map_err(|e| EngineError::InvalidParams(e.to_string()))?;
                let chat = messages
                    .iter()
                    .map(|m| LlamaChatMessage::new(m.role.as_str().to_owned(), m.content.clone()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| EngineError::InvalidParams(e.to_string()))?;
                self.model
                    .apply_chat_template(&template, &chat, true)
                    .map_err(|e| super::template::TemplateError::Render(e.to_string()).into())
            }
        }
    }

    /// Renders `messages` and tokenizes the text: the template's markup with special tokens
    /// parsed, the messages' contents as plain text (see [`Self::tokenize_prompt`]).
    fn prompt_tokens(
        &self,
        messages: &[Message],
        extras: &RenderExtras,
    ) -> Result<(String, Vec<LlamaToken>), EngineError> {
        let text = self.render(messages, extras)?;
        let spans = self
            .render(&template::with_placeholders(messages), extras)
            .ok()
            .and_then(|placeholders| template::content_spans(&text, &placeholders, messages));
        if spans.is_none() {
            tracing::debug!(
                "message contents not located in the prompt; special tokens parsed throughout"
            );
        }
        let tokens = self.tokenize_prompt(&text, spans.as_deref());
        Ok((text, tokens))
    }

    /// Tokenizes rendered prompt text; adds BOS only if the model wants one and the template
    /// did not already write it. Within `content` spans special tokens are not parsed: text a
    /// user typed, or a pack stored, never becomes a control token. When no content holds a
    /// special token's text the whole text is tokenized at once, exactly as before; otherwise
    /// piece by piece.
    fn tokenize_prompt(
        &self,
        text: &str,
        content: Option<&[std::ops::Range<usize>]>,
    ) -> Vec<LlamaToken> {
        let vocab = self.model.vocab();
        let template_wrote_bos = self
            .setup
            .bos_token
            .as_deref()
            .is_some_and(|bos| !bos.is_empty() && text.starts_with(bos));
        let add_bos = vocab.should_add_bos() && !template_wrote_bos;
        let spans = content.unwrap_or(&[]);
        let specials_in_content = spans.iter().any(|s| {
            let piece = &text.as_bytes()[s.clone()];
            vocab.tokenize(piece, false, true) != vocab.tokenize(piece, false, false)
        });
        let mut tokens = if specials_in_content {
            template::pieces(text, spans)
                .into_iter()
                .flat_map(|(r, content)| vocab.tokenize(&text.as_bytes()[r], false, !content))
                .collect()
        } else {
            vocab.tokenize(text.as_bytes(), false, true)
        };
        if add_bos {
            tokens.insert(0, vocab.bos());
        }
        tokens
    }

    /// Keeps the first `keep` cached tokens and forgets the rest; returns how many were kept.
    fn truncate_cache(&mut self, keep: usize) -> usize {
        if keep == 0 {
            self.ctx.clear_kv_cache();
            self.cached.clear();
            return 0;
        }
        let removed = self
            .ctx
            .kv_cache_seq_rm(0, u32::try_from(keep).ok(), None)
            .is_ok();
        // Sliding-window layers may have evicted entries the kept prefix still needs: the
        // smallest position still held must reach back a full window (an empty window, -1,
        // holds nothing the prefix needs).
        let swa_ok = self.setup.sliding_window.is_none_or(|window| {
            let min = self.ctx.kv_cache_seq_pos_min(0);
            usize::try_from(min).is_ok_and(|min| min <= keep.saturating_sub(window as usize))
        });
        if removed && swa_ok {
            self.cached.truncate(keep);
            keep
        } else {
            self.ctx.clear_kv_cache();
            self.cached.clear();
            0
        }
    }

    /// Evaluates prompt tokens after the cached prefix; returns the batch index of the logits
    /// to sample from.
    fn eval_prompt(
        &mut self,
        tokens: &[LlamaToken],
        cancel: &CancelHandle,
    ) -> Result<i32, EngineError> {
        // Small chunks, so that a cancel or an unload waits for at most one of them.
        let chunk_len = (self.setup.prompt_chunk as usize).max(1);
        let chunks = tokens.len().div_ceil(chunk_len);
        let mut last_index = 0;
        for (i, chunk) in tokens.chunks(chunk_len).enumerate() {
            if cancel.is_cancelled() || self.setup.stopping.load(Ordering::Acquire) {
                // Keep the cache consistent with what was evaluated so far.
                break;
            }
            let last_chunk = i + 1 == chunks;
            last_index = self.decode_chunk(chunk, last_chunk)?;
        }
        Ok(last_index)
    }

    fn decode_chunk(
        &mut self,
        chunk: &[LlamaToken],
        logits_at_end: bool,
    ) -> Result<i32, EngineError> {
        self.batch.clear();
        let start = self.cached.len();
        for (i, token) in chunk.iter().enumerate() {
            let pos = i32::try_from(start + i)
                .map_err(|_| EngineError::Decode("position overflow".into()))?;
            let want_logits = logits_at_end && i + 1 == chunk.len();
            self.batch
                .add(*token, pos, &[0], want_logits)
                .map_err(|e| EngineError::Decode(e.to_string()))?;
        }
        if let Err(e) = self.ctx.decode(&mut self.batch) {
            // Leave no half-evaluated state behind.
            self.ctx.clear_kv_cache();
            self.cached.clear();
            return Err(EngineError::Decode(e.to_string()));
        }
        self.cached.extend_from_slice(chunk);
        Ok(self.batch.n_tokens() - 1)
    }

    fn decode_one(&mut self, token: LlamaToken) -> Result<i32, EngineError> {
        self.decode_chunk(&[token], true)
    }

    /// The cache as a snapshot, if conversation `session` filled it (otherwise its next answer
    /// re-reads the history anyway, in this process as after a restore).
    fn save_state(&mut self, session: u64) -> Result<Option<KvSnapshot>, EngineError> {
        let _span = tracing::info_span!("save_state", tokens = self.cached.len()).entered();
        if self.owner != Some(session) || self.cached.is_empty() {
            return Ok(None);
        }
        let flags = llama_cpp_2::context::session::LlamaStateSeqFlags::empty();
        let size = self.ctx.state_seq_get_size_ext(0, flags);
        if size == 0 {
            return Err(EngineError::Decode(
                "llama.cpp could not size the sequence state".into(),
            ));
        }
        let mut state = Zeroizing::new(vec![0u8; size]);
        // SAFETY: `state` holds the `size` bytes llama.cpp just said sequence 0 needs, and
        // nothing runs on this context between the two calls (this thread owns it).
        let written = unsafe {
            self.ctx
                .state_seq_get_data_ext(state.as_mut_ptr(), 0, flags)
        };
        if written != size {
            return Err(EngineError::Decode(format!(
                "llama.cpp wrote {written} bytes of a {size}-byte sequence state"
            )));
        }
        Ok(Some(KvSnapshot {
            tokens: self.cached.iter().map(|t| t.0).collect(),
            state,
        }))
    }

    /// Replaces the cache with `snapshot` (authenticated by the caller: it is our own
    /// earlier [`save_state`](Self::save_state)). On any failure the cache is left empty.
    fn load_state(&mut self, session: u64, snapshot: &KvSnapshot) -> Result<(), EngineError> {
        let _span = tracing::info_span!("load_state", tokens = snapshot.tokens.len()).entered();
        self.truncate_cache(0);
        self.owner = None;
        let n_vocab = self.model.n_vocab();
        let n_ctx = self.setup.plan.n_ctx as usize;
        if snapshot.tokens.is_empty()
            || snapshot.tokens.len() > n_ctx
            || snapshot.tokens.iter().any(|&t| t < 0 || t >= n_vocab)
        {
            return Err(EngineError::InvalidParams(format!(
                "a saved state of {} tokens does not fit this model and context",
                snapshot.tokens.len()
            )));
        }
        let flags = llama_cpp_2::context::session::LlamaStateSeqFlags::empty();
        // SAFETY: the bytes are a sequence state this engine build wrote for this model,
        // context size and cache type (the session file's MAC and header say so); llama.cpp
        // reads at most `state.len()` bytes.
        let loaded = unsafe { self.ctx.state_seq_set_data_ext(&snapshot.state, 0, flags) };
        let last = i32::try_from(snapshot.tokens.len() - 1).unwrap_or(i32::MAX);
        if !loaded || self.ctx.kv_cache_seq_pos_max(0) != last {
            self.truncate_cache(0);
            return Err(EngineError::Decode(
                "llama.cpp did not accept the saved sequence state".into(),
            ));
        }
        self.cached = snapshot.tokens.iter().map(|&t| LlamaToken(t)).collect();
        self.owner = Some(session);
        Ok(())
    }

    /// The bare llama-cpp-2 loop on this worker's model, context and thread (benchmarks).
    fn reference(
        &mut self,
        prompt: &[i32],
        max_tokens: usize,
    ) -> Result<ReferenceRun, EngineError> {
        let started = Instant::now();
        self.truncate_cache(0);
        self.owner = None;
        let prompt: Vec<LlamaToken> = prompt.iter().map(|&t| LlamaToken(t)).collect();
        let result = greedy_loop(
            self.model,
            &mut self.ctx,
            &prompt,
            max_tokens,
            self.setup.n_batch,
            started,
        );
        // The loop's tokens are not tracked: forget the cache so the next answer starts clean.
        self.truncate_cache(0);
        result
    }

    /// `text` as the model reads plain text: its tokens, with BOS when the model adds one.
    fn tokenize_text(&self, text: &str) -> Result<Vec<LlamaToken>, EngineError> {
        let vocab = self.model.vocab();
        let mut tokens = vocab.tokenize(text.as_bytes(), false, false);
        if vocab.should_add_bos() {
            tokens.insert(0, vocab.bos());
        }
        Ok(tokens)
    }

    /// Evaluates `tokens` from an empty cache and calls `visit(i, logits)` with the logits
    /// that predict `tokens[i + 1]`, for every position but the last.
    fn visit_logits(
        &mut self,
        tokens: &[LlamaToken],
        mut visit: impl FnMut(usize, &[f32]),
    ) -> Result<(), EngineError> {
        if tokens.len() < 2 {
            return Err(EngineError::EmptyPrompt);
        }
        let n_ctx = self.setup.plan.n_ctx as usize;
        if tokens.len() > n_ctx {
            return Err(EngineError::ContextOverflow {
                needed: tokens.len(),
                n_ctx: self.setup.plan.n_ctx,
            });
        }
        self.truncate_cache(0);
        self.owner = None;
        // Small chunks bound the logits buffer (chunk × vocabulary × 4 bytes).
        let chunk_len = (self.setup.n_batch as usize).min(64);
        for chunk in tokens.chunks(chunk_len) {
            self.batch.clear();
            let start = self.cached.len();
            for (i, token) in chunk.iter().enumerate() {
                let pos = i32::try_from(start + i)
                    .map_err(|_| EngineError::Decode("position overflow".into()))?;
                self.batch
                    .add(*token, pos, &[0], true)
                    .map_err(|e| EngineError::Decode(e.to_string()))?;
            }
            if let Err(e) = self.ctx.decode(&mut self.batch) {
                self.truncate_cache(0);
                return Err(EngineError::Decode(e.to_string()));
            }
            self.cached.extend_from_slice(chunk);
            for i in 0..chunk.len() {
                if start + i + 1 >= tokens.len() {
                    break;
                }
                visit(
                    start + i,
                    self.ctx.get_logits_ith(i32::try_from(i).unwrap_or(0)),
                );
            }
        }
        Ok(())
    }

    /// Log-probability of each token of `text` given the ones before it.
    fn score(&mut self, text: &str) -> Result<Scores, EngineError> {
        let _span = tracing::info_span!("score").entered();
        let tokens = self.tokenize_text(text)?;
        let mut logprobs = Vec::with_capacity(tokens.len().saturating_sub(1));
        self.visit_logits(&tokens, |i, logits| {
            logprobs.push(log_softmax_at(logits, tokens[i + 1].0));
        })?;
        let vocab = self.model.vocab();
        let scores: Vec<TokenScore> = logprobs
            .into_iter()
            .zip(&tokens[1..])
            .map(|(logprob, &target)| TokenScore {
                token: target.0,
                text: String::from_utf8_lossy(&vocab.token_to_piece(target, false, None))
                    .into_owned(),
                logprob,
            })
            .collect();
        let sum: f64 = scores.iter().map(|s| f64::from(s.logprob)).sum();
        let perplexity = (-sum / scores.len() as f64).exp();
        Ok(Scores {
            tokens: scores,
            sum_logprob: sum,
            perplexity,
        })
    }

    /// Raw logits for every position of `tokens` (ids checked against the vocabulary first:
    /// llama.cpp aborts the process on an out-of-range id).
    fn logits(&mut self, tokens: &[i32]) -> Result<TokenLogits, EngineError> {
        let _span = tracing::info_span!("logits", tokens = tokens.len()).entered();
        let n_vocab = usize::try_from(self.model.n_vocab()).unwrap_or(0);
        if let Some(bad) = tokens
            .iter()
            .find(|&&t| usize::try_from(t).map_or(true, |t| t >= n_vocab))
        {
            return Err(EngineError::InvalidParams(format!(
                "token id {bad} is outside the model's vocabulary of {n_vocab}"
            )));
        }
        let ids: Vec<LlamaToken> = tokens.iter().map(|&t| LlamaToken(t)).collect();
        let mut logits = Vec::with_capacity(tokens.len().saturating_sub(1) * n_vocab);
        self.visit_logits(&ids, |_, row| {
            logits.extend_from_slice(&row[..n_vocab.min(row.len())])
        })?;
        Ok(TokenLogits {
            tokens: tokens.to_vec(),
            n_vocab,
            logits,
        })
    }
}

/// Appends the answer (or rolls back the user turn) in a session's history.
fn update_history(link: &SessionLink, answer: Option<&Answer>) {
    let Ok(mut history) = link.history.lock() else {
        return;
    };
    match answer {
        Some(a) if !a.tool_calls.is_empty() => history.push(Message::assistant_calls(
            a.text.clone(),
            a.tool_calls.clone(),
        )),
        Some(a) if !a.text.is_empty() => history.push(Message::assistant(a.text.clone())),
        // A failed or empty answer: take the unanswered turn back out (its user message and
        // any tool calls and results that followed it), so the history keeps alternating.
        _ => super::session::take_back_unfinished_turn(&mut history),
    }
}

fn log_softmax_at(logits: &[f32], index: i32) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let at = usize::try_from(index)
        .ok()
        .and_then(|i| logits.get(i))
        .copied()
        .unwrap_or(f32::NEG_INFINITY);
    (f64::from(at - max) - sum.ln()) as f32
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn rate(n: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// The id of `text` when it is exactly one token of `model`'s vocabulary (special tokens
/// parsed).
fn one_token(model: &LlamaModel, text: &str) -> Option<LlamaToken> {
    match model
        .vocab()
        .tokenize(text.as_bytes(), false, true)
        .as_slice()
    {
        [one] => Some(*one),
        _ => None,
    }
}

/// The marker texts a splitter looks for (a model may write any of them as one special
/// token), plus FunctionGemma's `<escape>`.
fn markup_texts(markers: &Markers) -> Vec<&str> {
    let mut out = Vec::new();
    if let Some((open, close)) = &markers.reasoning {
        out.extend([open.as_str(), close.as_str()]);
    }
    if let Some(CallMarkers { open, close, .. }) = &markers.call {
        out.extend(open.iter().map(String::as_str));
        out.extend(close.as_deref());
        out.push("<escape>");
    }
    out
}

/// Parses every call segment; ids are `call_{earlier + 1}`, … in order. When the answer was
/// `cut` inside a further call after whole ones, the whole ones are kept and the cut one is
/// dropped.
fn read_calls(
    format: ToolFormat,
    texts: &[String],
    cut: bool,
    earlier: usize,
) -> Result<Vec<ToolCall>, ToolError> {
    let mut calls = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let parsed = match format.parse(text) {
            Err(e) if cut && i + 1 == texts.len() && !calls.is_empty() => {
                tracing::debug!(error = %e, "a further call was cut short; dropped");
                break;
            }
            other => other?,
        };
        for (name, arguments) in parsed {
            calls.push(ToolCall {
                id: format!("call_{}", earlier + calls.len() + 1),
                name,
                arguments,
            });
        }
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_sums_to_one() {
        let logits = [1.0f32, 2.0, 3.0];
        let total: f64 = (0..3)
            .map(|i| f64::from(log_softmax_at(&logits, i)).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert!(log_softmax_at(&logits, 2) > log_softmax_at(&logits, 0));
    }

    #[test]
    fn prefix_of_tokens() {
        let t = |v: &[i32]| v.iter().map(|&i| LlamaToken(i)).collect::<Vec<_>>();
        assert_eq!(common_prefix(&t(&[1, 2, 3]), &t(&[1, 2, 4, 5])), 2);
        assert_eq!(common_prefix(&t(&[]), &t(&[1])), 0);
    }
}
