//! Refusing quantized bases: a LoRA merge must go into full-precision weights.
//!
//! Looks at `config.json` (`quantization_config`, as written by transformers for
//! bitsandbytes, GPTQ, AWQ, FP8, compressed-tensors, …) and at the tensors themselves
//! (integer or 8-bit-float weights, and the side tensors quantizers store next to them).

use serde_json::Value;

use crate::hf::{Checkpoint, Dtype};

/// Tensor-name suffixes that only quantized checkpoints carry.
const QUANT_SUFFIXES: &[&str] = &[
    ".qweight",           // GPTQ / AWQ packed weights
    ".qzeros",            // GPTQ / AWQ zero points
    ".absmax",            // bitsandbytes 4-bit block scales
    ".nested_absmax",     // bitsandbytes double quantization
    ".quant_map",         // bitsandbytes 4-bit code book
    ".nested_quant_map",  // bitsandbytes double quantization
    ".SCB",               // bitsandbytes 8-bit row scales
    ".weight_format",     // bitsandbytes 8-bit layout marker
    ".weight_scale_inv",  // FP8 block scales
    ".weight_zero_point", // compressed-tensors
    ".weight_packed",     // compressed-tensors
];

/// Why the base looks quantized, or `None` when it is full precision.
pub(crate) fn quantization_reason(
    config: Option<&Value>,
    checkpoint: &Checkpoint,
) -> Option<String> {
    if let Some(q) = config
        .and_then(|c| c.get("quantization_config"))
        .filter(|q| !q.is_null())
    {
        let mut parts = Vec::new();
        if let Some(method) = q.get("quant_method").and_then(Value::as_str) {
            parts.push(format!("quant_method {method:?}"));
        }
        for flag in ["load_in_4bit", "load_in_8bit"] {
            if q.get(flag).and_then(Value::as_bool) == Some(true) {
                parts.push(format!("{flag}: true"));
            }
        }
        if let Some(bits) = q.get("bits").and_then(Value::as_u64) {
            parts.push(format!("{bits} bits"));
        }
        return Some(format!(
            "config.json has a quantization_config: {}",
            parts.join(", ")
        ));
    }
    let names = checkpoint.names();
    let has_integer_tensor = names
        .iter()
        .any(|name| checkpoint.tensor(name).is_ok_and(|t| is_integer(&t.dtype)));
    for name in &names {
        if let Some(suffix) = QUANT_SUFFIXES.iter().find(|s| name.ends_with(*s)) {
            return Some(format!("tensor {name} is a {suffix} quantization tensor"));
        }
        if name.contains(".quant_state.") {
            return Some(format!("tensor {name} is bitsandbytes quantization state"));
        }
        if has_integer_tensor && (name.ends_with(".scales") || name.ends_with(".g_idx")) {
            return Some(format!(
                "tensor {name} holds the scales of integer-packed weights"
            ));
        }
        let Ok(tensor) = checkpoint.tensor(name) else {
            continue;
        };
        if name.ends_with("weight") && !tensor.dtype.is_float() {
            return Some(format!(
                "weight {name} is stored as {} rather than F32/F16/BF16",
                tensor.dtype
            ));
        }
    }
    None
}

fn is_integer(dtype: &Dtype) -> bool {
    matches!(
        dtype,
        Dtype::I8
            | Dtype::U8
            | Dtype::I16
            | Dtype::U16
            | Dtype::I32
            | Dtype::U32
            | Dtype::I64
            | Dtype::U64
    )
}
