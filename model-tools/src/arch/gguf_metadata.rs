//! [`Hparams`] from and to GGUF metadata: the `{arch}.*` keys, read with checks that name
//! the key ([`Hparams::from_gguf`]) and written in the order llama.cpp's converter writes
//! them ([`Hparams::write_gguf`]).

use vazhi_gguf::{GgufFile, Metadata, ValueRef};

use super::hparams::empty;
use super::{Arch, ArchError, Hparams, RopeScaling, SpecialTokenIds, MAX_DIM, MAX_LAYERS};

/// Typed access to `{arch}.*` keys, with errors that name the key.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a> {
    metadata: &'a Metadata,
    prefix: &'static str,
}

impl<'a> Keys<'a> {
    /// The keys of `arch` in `metadata`.
    pub fn new(metadata: &'a Metadata, arch: Arch) -> Self {
        Keys {
            metadata,
            prefix: arch.gguf_name(),
        }
    }

    /// The metadata the keys are read from.
    pub fn metadata(&self) -> &'a Metadata {
        self.metadata
    }

    /// The full key, `{arch}.{suffix}`.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }

    /// A non-negative integer, or an array of them that holds one value for every layer.
    pub fn uniform_usize(&self, suffix: &str) -> Result<Option<usize>, ArchError> {
        let key = self.key(suffix);
        let Some(value) = self.metadata.get(&key) else {
            return Ok(None);
        };
        if let Some(v) = value.as_u64() {
            return usize::try_from(v)
                .map(Some)
                .map_err(|_| ArchError::metadata(&key, "does not fit in memory"));
        }
        let Some(array) = value.as_array() else {
            return Err(ArchError::metadata(&key, "is not an integer"));
        };
        let values: Vec<u64> = array.iter().filter_map(ValueRef::as_u64).collect();
        if values.len() != array.len() || values.is_empty() {
            return Err(ArchError::metadata(
                &key,
                "is not an array of non-negative integers",
            ));
        }
        if values.iter().any(|&v| v != values[0]) {
            return Err(ArchError::metadata(
                &key,
                "differs between layers, which the Hugging Face config of this architecture \
                 cannot express",
            ));
        }
        usize::try_from(values[0])
            .map(Some)
            .map_err(|_| ArchError::metadata(&key, "does not fit in memory"))
    }

    /// A positive integer that must be present.
    pub fn required_usize(&self, suffix: &str) -> Result<usize, ArchError> {
        match self.uniform_usize(suffix)? {
            Some(0) => Err(ArchError::metadata(&self.key(suffix), "is 0")),
            Some(v) => Ok(v),
            None => Err(ArchError::MissingMetadata {
                key: self.key(suffix),
            }),
        }
    }

    /// `value` of `suffix`, refused when larger than `max`.
    pub fn at_most(&self, suffix: &str, value: usize, max: usize) -> Result<usize, ArchError> {
        if value > max {
            return Err(ArchError::metadata(
                &self.key(suffix),
                format!("is {value}, larger than {max}, which no real model has"),
            ));
        }
        Ok(value)
    }

    /// A finite float.
    pub fn f32(&self, suffix: &str) -> Result<Option<f32>, ArchError> {
        let key = self.key(suffix);
        match self.metadata.get(&key) {
            None => Ok(None),
            Some(v) => v
                .as_f32()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| ArchError::metadata(&key, "is not a finite float")),
        }
    }

    /// A non-negative integer.
    pub fn u64(&self, suffix: &str) -> Result<Option<u64>, ArchError> {
        let key = self.key(suffix);
        match self.metadata.get(&key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| ArchError::metadata(&key, "is not a non-negative integer")),
        }
    }

    /// A UTF-8 string.
    pub fn str(&self, suffix: &str) -> Result<Option<&'a str>, ArchError> {
        let key = self.key(suffix);
        match self.metadata.get(&key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| ArchError::metadata(&key, "is not a UTF-8 string")),
        }
    }
}

/// The `f64` a Python reader gets for an `f32` (its shortest decimal form), so `1e-5`
/// stays `1e-5` rather than `9.999999747378752e-06` in a written `config.json`.
pub fn decimal(x: f32) -> f64 {
    format!("{x}").parse::<f64>().unwrap_or(f64::from(x))
}

/// A special token id from `tokenizer.ggml.*_token_id`, checked against the vocabulary.
pub fn token_id(metadata: &Metadata, key: &str, n_tokens: usize) -> Result<Option<u32>, ArchError> {
    let Some(value) = metadata.get(key) else {
        return Ok(None);
    };
    // Some converters store -1 for "none".
    if value.as_i64() == Some(-1) {
        return Ok(None);
    }
    let id = value
        .as_u32()
        .ok_or_else(|| ArchError::metadata(key, "is not a token id"))?;
    if id as usize >= n_tokens {
        return Err(ArchError::metadata(
            key,
            format!("token {id} is outside the {n_tokens}-token vocabulary"),
        ));
    }
    Ok(Some(id))
}

impl Hparams {
    /// Reads and checks the hyper-parameters of `file` for `arch`.
    ///
    /// `vocab_size` and `tie_word_embeddings` come from the tensors (rows of
    /// `token_embd.weight`, absence of `output.weight`), `attention_bias` from the presence
    /// of `attn_q.bias`; `rope_freqs` holds the values of `rope_freqs.weight` when present.
    pub fn from_gguf(
        file: &GgufFile,
        arch: Arch,
        rope_freqs: Option<&[f32]>,
    ) -> Result<Hparams, ArchError> {
        let keys = Keys::new(&file.metadata, arch);
        let mut hp = empty(arch);
        hp.n_layer = keys.at_most(
            "block_count",
            keys.required_usize("block_count")?,
            MAX_LAYERS,
        )?;
        check_block_count(file, &keys, hp.n_layer)?;
        let dim = |suffix: &str| keys.at_most(suffix, keys.required_usize(suffix)?, MAX_DIM);
        hp.n_embd = dim("embedding_length")?;
        hp.n_ff = dim("feed_forward_length")?;
        hp.n_head = dim("attention.head_count")?;
        hp.n_head_kv = keys
            .uniform_usize("attention.head_count_kv")?
            .unwrap_or(hp.n_head);
        if hp.check_head_groups().is_err() {
            return Err(ArchError::metadata(
                &keys.key("attention.head_count_kv"),
                format!(
                    "{} does not divide the {} query heads",
                    hp.n_head_kv, hp.n_head
                ),
            ));
        }
        hp.head_dim = read_head_dim(&keys, &hp)?;
        if let Err(problem) = hp.check_projection_size() {
            return Err(ArchError::metadata(
                &keys.key("attention.key_length"),
                format!("head size {problem}"),
            ));
        }
        if let Some(rope_dim) = keys.uniform_usize("rope.dimension_count")? {
            if rope_dim != hp.head_dim {
                return Err(ArchError::metadata(
                    &keys.key("rope.dimension_count"),
                    format!(
                        "partial RoPE ({rope_dim} of {} dimensions) is not supported for {arch}",
                        hp.head_dim
                    ),
                ));
            }
        }
        let eps = keys.f32("attention.layer_norm_rms_epsilon")?;
        hp.rms_norm_eps = decimal(eps.ok_or_else(|| ArchError::MissingMetadata {
            key: keys.key("attention.layer_norm_rms_epsilon"),
        })?);
        let theta = decimal(keys.f32("rope.freq_base")?.unwrap_or(10_000.0));
        hp.rope_theta = Some(theta);
        hp.context_length =
            keys.u64("context_length")?
                .ok_or_else(|| ArchError::MissingMetadata {
                    key: keys.key("context_length"),
                })?;
        hp.rope_scaling = RopeScaling::from_gguf(&keys, rope_freqs, theta, hp.head_dim)?;

        let embd = file
            .tensor("token_embd.weight")
            .ok_or_else(|| ArchError::MissingTensor {
                name: "token_embd.weight".into(),
            })?;
        hp.vocab_size = match embd.dims.as_slice() {
            [_, rows] => usize::try_from(*rows).unwrap_or(usize::MAX),
            _ => 0,
        };
        let n_tokens = file
            .metadata
            .get_string_array_len("tokenizer.ggml.tokens")
            .unwrap_or(hp.vocab_size);
        hp.tie_word_embeddings = file.tensor("output.weight").is_none();
        hp.attention_bias = file.tensor("blk.0.attn_q.bias").is_some();
        let id = |key: &str| token_id(&file.metadata, key, n_tokens);
        hp.special_tokens = SpecialTokenIds {
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?,
            pad: id("tokenizer.ggml.padding_token_id")?,
        };
        arch.family().read_gguf(&keys, &mut hp)?;
        arch.family().check(&hp)?;
        Ok(hp)
    }

    /// Writes the `{arch}.*` hyper-parameter keys and `general.file_type`, in the order
    /// llama.cpp's converter writes them.
    pub fn write_gguf(&self, md: &mut Metadata, file_type: u32) {
        let a = self.arch.gguf_name();
        let k = |suffix: &str| format!("{a}.{suffix}");
        let u32_of = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        md.insert(k("block_count"), u32_of(self.n_layer));
        md.insert(
            k("context_length"),
            u32::try_from(self.context_length).unwrap_or(u32::MAX),
        );
        md.insert(k("embedding_length"), u32_of(self.n_embd));
        md.insert(k("feed_forward_length"), u32_of(self.n_ff));
        md.insert(k("attention.head_count"), u32_of(self.n_head));
        md.insert(k("attention.head_count_kv"), u32_of(self.n_head_kv));
        self.rope_scaling.write_gguf(md, a);
        if let Some(t) = self.rope_theta {
            md.insert(k("rope.freq_base"), t as f32);
        }
        if let Some(t) = self.rope_theta_swa {
            md.insert(k("rope.freq_base_swa"), t as f32);
        }
        md.insert(
            k("attention.layer_norm_rms_epsilon"),
            self.rms_norm_eps as f32,
        );
        // The head dimension is always written (the Python converter writes it whenever the
        // config class has a `head_dim`, which is the case for all but Qwen2).
        md.insert(k("attention.key_length"), u32_of(self.head_dim));
        md.insert(k("attention.value_length"), u32_of(self.head_dim));
        md.insert("general.file_type", file_type);
        self.arch.family().write_gguf(self, md);
    }
}

/// The head size: `attention.key_length` (equal to `value_length`), else
/// `embedding_length / head_count`; even, since RoPE rotates pairs.
fn read_head_dim(keys: &Keys<'_>, hp: &Hparams) -> Result<usize, ArchError> {
    let default = hp.n_embd / hp.n_head;
    let head_dim = keys
        .uniform_usize("attention.key_length")?
        .unwrap_or(default);
    let value_dim = keys
        .uniform_usize("attention.value_length")?
        .unwrap_or(default);
    if head_dim == 0 || head_dim != value_dim {
        return Err(ArchError::metadata(
            &keys.key("attention.value_length"),
            format!(
                "key length {head_dim} and value length {value_dim} differ (or are 0); \
                 Hugging Face {} has one head_dim",
                hp.arch.hf_class()
            ),
        ));
    }
    if !head_dim.is_multiple_of(2) {
        return Err(ArchError::metadata(
            &keys.key("attention.key_length"),
            format!("head size {head_dim} is odd; RoPE needs pairs of dimensions"),
        ));
    }
    keys.at_most("attention.key_length", head_dim, MAX_DIM)
}

/// `block_count` matches the `blk.N` tensors, when there are any.
fn check_block_count(file: &GgufFile, keys: &Keys<'_>, n_layer: usize) -> Result<(), ArchError> {
    let highest = file
        .tensors
        .iter()
        .filter_map(|t| {
            let (index, _) = t.name.strip_prefix("blk.")?.split_once('.')?;
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            index.parse::<u64>().ok()
        })
        .max();
    match highest {
        Some(h) if h.checked_add(1) != Some(n_layer as u64) => Err(ArchError::metadata(
            &keys.key("block_count"),
            format!(
                "is {n_layer} but the tensors are for layers 0..={h}; the metadata does not \
                 describe these tensors"
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value as Json};
    use vazhi_gguf::{read_bytes, write_gguf, Array, GgmlType, Limits, TensorData};

    fn gguf(metadata: Metadata, tensors: &[(&str, Vec<u64>)]) -> GgufFile {
        let datas: Vec<Vec<u8>> = tensors
            .iter()
            .map(|(_, dims)| vec![0u8; 4 * dims.iter().product::<u64>() as usize])
            .collect();
        let list: Vec<TensorData<'_>> = tensors
            .iter()
            .zip(&datas)
            .map(|((name, dims), data)| TensorData {
                name,
                dims,
                ggml_type: GgmlType::F32,
                data,
            })
            .collect();
        let mut bytes = Vec::new();
        write_gguf(&mut bytes, &metadata, &list).expect("write");
        read_bytes(&bytes, &Limits::default()).expect("read")
    }

    fn gemma_metadata() -> Metadata {
        let mut m = Metadata::new();
        m.insert("general.architecture", "gemma3");
        m.insert("gemma3.block_count", 18u32);
        m.insert("gemma3.embedding_length", 640u32);
        m.insert("gemma3.feed_forward_length", 2048u32);
        m.insert("gemma3.attention.head_count", 4u32);
        m.insert("gemma3.attention.head_count_kv", 1u32);
        m.insert("gemma3.attention.key_length", 256u32);
        m.insert("gemma3.attention.value_length", 256u32);
        m.insert("gemma3.attention.layer_norm_rms_epsilon", 1e-6f32);
        m.insert("gemma3.rope.freq_base", 1_000_000f32);
        m.insert("gemma3.attention.sliding_window", 512u32);
        m.insert("gemma3.context_length", 32768u32);
        m.insert("tokenizer.ggml.tokens", Array::from(vec!["a", "b", "c"]));
        m.insert("tokenizer.ggml.bos_token_id", 2u32);
        m.insert("tokenizer.ggml.eos_token_id", 1u32);
        m.insert("tokenizer.ggml.padding_token_id", 0u32);
        m
    }

    #[test]
    fn gemma3_config_matches_the_real_270m_config() {
        let file = gguf(gemma_metadata(), &[("token_embd.weight", vec![640, 3])]);
        let params = Hparams::from_gguf(&file, Arch::Gemma3, None).expect("params");
        let c = params.to_hf_config();
        // Values from google/gemma-3-270m config.json.
        assert_eq!(c["architectures"], json!(["Gemma3ForCausalLM"]));
        assert_eq!(c["model_type"], json!("gemma3_text"));
        assert_eq!(c["rms_norm_eps"], json!(1e-6));
        assert_eq!(c["rope_theta"], json!(1_000_000.0));
        assert_eq!(c["rope_local_base_freq"], json!(10_000.0));
        assert_eq!(c["query_pre_attn_scalar"], json!(256));
        assert_eq!(c["sliding_window"], json!(512));
        assert_eq!(c["_sliding_window_pattern"], json!(6));
        assert_eq!(c["hidden_activation"], json!("gelu_pytorch_tanh"));
        assert_eq!(c["final_logit_softcapping"], Json::Null);
        assert_eq!(c["attn_logit_softcapping"], Json::Null);
        assert_eq!(c["rope_scaling"], Json::Null);
        assert_eq!(c["tie_word_embeddings"], json!(true));
        assert_eq!(c["vocab_size"], json!(3));
        let types = c["layer_types"].as_array().expect("layer_types");
        assert_eq!(types.len(), 18);
        for (i, t) in types.iter().enumerate() {
            let want = if (i + 1) % 6 == 0 {
                "full_attention"
            } else {
                "sliding_attention"
            };
            assert_eq!(t, want, "layer {i}");
        }
        let g = params.generation_config(&[106]);
        assert_eq!(g["eos_token_id"], json!([1, 106]));
        assert_eq!(g["bos_token_id"], json!(2));
    }

    #[test]
    fn gemma3_bool_array_pattern_and_softcap() {
        let mut m = gemma_metadata();
        m.insert("gemma3.block_count", 4u32);
        m.insert(
            "gemma3.attention.sliding_window_pattern",
            Array::from(vec![true, false, true, false]),
        );
        m.insert("gemma3.final_logit_softcapping", 30f32);
        m.insert("gemma3.rope.freq_base_swa", 5000f32);
        let file = gguf(m, &[("token_embd.weight", vec![640, 3])]);
        let params = Hparams::from_gguf(&file, Arch::Gemma3, None).expect("params");
        let c = params.to_hf_config();
        assert_eq!(
            c["layer_types"],
            json!([
                "sliding_attention",
                "full_attention",
                "sliding_attention",
                "full_attention"
            ])
        );
        assert_eq!(c["_sliding_window_pattern"], json!(2));
        assert_eq!(c["final_logit_softcapping"], json!(30.0));
        assert_eq!(c["rope_local_base_freq"], json!(5000.0));
    }

    #[test]
    fn llama_config_and_bad_metadata() {
        let mut m = Metadata::new();
        m.insert("llama.block_count", 30u32);
        m.insert("llama.embedding_length", 576u32);
        m.insert("llama.feed_forward_length", 1536u32);
        m.insert("llama.attention.head_count", 9u32);
        m.insert("llama.attention.head_count_kv", 3u32);
        m.insert("llama.attention.layer_norm_rms_epsilon", 1e-5f32);
        m.insert("llama.rope.freq_base", 100_000f32);
        m.insert("llama.context_length", 8192u32);
        m.insert("llama.rope.dimension_count", 64u32);
        let file = gguf(
            m.clone(),
            &[
                ("token_embd.weight", vec![576, 4]),
                ("output.weight", vec![576, 4]),
            ],
        );
        let params = Hparams::from_gguf(&file, Arch::Llama, None).expect("params");
        assert_eq!(params.head_dim, 64);
        assert!(!params.tie_word_embeddings);
        let c = params.to_hf_config();
        assert_eq!(c["rms_norm_eps"], json!(1e-5));
        assert_eq!(c["hidden_act"], json!("silu"));
        assert_eq!(c["num_key_value_heads"], json!(3));
        assert_eq!(c["bos_token_id"], Json::Null);

        let mut bad = m.clone();
        bad.insert("llama.attention.head_count_kv", 4u32);
        let file = gguf(bad, &[("token_embd.weight", vec![576, 4])]);
        let err = Hparams::from_gguf(&file, Arch::Llama, None).expect_err("4 ∤ 9");
        assert!(err.to_string().contains("head_count_kv"), "{err}");

        let mut missing = m;
        missing.remove("llama.attention.layer_norm_rms_epsilon");
        let file = gguf(missing, &[("token_embd.weight", vec![576, 4])]);
        let err = Hparams::from_gguf(&file, Arch::Llama, None).expect_err("no eps");
        assert!(err.to_string().contains("layer_norm_rms_epsilon"), "{err}");
    }

    #[test]
    fn crafted_layer_and_head_counts_are_metadata_errors() {
        let bad_key = |m: Metadata, tensors: &[(&str, Vec<u64>)], key: &str| {
            let file = gguf(m, tensors);
            match Hparams::from_gguf(&file, Arch::Gemma3, None) {
                Err(ArchError::BadMetadata { key: k, .. }) => assert_eq!(k, key),
                other => panic!("expected bad {key}, got {other:?}"),
            }
        };
        let embd = [("token_embd.weight", vec![640, 3])];
        // Used to size `vec![false; block_count]` and the sliding pattern.
        for count in [1u64 << 40, u64::MAX] {
            let mut m = gemma_metadata();
            m.insert("gemma3.block_count", count);
            bad_key(m, &embd, "gemma3.block_count");
        }
        // block_count must match the blk.N tensors when there are any.
        let mut m = gemma_metadata();
        m.insert("gemma3.block_count", MAX_LAYERS as u32);
        bad_key(
            m,
            &[embd[0].clone(), ("blk.1.attn_norm.weight", vec![640])],
            "gemma3.block_count",
        );
        // 6 × 6148914691236517206 wraps to 4.
        let mut m = gemma_metadata();
        m.insert("gemma3.attention.head_count", 6u32);
        m.insert("gemma3.attention.head_count_kv", 6u32);
        m.insert("gemma3.attention.key_length", 6_148_914_691_236_517_206u64);
        m.insert(
            "gemma3.attention.value_length",
            6_148_914_691_236_517_206u64,
        );
        bad_key(m, &embd, "gemma3.attention.key_length");
        // Bounded separately, too large together.
        let mut m = gemma_metadata();
        m.insert("gemma3.attention.head_count", 1024u32);
        m.insert("gemma3.attention.head_count_kv", 1024u32);
        m.insert("gemma3.attention.key_length", 4096u32);
        m.insert("gemma3.attention.value_length", 4096u32);
        bad_key(m, &embd, "gemma3.attention.key_length");
        let mut m = gemma_metadata();
        m.insert("gemma3.embedding_length", 1u64 << 40);
        bad_key(m, &embd, "gemma3.embedding_length");

        // The most layers accepted, with a per-layer pattern: read in one pass (the period
        // search used to take layers² steps).
        let mut m = gemma_metadata();
        m.insert("gemma3.block_count", MAX_LAYERS as u32);
        m.insert(
            "gemma3.attention.sliding_window_pattern",
            Array::from(vec![true; MAX_LAYERS]),
        );
        let file = gguf(m, &embd);
        let params = Hparams::from_gguf(&file, Arch::Gemma3, None).expect("params");
        let window = params.sliding_window.expect("slides");
        assert_eq!((window.layers.len(), window.period), (MAX_LAYERS, None));
    }

    #[test]
    fn decimals_read_as_written() {
        assert_eq!(decimal(1e-5), 1e-5);
        assert_eq!(decimal(1e-6), 1e-6);
        assert_eq!(decimal(100_000.0), 100_000.0);
    }
}
