//! [`Hparams`] from and to a Hugging Face `config.json`: read and checked as llama.cpp's
//! converter reads it (`TextModel.set_gguf_parameters` in `conversion/base.py`, with the
//! defaults of the `transformers` config classes, which `AutoConfig` fills in), and written
//! key for key as the real checkpoints of each architecture spell it.

use serde_json::{json, Map, Value as Json};

use super::hparams::empty;
use super::{Arch, ArchError, HeadDim, Hparams, RopeScaling, MAX_DIM, MAX_LAYERS};
use crate::convert::vocab::MAX_VOCAB_SIZE;

/// A key's value, `null` counting as absent.
pub(super) fn get<'a>(config: &'a Json, key: &str) -> Option<&'a Json> {
    config.get(key).filter(|v| !v.is_null())
}

/// A positive integer, when present.
pub(super) fn positive(config: &Json, key: &str) -> Result<Option<usize>, ArchError> {
    match get(config, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|&n| n > 0)
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                ArchError::config(key, format!("must be a positive integer, found {v}"))
            }),
    }
}

/// `value` of `key`, refused when larger than `max`.
fn at_most(key: &str, value: usize, max: usize) -> Result<usize, ArchError> {
    if value > max {
        return Err(ArchError::config(
            key,
            format!("({value}) is larger than {max}, which no real model has"),
        ));
    }
    Ok(value)
}

fn required(config: &Json, key: &str) -> Result<usize, ArchError> {
    positive(config, key)?.ok_or_else(|| ArchError::config(key, "is missing"))
}

/// A number, when present.
pub(super) fn float(config: &Json, key: &str) -> Result<Option<f64>, ArchError> {
    match get(config, key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| ArchError::config(key, format!("must be a number, found {v}"))),
    }
}

/// The first of `keys` present (the converter's `find_hparam`).
fn first_float(config: &Json, keys: &[&str]) -> Result<Option<f64>, ArchError> {
    for key in keys {
        if let Some(v) = float(config, key)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

fn first_positive(config: &Json, keys: &[&str]) -> Result<Option<usize>, ArchError> {
    for key in keys {
        if let Some(v) = positive(config, key)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// The `architectures[0]` of a config (or of its `text_config`), checked against the
/// supported architectures.
pub fn detect(config: &Json) -> Result<Arch, ArchError> {
    let first = |c: &Json| {
        c.get("architectures")
            .and_then(Json::as_array)
            .and_then(|a| a.first())
            .and_then(Json::as_str)
            .map(str::to_owned)
    };
    let name = config
        .get("text_config")
        .and_then(first)
        .or_else(|| first(config))
        .ok_or_else(|| ArchError::Unsupported {
            found: "(config.json has no \"architectures\")".to_owned(),
        })?;
    Arch::from_hf(&name).ok_or(ArchError::Unsupported { found: name })
}

impl Hparams {
    /// Reads and checks a `config.json`.
    pub fn from_hf_config(config: &Json) -> Result<Hparams, ArchError> {
        if let Some(q) = get(config, "quantization_config") {
            let method = q
                .get("quant_method")
                .and_then(Json::as_str)
                .unwrap_or("unknown method")
                .to_owned();
            return Err(ArchError::Quantized { method });
        }
        let arch = detect(config)?;
        let family = arch.family();
        let defaults = family.defaults();
        // The converter moves `text_config` to the top level.
        let mut merged = config.clone();
        if let (Some(obj), Some(text)) = (
            merged.as_object_mut(),
            config.get("text_config").and_then(Json::as_object),
        ) {
            for (k, v) in text {
                obj.insert(k.clone(), v.clone());
            }
        }
        let c = &merged;

        let mut hp = empty(arch);
        let bounded = |key: &str, max: usize| at_most(key, required(c, key)?, max);
        hp.n_layer = bounded("num_hidden_layers", MAX_LAYERS)?;
        hp.n_embd = bounded("hidden_size", MAX_DIM)?;
        hp.n_ff = bounded("intermediate_size", MAX_DIM)?;
        hp.vocab_size = bounded("vocab_size", MAX_VOCAB_SIZE)?;
        let n_head = match defaults.n_head {
            Some(n) => positive(c, "num_attention_heads")?.unwrap_or(n),
            None => required(c, "num_attention_heads")?,
        };
        hp.n_head = at_most("num_attention_heads", n_head, MAX_DIM)?;
        let n_head_kv =
            positive(c, "num_key_value_heads")?.unwrap_or(defaults.n_head_kv.unwrap_or(hp.n_head));
        hp.n_head_kv = at_most("num_key_value_heads", n_head_kv, MAX_DIM)?;
        hp.head_dim = match (positive(c, "head_dim")?, defaults.head_dim) {
            (Some(d), _) => at_most("head_dim", d, MAX_DIM)?,
            (None, HeadDim::Fixed(d)) => d,
            (None, HeadDim::FromHidden) => {
                if !hp.n_embd.is_multiple_of(hp.n_head) {
                    return Err(ArchError::config(
                        "head_dim",
                        format!(
                            "is missing and hidden_size {} is not divisible by \
                             num_attention_heads {}",
                            hp.n_embd, hp.n_head
                        ),
                    ));
                }
                hp.n_embd / hp.n_head
            }
        };
        hp.check_projection_size()
            .map_err(|problem| ArchError::config("head_dim", problem))?;
        hp.check_head_groups()
            .map_err(|problem| ArchError::config("num_key_value_heads", problem))?;
        hp.context_length = first_positive(
            c,
            &[
                "max_position_embeddings",
                "n_ctx",
                "n_positions",
                "max_length",
                "max_sequence_length",
                "model_max_length",
            ],
        )?
        .map_or(defaults.context_length, |n| n as u64);
        hp.rms_norm_eps = first_float(c, &["rms_norm_eps", "norm_eps"])?.unwrap_or(1e-6);
        read_rope(c, &mut hp)?;
        hp.tie_word_embeddings = get(c, "tie_word_embeddings")
            .and_then(Json::as_bool)
            .unwrap_or(defaults.tie_word_embeddings);
        family.read_hf_config(c, &mut hp)?;
        family.check(&hp)?;
        Ok(hp)
    }

    /// The `config.json` object.
    pub fn to_hf_config(&self) -> Json {
        let mut c = Map::new();
        let mut put = |k: &str, v: Json| {
            c.insert(k.to_owned(), v);
        };
        put("architectures", json!([self.arch.hf_class()]));
        put("model_type", json!(self.arch.hf_model_type()));
        put("hidden_size", json!(self.n_embd));
        put("intermediate_size", json!(self.n_ff));
        put("num_hidden_layers", json!(self.n_layer));
        put("num_attention_heads", json!(self.n_head));
        put("num_key_value_heads", json!(self.n_head_kv));
        put("head_dim", json!(self.head_dim));
        put("rms_norm_eps", json!(self.rms_norm_eps));
        put("rope_theta", json!(self.rope_theta.unwrap_or(10_000.0)));
        put("rope_scaling", self.rope_scaling.to_hf());
        put("max_position_embeddings", json!(self.context_length));
        put("vocab_size", json!(self.vocab_size));
        put("tie_word_embeddings", json!(self.tie_word_embeddings));
        put("bos_token_id", json!(self.special_tokens.bos));
        put("eos_token_id", json!(self.special_tokens.eos));
        put("pad_token_id", json!(self.special_tokens.pad));
        put("torch_dtype", json!("float32"));
        put("use_cache", json!(true));
        put("initializer_range", json!(0.02));
        put("attention_dropout", json!(0.0));
        self.arch.family().write_hf_config(self, &mut c);
        Json::Object(c)
    }

    /// The `generation_config.json` object: bos/pad ids and every end-of-generation id
    /// (`eos_token_id` becomes a list when the vocabulary has a separate end-of-turn token).
    pub fn generation_config(&self, extra_eos: &[u32]) -> Json {
        let mut eos: Vec<u32> = self.special_tokens.eos.into_iter().collect();
        for &id in extra_eos {
            if !eos.contains(&id) {
                eos.push(id);
            }
        }
        let eos = match eos.as_slice() {
            [] => Json::Null,
            [one] => json!(one),
            many => json!(many),
        };
        json!({
            "_from_model_config": true,
            "bos_token_id": self.special_tokens.bos,
            "eos_token_id": eos,
            "pad_token_id": self.special_tokens.pad,
        })
    }
}

/// RoPE base frequencies and scaling, as `TextModel.__init__` / `set_gguf_parameters`
/// resolve them: `rope_parameters` (or `rope_scaling`) with the top-level keys folded in.
fn read_rope(c: &Json, hp: &mut Hparams) -> Result<(), ArchError> {
    let defaults = hp.arch.family().defaults();
    let mut rope = get(c, "rope_parameters")
        .or_else(|| get(c, "rope_scaling"))
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    let rope_theta = first_float(
        c,
        &[
            "global_rope_theta",
            "rope_global_theta",
            "rope_theta_global",
            "rope_theta",
            "rotary_emb_base",
        ],
    )?
    .unwrap_or(defaults.rope_theta);
    let local_theta = first_float(
        c,
        &[
            "local_rope_theta",
            "rope_local_theta",
            "rope_theta_local",
            "swa_rope_theta",
            "rope_local_base_freq",
        ],
    )?
    .or(defaults.rope_theta_swa);
    if !rope.contains_key("full_attention") && !rope.contains_key("sliding_attention") {
        if let Some(t) = local_theta {
            rope.insert("sliding_attention".into(), json!({ "rope_theta": t }));
        }
        if !rope.contains_key("rope_theta") {
            rope.insert("rope_theta".into(), Json::from(rope_theta));
        }
        if !rope.contains_key("rope_type") {
            if let Some(t) = rope.get("type").cloned() {
                rope.insert("rope_type".into(), t);
            }
        }
        if !rope.contains_key("original_max_position_embeddings") {
            if let Some(o) = get(c, "original_max_position_embeddings") {
                rope.insert("original_max_position_embeddings".into(), o.clone());
            }
        }
    }
    let rope = Json::Object(rope);
    let full = rope.get("full_attention").unwrap_or(&rope);
    hp.rope_scaling = RopeScaling::from_hf(full)?;
    hp.rope_theta = full.get("rope_theta").and_then(Json::as_f64);
    hp.rope_theta_swa = rope
        .get("sliding_attention")
        .and_then(|s| s.get("rope_theta"))
        .and_then(Json::as_f64);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::arch::{SlidingWindow, MAX_LAYERS};
    use vazhi_gguf::Metadata;

    pub(crate) fn llama_config() -> Json {
        // SmolLM2-135M's config.json (abridged).
        json!({
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
            "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
            "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 100000,
            "rope_scaling": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16"
        })
    }

    pub(crate) fn gemma_config() -> Json {
        // Gemma 3 270M's config.json (abridged).
        json!({
            "architectures": ["Gemma3ForCausalLM"],
            "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18,
            "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
            "vocab_size": 262144, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": null,
            "sliding_window": 512, "final_logit_softcapping": null,
            "attn_logit_softcapping": null, "query_pre_attn_scalar": 256,
            "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention",
                "sliding_attention", "sliding_attention", "full_attention",
                "sliding_attention", "sliding_attention", "sliding_attention",
                "sliding_attention", "sliding_attention", "full_attention",
                "sliding_attention", "sliding_attention", "sliding_attention",
                "sliding_attention", "sliding_attention", "full_attention"]
        })
    }

    pub(crate) fn qwen_config(arch: &str) -> Json {
        json!({
            "architectures": [arch],
            "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
            "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
            "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "tie_word_embeddings": true, "head_dim": 64
        })
    }

    #[test]
    fn llama_writes_smollm_keys() {
        let hp = Hparams::from_hf_config(&llama_config()).expect("config");
        assert_eq!(
            (hp.arch, hp.head_dim, hp.context_length),
            (Arch::Llama, 64, 8192)
        );
        let mut md = Metadata::new();
        hp.write_gguf(&mut md, 1);
        let keys: Vec<&str> = md.keys().collect();
        assert_eq!(
            keys,
            [
                "llama.block_count",
                "llama.context_length",
                "llama.embedding_length",
                "llama.feed_forward_length",
                "llama.attention.head_count",
                "llama.attention.head_count_kv",
                "llama.rope.freq_base",
                "llama.attention.layer_norm_rms_epsilon",
                "llama.attention.key_length",
                "llama.attention.value_length",
                "general.file_type",
                "llama.vocab_size",
                "llama.rope.dimension_count",
            ]
        );
        // Values as in the SmolLM2 GGUF written by llama.cpp's converter.
        assert_eq!(md.get_f32("llama.rope.freq_base"), Some(100000.0));
        assert_eq!(
            md.get_f32("llama.attention.layer_norm_rms_epsilon"),
            Some(1e-5)
        );
        assert_eq!(md.get_u32("llama.attention.head_count_kv"), Some(3));
        assert_eq!(md.get_u32("llama.rope.dimension_count"), Some(64));
        assert_eq!(md.get_u32("llama.vocab_size"), Some(49152));
    }

    #[test]
    fn qwen3_keys() {
        let hp3 = Hparams::from_hf_config(&qwen_config("Qwen3ForCausalLM")).expect("qwen3");
        let mut md = Metadata::new();
        hp3.write_gguf(&mut md, 7);
        assert_eq!(md.get_u32("qwen3.attention.key_length"), Some(64));
        assert_eq!(md.get_f32("qwen3.rope.freq_base"), Some(1_000_000.0));
        assert!(!md.contains_key("qwen3.vocab_size"));
    }

    #[test]
    fn gemma3_270m_keys_and_pattern() {
        let config = gemma_config();
        let hp = Hparams::from_hf_config(&config).expect("gemma");
        let mut md = Metadata::new();
        md.insert("gemma3.context_length", 0u32); // the writer replaces values in place
        hp.write_gguf(&mut md, 0);
        assert_eq!(md.get_u32("gemma3.context_length"), Some(32768));
        assert_eq!(md.get_u32("gemma3.attention.sliding_window"), Some(512));
        assert_eq!(md.get_u32("gemma3.attention.key_length"), Some(256));
        assert_eq!(md.get_u32("gemma3.attention.head_count_kv"), Some(1));
        assert_eq!(md.get_f32("gemma3.rope.freq_base"), Some(1_000_000.0));
        assert_eq!(md.get_f32("gemma3.rope.freq_base_swa"), Some(10_000.0));
        assert!(!md.contains_key("gemma3.final_logit_softcapping"));
        // 270m's layer_types are llama.cpp's default pattern: nothing extra written.
        assert!(!md.contains_key("gemma3.attention.sliding_window_pattern"));

        let mut odd = config.clone();
        odd["layer_types"][0] = json!("full_attention");
        let hp = Hparams::from_hf_config(&odd).expect("odd pattern");
        let mut md = Metadata::new();
        hp.write_gguf(&mut md, 0);
        let pattern = md
            .get_array("gemma3.attention.sliding_window_pattern")
            .expect("written");
        assert_eq!(pattern.len(), 18);

        let mut bad = config.clone();
        bad["layer_types"][0] = json!("chunked_attention");
        assert!(matches!(
            Hparams::from_hf_config(&bad),
            Err(ArchError::Config { ref key, .. }) if key == "layer_types"
        ));
        let mut short = config;
        short["layer_types"] = json!(["full_attention"]);
        assert!(Hparams::from_hf_config(&short).is_err());
    }

    #[test]
    fn config_errors_are_specific() {
        let mut c = llama_config();
        c["architectures"] = json!(["MistralForCausalLM"]);
        let err = Hparams::from_hf_config(&c)
            .expect_err("unsupported")
            .to_string();
        assert!(
            err.contains("MistralForCausalLM") && err.contains("Gemma3ForCausalLM"),
            "{err}"
        );

        let mut c = llama_config();
        c.as_object_mut().expect("object").remove("hidden_size");
        let err = Hparams::from_hf_config(&c)
            .expect_err("missing")
            .to_string();
        assert!(err.contains("hidden_size is missing"), "{err}");

        let mut c = llama_config();
        c["quantization_config"] = json!({"quant_method": "bitsandbytes"});
        let err = Hparams::from_hf_config(&c)
            .expect_err("quantized")
            .to_string();
        assert!(err.contains("bitsandbytes"), "{err}");

        let mut c = llama_config();
        c["num_key_value_heads"] = json!(4);
        assert!(Hparams::from_hf_config(&c).is_err());
    }

    #[test]
    fn oversized_dimensions_are_config_errors() {
        let config_error = |c: &Json, key: &str| match Hparams::from_hf_config(c) {
            Err(ArchError::Config { key: k, .. }) => assert_eq!(k, key, "{c}"),
            other => panic!("expected a config error for {key}, got {other:?}"),
        };
        // 6 × 6148914691236517206 wraps to 4 in 64 bits: the Q rows would be 4 and the
        // permutation would divide by 4 / 6 = 0.
        let mut c = llama_config();
        c["num_attention_heads"] = json!(6);
        c["num_key_value_heads"] = json!(6);
        c["head_dim"] = json!(6_148_914_691_236_517_206u64);
        config_error(&c, "head_dim");
        // Each bounded, the product still too large.
        c["head_dim"] = json!(MAX_DIM);
        config_error(&c, "head_dim");
        // Llama 3 RoPE factors are a table of head_dim / 2 values.
        let mut c = llama_config();
        c["head_dim"] = json!(u64::MAX - 1);
        c["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0});
        config_error(&c, "head_dim");
        for (key, value) in [
            ("num_hidden_layers", json!(MAX_LAYERS + 1)),
            ("num_hidden_layers", json!(u64::MAX)),
            ("num_attention_heads", json!(1u64 << 40)),
            ("num_key_value_heads", json!(1u64 << 40)),
            ("hidden_size", json!(1u64 << 40)),
            ("intermediate_size", json!(1u64 << 40)),
            ("vocab_size", json!(9_223_372_036_854_775_807u64)),
            ("vocab_size", json!(1_000_000_000_000u64)),
        ] {
            let mut c = llama_config();
            c[key] = value;
            config_error(&c, key);
        }
    }

    #[test]
    fn rope_scaling_variants() {
        let mut c = llama_config();
        c["rope_scaling"] = json!({"type": "linear", "factor": 4.0});
        let hp = Hparams::from_hf_config(&c).expect("linear");
        assert_eq!(hp.rope_scaling, RopeScaling::Linear { factor: 4.0 });
        let mut md = Metadata::new();
        hp.write_gguf(&mut md, 1);
        assert_eq!(md.get_str("llama.rope.scaling.type"), Some("linear"));

        c["rope_scaling"] = json!({"rope_type": "yarn", "factor": 4.0,
                                   "original_max_position_embeddings": 4096});
        let hp = Hparams::from_hf_config(&c).expect("yarn");
        let mut md = Metadata::new();
        hp.write_gguf(&mut md, 1);
        assert_eq!(
            md.get_u32("llama.rope.scaling.original_context_length"),
            Some(4096)
        );

        // Llama 3.2's factors: high frequencies keep 1, low ones get `factor`.
        c["rope_theta"] = json!(500000.0);
        c["rope_scaling"] = json!({"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 8192});
        let hp = Hparams::from_hf_config(&c).expect("llama3");
        let freqs = hp.rope_freqs().expect("factors");
        assert_eq!(freqs.len(), 32);
        assert_eq!(freqs[0], 1.0);
        assert_eq!(freqs[31], 32.0);
        assert!(freqs.windows(2).all(|w| w[0] <= w[1]));
        let mut md = Metadata::new();
        hp.write_gguf(&mut md, 1);
        assert!(!md.contains_key("llama.rope.scaling.type"));
    }

    #[test]
    fn hf_config_written_from_hparams_reads_back() {
        for config in [
            llama_config(),
            gemma_config(),
            qwen_config("Qwen2ForCausalLM"),
            qwen_config("Qwen3ForCausalLM"),
        ] {
            let hp = Hparams::from_hf_config(&config).expect("read");
            let back = Hparams::from_hf_config(&hp.to_hf_config()).expect("read back");
            assert_eq!(back, hp, "{}", hp.arch);
        }
        let hp = Hparams::from_hf_config(&gemma_config()).expect("gemma");
        let window = hp.sliding_window.as_ref().expect("slides");
        assert_eq!((window.size, window.period), (512, Some(6)));
        assert_eq!(window.layers, SlidingWindow::pattern(6, 18));
    }
}
