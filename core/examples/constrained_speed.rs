//! What a JSON Schema costs in decode speed: greedy answers to the same prompt with the
//! schema and without, interleaved in one process (the order alternates every round), each
//! model in turn. Prints per-run figures and, per model, the median decode tokens/s with the
//! schema ÷ without.
//!
//! `scripts/bench-constrained [ROUNDS] [TOKENS]`, or the built example with `[MODEL…]` after them (default:
//! 5 rounds, 128 generated tokens, SmolLM2 and Gemma 3 from the model cache). Both runs of a
//! round must generate exactly TOKENS tokens: the schema asks for more JSON than that, and the
//! unconstrained run has the model's end-of-text tokens suppressed. `scripts/bench-constrained`
//! runs it; docs/benchmarks.md quotes it.

use std::path::PathBuf;

use vazhi_core::engine::{
    Engine, EngineConfig, GenerateParams, Message, OutputConstraint, Sampling,
};

/// A list longer than any run generates: every run is cut at TOKENS.
const SCHEMA: &str = r#"{"type":"object","properties":{"cities":{"type":"array","minItems":40,
"maxItems":60,"items":{"type":"object","properties":{"name":{"type":"string","maxLength":24},
"state":{"type":"string","maxLength":24},"population":{"type":"integer","minimum":0}},
"required":["name","state","population"],"additionalProperties":false}}},"required":["cities"],
"additionalProperties":false}"#;

const QUESTION: &str = "List forty cities of India with their state and population, as JSON.";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let tokens: u32 = args.next().map_or(Ok(128), |t| t.parse())?;
    let mut models: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if models.is_empty() {
        let cache = std::env::var_os("VAZHI_MODELS").map_or_else(
            || {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".cache/vazhi/models")
            },
            PathBuf::from,
        );
        models = [
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "gemma-3-270m-q4_k_m.gguf",
        ]
        .iter()
        .map(|m| cache.join(m))
        .collect();
    }
    println!("decode speed with a JSON Schema ÷ without: greedy, {tokens} generated tokens, {rounds} rounds, interleaved");
    for model in &models {
        let engine = Engine::load(
            model,
            EngineConfig {
                n_ctx: Some(2048),
                ..EngineConfig::default()
            },
        )?;
        let name = model.file_name().unwrap_or_default().to_string_lossy();
        let messages = vec![
            Message::system("You are a helpful assistant."),
            Message::user(format!(
                "{QUESTION}\n\nAnswer with JSON that follows this schema:\n{SCHEMA}"
            )),
        ];
        let plain = GenerateParams {
            max_tokens: tokens,
            sampling: Sampling::greedy(),
            suppress: end_of_text_tokens(&engine),
            ..GenerateParams::default()
        };
        let constrained = GenerateParams {
            constraint: Some(OutputConstraint::JsonSchema(SCHEMA.into())),
            suppress: Vec::new(),
            ..plain.clone()
        };
        // Warm-up: page the weights in, fill the prompt cache the runs then share.
        engine.generate(messages.clone(), plain.clone())?.wait()?;
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let order = if round % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for schema in order {
                let params = if schema { &constrained } else { &plain };
                let answer = engine.generate(messages.clone(), params.clone())?.wait()?;
                let rate = answer.metrics.generation_tokens_per_s;
                println!(
                    "  {name} round {round} {:14} {:3} tokens {rate:7.1} tok/s  finish {}",
                    if schema { "with schema" } else { "without" },
                    answer.tokens.len(),
                    answer.finish.as_str()
                );
                if answer.tokens.len() != tokens as usize {
                    return Err(format!(
                        "{name}: a run generated {} tokens, not {tokens}",
                        answer.tokens.len()
                    )
                    .into());
                }
                if schema { &mut with } else { &mut without }.push(rate);
            }
        }
        let (w, wo) = (median(&mut with), median(&mut without));
        println!(
            "{name}: median decode {w:.1} tok/s with the schema, {wo:.1} without: ratio {:.3}",
            w / wo
        );
        engine.unload();
    }
    Ok(())
}

/// The model's end-of-text token strings (those it has as single tokens), to keep an
/// unconstrained run going for all its tokens.
fn end_of_text_tokens(engine: &Engine) -> Vec<String> {
    [
        "<|im_end|>",
        "<|endoftext|>",
        "<end_of_turn>",
        "<eos>",
        "</s>",
    ]
    .iter()
    .map(|t| (*t).to_owned())
    .filter(|t| {
        let probe = GenerateParams {
            max_tokens: 1,
            suppress: vec![t.clone()],
            ..GenerateParams::default()
        };
        engine
            .generate(vec![Message::user("Hi")], probe)
            .and_then(|g| g.wait())
            .is_ok()
    })
    .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
