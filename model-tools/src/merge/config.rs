//! `adapter_config.json` of a PEFT LoRA adapter: the settings a merge needs, PEFT's module
//! matching rules, and refusals of every option that makes a plain `W + s·B·A` merge wrong.
//!
//! Matching follows PEFT (`tuners/tuners_utils.py::check_target_module_exists`,
//! `utils/other.py::get_pattern_key`): a `target_modules` list matches a module whose name is
//! an entry or ends with `.entry`; a string is a regex that must match the whole name;
//! `rank_pattern` / `alpha_pattern` keys match as `(.*\.)?(key)$`.

use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::Value;

use super::MergeError;

/// Which modules `target_modules` selects.
#[derive(Debug)]
enum Targets {
    /// Names (or name suffixes after a dot).
    List(Vec<String>),
    /// A regex over the whole module name.
    Regex(Regex),
    /// PEFT's `"all-linear"` shorthand: every linear layer but the output one. Module types are
    /// not in a checkpoint, so coverage is not checked for it.
    AllLinear,
}

/// The merge-relevant settings of one LoRA adapter.
#[derive(Debug)]
pub(crate) struct LoraConfig {
    dir: PathBuf,
    /// Default rank.
    pub r: usize,
    /// Default alpha.
    pub alpha: f64,
    /// Scale by `alpha / sqrt(r)` instead of `alpha / r`.
    pub use_rslora: bool,
    /// The targeted layers store `W` as `[in, out]` (GPT-2's Conv1D).
    pub fan_in_fan_out: bool,
    targets: Targets,
    exclude: Option<Targets>,
    layers_to_transform: Option<Vec<u64>>,
    layers_pattern: Vec<Regex>,
    rank_pattern: Vec<(String, Regex, usize)>,
    alpha_pattern: Vec<(String, Regex, f64)>,
    modules_to_save: Vec<Regex>,
}

/// `init_lora_weights` values that rewrite the base weights when the adapter is created, so the
/// saved adapter only fits the residual model saved beside it.
const BASE_CHANGING_INITS: &[&str] = &["pissa", "olora", "corda", "loftq", "lora_ga"];

/// Config fields that switch on a LoRA variant or feature whose merge is not `W + s·B·A`.
const UNSUPPORTED_WHEN_SET: &[(&str, &str)] = &[
    ("use_dora", "DoRA rescales every column by a learned magnitude vector, so the merged weight is not W + s·B·A"),
    ("layer_replication", "layer replication builds a deeper model than the base checkpoint"),
    ("lora_bias", "LoRA-B biases would have to be added to the base biases"),
    ("target_parameters", "LoRA on raw nn.Parameters (MoE experts) uses a different weight layout"),
    ("trainable_token_indices", "trainable-token deltas are stored per token row, not as LoRA factors"),
    ("alora_invocation_tokens", "activated LoRA only applies after its invocation tokens and cannot be merged"),
    ("use_qalora", "QA-LoRA pools inputs in groups, so its factors do not multiply to a weight delta"),
    ("velora_config", "VeLoRA is a LoRA variant this merge does not implement"),
    ("use_bdlora", "block-diagonal LoRA factors are not stored as full matrices"),
    ("arrow_config", "Arrow routes between several LoRA experts at run time"),
    ("kasa_config", "KaSA inserts learned singular values between A and B"),
    ("monteclora_config", "MonteCLoRA samples its factors at run time"),
    ("megatron_config", "Megatron tensor-parallel layers store sharded factors"),
];

impl LoraConfig {
    /// Parses and checks the config of the adapter in `dir`.
    pub fn parse(dir: &Path, json: &Value) -> Result<LoraConfig, MergeError> {
        let bad = |field: &str, why: String| MergeError::BadConfig {
            adapter: dir.to_owned(),
            field: field.to_owned(),
            why,
        };
        let unsupported = |what: String, why: &str| MergeError::Unsupported {
            adapter: dir.to_owned(),
            what,
            why: why.to_owned(),
        };
        let object = json
            .as_object()
            .ok_or_else(|| bad("(top level)", "not a JSON object".to_owned()))?;

        let peft_type = object
            .get("peft_type")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                bad(
                    "peft_type",
                    "missing; a LoRA adapter has \"LORA\"".to_owned(),
                )
            })?;
        if !peft_type.eq_ignore_ascii_case("lora") {
            return Err(unsupported(
                format!("peft_type {peft_type:?}"),
                "only LoRA adapters (peft_type \"LORA\") can be merged into the base weights",
            ));
        }
        for (field, why) in UNSUPPORTED_WHEN_SET {
            if let Some(value) = object.get(*field).filter(|v| is_set(v)) {
                return Err(unsupported(format!("{field} = {value}"), why));
            }
        }
        match object.get("bias") {
            None | Some(Value::Null) => {}
            Some(Value::String(bias)) if bias == "none" => {}
            Some(other) => {
                return Err(unsupported(
                    format!("bias = {other}"),
                    "the adapter trained base biases too; only bias \"none\" is merged",
                ))
            }
        }
        if let Some(Value::String(init)) = object.get("init_lora_weights") {
            let init = init.to_ascii_lowercase();
            if BASE_CHANGING_INITS.iter().any(|p| init.starts_with(p)) {
                return Err(unsupported(
                    format!("init_lora_weights = {init:?}"),
                    "this initialisation rewrote the base weights, so the adapter only fits the \
                     residual model saved beside it; re-save the adapter with PEFT's \
                     save_pretrained(path_initial_model_for_weight_conversion=...) to get an \
                     adapter for the original base",
                ));
            }
        }

        let r = positive_int(object.get("r")).ok_or_else(|| {
            bad(
                "r",
                format!("must be a positive integer, got {:?}", object.get("r")),
            )
        })?;
        let alpha = object
            .get("lora_alpha")
            .and_then(Value::as_f64)
            .filter(|a| a.is_finite())
            .ok_or_else(|| bad("lora_alpha", "must be a number".to_owned()))?;
        let use_rslora = flag(object.get("use_rslora"));
        let fan_in_fan_out = flag(object.get("fan_in_fan_out"));

        let targets = match object.get("target_modules") {
            Some(Value::String(s)) if s.eq_ignore_ascii_case("all-linear") => Targets::AllLinear,
            Some(Value::String(s)) => Targets::Regex(
                full_match(s).map_err(|e| bad("target_modules", format!("bad regex: {e}")))?,
            ),
            Some(Value::Array(items)) => Targets::List(
                string_list(items)
                    .ok_or_else(|| bad("target_modules", "not a list of names".into()))?,
            ),
            other => {
                return Err(bad(
                    "target_modules",
                    format!("must be a list of module names or a regex string, got {other:?}"),
                ))
            }
        };
        let exclude = match object.get("exclude_modules") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                Some(Targets::Regex(full_match(s).map_err(|e| {
                    bad("exclude_modules", format!("bad regex: {e}"))
                })?))
            }
            Some(Value::Array(items)) => {
                Some(Targets::List(string_list(items).ok_or_else(|| {
                    bad("exclude_modules", "not a list of names".into())
                })?))
            }
            Some(other) => return Err(bad("exclude_modules", format!("unexpected {other}"))),
        };
        let layers_to_transform = match object.get("layers_to_transform") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(vec![n
                .as_u64()
                .ok_or_else(|| bad("layers_to_transform", format!("bad layer index {n}")))?]),
            Some(Value::Array(items)) if items.is_empty() => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(Value::as_u64)
                    .collect::<Option<Vec<u64>>>()
                    .ok_or_else(|| {
                        bad("layers_to_transform", "not a list of layer indices".into())
                    })?,
            ),
            Some(other) => return Err(bad("layers_to_transform", format!("unexpected {other}"))),
        };
        let layers_pattern = match object.get("layers_pattern") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) if s.is_empty() => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => string_list(items)
                .ok_or_else(|| bad("layers_pattern", "not a list of names".into()))?,
            Some(other) => return Err(bad("layers_pattern", format!("unexpected {other}"))),
        }
        .into_iter()
        .map(|p| {
            Regex::new(&format!(r"^(?:.*?\.)?(?:{p})\.(?P<idx>\d+)\."))
                .map_err(|e| bad("layers_pattern", format!("bad regex {p:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
        let layers_pattern = if layers_pattern.is_empty() {
            // PEFT's default: the first numbered path segment is the layer index.
            vec![Regex::new(r"^.*?\.[^.]*\.(?P<idx>\d+)\.")
                .map_err(|e| bad("layers_pattern", e.to_string()))?]
        } else {
            layers_pattern
        };

        let rank_pattern = patterns(object.get("rank_pattern"))
            .map_err(|why| bad("rank_pattern", why))?
            .into_iter()
            .map(|(key, regex, value)| match positive_int(Some(&value)) {
                Some(r) => Ok((key, regex, r)),
                None => Err(bad(
                    "rank_pattern",
                    format!("{key}: rank {value} is not a positive integer"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let alpha_pattern = patterns(object.get("alpha_pattern"))
            .map_err(|why| bad("alpha_pattern", why))?
            .into_iter()
            .map(
                |(key, regex, value)| match value.as_f64().filter(|a| a.is_finite()) {
                    Some(a) => Ok((key, regex, a)),
                    None => Err(bad(
                        "alpha_pattern",
                        format!("{key}: alpha {value} is not a number"),
                    )),
                },
            )
            .collect::<Result<Vec<_>, _>>()?;
        let modules_to_save = match object.get("modules_to_save") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => string_list(items)
                .ok_or_else(|| bad("modules_to_save", "not a list of names".into()))?,
            Some(other) => return Err(bad("modules_to_save", format!("unexpected {other}"))),
        }
        .into_iter()
        .map(|m| {
            Regex::new(&format!(r"^(?:.*\.)?(?:{m})(?:\..*)?$"))
                .map_err(|e| bad("modules_to_save", format!("bad name {m:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;

        Ok(LoraConfig {
            dir: dir.to_owned(),
            r,
            alpha,
            use_rslora,
            fan_in_fan_out,
            targets,
            exclude,
            layers_to_transform,
            layers_pattern,
            rank_pattern,
            alpha_pattern,
            modules_to_save,
        })
    }

    /// Whether `target_modules` is PEFT's `"all-linear"` shorthand (coverage is then unchecked).
    pub fn targets_all_linear(&self) -> bool {
        matches!(self.targets, Targets::AllLinear)
    }

    /// Whether PEFT would put a LoRA layer on `module` (a base module name such as
    /// `model.layers.0.self_attn.q_proj`).
    pub fn is_targeted(&self, module: &str) -> bool {
        if let Some(exclude) = &self.exclude {
            if matches_targets(exclude, module) {
                return false;
            }
        }
        if self.is_module_to_save(module) {
            return false;
        }
        match &self.targets {
            Targets::AllLinear => true,
            Targets::Regex(re) => re.is_match(module),
            Targets::List(names) => {
                let found = names
                    .iter()
                    .any(|t| module == t || module.ends_with(&format!(".{t}")));
                found && self.layer_allowed(module)
            }
        }
    }

    /// `layers_to_transform` / `layers_pattern` (list targets only, as in PEFT).
    fn layer_allowed(&self, module: &str) -> bool {
        let Some(layers) = &self.layers_to_transform else {
            return true;
        };
        self.layers_pattern
            .iter()
            .find_map(|re| layer_index(re, module))
            .is_some_and(|i| layers.contains(&i))
    }

    /// Whether `module` is (inside) one of `modules_to_save`.
    pub fn is_module_to_save(&self, module: &str) -> bool {
        self.modules_to_save.iter().any(|re| re.is_match(module))
    }

    /// The rank and alpha of `module` after `rank_pattern` / `alpha_pattern`.
    pub fn rank_and_alpha(&self, module: &str) -> Result<(usize, f64), MergeError> {
        let r = self.pattern_value("rank_pattern", &self.rank_pattern, module, self.r)?;
        let alpha = self.pattern_value("alpha_pattern", &self.alpha_pattern, module, self.alpha)?;
        Ok((r, alpha))
    }

    /// The LoRA scale of a module with this rank and alpha.
    pub fn scale(&self, rank: usize, alpha: f64) -> f64 {
        if self.use_rslora {
            alpha / (rank as f64).sqrt()
        } else {
            alpha / rank as f64
        }
    }

    /// PEFT takes the first matching key in file order; key order is not kept by our JSON
    /// reader, so several matching keys with different values are refused as ambiguous.
    fn pattern_value<T: PartialEq + Copy + std::fmt::Display>(
        &self,
        field: &str,
        patterns: &[(String, Regex, T)],
        module: &str,
        default: T,
    ) -> Result<T, MergeError> {
        let mut found: Option<(&str, T)> = None;
        for (key, re, value) in patterns {
            if !re.is_match(module) {
                continue;
            }
            match found {
                Some((first, v)) if v != *value => {
                    return Err(MergeError::BadConfig {
                        adapter: self.dir.clone(),
                        field: field.to_owned(),
                        why: format!(
                        "keys {first:?} ({v}) and {key:?} ({value}) both match module {module}; \
                             make them select different modules"
                    ),
                    })
                }
                Some(_) => {}
                None => found = Some((key, *value)),
            }
        }
        Ok(found.map_or(default, |(_, v)| v))
    }
}

fn matches_targets(targets: &Targets, module: &str) -> bool {
    match targets {
        Targets::AllLinear => false,
        Targets::Regex(re) => re.is_match(module),
        Targets::List(names) => names
            .iter()
            .any(|t| module == t || module.ends_with(&format!(".{t}"))),
    }
}

fn layer_index(re: &Regex, module: &str) -> Option<u64> {
    re.captures(module)
        .and_then(|c| c.name("idx"))
        .and_then(|m| m.as_str().parse().ok())
}

/// Python's `re.fullmatch(pattern, key)`.
fn full_match(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// `rank_pattern` / `alpha_pattern`: key → value, the key matched as `(.*\.)?(key)$`.
fn patterns(value: Option<&Value>) -> Result<Vec<(String, Regex, Value)>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, v)| {
                Regex::new(&format!(r"^(?:.*\.)?(?:{key})$"))
                    .map(|re| (key.clone(), re, v.clone()))
                    .map_err(|e| format!("bad pattern {key:?}: {e}"))
            })
            .collect(),
        Some(other) => Err(format!("must be an object, got {other}")),
    }
}

fn positive_int(value: Option<&Value>) -> Option<usize> {
    let v = value?;
    let n = v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && *f > 0.0)
            .map(|f| f as u64)
    })?;
    usize::try_from(n).ok().filter(|n| *n > 0)
}

fn flag(value: Option<&Value>) -> bool {
    value.and_then(Value::as_bool).unwrap_or(false)
}

/// Whether an optional config value switches its feature on (not null/false/empty).
fn is_set(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        Value::Number(_) => true,
    }
}

fn string_list(items: &[Value]) -> Option<Vec<String>> {
    items
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(extra: Value) -> Result<LoraConfig, MergeError> {
        let mut base = json!({"peft_type": "LORA", "r": 4, "lora_alpha": 8,
                              "target_modules": ["q_proj", "v_proj"]});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        LoraConfig::parse(Path::new("adapter"), &base)
    }

    #[test]
    fn list_targets_match_names_and_dotted_suffixes() {
        let c = config(json!({})).expect("valid");
        assert!(c.is_targeted("model.layers.0.self_attn.q_proj"));
        assert!(c.is_targeted("q_proj"));
        assert!(!c.is_targeted("model.layers.0.self_attn.qq_proj"));
        assert!(!c.is_targeted("model.layers.0.self_attn.k_proj"));
        assert!((c.scale(4, 8.0) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn regex_targets_must_match_the_whole_name() {
        let c = config(json!({"target_modules": r".*\.(o_proj|up_proj)", "use_rslora": true}))
            .expect("valid");
        assert!(c.is_targeted("model.layers.1.mlp.up_proj"));
        assert!(!c.is_targeted("model.layers.1.mlp.up_proj_extra"));
        assert!((c.scale(2, 4.0) - 4.0 / 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn exclusions_modules_to_save_and_layers_to_transform() {
        let c = config(json!({"exclude_modules": ["layers.1.self_attn.q_proj"],
                              "modules_to_save": ["v_proj"]}))
        .expect("valid");
        assert!(c.is_targeted("model.layers.0.self_attn.q_proj"));
        assert!(!c.is_targeted("model.layers.1.self_attn.q_proj"));
        assert!(
            !c.is_targeted("model.layers.0.self_attn.v_proj"),
            "modules_to_save wins"
        );
        assert!(c.is_module_to_save("model.layers.0.self_attn.v_proj"));

        let c =
            config(json!({"layers_to_transform": [1], "layers_pattern": "layers"})).expect("valid");
        assert!(!c.is_targeted("model.layers.0.self_attn.q_proj"));
        assert!(c.is_targeted("model.layers.1.self_attn.q_proj"));
        let c = config(json!({"layers_to_transform": 0})).expect("valid");
        assert!(c.is_targeted("model.layers.0.self_attn.q_proj"));
        assert!(!c.is_targeted("model.layers.10.self_attn.q_proj"));
    }

    #[test]
    fn rank_and_alpha_patterns_override_by_suffix() {
        let c = config(json!({"rank_pattern": {"layers.1.self_attn.v_proj": 8},
                              "alpha_pattern": {"^model.layers.0.self_attn.q_proj": 32}}))
        .expect("valid");
        assert_eq!(
            c.rank_and_alpha("model.layers.1.self_attn.v_proj")
                .expect("ok"),
            (8, 8.0)
        );
        assert_eq!(
            c.rank_and_alpha("model.layers.11.self_attn.v_proj")
                .expect("ok"),
            (4, 8.0)
        );
        assert_eq!(
            c.rank_and_alpha("model.layers.0.self_attn.q_proj")
                .expect("ok"),
            (4, 32.0)
        );
        let c = config(json!({"rank_pattern": {"v_proj": 8, "layers.1.self_attn.v_proj": 16}}))
            .expect("valid");
        assert!(c.rank_and_alpha("model.layers.1.self_attn.v_proj").is_err());
    }

    #[test]
    fn unsupported_variants_are_refused_with_the_field() {
        for extra in [
            json!({"use_dora": true}),
            json!({"layer_replication": [[0, 2], [1, 2]]}),
            json!({"bias": "all"}),
            json!({"lora_bias": true}),
            json!({"init_lora_weights": "pissa_niter_4"}),
            json!({"peft_type": "LOHA"}),
        ] {
            let err = config(extra.clone()).expect_err("refused");
            assert!(
                matches!(err, MergeError::Unsupported { .. }),
                "{extra}: {err}"
            );
            let field = extra
                .as_object()
                .and_then(|o| o.keys().next().cloned())
                .unwrap_or_default();
            let shown = if field == "peft_type" {
                "peft_type".to_owned()
            } else {
                field
            };
            assert!(err.to_string().contains(&shown), "{err}");
        }
        // Off values of the same fields are fine.
        config(
            json!({"use_dora": false, "layer_replication": null, "bias": "none",
                      "init_lora_weights": "gaussian", "megatron_config": null}),
        )
        .expect("defaults accepted");
        assert!(matches!(
            config(json!({"r": 0})),
            Err(MergeError::BadConfig { .. })
        ));
        assert!(matches!(
            config(json!({"target_modules": "(unclosed"})),
            Err(MergeError::BadConfig { .. })
        ));
    }
}
