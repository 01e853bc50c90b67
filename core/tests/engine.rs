//! The engine against real models: equality with a bare llama-cpp-2 loop, reproducible
//! sampling, multi-turn context, UTF-8-safe Tamil streaming, cancellation, context management,
//! scoring and the typed errors.

#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use vazhi_core::engine::reference::ReferenceModel;
use vazhi_core::engine::utf8::Utf8Stream;
use vazhi_core::engine::{
    Engine, EngineConfig, EngineError, Event, FinishReason, GenerateParams, Message, Sampling,
};

/// One engine per model for the whole test binary: loads are serialised process-wide.
fn engine(file: &'static str) -> Option<Engine> {
    static SMOL: OnceLock<Option<Engine>> = OnceLock::new();
    static GEMMA: OnceLock<Option<Engine>> = OnceLock::new();
    let cell = if file == vazhi_tests::SMOLLM2 {
        &SMOL
    } else {
        &GEMMA
    };
    cell.get_or_init(|| {
        let path = vazhi_tests::model(file)?;
        let config = EngineConfig {
            n_ctx: Some(1024),
            ..EngineConfig::default()
        };
        Some(load_retrying(&path, config))
    })
    .clone()
}

/// Loads, waiting while another test's load holds the process-wide load lock.
fn load_retrying(path: &std::path::Path, config: EngineConfig) -> Engine {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match Engine::load(path, config.clone()) {
            Err(EngineError::LoadInProgress) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other.unwrap(),
        }
    }
}

fn greedy(max_tokens: u32) -> GenerateParams {
    GenerateParams {
        max_tokens,
        sampling: Sampling::greedy(),
        ..GenerateParams::default()
    }
}

fn collect(
    generation: vazhi_core::engine::Generation,
) -> (Vec<String>, vazhi_core::engine::Answer) {
    let mut pieces = Vec::new();
    for event in generation {
        match event {
            Event::Token(t) => pieces.push(t),
            Event::Reasoning(_) => {}
            Event::Done(answer) => return (pieces, answer),
            Event::Failed(e) => panic!("generation failed: {e}"),
        }
    }
    panic!("stream ended without Done");
}

fn assert_greedy_matches_bare_loop(file: &'static str) {
    let Some(engine) = engine(file) else { return };
    let info = engine.info();
    let messages = vec![Message::user("Name three colours of the rainbow.")];
    let answer = engine
        .generate(messages.clone(), greedy(48))
        .unwrap()
        .wait()
        .unwrap();
    assert!(!answer.tokens.is_empty());

    let (_, prompt_ids) = engine.render_prompt(messages.clone()).unwrap();
    let reference =
        ReferenceModel::load(&info.report.path, info.plan.n_ctx, info.threads, 512).unwrap();
    let prompt: Vec<_> = prompt_ids
        .iter()
        .map(|&t| llama_cpp_2::token::LlamaToken(t))
        .collect();
    assert_eq!(
        answer.metrics.prompt_tokens as usize,
        prompt.len(),
        "same prompt tokens"
    );
    let bare = reference.greedy(&prompt, 48).unwrap();
    assert_eq!(
        answer.tokens, bare.tokens,
        "engine and bare llama-cpp-2 loop differ"
    );
    // The same loop hosted on the engine's own worker and context (what `vazhi bench` times).
    let hosted = engine.run_reference(prompt_ids, 48).unwrap();
    assert_eq!(
        answer.tokens, hosted.tokens,
        "engine and worker-hosted loop differ"
    );
    // The engine is clean afterwards.
    let again = engine
        .generate(messages.clone(), greedy(48))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(again.tokens, answer.tokens);
}

#[test]
fn greedy_equals_bare_llama_cpp_2_loop_smollm2() {
    assert_greedy_matches_bare_loop(vazhi_tests::SMOLLM2);
}

#[test]
fn greedy_equals_bare_llama_cpp_2_loop_gemma3() {
    assert_greedy_matches_bare_loop(vazhi_tests::GEMMA3);
}

#[test]
fn seeded_sampling_is_reproducible_and_seed_matters() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    let params = |seed| GenerateParams {
        max_tokens: 40,
        sampling: Sampling {
            temperature: 1.2,
            seed,
            ..Sampling::default()
        },
        reuse_kv_cache: false,
        ..GenerateParams::default()
    };
    let ask = |seed| {
        engine
            .generate(
                vec![Message::user("Tell me a story about a cat.")],
                params(seed),
            )
            .unwrap()
            .wait()
            .unwrap()
            .tokens
    };
    let a = ask(7);
    assert_eq!(a, ask(7), "same seed, same answer");
    let others: Vec<_> = [8, 9, 10].into_iter().map(ask).collect();
    assert!(
        others.iter().any(|o| *o != a),
        "different seeds never changed the answer"
    );
}

#[test]
fn multi_turn_chat_keeps_context_and_reuses_cache() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    let session = engine.session(Some("You are a helpful assistant.".into()));
    let first = session
        .send("My name is Kavya. Remember it.", greedy(24))
        .unwrap()
        .wait()
        .unwrap();
    assert!(!first.text.is_empty());
    let second = session
        .send("What is my name?", greedy(24))
        .unwrap()
        .wait()
        .unwrap();
    assert!(
        second.text.contains("Kavya"),
        "model forgot the name: {:?}",
        second.text
    );
    assert!(
        second.metrics.cached_prompt_tokens > 10,
        "follow-up re-read the whole history: {:?}",
        second.metrics
    );
    let history = session.history();
    assert_eq!(history.len(), 4);
    assert_eq!(history[3].content, second.text);
}

#[test]
fn tamil_stream_from_gemma3_is_utf8_safe() {
    let Some(engine) = engine(vazhi_tests::GEMMA3) else {
        return;
    };
    let generation = engine
        .generate(
            // Tamil numerals (௧ ௨ ௩ …) have no tokens of their own in Gemma 3's vocabulary:
            // the model must spell them with byte-fallback tokens, one byte each.
            vec![Message::user(
                "இந்த வரியை அப்படியே திருப்பி எழுதுங்கள்: திருக்குறள் ௧, ௨, ௩, ௪, ௫ — அறத்துப்பால்.",
            )],
            greedy(96),
        )
        .unwrap();
    let (pieces, answer) = collect(generation);
    let streamed: String = pieces.concat();
    assert_eq!(streamed, answer.text, "stream and final text differ");
    assert!(
        !streamed.contains('\u{FFFD}'),
        "replacement character in {streamed:?}"
    );
    let tamil = streamed
        .chars()
        .filter(|c| ('\u{0B80}'..='\u{0BFF}').contains(c))
        .count();
    assert!(tamil > 10, "expected Tamil text, got {streamed:?}");

    // Prove the vocabulary really split Tamil letters across tokens in this answer: decode the
    // answer's tokens one by one and count pieces that are not whole UTF-8 on their own.
    let mut stream = Utf8Stream::new();
    let mut split = 0;
    for piece in token_pieces(&engine, &answer.tokens) {
        if std::str::from_utf8(&piece).is_err() {
            split += 1;
        }
        stream.push(&piece);
    }
    assert!(
        split > 0,
        "no token split a character; the test proves nothing"
    );
    assert!(stream.split_sequences() > 0);
}

/// The raw bytes of each token, read from a bare llama-cpp-2 model.
fn token_pieces(engine: &Engine, tokens: &[i32]) -> Vec<Vec<u8>> {
    let path = &engine.info().report.path;
    let reference = ReferenceModel::load(path, 512, 1, 64).unwrap();
    tokens.iter().map(|t| reference.token_bytes(*t)).collect()
}

#[test]
fn cancel_from_another_thread_stops_within_one_token_and_session_survives() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    let session = engine.session(None);
    let mut generation = session
        .send(
            "Write a very long essay about rivers.",
            GenerateParams {
                max_tokens: 400,
                ..greedy(400)
            },
        )
        .unwrap();
    let handle = generation.cancel_handle();
    let mut seen = 0;
    // Read a few tokens, then cancel from another thread and count what still arrives.
    let mut after_cancel = None;
    let mut finish = None;
    for event in generation.by_ref() {
        match event {
            Event::Token(_) => {
                seen += 1;
                if seen == 5 {
                    let h = handle.clone();
                    std::thread::spawn(move || h.cancel()).join().unwrap();
                    after_cancel = Some(0);
                } else if let Some(n) = after_cancel.as_mut() {
                    *n += 1;
                }
            }
            Event::Done(answer) => finish = Some(answer),
            Event::Failed(e) => panic!("{e}"),
            Event::Reasoning(_) => {}
        }
    }
    let answer = finish.unwrap();
    assert_eq!(answer.finish, FinishReason::Cancelled);
    assert!(
        after_cancel.unwrap() <= 1,
        "{} tokens after cancel",
        after_cancel.unwrap()
    );
    assert!(answer.tokens.len() < 400);
    // The session still works.
    let next = session
        .send("Say hello.", greedy(8))
        .unwrap()
        .wait()
        .unwrap();
    assert_ne!(next.finish, FinishReason::Cancelled);
}

#[test]
fn dropping_a_generation_cancels_it() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    let generation = engine
        .generate(vec![Message::user("Count to one thousand.")], greedy(500))
        .unwrap();
    drop(generation);
    // The worker is free again quickly: a short answer completes.
    let started = Instant::now();
    let a = engine
        .generate(vec![Message::user("Hi")], greedy(4))
        .unwrap()
        .wait()
        .unwrap();
    assert!(a.tokens.len() <= 4);
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn long_history_drops_oldest_turns_and_never_fails_mid_answer() {
    let path = match vazhi_tests::model(vazhi_tests::SMOLLM2) {
        Some(p) => p,
        None => return,
    };
    let engine = load_retrying(
        &path,
        EngineConfig {
            n_ctx: Some(512),
            ..EngineConfig::default()
        },
    );
    let session = engine.session(Some("Be brief.".into()));
    let filler = "Tell me about the weather in Chennai in every month of the year in detail. ";
    let mut dropped = 0;
    for _ in 0..8 {
        let a = session
            .send(&filler.repeat(3), greedy(64))
            .unwrap()
            .wait()
            .unwrap();
        assert!(matches!(
            a.finish,
            FinishReason::EndOfText | FinishReason::MaxTokens | FinishReason::ContextFull
        ));
        dropped = dropped.max(a.metrics.dropped_turns);
    }
    assert!(
        dropped > 0,
        "history never had to be trimmed; the test is too small"
    );
    // A single message that cannot fit is a typed error before generation starts.
    let huge = "word ".repeat(3000);
    let err = engine
        .generate(vec![Message::user(huge)], greedy(8))
        .unwrap()
        .wait()
        .unwrap_err();
    assert!(matches!(err, EngineError::ContextOverflow { .. }), "{err}");
}

#[test]
fn bad_prompts_get_typed_errors() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    assert!(matches!(
        engine.generate(vec![Message::user("   ")], greedy(4)),
        Err(EngineError::EmptyPrompt)
    ));
    assert!(matches!(
        engine.generate(vec![], greedy(4)),
        Err(EngineError::EmptyPrompt)
    ));
    let big = "x".repeat(vazhi_core::engine::DEFAULT_MAX_PROMPT_BYTES + 1);
    assert!(matches!(
        engine.generate(vec![Message::user(big)], greedy(4)),
        Err(EngineError::PromptTooLarge { .. })
    ));
    let bad = GenerateParams {
        suppress: vec!["not one token at all".into()],
        ..greedy(4)
    };
    let err = engine
        .generate(vec![Message::user("hi")], bad)
        .unwrap()
        .wait()
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidParams(_)), "{err}");
}

#[test]
fn stop_strings_and_suppressed_tokens_apply() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    let q = || {
        vec![Message::user(
            "List the numbers from 1 to 20, separated by commas.",
        )]
    };
    let plain = engine.generate(q(), greedy(80)).unwrap().wait().unwrap();
    assert!(plain.text.contains("5"), "{:?}", plain.text);
    let stopped = engine
        .generate(
            q(),
            GenerateParams {
                stop: vec!["5".into()],
                ..greedy(80)
            },
        )
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(stopped.finish, FinishReason::StopString);
    assert!(!stopped.text.contains('5'));
    assert!(plain.text.starts_with(&stopped.text));
    // Suppress the end-of-turn token: the answer can no longer end by itself.
    let eot = engine.info().report.eos_token.clone().unwrap();
    let yes = || vec![Message::user("Is the sky blue? Answer yes or no.")];
    let short = engine.generate(yes(), greedy(100)).unwrap().wait().unwrap();
    assert_eq!(short.finish, FinishReason::EndOfText, "{:?}", short.text);
    let forced = engine
        .generate(
            yes(),
            GenerateParams {
                suppress: vec![eot],
                ..greedy(100)
            },
        )
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(forced.finish, FinishReason::MaxTokens);
}

#[test]
fn scoring_prefers_natural_text() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    let natural = engine
        .score("The capital of France is Paris. It is a large city.")
        .unwrap();
    let scrambled = engine
        .score("city large a is It Paris. is France of capital The")
        .unwrap();
    assert!(natural
        .tokens
        .iter()
        .all(|t| t.logprob <= 0.0 && t.logprob.is_finite()));
    assert!(
        natural.perplexity < scrambled.perplexity,
        "{} vs {}",
        natural.perplexity,
        scrambled.perplexity
    );
    // Scoring leaves the engine usable for generation.
    engine
        .generate(vec![Message::user("Hi")], greedy(4))
        .unwrap()
        .wait()
        .unwrap();
}

#[test]
fn logits_agree_with_scores_and_refuse_bad_ids() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    let text = "The capital of France is Paris.";
    let tokens = engine.tokenize(text).unwrap();
    let scores = engine.score(text).unwrap();
    let logits = engine.logits(tokens.clone()).unwrap();
    assert_eq!(logits.positions(), tokens.len() - 1);
    assert_eq!(scores.tokens.len(), logits.positions());
    for (i, score) in scores.tokens.iter().enumerate() {
        let row = logits.row(i).unwrap();
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let log_sum = row
            .iter()
            .map(|&l| f64::from(l - max).exp())
            .sum::<f64>()
            .ln();
        let logprob = f64::from(row[score.token as usize] - max) - log_sum;
        assert_eq!(score.token, tokens[i + 1]);
        assert!(
            (logprob - f64::from(score.logprob)).abs() < 1e-4,
            "position {i}"
        );
    }
    // Evaluation from an empty cache is deterministic.
    assert_eq!(engine.logits(tokens.clone()).unwrap().logits, logits.logits);
    let n_vocab = i32::try_from(logits.n_vocab).unwrap();
    assert!(matches!(
        engine.logits(vec![1, n_vocab]),
        Err(EngineError::InvalidParams(_))
    ));
    assert!(matches!(
        engine.logits(vec![1]),
        Err(EngineError::EmptyPrompt)
    ));
}

#[test]
fn metrics_are_filled_in() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    let a = engine
        .generate(vec![Message::user("Hello there")], greedy(16))
        .unwrap()
        .wait()
        .unwrap();
    let m = &a.metrics;
    assert!(m.prompt_tokens > 0 && m.generated_tokens > 0);
    assert!(m.time_to_first_token_ms > 0.0 && m.generation_tokens_per_s > 0.0);
    assert_eq!(m.template, vazhi_core::engine::TemplateKind::Jinja);
    assert_eq!(m.threads, vazhi_core::engine::threads::physical_cores());
    assert!(m.peak_rss_bytes.unwrap_or(1) > 0);
}

#[test]
fn a_second_load_while_one_runs_is_refused() {
    let Some(path) = vazhi_tests::model(vazhi_tests::GEMMA3) else {
        return;
    };
    // Keep trying until the two loads overlap: one must then see LoadInProgress.
    for _ in 0..20 {
        let p = path.clone();
        let first = std::thread::spawn(move || Engine::load(&p, EngineConfig::default()));
        let mut refused = false;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !first.is_finished() && Instant::now() < deadline {
            match Engine::load(&path, EngineConfig::default()) {
                Err(EngineError::LoadInProgress) => {
                    refused = true;
                    break;
                }
                Ok(engine) => drop(engine),
                Err(e) => panic!("{e}"),
            }
        }
        let first = first.join().unwrap();
        if refused {
            // Whichever load ran, it finished normally (or itself met another test's load).
            assert!(matches!(first, Ok(_) | Err(EngineError::LoadInProgress)));
            return;
        }
    }
    panic!("never managed to overlap two loads");
}

#[test]
fn memory_budget_too_small_is_a_typed_error() {
    let Some(path) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        return;
    };
    let config = EngineConfig {
        ram_budget_bytes: Some(10 << 20),
        ..EngineConfig::default()
    };
    let err = loop {
        match Engine::load(&path, config.clone()) {
            Err(EngineError::LoadInProgress) => std::thread::sleep(Duration::from_millis(50)),
            other => break other.unwrap_err(),
        }
    };
    assert!(
        matches!(err, EngineError::InsufficientMemory { .. }),
        "{err}"
    );
}

/// Reusing the KV cache across turns must not change the answer: the last turn of a long
/// conversation, answered with the cached prefix, equals the same turn answered from a cold
/// cache. For Gemma 3 the conversation outgrows the 512-token sliding window, so this also
/// covers the window check after the cache is trimmed.
fn assert_cache_reuse_is_exact(engine: &Engine, turns: usize, min_prompt_tokens: u32) {
    let session = engine.session(None);
    let paragraph = "Rivers carry water from mountains to the sea, shaping valleys, feeding farms \
                     and cities, and carrying boats and stories along their banks. ";
    let mut last = None;
    for turn in 0..turns {
        let text = format!(
            "Part {turn}. {} Summarise part {turn} in one line.",
            paragraph.repeat(4)
        );
        last = Some(session.send(&text, greedy(24)).unwrap().wait().unwrap());
    }
    let warm = last.unwrap();
    assert!(
        warm.metrics.cached_prompt_tokens > 0,
        "no reuse happened: {:?}",
        warm.metrics
    );
    assert!(
        warm.metrics.prompt_tokens > min_prompt_tokens,
        "conversation too short: {:?}",
        warm.metrics
    );
    assert_eq!(warm.metrics.dropped_turns, 0);
    // Same conversation minus the last answer, answered cold.
    let mut history = session.history();
    history.pop();
    let cold = engine
        .generate(
            history,
            GenerateParams {
                reuse_kv_cache: false,
                ..greedy(24)
            },
        )
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(cold.metrics.cached_prompt_tokens, 0);
    assert_eq!(warm.tokens, cold.tokens, "KV reuse changed the answer");
}

#[test]
fn kv_cache_reuse_is_exact_smollm2() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    assert_cache_reuse_is_exact(&engine, 4, 500);
}

#[test]
fn kv_cache_reuse_is_exact_gemma3_past_its_sliding_window() {
    let Some(path) = vazhi_tests::model(vazhi_tests::GEMMA3) else {
        return;
    };
    // With 64-token micro-batches the sliding-window cache holds 512 + 64 cells; a
    // conversation of 800+ tokens makes it evict entries the next turn's prefix may need.
    let config = EngineConfig {
        n_ctx: Some(2048),
        n_batch: 64,
        ..EngineConfig::default()
    };
    let engine = load_retrying(&path, config);
    assert_eq!(engine.info().report.sliding_window, Some(512));
    assert_cache_reuse_is_exact(&engine, 6, 800);
    // A new conversation that shares only the opening with the cached one: the window no
    // longer holds what that short prefix needs, so the engine must re-read from scratch
    // rather than reuse it, and answer exactly as a cold prompt.
    let fresh = vec![Message::user(
        "Part 0. Rivers carry water from mountains to the sea. Name one river.",
    )];
    let reused = engine
        .generate(fresh.clone(), greedy(16))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        reused.metrics.cached_prompt_tokens, 0,
        "{:?}",
        reused.metrics
    );
    let cold = GenerateParams {
        reuse_kv_cache: false,
        ..greedy(16)
    };
    let cold = engine.generate(fresh, cold).unwrap().wait().unwrap();
    assert_eq!(reused.tokens, cold.tokens);
}

#[test]
fn unload_stops_the_running_answer_and_refuses_the_rest() {
    let Some(path) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        return;
    };
    let engine = load_retrying(
        &path,
        EngineConfig {
            n_ctx: Some(1024),
            ..EngineConfig::default()
        },
    );
    let session = engine.session(None);
    let mut running = session
        .send("Write a very long essay about the sea.", greedy(900))
        .unwrap();
    let queued = engine
        .generate(vec![Message::user("And another one.")], greedy(900))
        .unwrap();
    // Wait until the first answer is streaming, then unload from another thread.
    assert!(matches!(running.next(), Some(Event::Token(_))));
    let handle = engine.clone();
    std::thread::spawn(move || handle.unload()).join().unwrap();
    let answer = running.wait().unwrap();
    assert_eq!(answer.finish, FinishReason::Cancelled);
    assert!(answer.tokens.len() < 900);
    assert!(matches!(queued.wait(), Err(EngineError::Shutdown)));
    assert!(matches!(
        engine.generate(vec![Message::user("hi")], greedy(4)),
        Err(EngineError::Shutdown)
    ));
    assert!(matches!(
        engine.score("some text"),
        Err(EngineError::Shutdown)
    ));
}

#[test]
fn clearing_a_session_mid_answer_is_refused() {
    let Some(engine) = engine(vazhi_tests::SMOLLM2) else {
        return;
    };
    let session = engine.session(None);
    let generation = session
        .send("Tell me about mountains.", greedy(200))
        .unwrap();
    assert!(matches!(
        session.clear(),
        Err(EngineError::InvalidParams(_))
    ));
    generation.cancel();
    let _ = generation.wait().unwrap();
    session.clear().unwrap();
    assert!(session.history().is_empty());
}

#[test]
fn a_reference_prompt_longer_than_a_batch_is_fed_in_chunks() {
    let Some(path) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        return;
    };
    let config = EngineConfig {
        n_ctx: Some(1024),
        n_batch: 64,
        ..EngineConfig::default()
    };
    let engine = load_retrying(&path, config);
    let text = "The river flows to the sea. ".repeat(40);
    let (_, prompt) = engine
        .render_prompt(vec![Message::user(text.clone())])
        .unwrap();
    assert!(
        prompt.len() > 64 * 3,
        "prompt of {} tokens does not span batches",
        prompt.len()
    );
    let hosted = engine.run_reference(prompt, 16).unwrap();
    let answer = engine
        .generate(vec![Message::user(text)], greedy(16))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(hosted.tokens, answer.tokens);
}
