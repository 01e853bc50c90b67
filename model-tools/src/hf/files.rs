//! The file names of a Hugging Face model directory, in one place: every reader and writer of
//! such a directory joins these instead of spelling the names out.

/// The model's hyper-parameters (`transformers`' `PretrainedConfig`).
pub const CONFIG_JSON: &str = "config.json";
/// Default generation settings (EOS ids, sampling).
pub const GENERATION_CONFIG_JSON: &str = "generation_config.json";
/// The fast tokenizer (`tokenizers` library format).
pub const TOKENIZER_JSON: &str = "tokenizer.json";
/// Tokenizer settings: special tokens, `add_*_token` flags, often the chat template.
pub const TOKENIZER_CONFIG_JSON: &str = "tokenizer_config.json";
/// The older special-token map (`bos_token`, `eos_token`, …).
pub const SPECIAL_TOKENS_MAP_JSON: &str = "special_tokens_map.json";
/// Tokens added to a SentencePiece vocabulary, text → id.
pub const ADDED_TOKENS_JSON: &str = "added_tokens.json";
/// A SentencePiece model (`sentencepiece.ModelProto`).
pub const TOKENIZER_MODEL: &str = "tokenizer.model";
/// The chat template as a file of its own (what `transformers` saves now).
pub const CHAT_TEMPLATE_JINJA: &str = "chat_template.jinja";
/// The chat template in a JSON object (`{"chat_template": …}`), as processors saved it.
pub const CHAT_TEMPLATE_JSON: &str = "chat_template.json";
/// The folder of named extra chat templates (`<name>.jinja`) beside [`CHAT_TEMPLATE_JINJA`].
pub const ADDITIONAL_CHAT_TEMPLATES: &str = "additional_chat_templates";
/// Unsharded safetensors weights.
pub const MODEL_SAFETENSORS: &str = "model.safetensors";
/// The index of sharded safetensors weights (tensor name → shard file).
pub const MODEL_SAFETENSORS_INDEX_JSON: &str = "model.safetensors.index.json";
