//! The memory plan: which context size and KV-cache type fit a RAM budget.
//!
//! Resident memory while chatting is roughly the model file (mmapped, touched in full on the
//! first answer) plus the KV cache plus llama.cpp's compute buffers. The KV cache grows
//! linearly with the context: `n_ctx × layers × kv_heads × (key_len + value_len) × bytes per
//! element`. The plan takes the largest context (a multiple of 256, at most the requested size
//! and the model's training context) whose total fits; when even a 512-token F16 cache does not
//! fit, it tries an 8-bit (Q8_0) cache, which roughly halves the KV bytes.
//!
//! The estimate ignores sliding-window layers' smaller caches, so it errs on the safe side.
//!
//! The dimensions come from the model file's metadata, so every product is checked: a crafted
//! file whose cache cannot be counted in 64 bits gets [`EngineError::MemoryEstimateOverflow`]
//! rather than a wrapped, tiny estimate.

use serde::Serialize;

use super::error::EngineError;
use super::validate::ModelReport;

/// Default context size when the caller asks for none.
pub const DEFAULT_N_CTX: u32 = 4096;
/// The smallest context the planner will choose.
pub const MIN_N_CTX: u32 = 512;
/// Allowance for llama.cpp's own allocations beyond model, KV cache and compute buffer.
pub const FIXED_OVERHEAD_BYTES: u64 = 16 << 20;

/// Element type of the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KvCacheKind {
    /// 16-bit floats (llama.cpp's default).
    F16,
    /// 8-bit blocks: about half the memory; needs flash attention for the V cache.
    Q8_0,
}

impl KvCacheKind {
    /// Bytes per stored element (Q8_0 stores 32 values in 34 bytes).
    pub fn bytes_per_element(self) -> f64 {
        match self {
            KvCacheKind::F16 => 2.0,
            KvCacheKind::Q8_0 => 34.0 / 32.0,
        }
    }

    /// Bytes that `elements` stored elements take (rounded up), or `None` past `u64::MAX`.
    pub fn bytes_for(self, elements: u64) -> Option<u64> {
        match self {
            KvCacheKind::F16 => elements.checked_mul(2),
            // 34 bytes per 32 elements, without overflowing on the way.
            KvCacheKind::Q8_0 => (elements / 32)
                .checked_mul(34)?
                .checked_add((elements % 32 * 34).div_ceil(32)),
        }
    }
}

/// The chosen configuration and what it is expected to cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryPlan {
    /// Context size in tokens.
    pub n_ctx: u32,
    /// KV cache element type.
    pub kv_cache: KvCacheKind,
    /// Bytes of the model file.
    pub model_bytes: u64,
    /// Bytes of the KV cache at `n_ctx`.
    pub kv_bytes: u64,
    /// Compute buffers and fixed overhead.
    pub overhead_bytes: u64,
}

impl MemoryPlan {
    /// Expected peak resident bytes.
    pub fn total_bytes(&self) -> u64 {
        self.model_bytes
            .saturating_add(self.kv_bytes)
            .saturating_add(self.overhead_bytes)
    }
}

/// KV-cache bytes for `n_ctx` tokens of this model, with `n_ubatch`-token micro-batches.
///
/// Sliding-window layers keep only their window plus one micro-batch of cells (the engine runs
/// llama.cpp with `swa_full = false`); which layers slide is llama.cpp's per-architecture
/// pattern ([`sliding_window_pattern`]). For unknown patterns every layer is counted in full.
///
/// # Errors
///
/// [`EngineError::MemoryEstimateOverflow`] when the count does not fit in 64 bits.
pub fn kv_cache_bytes(
    report: &ModelReport,
    n_ctx: u32,
    kind: KvCacheKind,
    n_ubatch: u32,
) -> Result<u64, EngineError> {
    let overflow = || EngineError::MemoryEstimateOverflow { what: "KV cache" };
    let per_cell_per_layer = (u64::from(report.key_length) + u64::from(report.value_length))
        .checked_mul(u64::from(report.head_count_kv))
        .ok_or_else(overflow)?;
    let layers = u64::from(report.block_count);
    let (sliding_layers, sliding_cells) = match (
        report.sliding_window,
        sliding_window_pattern(&report.architecture),
    ) {
        (Some(window), Some(every)) => {
            let full_layers = layers / u64::from(every);
            // llama.cpp pads cache sizes to 256 cells.
            let cells = (u64::from(window) + u64::from(n_ubatch)).div_ceil(256) * 256;
            (layers - full_layers, cells.min(u64::from(n_ctx)))
        }
        _ => (0, 0),
    };
    let cells = (layers - sliding_layers)
        .checked_mul(u64::from(n_ctx))
        .zip(sliding_layers.checked_mul(sliding_cells))
        .and_then(|(full, sliding)| full.checked_add(sliding));
    cells
        .and_then(|cells| cells.checked_mul(per_cell_per_layer))
        .and_then(|elements| kind.bytes_for(elements))
        .ok_or_else(overflow)
}

/// Every how many layers llama.cpp uses full attention in a sliding-window architecture
/// (the others slide): Gemma 2 alternates, Gemma 3 has one global layer in six.
pub fn sliding_window_pattern(architecture: &str) -> Option<u32> {
    match architecture {
        "gemma2" => Some(2),
        "gemma3" => Some(6),
        _ => None,
    }
}

/// llama.cpp's CPU compute buffer for one micro-batch: the worst case holds a row of logits
/// per token (`n_ubatch × vocab × 4` bytes, which dominates for large vocabularies) plus the
/// activations (about 12 floats per embedding dimension per token). Calibrated against the
/// sizes llama.cpp reports: SmolLM2-135M 106.8 MiB (estimate 109.5), Gemma 3 270M 526.3 MiB
/// (estimate 527.0), both at `n_ubatch` 512. It is address space reserved up front; only the
/// part a batch touches becomes resident.
///
/// # Errors
///
/// [`EngineError::MemoryEstimateOverflow`] when the count does not fit in 64 bits.
pub fn overhead_bytes(report: &ModelReport, n_ubatch: u32) -> Result<u64, EngineError> {
    let per_token = u64::from(report.vocab_size) + 12 * u64::from(report.embedding_length);
    u64::from(n_ubatch)
        .checked_mul(per_token)
        .and_then(|floats| floats.checked_mul(4))
        .and_then(|bytes| bytes.checked_add(FIXED_OVERHEAD_BYTES))
        .ok_or(EngineError::MemoryEstimateOverflow {
            what: "compute buffer",
        })
}

/// Picks the context size and KV type for `report` within `budget_bytes` (no budget: the
/// requested or default context, F16).
///
/// # Errors
///
/// [`EngineError::InsufficientMemory`] when not even the smallest plan fits the budget;
/// [`EngineError::MemoryEstimateOverflow`] when the model's dimensions overflow the estimate.
pub fn plan_memory(
    report: &ModelReport,
    budget_bytes: Option<u64>,
    requested_ctx: Option<u32>,
    n_ubatch: u32,
) -> Result<MemoryPlan, EngineError> {
    let ceiling = requested_ctx
        .unwrap_or(DEFAULT_N_CTX)
        .min(report.context_length);
    let ceiling = (ceiling / 256 * 256).max(MIN_N_CTX.min(report.context_length));
    let overhead = overhead_bytes(report, n_ubatch)?;
    let plan = |n_ctx, kind| -> Result<MemoryPlan, EngineError> {
        Ok(MemoryPlan {
            n_ctx,
            kv_cache: kind,
            model_bytes: report.file_bytes,
            kv_bytes: kv_cache_bytes(report, n_ctx, kind, n_ubatch)?,
            overhead_bytes: overhead,
        })
    };
    let Some(budget) = budget_bytes else {
        return plan(ceiling, KvCacheKind::F16);
    };
    for kind in [KvCacheKind::F16, KvCacheKind::Q8_0] {
        let mut n_ctx = ceiling;
        loop {
            let candidate = plan(n_ctx, kind)?;
            if candidate.total_bytes() <= budget {
                return Ok(candidate);
            }
            if n_ctx <= MIN_N_CTX {
                break;
            }
            n_ctx = (n_ctx - 256).max(MIN_N_CTX);
        }
    }
    let smallest = plan(MIN_N_CTX.min(ceiling), KvCacheKind::Q8_0)?;
    Err(EngineError::InsufficientMemory {
        needed: smallest.total_bytes(),
        budget,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ModelReport {
        ModelReport {
            path: "m.gguf".into(),
            file_bytes: 100 << 20,
            gguf_version: 3,
            architecture: "llama".into(),
            name: None,
            parameter_count: 0,
            file_type: Some(15),
            file_type_name: None,
            tensor_count: 0,
            context_length: 8192,
            block_count: 30,
            embedding_length: 576,
            head_count: 9,
            head_count_kv: 3,
            key_length: 64,
            value_length: 64,
            sliding_window: None,
            vocab_size: 49152,
            chat_template: None,
            has_chat_template: false,
            bos_token: None,
            eos_token: None,
        }
    }

    #[test]
    fn kv_bytes_match_hand_computation() {
        // 30 layers × 3 heads × 128 × 2 bytes = 23 040 bytes per token.
        assert_eq!(
            kv_cache_bytes(&report(), 1000, KvCacheKind::F16, 512).unwrap(),
            23_040_000
        );
    }

    #[test]
    fn sliding_window_layers_hold_only_their_window() {
        // Gemma 3 270M: 18 layers, 1 KV head, 256 + 256 wide, window 512, every 6th layer
        // global. llama.cpp reports 6 MiB (3 layers × 2048 cells) + 15 MiB (15 layers × 1024
        // cells) at n_ctx 2048 and n_ubatch 512.
        let gemma = ModelReport {
            architecture: "gemma3".into(),
            block_count: 18,
            head_count_kv: 1,
            key_length: 256,
            value_length: 256,
            sliding_window: Some(512),
            ..report()
        };
        assert_eq!(
            kv_cache_bytes(&gemma, 2048, KvCacheKind::F16, 512).unwrap(),
            21 << 20
        );
        // A short context is not padded up to the window.
        assert_eq!(
            kv_cache_bytes(&gemma, 512, KvCacheKind::F16, 512).unwrap(),
            18 * 512 * 512 * 2
        );
    }

    #[test]
    fn no_budget_takes_request_capped_by_training_context() {
        let p = plan_memory(&report(), None, Some(100_000), 512).unwrap();
        assert_eq!(p.n_ctx, 8192);
        assert_eq!(p.kv_cache, KvCacheKind::F16);
    }

    #[test]
    fn budget_shrinks_context_then_switches_to_q8() {
        let r = report();
        let roomy = plan_memory(&r, Some(1 << 30), Some(8192), 512).unwrap();
        assert_eq!(roomy.n_ctx, 8192);
        let tight_budget = r.file_bytes + overhead_bytes(&r, 512).unwrap() + 2048 * 23_040;
        let tight = plan_memory(&r, Some(tight_budget), Some(8192), 512).unwrap();
        assert_eq!((tight.n_ctx, tight.kv_cache), (2048, KvCacheKind::F16));
        assert!(tight.total_bytes() <= tight_budget);
        let tighter = r.file_bytes + overhead_bytes(&r, 512).unwrap() + 512 * 23_040 - 1;
        let q8 = plan_memory(&r, Some(tighter), Some(8192), 512).unwrap();
        assert_eq!(q8.kv_cache, KvCacheKind::Q8_0);
        assert!(matches!(
            plan_memory(&r, Some(r.file_bytes), None, 512),
            Err(EngineError::InsufficientMemory { .. })
        ));
    }

    #[test]
    fn q8_bytes_round_up_and_never_overflow_on_the_way() {
        assert_eq!(KvCacheKind::Q8_0.bytes_for(32), Some(34));
        assert_eq!(KvCacheKind::Q8_0.bytes_for(33), Some(36));
        assert_eq!(KvCacheKind::Q8_0.bytes_for(1000), Some(1063));
        assert_eq!(KvCacheKind::Q8_0.bytes_for(u64::MAX), None);
        assert_eq!(
            KvCacheKind::Q8_0.bytes_for(u64::MAX / 34 * 32),
            Some(u64::MAX / 34 * 34)
        );
        assert_eq!(KvCacheKind::F16.bytes_for(u64::MAX / 2 + 1), None);
    }

    #[test]
    fn hostile_dimensions_are_a_typed_error_not_a_wrapped_estimate() {
        let huge = ModelReport {
            context_length: u32::MAX,
            block_count: u32::MAX,
            embedding_length: u32::MAX,
            head_count: u32::MAX,
            head_count_kv: u32::MAX,
            key_length: u32::MAX,
            value_length: u32::MAX,
            vocab_size: u32::MAX,
            ..report()
        };
        let overflow = |r: Result<u64, EngineError>| {
            matches!(r, Err(EngineError::MemoryEstimateOverflow { .. }))
        };
        for kind in [KvCacheKind::F16, KvCacheKind::Q8_0] {
            assert!(overflow(kv_cache_bytes(&huge, u32::MAX, kind, 512)));
            assert!(overflow(kv_cache_bytes(&huge, 512, kind, 512)));
        }
        // Each product alone: heads × widths, layers × context, elements × bytes.
        let wide = ModelReport {
            head_count_kv: u32::MAX,
            key_length: u32::MAX,
            value_length: u32::MAX,
            ..report()
        };
        assert!(overflow(kv_cache_bytes(&wide, 512, KvCacheKind::F16, 512)));
        let deep = ModelReport {
            block_count: u32::MAX,
            head_count_kv: u32::MAX,
            key_length: 1 << 16,
            value_length: 1 << 16,
            ..report()
        };
        assert!(overflow(kv_cache_bytes(
            &deep,
            u32::MAX,
            KvCacheKind::Q8_0,
            512
        )));
        assert!(overflow(overhead_bytes(&huge, u32::MAX)));
        // With or without a budget, planning refuses the model instead of loading it.
        for budget in [None, Some(1 << 30), Some(u64::MAX)] {
            assert!(matches!(
                plan_memory(&huge, budget, None, 512),
                Err(EngineError::MemoryEstimateOverflow { .. })
            ));
        }
        // Large but countable dimensions still plan (and simply do not fit).
        let big = ModelReport {
            head_count_kv: 1 << 16,
            ..report()
        };
        assert!(kv_cache_bytes(&big, 8192, KvCacheKind::F16, 512).is_ok());
        assert!(matches!(
            plan_memory(&big, Some(1 << 30), None, 512),
            Err(EngineError::InsufficientMemory { .. })
        ));
    }
}
