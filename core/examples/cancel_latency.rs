//! How long a cancel and an unload wait while the engine reads a long prompt, and what reading
//! the prompt in small chunks costs in prompt speed — the old chunking (a whole `n_batch`, 512
//! tokens) against the new (`prompt_chunk`, 64), interleaved in one run.
//!
//! `cargo run --release --example cancel_latency -- [MODEL] [ROUNDS] [CHUNKS]` (default:
//! SmolLM2 from the model cache, 5 rounds, chunks `512,64`; the first is the baseline). Prints
//! medians; docs/benchmarks.md quotes them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vazhi_core::engine::{Engine, EngineConfig, Event, GenerateParams, Message};

const PROMPT_TOKENS: usize = 2_000;

/// One chunking's samples: chunk size, prompt tok/s, cancel waits (ms), unload waits (ms).
type Samples = (u32, Vec<f64>, Vec<f64>, Vec<f64>);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = match args.next() {
        Some(p) => PathBuf::from(p),
        None => {
            let cache = std::env::var_os("VAZHI_MODELS").map_or_else(
                || {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/vazhi/models")
                },
                PathBuf::from,
            );
            cache.join("SmolLM2-135M-Instruct.Q4_1.gguf")
        }
    };
    let rounds: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let chunks: Vec<u32> = args
        .next()
        .unwrap_or_else(|| "512,64".to_owned())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    println!(
        "cancel latency and prompt speed, {} prompt tokens, {rounds} rounds, model {}",
        PROMPT_TOKENS,
        model.display()
    );
    let mut results: Vec<Samples> = chunks
        .iter()
        .map(|&c| (c, vec![], vec![], vec![]))
        .collect();
    for round in 0..rounds {
        // Alternate the order of the chunkings every round.
        let mut order: Vec<usize> = (0..results.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let chunk = results[i].0;
            let config = EngineConfig {
                n_ctx: Some(4096),
                prompt_chunk: chunk,
                ..EngineConfig::default()
            };
            let engine = Engine::load(&model, config)?;
            let text = prompt_text(&engine)?;
            let messages = vec![Message::user(text)];
            let params = GenerateParams {
                max_tokens: 1,
                reuse_kv_cache: false,
                ..GenerateParams::default()
            };
            // Prompt speed: the whole prompt, one token.
            let mut speed = 0.0;
            for event in engine.generate(messages.clone(), params.clone())? {
                if let Event::Done(a) = event {
                    speed = a.metrics.prompt_tokens_per_s;
                }
            }
            results[i].1.push(speed);
            // Cancel a third of the way into the prompt.
            let third = Duration::from_secs_f64(PROMPT_TOKENS as f64 / speed / 3.0);
            let generation = engine.generate(messages.clone(), params.clone())?;
            let cancel = generation.cancel_handle();
            std::thread::sleep(third);
            let asked = Instant::now();
            cancel.cancel();
            for event in generation {
                if let Event::Done(_) | Event::Failed(_) = event {
                    break;
                }
            }
            results[i].2.push(asked.elapsed().as_secs_f64() * 1000.0);
            // Unload a third of the way into the prompt.
            let generation = engine.generate(messages, params)?;
            std::thread::sleep(third);
            let asked = Instant::now();
            engine.unload();
            results[i].3.push(asked.elapsed().as_secs_f64() * 1000.0);
            drop(generation);
        }
    }
    let base = median(&results[0].1);
    for (chunk, speed, cancel, unload) in &results {
        println!(
            "  prompt chunk {chunk:>3}: prompt {:>7.1} tok/s (×{:.3} of the first), cancel waits {:>6.1} ms (max {:>6.1}), unload waits {:>6.1} ms (max {:>6.1})",
            median(speed),
            median(speed) / base,
            median(cancel),
            cancel.iter().copied().fold(0.0, f64::max),
            median(unload),
            unload.iter().copied().fold(0.0, f64::max),
        );
    }
    Ok(())
}

/// A user message that the model's template turns into about [`PROMPT_TOKENS`] tokens.
fn prompt_text(engine: &Engine) -> Result<String, Box<dyn std::error::Error>> {
    let sentence =
        "The river carries rain from the hills to the sea, and the farmers along its banks \
                    plant rice when the monsoon comes. ";
    let per = engine.tokenize(sentence)?.len().max(1);
    Ok(sentence.repeat(PROMPT_TOKENS / per))
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}
