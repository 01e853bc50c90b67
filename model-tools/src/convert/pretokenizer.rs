//! Naming a BPE tokenizer's pre-tokenizer for llama.cpp (`tokenizer.ggml.pre`).
//!
//! llama.cpp re-implements each known pre-tokenizer (the regex split before BPE) and picks one
//! by name. The name is found the way llama.cpp's converter finds it (`get_vocab_base_pre`):
//! tokenize the fixed text [`CHKTXT`] with the Hugging Face tokenizer, hash the Python
//! representation of the id list (`str([1, 2, 3])`) with SHA-256 and look the hash up in
//! [`KNOWN_HASHES`]. When the hash is unknown, a few pre-tokenizer JSON structures whose
//! llama.cpp equivalent is unambiguous are recognised; anything else is refused, because a
//! wrong name makes llama.cpp split text differently from the model's training.

use sha2::{Digest, Sha256};

/// Why the pre-tokenizer could not be named.
#[derive(Debug, thiserror::Error)]
pub enum PreTokenizerError {
    /// The tokenizer failed to encode the check text.
    #[error("the tokenizer could not encode the pre-tokenizer check text: {0}")]
    Encode(String),
    /// Neither the hash nor the structure is known.
    #[error(
        "unknown BPE pre-tokenizer (check-text hash {hash}; pre_tokenizer {structure}): llama.cpp \
         would split text differently from this tokenizer and the model would see wrong tokens. \
         If this tokenizer is a copy of a known model's, use that model's tokenizer files; \
         otherwise it needs llama.cpp support first (see llama.cpp's convert_hf_to_gguf_update.py)"
    )]
    Unknown {
        /// SHA-256 of the check text's ids (with special tokens).
        hash: String,
        /// A short description of the JSON `pre_tokenizer`.
        structure: String,
    },
}

/// How the name was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Detection {
    /// The check-text hash is in [`KNOWN_HASHES`].
    Hash,
    /// The pre-tokenizer JSON matched a known structure (the hash was unknown).
    Structure,
}

/// The text llama.cpp's converter tokenizes to fingerprint a pre-tokenizer (`chktxt`).
pub const CHKTXT: &str = "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u{200d}🌫\u{fe0f} (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL";

/// `(sha256 of str(ids of CHKTXT), tokenizer.ggml.pre)`: the table of llama.cpp's
/// `convert_hf_to_gguf.py` (`get_vocab_base_pre`, llama.cpp as vendored by llama-cpp-python
/// 0.3.36). Where that table lists a hash twice, the later entry (the one Python returns) is
/// kept.
pub const KNOWN_HASHES: &[(&str, &str)] = &[
    (
        "b6e8e1518dc4305be2fe39c313ed643381c4da5db34a98f6a04c093f8afbe99b",
        "chatglm-bpe",
    ),
    (
        "81d72c7348a9f0ebe86f23298d37debe0a5e71149e29bd283904c02262b27516",
        "chatglm-bpe",
    ),
    (
        "a1336059768a55c99a734006ffb02203cd450fed003e9a71886c88acf24fdbc2",
        "glm4",
    ),
    (
        "9ca2dd618e8afaf09731a7cf6e2105b373ba6a1821559f258b272fe83e6eb902",
        "glm4",
    ),
    (
        "cdf5f35325780597efd76153d4d1c16778f766173908894c04afc20108536267",
        "glm4",
    ),
    (
        "1431a23e583c97432bc230bff598d103ddb5a1f89960c8f1d1051aaa944d0b35",
        "minerva-7b",
    ),
    (
        "7e57df22b1fe23a7b1e1c7f3dc4e3f96d43a4eb0836d0c6bdc3436d7b2f1c664",
        "hunyuan",
    ),
    (
        "bba3b3366b646dbdded5dbc42d59598b849371afc42f7beafa914afaa5b70aa6",
        "hunyuan-dense",
    ),
    (
        "e6ddf9c6686791c12d698d34c31ab9be1fea9af5a3d9a6909783ab382198ae1c",
        "hy_v4",
    ),
    (
        "a6b57017d60e6edb4d88ecc2845188e0eb333a70357e45dcc9b53964a73bbae6",
        "falcon-h1",
    ),
    (
        "60476e1243776c4fb1b993dbd7a5f15ac22f83c80afdf425fa5ae01c8d44ef86",
        "falcon-h1",
    ),
    (
        "3eda48b4c4dc7de733d1a8b3e3b4a85243dbbf704da2ee9d42c6beced8897896",
        "falcon-h1",
    ),
    (
        "48f8e02c0359c0bbdd82f26909171fac1c18a457bb47573ed1fe3bbb2c1cfd4b",
        "falcon-h1",
    ),
    (
        "81212dc7cdb7e0c1074ca62c5aeab0d43c9f52b8a737be7b12a777c953027890",
        "kimi-k2",
    ),
    (
        "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c",
        "qwen2",
    ),
    (
        "1444df51289cfa8063b96f0e62b1125440111bc79a52003ea14b6eac7016fd5f",
        "qwen35",
    ),
    (
        "66b8d4e19ab16c3bfd89bce5d785fb7e0155e8648708a1f42077cb9fe002c273",
        "grok-2",
    ),
    (
        "b3d1dd861f1d4c5c0d2569ce36baf3f90fe8a102db3de50dd71ff860d91be3df",
        "jina-v2-de",
    ),
    (
        "0fe1cf6eda062318a1af7270f3331a85c539a01778ff948e24388e949c5282f4",
        "gpt-2",
    ),
    (
        "9e454714343b69b99b71795c1d27a68c2a1d15dab111f4d353109f966af29da7",
        "lfm2",
    ),
    (
        "846deafc5b0fa786186fa4ae6c7b49903cf2f1d1895bdb80b9120d60be135252",
        "gemma4",
    ),
    (
        "0a766d034107bc736a3f2dc4968fd62e54a3570f1454443e0c5a4cc6bd7941ed",
        "spark2_5",
    ),
    (
        "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5",
        "llama-bpe",
    ),
    (
        "049ecf7629871e3041641907f3de7c733e4dbfdc736f57d882ba0b0845599754",
        "deepseek-llm",
    ),
    (
        "347715f544604f9118bb75ed199f68779f423cabb20db6de6f31b908d04d7821",
        "deepseek-coder",
    ),
    (
        "8aeee3860c56296a157a1fe2fad249ec40aa59b1bb5709f4ade11c4e6fe652ed",
        "falcon",
    ),
    (
        "0876d13b50744004aa9aeae05e7b0647eac9d801b5ba4668afc01e709c15e19f",
        "jina-v2-en",
    ),
    (
        "9d032fcbd5501f4a38150912590928bfb36091efb5df11b8e2124b0390e3fb1e",
        "falcon3",
    ),
    (
        "8e62295832751ca1e8f92f2226f403dea30dc5165e448b5bfa05af5340c64ec7",
        "bert-bge-large",
    ),
    (
        "b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166",
        "olmo",
    ),
    (
        "35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34",
        "starcoder",
    ),
    (
        "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454",
        "gpt-2",
    ),
    (
        "32d85c31273f8019248f2559fed492d929ea28b17e51d81d3bb36fff23ca72b3",
        "stablelm2",
    ),
    (
        "6221ad2852e85ce96f791f476e0b390cf9b474c9e3d1362f53a24a06dc8220ff",
        "refact",
    ),
    (
        "9c2227e4dd922002fb81bde4fc02b0483ca4f12911410dee2255e4987644e3f8",
        "command-r",
    ),
    (
        "d772b220ace2baec124bed8cfafce0ead7d6c38a4b65ef11261cf9d5d62246d1",
        "tiny_aya",
    ),
    (
        "52df12b4c8d4176e7481aab4b6e8454d1fd0a210a04a574f6d4e067d10e23c3e",
        "cohere2moe",
    ),
    (
        "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea",
        "qwen2",
    ),
    (
        "a8594e3edff7c29c003940395316294b2c623e09894deebbc65f33f1515df79e",
        "dbrx",
    ),
    (
        "c7699093ba4255a91e702aa38a596aa81669f3525dae06c2953267dde580f448",
        "jina-v1-en",
    ),
    (
        "171aeeedd6fb548d418a7461d053f11b6f1f1fc9b387bd66640d28a4b9f5c643",
        "jina-v2-es",
    ),
    (
        "27949a2493fc4a9f53f5b9b029c82689cfbe5d3a1929bb25e043089e28466de6",
        "jina-v2-de",
    ),
    (
        "a023e9fdc5a11f034d3ef515b92350e56fb2af1f66c6b6811a4444ea9bf8763d",
        "jina-v5-nano",
    ),
    (
        "c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d",
        "smaug-bpe",
    ),
    (
        "c7ea5862a53e4272c035c8238367063e2b270d51faa48c0f09e9d5b54746c360",
        "poro-chat",
    ),
    (
        "7967bfa498ade6b757b064f31e964dddbb80f8f9a4d68d4ba7998fcf281c531a",
        "jina-v2-code",
    ),
    (
        "7fc505bd3104ca1083b150b17d088b59534ede9bde81f0dd2090967d7fe52cee",
        "viking",
    ),
    (
        "b53802fb28e26d645c3a310b34bfe07da813026ec7c7716883404d5e0f8b1901",
        "jais",
    ),
    (
        "bc5108ee1eb6a3d600cadd065f63190fbd0554dbc9e4bbd6a0d977970afc8d2a",
        "jais-2",
    ),
    (
        "7b3e7548e4308f52a76e8229e4e6cc831195d0d1df43aed21ac6c93da05fec5f",
        "codeshell",
    ),
    (
        "63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e",
        "tekken",
    ),
    (
        "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249",
        "smollm",
    ),
    (
        "3c30d3ad1d6b64202cd222813e7736c2db6e1bd6d67197090fc1211fbc612ae7",
        "bloom",
    ),
    (
        "bc01ce58980e1db43859146dc51b1758b3b88729b217a74792e9f8d43e479d21",
        "gpt3-finnish",
    ),
    (
        "4e2b24cc4770243d65a2c9ec19770a72f08cffc161adbb73fcbb6b7dd45a0aae",
        "exaone",
    ),
    (
        "fcace8b9cac38ce847670c970cd5892031a753a1ef381abd1d9af00f713da085",
        "phi-2",
    ),
    (
        "60824e3c0d9401f89943cbb2fff727f0e2d4c545ba4df2d6e4f09a6db0f5b450",
        "chameleon",
    ),
    (
        "8b5a93ed704057481f240da0be7e7dca721d7f8f4755263b6807227a2cbeae65",
        "roberta-bpe",
    ),
    (
        "ad851be1dba641f2e3711822f816db2c265f788b37c63b4e1aeacb9ee92de8eb",
        "gigachat",
    ),
    (
        "d4c8f286ea6b520b3d495c4455483cfa2302c0cfcd4be05d781b6a8a0a7cdaf1",
        "megrez",
    ),
    (
        "877081d19cf6996e2c4ff0e1236341e9b7bde288f5311a56a937f0afbbb3aeb5",
        "deepseek-v3",
    ),
    (
        "b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5",
        "deepseek-r1-qwen",
    ),
    (
        "ccc2ef013c104be7bae2965776d611e1d7a8a2a9c547dd93a682c9a9fc80352e",
        "gpt-4o",
    ),
    (
        "7dec86086fcc38b66b7bc1575a160ae21cf705be7718b9d5598190d7c12db76f",
        "superbpe",
    ),
    (
        "1994ffd01900cfb37395608534236ecd63f2bd5995d6cb1004dda1af50240f15",
        "trillion",
    ),
    (
        "96a5f08be6259352137b512d4157e333e21df7edd3fcd152990608735a65b224",
        "bailingmoe",
    ),
    (
        "d353350c764d8c3b39c763113960e4fb4919bea5fbf208a0e3b22e8469dc7406",
        "llama4",
    ),
    (
        "0e9433cbbb161f89e264eb32e8e64bfe69e834973ffca5d41d3948a604a3e2a3",
        "pixtral",
    ),
    (
        "d5f1dd6f980fec569fb218a81a7658ac45fc56b38c5a0adeb1c232fbe04ef5ec",
        "seed-coder",
    ),
    (
        "b0a6b1c0bd5998ebd9df08611efde34a4ff03faed45ae09c43e6b31ebd4b94cf",
        "a.x-4.0",
    ),
    (
        "f6791d196f87ce6b56a7d234be618e0d58f8cda3549416635b2bebcd22cd95c4",
        "midm-2.0",
    ),
    (
        "169bf0296a13c4d9b7672313f749eb36501d931022de052aad6e36f2bf34dd51",
        "lfm2",
    ),
    (
        "2085e1638f6c377a0aa4ead21b27bb4cb941bf800df86ed391011769c1758dfb",
        "exaone4",
    ),
    (
        "a1e163ecab2e718a4c829d1148b6e86824ec36163bb71941c3dca9cd5ac25756",
        "mellum",
    ),
    (
        "a0b64b4385f123663873756336c085744376d015ff328bb1d901598f63c44152",
        "modern-bert",
    ),
    (
        "49fc0303c9e0d2c2c565c510f64b2d9b271276acdcdadff733249eda9f7d59df",
        "afmoe",
    ),
    (
        "9b1be57e70d20d9501b2b3186e792d81181ae36ada3903c26f9fea418cf87206",
        "bailingmoe2",
    ),
    (
        "53e325976a6e142379c19b09afcae354f2f496f147afa8f9e189a33fe4e3024e",
        "granite-docling",
    ),
    (
        "f4f37b6c8eb9ea29b3eac6bb8c8487c5ab7885f8d8022e67edc1c68ce8403e95",
        "minimax-m2",
    ),
    (
        "4a2e2abae11ca2b86d570fc5b44be4d5eb5e72cc8f22dd136a94b37da83ab665",
        "kormo",
    ),
    (
        "9d70134b369a70e5735009b6de918f7581b5211f7c074d1f89f753aea8248af1",
        "youtu",
    ),
    (
        "16389f0a1f51ee53e562ffd51c371dc508639ab0e4261502071836e50e223e91",
        "solar-open",
    ),
    (
        "6c81ce329e0802883b22eabab0d3fa48357337ef1ecb45443828bf1f6254833f",
        "exaone-moe",
    ),
    (
        "d30d75d9059f1aa2c19359de71047b3ae408c70875e8a3ccf8c5fba56c9d8af4",
        "qwen35",
    ),
    (
        "b4b8ca1f9769494fbd956ebc4c249de6131fb277a4a3345a7a92c7dd7a55808d",
        "joyai-llm",
    ),
    (
        "e4d54df1ebc1f2b91acd986c5b51aa50837d5faf7c7398e73c1f9e9ee5d19869",
        "kanana2",
    ),
    (
        "862f827721df956049dff5ca81a57f29e575280bc622e290d3bf4e35eca29015",
        "f2llmv2",
    ),
    (
        "62f6fb0a6fd5098caeabb19b07a5c1099cafc8b9c40eab6ea89ece4ec02fbc57",
        "sarvam-moe",
    ),
    (
        "f728162c1315c26e40249849799b4ba3fe584c32084b4795b03eb295e63cb5af",
        "talkie",
    ),
    (
        "36f3066e97b7f3994b379aaacde306c1444c6ae84e81a5ae3cd2b7ed3b8c42d4",
        "minicpm5",
    ),
    (
        "f241072145675bf8322086f115aebad05e9f869557a238bf2150a2a417d1bf60",
        "granite-embed-multi-97m",
    ),
    (
        "789696f5946cc0fc59371f39f6097cafed196b3acded6140432f26bbb1ae1669",
        "granite-embed-multi-311m",
    ),
    (
        "9dcf830ee9990cdbf78cc523a5f7bd9ad8f3f9890c2d3581d2785ad10f07049d",
        "mellum2",
    ),
    (
        "972da7b59cec44d1f0a490a86c96df53859e486e481563e5dddac155013d87ac",
        "laguna",
    ),
    (
        "653660222fb704f61cbf2b618a8ae6502b7f8b20c980f9a5de07ed78e13319cd",
        "ufakzeka",
    ),
];

/// The Llama 3 split regex as written in its `tokenizer.json`.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The Qwen2 split regex as written in its `tokenizer.json` (single digits).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A named pre-tokenizer and how the name was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreTokenizer {
    /// The `tokenizer.ggml.pre` value.
    pub name: String,
    /// Hash lookup or structure match.
    pub detection: Detection,
    /// The check-text hash (with special tokens, as llama.cpp's converter computes it).
    pub hash: String,
}

/// Python's `str()` of a list of integers: `[1, 2, 3]`, `[]`.
pub fn python_list_repr(ids: &[u32]) -> String {
    let items: Vec<String> = ids.iter().map(u32::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// Lower-case hex SHA-256 of `python_list_repr(ids)`.
pub fn ids_hash(ids: &[u32]) -> String {
    let digest = Sha256::digest(python_list_repr(ids).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The pre-tokenizer name for a check-text hash, if known.
pub fn lookup_hash(hash: &str) -> Option<&'static str> {
    KNOWN_HASHES
        .iter()
        .rev()
        .find(|(h, _)| *h == hash)
        .map(|(_, name)| *name)
}

/// The check-text hash of `tokenizer`, with or without its post-processor's special tokens.
pub fn chktxt_hash(
    tokenizer: &tokenizers::Tokenizer,
    add_special_tokens: bool,
) -> Result<String, PreTokenizerError> {
    let encoding = crate::hf::catch_tokenizer_panic("encoding", || {
        tokenizer.encode(CHKTXT, add_special_tokens)
    })
    .map_err(PreTokenizerError::Encode)?
    .map_err(|e| PreTokenizerError::Encode(e.to_string()))?;
    Ok(ids_hash(encoding.get_ids()))
}

/// Names the pre-tokenizer of a BPE tokenizer.
///
/// `tokenizer_json` is the parsed `tokenizer.json` (for the structure fallback);
/// `clean_up_tokenization_spaces` is that `tokenizer_config.json` setting, if any (it picks
/// between two llama.cpp names that split alike).
pub fn detect(
    tokenizer: &tokenizers::Tokenizer,
    tokenizer_json: &serde_json::Value,
    clean_up_tokenization_spaces: Option<bool>,
) -> Result<PreTokenizer, PreTokenizerError> {
    // llama.cpp's converter calls `tokenizer.encode(chktxt)`, which adds special tokens.
    let hash = chktxt_hash(tokenizer, true)?;
    if let Some(name) = lookup_hash(&hash) {
        return Ok(PreTokenizer {
            name: name.to_owned(),
            detection: Detection::Hash,
            hash,
        });
    }
    // A tokenizer whose Python class adds no special tokens where the JSON post-processor does.
    let plain = chktxt_hash(tokenizer, false)?;
    if let Some(name) = lookup_hash(&plain) {
        return Ok(PreTokenizer {
            name: name.to_owned(),
            detection: Detection::Hash,
            hash: plain,
        });
    }
    match by_structure(tokenizer_json, clean_up_tokenization_spaces) {
        Some(name) => {
            tracing::warn!(
                pre = name,
                hash = %hash,
                "pre-tokenizer hash unknown; named from the tokenizer.json structure"
            );
            Ok(PreTokenizer {
                name: name.to_owned(),
                detection: Detection::Structure,
                hash,
            })
        }
        None => Err(PreTokenizerError::Unknown {
            hash,
            structure: describe(tokenizer_json.get("pre_tokenizer")),
        }),
    }
}

/// `Sequence[Split, ByteLevel]`-style summary of a `pre_tokenizer` JSON value.
fn describe(pre: Option<&serde_json::Value>) -> String {
    let Some(pre) = pre.filter(|p| !p.is_null()) else {
        return "none".to_owned();
    };
    let kind = pre.get("type").and_then(|t| t.as_str()).unwrap_or("?");
    match pre.get("pretokenizers").and_then(|p| p.as_array()) {
        Some(items) if kind == "Sequence" => {
            let inner: Vec<String> = items.iter().map(|i| describe(Some(i))).collect();
            format!("Sequence[{}]", inner.join(", "))
        }
        _ => kind.to_owned(),
    }
}

fn field<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn is_type(v: &serde_json::Value, kind: &str) -> bool {
    v.get("type").and_then(|t| t.as_str()) == Some(kind)
}

/// A `ByteLevel` pre-tokenizer with `add_prefix_space: false` and the given `use_regex`.
fn is_byte_level(v: &serde_json::Value, use_regex: bool) -> bool {
    is_type(v, "ByteLevel")
        && !field(v, "add_prefix_space")
            .and_then(|a| a.as_bool())
            .unwrap_or(false)
        && field(v, "use_regex")
            .and_then(|u| u.as_bool())
            .unwrap_or(true)
            == use_regex
}

/// An isolating, non-inverted `Split` on exactly `regex`.
fn is_split(v: &serde_json::Value, regex: &str) -> bool {
    is_type(v, "Split")
        && v.get("pattern")
            .and_then(|p| p.get("Regex"))
            .and_then(|r| r.as_str())
            == Some(regex)
        && v.get("behavior").and_then(|b| b.as_str()) == Some("Isolated")
        && !v.get("invert").and_then(|i| i.as_bool()).unwrap_or(false)
}

/// The llama.cpp name for a few unambiguous `tokenizer.json` layouts.
fn by_structure(json: &serde_json::Value, clean_up_spaces: Option<bool>) -> Option<&'static str> {
    let pre = field(json, "pre_tokenizer")?;
    let normalizer = field(json, "normalizer");
    let ignore_merges = json
        .get("model")
        .and_then(|m| m.get("ignore_merges"))
        .and_then(|i| i.as_bool())
        .unwrap_or(false);
    let items: Vec<&serde_json::Value> = if is_type(pre, "Sequence") {
        pre.get("pretokenizers")?.as_array()?.iter().collect()
    } else {
        vec![pre]
    };
    match items.as_slice() {
        [byte_level]
            if normalizer.is_none() && !ignore_merges && is_byte_level(byte_level, true) =>
        {
            Some("gpt-2")
        }
        [digits, byte_level]
            if normalizer.is_none()
                && !ignore_merges
                && is_type(digits, "Digits")
                && digits.get("individual_digits").and_then(|d| d.as_bool()) == Some(true)
                && is_byte_level(byte_level, true) =>
        {
            Some(if clean_up_spaces == Some(false) {
                "smollm"
            } else {
                "starcoder"
            })
        }
        [split, byte_level]
            if normalizer.is_none()
                && ignore_merges
                && is_split(split, LLAMA3_SPLIT)
                && is_byte_level(byte_level, false) =>
        {
            Some("llama-bpe")
        }
        [split, byte_level]
            if normalizer.is_none_or(|n| is_type(n, "NFC"))
                && !ignore_merges
                && is_split(split, QWEN2_SPLIT)
                && is_byte_level(byte_level, false) =>
        {
            Some("qwen2")
        }
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A byte-level BPE `tokenizer.json` over all 256 byte symbols plus a few merges, with
    /// `pre_tokenizer` and `added_tokens` as given.
    pub(crate) fn byte_level_tokenizer_json(
        pre_tokenizer: serde_json::Value,
        added: &[(&str, bool)],
    ) -> serde_json::Value {
        let mut vocab = serde_json::Map::new();
        let symbols = byte_symbols();
        for (i, s) in symbols.iter().enumerate() {
            vocab.insert(s.clone(), json!(i));
        }
        let merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("3", "3")];
        for (a, b) in merges {
            let id = vocab.len();
            vocab.insert(format!("{a}{b}"), json!(id));
        }
        let added_tokens: Vec<serde_json::Value> = added
            .iter()
            .enumerate()
            .map(|(i, (content, special))| {
                json!({"id": vocab.len() + i, "content": content, "single_word": false,
                       "lstrip": false, "rstrip": false, "normalized": !special,
                       "special": special})
            })
            .collect();
        json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added_tokens,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": {"type": "ByteLevel", "add_prefix_space": false,
                               "trim_offsets": true, "use_regex": true},
            "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                        "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab,
                      "merges": merges.iter().map(|(a, b)| format!("{a} {b}")).collect::<Vec<_>>()}
        })
    }

    /// GPT-2's byte → printable character table, in byte order.
    pub(crate) fn byte_symbols() -> Vec<String> {
        let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~')).collect();
        printable.extend(0xA1..=0xAC);
        printable.extend(0xAE..=0xFF);
        let mut extra = 0;
        (0u32..256)
            .map(|b| {
                let c = if printable.contains(&b) {
                    b
                } else {
                    extra += 1;
                    255 + extra
                };
                char::from_u32(c).map(String::from).unwrap_or_default()
            })
            .collect()
    }

    fn tokenizer(json: &serde_json::Value) -> tokenizers::Tokenizer {
        tokenizers::Tokenizer::from_bytes(json.to_string().as_bytes()).expect("tokenizer loads")
    }

    #[test]
    fn python_repr_and_hash() {
        assert_eq!(python_list_repr(&[]), "[]");
        assert_eq!(python_list_repr(&[7]), "[7]");
        assert_eq!(python_list_repr(&[1, 22, 333]), "[1, 22, 333]");
        // sha256("[1, 2, 3]") from `python3 -c 'import hashlib; print(hashlib.sha256(str([1, 2,
        // 3]).encode()).hexdigest())'`.
        assert_eq!(
            ids_hash(&[1, 2, 3]),
            "a36b1f2c3f84522dd1005145646617d7054c0851e97c72a039c0bdfac9fa07f3"
        );
    }

    #[test]
    fn chktxt_matches_llama_cpp() {
        // sha256 of chktxt's UTF-8 bytes, computed from convert_hf_to_gguf.py with Python.
        let digest = Sha256::digest(CHKTXT.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(CHKTXT.len(), 431);
        assert_eq!(
            hex,
            "a36179c1e2b1cfcfbfad1dc779addad2ffc778201e4cf0d538bddeafa2c526da"
        );
    }

    #[test]
    fn table_has_the_names_we_rely_on() {
        for name in ["smollm", "gpt-2", "llama-bpe", "qwen2"] {
            assert!(KNOWN_HASHES.iter().any(|(_, n)| *n == name), "{name}");
        }
        assert_eq!(
            lookup_hash("855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249"),
            Some("smollm")
        );
        // Listed twice in llama.cpp's table; Python returns the later name.
        assert_eq!(
            lookup_hash("b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166"),
            Some("olmo")
        );
        assert!(KNOWN_HASHES
            .iter()
            .all(|(h, _)| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())));
    }

    #[test]
    fn tiny_tokenizer_hash_is_the_hash_of_its_ids() {
        let json = byte_level_tokenizer_json(
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                   "use_regex": true}),
            &[],
        );
        let tok = tokenizer(&json);
        let ids = tok.encode(CHKTXT, true).expect("encode").get_ids().to_vec();
        // Every byte of the text is covered by some token.
        assert!(ids.len() > 100 && ids.len() <= CHKTXT.len());
        let hash = chktxt_hash(&tok, true).expect("hash");
        assert_eq!(hash, ids_hash(&ids));
        // An unknown hash, but the structure is plain GPT-2 byte-level BPE.
        let pre = detect(&tok, &json, None).expect("structure fallback");
        assert_eq!(pre.name, "gpt-2");
        assert_eq!(pre.detection, Detection::Structure);
        assert_eq!(pre.hash, hash);
    }

    #[test]
    fn structures_and_unknowns() {
        let bl = |re: bool| {
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                   "use_regex": re})
        };
        let digits = json!({"type": "Digits", "individual_digits": true});
        let seq =
            |items: Vec<serde_json::Value>| json!({"type": "Sequence", "pretokenizers": items});
        let split = |re: &str| {
            json!({"type": "Split", "pattern": {"Regex": re},
                                       "behavior": "Isolated", "invert": false})
        };
        let doc = |pre: serde_json::Value, ignore: bool| {
            json!({"normalizer": null, "pre_tokenizer": pre,
                   "model": {"type": "BPE", "ignore_merges": ignore}})
        };
        assert_eq!(
            by_structure(
                &doc(seq(vec![digits.clone(), bl(true)]), false),
                Some(false)
            ),
            Some("smollm")
        );
        assert_eq!(
            by_structure(&doc(seq(vec![digits, bl(true)]), false), None),
            Some("starcoder")
        );
        assert_eq!(
            by_structure(&doc(seq(vec![split(LLAMA3_SPLIT), bl(false)]), true), None),
            Some("llama-bpe")
        );
        assert_eq!(
            by_structure(&doc(seq(vec![split(QWEN2_SPLIT), bl(false)]), false), None),
            Some("qwen2")
        );
        // Llama 3's regex without ignore_merges, or a different regex, is not recognised.
        assert_eq!(
            by_structure(&doc(seq(vec![split(LLAMA3_SPLIT), bl(false)]), false), None),
            None
        );
        assert_eq!(
            by_structure(&doc(seq(vec![split("\\s+"), bl(false)]), false), None),
            None
        );
        assert_eq!(
            describe(Some(&seq(vec![split("x"), bl(false)]))),
            "Sequence[Split, ByteLevel]"
        );

        // An unknown structure is an error that names the hash and the structure.
        let json = byte_level_tokenizer_json(seq(vec![split("\\s+"), bl(false)]), &[]);
        let err = detect(&tokenizer(&json), &json, None).expect_err("unknown");
        let msg = err.to_string();
        assert!(
            msg.contains("Sequence[Split, ByteLevel]") && msg.contains("wrong tokens"),
            "{msg}"
        );
    }
}
