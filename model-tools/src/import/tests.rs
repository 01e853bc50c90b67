//! End-to-end tests of [`import_gguf`] on tiny hand-built GGUF files: tensor values after
//! dequantization and the inverse transforms, the files written, and the refusals.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use vazhi_gguf::{write_gguf, Array, GgmlType, Metadata, TensorData};

use super::*;
use crate::hf::Checkpoint;

/// A tensor to put in a test GGUF: name, dims (innermost first), type, values (quantized to
/// `ggml_type` by [`encode`]).
struct Spec {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    values: Vec<f32>,
}

/// Encodes values as F32, F16 or Q8_0 (one shared scale per block of 32, chosen so every
/// value in the tests is exactly representable: multiples of 1/64 up to 127/64).
fn encode(ggml_type: GgmlType, values: &[f32]) -> Vec<u8> {
    match ggml_type {
        GgmlType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        GgmlType::F16 => values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        GgmlType::Q8_0 => values
            .chunks(32)
            .flat_map(|block| {
                let d = 1.0f32 / 64.0;
                let mut b = half::f16::from_f32(d).to_le_bytes().to_vec();
                b.extend(block.iter().map(|v| (v / d).round() as i8 as u8));
                b
            })
            .collect(),
        other => panic!("test encoder has no {other}"),
    }
}

/// Deterministic test values, exactly representable in every encoding above.
fn values(seed: usize, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((seed * 7919 + i * 104_729) % 255) as f32 - 127.0) / 64.0)
        .collect()
}

fn spec(name: &str, dims: &[u64], ggml_type: GgmlType, seed: usize) -> Spec {
    let n = dims.iter().product::<u64>() as usize;
    Spec {
        name: name.to_owned(),
        dims: dims.to_vec(),
        ggml_type,
        values: values(seed, n),
    }
}

fn write_model(path: &Path, metadata: &Metadata, specs: &[Spec]) {
    let datas: Vec<Vec<u8>> = specs
        .iter()
        .map(|s| encode(s.ggml_type, &s.values))
        .collect();
    let tensors: Vec<TensorData<'_>> = specs
        .iter()
        .zip(&datas)
        .map(|(s, data)| TensorData {
            name: &s.name,
            dims: &s.dims,
            ggml_type: s.ggml_type,
            data,
        })
        .collect();
    let mut bytes = Vec::new();
    write_gguf(&mut bytes, metadata, &tensors).expect("write gguf");
    std::fs::write(path, bytes).expect("save gguf");
}

const EMBD: u64 = 32;
const HEADS: u64 = 4;
const KV_HEADS: u64 = 2;
const HEAD_DIM: u64 = 8;
const FF: u64 = 64;

fn bpe_vocab(m: &mut Metadata) {
    m.insert("tokenizer.ggml.model", "gpt2");
    m.insert("tokenizer.ggml.pre", "smollm");
    m.insert(
        "tokenizer.ggml.tokens",
        Array::from(vec![
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "h",
            "i",
            "hi",
        ]),
    );
    m.insert(
        "tokenizer.ggml.token_type",
        Array::from(vec![3i32, 3, 3, 1, 1, 1]),
    );
    m.insert("tokenizer.ggml.merges", Array::from(vec!["h i"]));
    m.insert("tokenizer.ggml.bos_token_id", 1u32);
    m.insert("tokenizer.ggml.eos_token_id", 2u32);
    m.insert("tokenizer.ggml.add_bos_token", false);
    m.insert("tokenizer.chat_template", "{{ bos_token }}");
}

fn spm_vocab(m: &mut Metadata) {
    let tokens = [
        "<pad>", "<eos>", "<bos>", "<unk>", "<0x41>", "▁", "h", "i", "hi",
    ];
    m.insert("tokenizer.ggml.model", "llama");
    m.insert("tokenizer.ggml.tokens", Array::from(tokens.to_vec()));
    m.insert(
        "tokenizer.ggml.token_type",
        Array::from(vec![3i32, 3, 3, 3, 6, 1, 1, 1, 1]),
    );
    m.insert(
        "tokenizer.ggml.scores",
        Array::from(vec![
            -1000f32, -1000.0, -1000.0, -1000.0, 0.0, -1.0, -2.0, -3.0, -4.0,
        ]),
    );
    m.insert("tokenizer.ggml.bos_token_id", 2u32);
    m.insert("tokenizer.ggml.eos_token_id", 1u32);
    m.insert("tokenizer.ggml.unknown_token_id", 3u32);
    m.insert("tokenizer.ggml.padding_token_id", 0u32);
    m.insert("tokenizer.ggml.add_space_prefix", false);
}

fn hparams(m: &mut Metadata, arch: &str, n_vocab: u64) -> u64 {
    m.insert("general.architecture", arch);
    m.insert(format!("{arch}.block_count"), 1u32);
    m.insert(format!("{arch}.embedding_length"), EMBD as u32);
    m.insert(format!("{arch}.feed_forward_length"), FF as u32);
    m.insert(format!("{arch}.attention.head_count"), HEADS as u32);
    m.insert(format!("{arch}.attention.head_count_kv"), KV_HEADS as u32);
    m.insert(format!("{arch}.attention.key_length"), HEAD_DIM as u32);
    m.insert(format!("{arch}.attention.value_length"), HEAD_DIM as u32);
    m.insert(format!("{arch}.attention.layer_norm_rms_epsilon"), 1e-5f32);
    m.insert(format!("{arch}.rope.freq_base"), 10_000f32);
    m.insert(format!("{arch}.context_length"), 128u32);
    n_vocab
}

/// The tensors of a one-layer model of `arch` (no `output.weight`: tied embeddings).
fn layer_specs(arch: &str, n_vocab: u64) -> Vec<Spec> {
    let mut s = vec![
        spec("token_embd.weight", &[EMBD, n_vocab], GgmlType::F16, 1),
        spec("output_norm.weight", &[EMBD], GgmlType::F32, 2),
        spec("blk.0.attn_norm.weight", &[EMBD], GgmlType::F32, 3),
        spec(
            "blk.0.attn_q.weight",
            &[EMBD, HEADS * HEAD_DIM],
            GgmlType::Q8_0,
            4,
        ),
        spec(
            "blk.0.attn_k.weight",
            &[EMBD, KV_HEADS * HEAD_DIM],
            GgmlType::F32,
            5,
        ),
        spec(
            "blk.0.attn_v.weight",
            &[EMBD, KV_HEADS * HEAD_DIM],
            GgmlType::F32,
            6,
        ),
        spec(
            "blk.0.attn_output.weight",
            &[HEADS * HEAD_DIM, EMBD],
            GgmlType::F32,
            7,
        ),
        spec("blk.0.ffn_norm.weight", &[EMBD], GgmlType::F32, 8),
        spec("blk.0.ffn_gate.weight", &[EMBD, FF], GgmlType::Q8_0, 9),
        spec("blk.0.ffn_up.weight", &[EMBD, FF], GgmlType::Q8_0, 10),
        spec("blk.0.ffn_down.weight", &[FF, EMBD], GgmlType::F32, 11),
    ];
    if arch == "gemma3" {
        s.extend([
            spec("blk.0.attn_q_norm.weight", &[HEAD_DIM], GgmlType::F32, 12),
            spec("blk.0.attn_k_norm.weight", &[HEAD_DIM], GgmlType::F32, 13),
            spec(
                "blk.0.post_attention_norm.weight",
                &[EMBD],
                GgmlType::F32,
                14,
            ),
            spec("blk.0.post_ffw_norm.weight", &[EMBD], GgmlType::F32, 15),
        ]);
    }
    s
}

/// Import options writing beside the GGUF, into `<stem>-hf`.
fn options(dir: &Path, gguf: PathBuf) -> ImportOptions {
    let stem = gguf
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    ImportOptions {
        out: dir.join(format!("{stem}-hf")),
        gguf,
        overwrite: false,
    }
}

fn read_json_file(path: &Path) -> Json {
    crate::hf::read_json(path).expect("json")
}

/// HF row `h*hd + j*hd/2 + i` comes from GGUF row `h*hd + 2i + j` (written independently of
/// the implementation's loop).
fn expected_unpermuted(gguf: &[f32], row_len: usize, n_head: usize) -> Vec<f32> {
    let rows = gguf.len() / row_len;
    let hd = rows / n_head;
    let mut out = vec![0.0; gguf.len()];
    for gguf_row in 0..rows {
        let (h, r) = (gguf_row / hd, gguf_row % hd);
        let (i, j) = (r / 2, r % 2);
        let hf_row = h * hd + j * (hd / 2) + i;
        out[hf_row * row_len..(hf_row + 1) * row_len]
            .copy_from_slice(&gguf[gguf_row * row_len..(gguf_row + 1) * row_len]);
    }
    out
}

#[test]
fn llama_import_writes_unpermuted_f32_weights_config_and_tokenizer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gguf = dir.path().join("tiny.gguf");
    let mut m = Metadata::new();
    let n_vocab = hparams(&mut m, "llama", 6);
    bpe_vocab(&mut m);
    let specs = layer_specs("llama", n_vocab);
    write_model(&gguf, &m, &specs);

    let opts = options(dir.path(), gguf);
    let progress_calls = std::cell::Cell::new(0);
    let report = import_gguf(&opts, &|done, total| {
        assert!(done <= total);
        progress_calls.set(progress_calls.get() + 1);
    })
    .expect("import");
    assert_eq!(report.tensors, specs.len());
    assert_eq!(progress_calls.get(), specs.len() + 1);
    assert_eq!(report.source_types.get("Q8_0"), Some(&3));
    let out = opts.out;
    let ckpt = Checkpoint::open(&out).expect("checkpoint");
    assert!(!ckpt.contains("lm_head.weight"), "tied");
    let tensor = |name: &str| ckpt.tensor(name).expect(name).to_f32().expect("f32");

    let q = &specs[3].values;
    assert_eq!(
        ckpt.tensor("model.layers.0.self_attn.q_proj.weight")
            .expect("q")
            .shape,
        vec![(HEADS * HEAD_DIM) as usize, EMBD as usize]
    );
    assert_eq!(
        tensor("model.layers.0.self_attn.q_proj.weight"),
        expected_unpermuted(q, EMBD as usize, HEADS as usize)
    );
    assert_eq!(
        tensor("model.layers.0.self_attn.k_proj.weight"),
        expected_unpermuted(&specs[4].values, EMBD as usize, KV_HEADS as usize)
    );
    assert_eq!(
        tensor("model.layers.0.self_attn.v_proj.weight"),
        specs[5].values
    );
    assert_eq!(tensor("model.layers.0.mlp.up_proj.weight"), specs[9].values);
    assert_eq!(
        tensor("model.norm.weight"),
        specs[1].values,
        "llama norms unchanged"
    );
    assert_eq!(
        ckpt.tensor("model.layers.0.mlp.down_proj.weight")
            .expect("down")
            .shape,
        vec![EMBD as usize, FF as usize]
    );

    let config = read_json_file(&out.join("config.json"));
    assert_eq!(config["architectures"][0], "LlamaForCausalLM");
    assert_eq!(config["tie_word_embeddings"], true);
    assert_eq!(config["num_key_value_heads"], KV_HEADS);
    let tok_config = read_json_file(&out.join("tokenizer_config.json"));
    assert_eq!(tok_config["chat_template"], "{{ bos_token }}");
    let tokenizer =
        tokenizers::Tokenizer::from_file(out.join("tokenizer.json")).expect("tokenizer.json");
    let ids = tokenizer.encode("<|im_start|>hi", true).expect("encode");
    assert_eq!(ids.get_ids(), [1, 5]);
    assert!(
        !out.join("tokenizer.model").exists(),
        "BPE has no tokenizer.model"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "only the GGUF and the output: {leftovers:?}"
    );
}

#[test]
fn gemma3_import_subtracts_one_from_norms_and_writes_spm_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gguf = dir.path().join("tiny.gguf");
    let mut m = Metadata::new();
    let n_vocab = hparams(&mut m, "gemma3", 9);
    m.insert("gemma3.attention.sliding_window", 16u32);
    spm_vocab(&mut m);
    let specs = layer_specs("gemma3", n_vocab);
    write_model(&gguf, &m, &specs);

    let opts = options(dir.path(), gguf);
    import_gguf(&opts, &|_, _| {}).expect("import");
    let out = opts.out;
    let ckpt = Checkpoint::open(&out).expect("checkpoint");
    let tensor = |name: &str| ckpt.tensor(name).expect(name).to_f32().expect("f32");
    let minus_one = |v: &[f32]| v.iter().map(|x| x - 1.0).collect::<Vec<f32>>();
    assert_eq!(tensor("model.norm.weight"), minus_one(&specs[1].values));
    assert_eq!(
        tensor("model.layers.0.pre_feedforward_layernorm.weight"),
        minus_one(&specs[7].values)
    );
    assert_eq!(
        tensor("model.layers.0.self_attn.k_norm.weight"),
        minus_one(&specs[12].values)
    );
    assert_eq!(
        tensor("model.layers.0.self_attn.q_proj.weight"),
        specs[3].values,
        "no RoPE permutation in Gemma"
    );
    let config = read_json_file(&out.join("config.json"));
    assert_eq!(config["model_type"], "gemma3_text");
    assert_eq!(
        config["layer_types"][0], "sliding_attention",
        "layer 0: 0 % 6 < 5"
    );
    assert!(out.join("tokenizer.model").exists());
    let tokenizer =
        tokenizers::Tokenizer::from_file(out.join("tokenizer.json")).expect("tokenizer.json");
    assert_eq!(
        tokenizer.encode("hiA", true).expect("encode").get_ids(),
        [2, 8, 4]
    );
}

#[test]
fn refusals_name_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gguf = dir.path().join("tiny.gguf");
    let mut m = Metadata::new();
    let n_vocab = hparams(&mut m, "llama", 6);
    bpe_vocab(&mut m);
    write_model(&gguf, &m, &layer_specs("llama", n_vocab));

    // A non-empty output directory without --overwrite.
    let opts = options(dir.path(), gguf.clone());
    std::fs::create_dir(&opts.out).expect("mkdir");
    std::fs::write(opts.out.join("keep.txt"), b"x").expect("write");
    let err = import_gguf(&opts, &|_, _| {}).expect_err("exists");
    assert!(matches!(err, ImportError::OutputExists { .. }), "{err}");
    assert!(opts.out.join("keep.txt").exists());
    let overwrite = ImportOptions {
        overwrite: true,
        ..opts.clone()
    };
    import_gguf(&overwrite, &|_, _| {}).expect("overwrite");
    assert!(!opts.out.join("keep.txt").exists() && opts.out.join("config.json").exists());

    // Unsupported architecture.
    let mut other = m.clone();
    other.insert("general.architecture", "mamba");
    let path = dir.path().join("mamba.gguf");
    write_model(&path, &other, &layer_specs("llama", n_vocab));
    let err = import_gguf(&options(dir.path(), path), &|_, _| {}).expect_err("arch");
    assert!(
        err.to_string().contains("mamba") && err.to_string().contains("gemma3"),
        "{err}"
    );

    // A tensor whose shape disagrees with the metadata.
    let mut wrong = m.clone();
    wrong.insert("llama.feed_forward_length", 96u32);
    let path = dir.path().join("wrong.gguf");
    write_model(&path, &wrong, &layer_specs("llama", n_vocab));
    let err = import_gguf(&options(dir.path(), path), &|_, _| {}).expect_err("shape");
    assert!(
        matches!(&err, ImportError::ShapeMismatch { name, .. } if name.contains("ffn_gate")),
        "{err}"
    );

    // A missing layer tensor.
    let mut specs = layer_specs("llama", n_vocab);
    specs.retain(|s| s.name != "blk.0.ffn_up.weight");
    let path = dir.path().join("missing.gguf");
    write_model(&path, &m, &specs);
    let err = import_gguf(&options(dir.path(), path), &|_, _| {}).expect_err("missing");
    assert!(err.to_string().contains("blk.0.ffn_up.weight"), "{err}");

    let leftovers = std::fs::read_dir(dir.path())
        .expect("list")
        .filter(|e| {
            e.as_ref()
                .map(|e| e.file_name().to_string_lossy().contains("partial"))
                .unwrap_or(false)
        })
        .count();
    assert_eq!(leftovers, 0, "failed imports leave no temporary directory");
}

#[test]
fn large_models_are_sharded_with_an_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gguf = dir.path().join("tiny.gguf");
    let mut m = Metadata::new();
    let n_vocab = hparams(&mut m, "qwen3", 6);
    bpe_vocab(&mut m);
    m.insert("tokenizer.ggml.pre", "qwen2");
    let mut specs = layer_specs("llama", n_vocab);
    specs.extend([
        spec("blk.0.attn_q_norm.weight", &[HEAD_DIM], GgmlType::F32, 12),
        spec("blk.0.attn_k_norm.weight", &[HEAD_DIM], GgmlType::F32, 13),
        spec("output.weight", &[EMBD, n_vocab], GgmlType::F32, 14),
    ]);
    write_model(&gguf, &m, &specs);
    let opts = options(dir.path(), gguf);
    // 8 KiB shards: the 8 KiB FFN matrices get one each.
    let report = import_with_shard_limit(&opts, &|_, _| {}, 8192).expect("import");
    assert!(report.shards > 3, "{} shards", report.shards);
    let index = read_json_file(&opts.out.join("model.safetensors.index.json"));
    let first = format!("model-00001-of-{:05}.safetensors", report.shards);
    assert_eq!(
        index["weight_map"]["model.embed_tokens.weight"],
        first.as_str()
    );
    let ckpt = Checkpoint::open(&opts.out).expect("sharded checkpoint");
    assert_eq!(ckpt.shard_files().len(), report.shards);
    let q = ckpt
        .tensor("model.layers.0.self_attn.q_proj.weight")
        .expect("q")
        .to_f32()
        .expect("f32");
    assert_eq!(q, specs[3].values, "Qwen3 keeps q/k rows as they are");
    assert!(
        ckpt.contains("lm_head.weight") && ckpt.contains("model.layers.0.self_attn.q_norm.weight")
    );
    let config = read_json_file(&opts.out.join("config.json"));
    assert_eq!(config["architectures"][0], "Qwen3ForCausalLM");
    assert_eq!(config["tie_word_embeddings"], false);
    let tok_config = read_json_file(&opts.out.join("tokenizer_config.json"));
    assert_eq!(tok_config["tokenizer_class"], "Qwen2Tokenizer");
}

#[test]
fn llama_attention_biases_are_unpermuted_like_the_weight_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gguf = dir.path().join("bias.gguf");
    let mut m = Metadata::new();
    let n_vocab = hparams(&mut m, "llama", 6);
    bpe_vocab(&mut m);
    // Row r of the q/k weights holds the value r, and so does bias element r: after the
    // import, bias element k must equal the value of weight row k.
    let rows_filled = |name: &str, rows: u64| Spec {
        name: name.to_owned(),
        dims: vec![EMBD, rows],
        ggml_type: GgmlType::F32,
        values: (0..rows * EMBD).map(|i| (i / EMBD) as f32).collect(),
    };
    let column = |name: &str, rows: u64| Spec {
        name: name.to_owned(),
        dims: vec![rows],
        ggml_type: GgmlType::F32,
        values: (0..rows).map(|r| r as f32).collect(),
    };
    let mut specs = layer_specs("llama", n_vocab);
    specs[3] = rows_filled("blk.0.attn_q.weight", HEADS * HEAD_DIM);
    specs[4] = rows_filled("blk.0.attn_k.weight", KV_HEADS * HEAD_DIM);
    specs.extend([
        column("blk.0.attn_q.bias", HEADS * HEAD_DIM),
        column("blk.0.attn_k.bias", KV_HEADS * HEAD_DIM),
        spec(
            "blk.0.attn_v.bias",
            &[KV_HEADS * HEAD_DIM],
            GgmlType::F32,
            21,
        ),
        spec("blk.0.attn_output.bias", &[EMBD], GgmlType::F32, 22),
    ]);
    write_model(&gguf, &m, &specs);

    let opts = options(dir.path(), gguf);
    import_gguf(&opts, &|_, _| {}).expect("a llama GGUF with q/k biases imports");
    let ckpt = Checkpoint::open(&opts.out).expect("checkpoint");
    let tensor = |name: &str| ckpt.tensor(name).expect(name).to_f32().expect("f32");
    for (proj, heads) in [("q_proj", HEADS), ("k_proj", KV_HEADS)] {
        let weight = tensor(&format!("model.layers.0.self_attn.{proj}.weight"));
        let bias = tensor(&format!("model.layers.0.self_attn.{proj}.bias"));
        let first_of_rows: Vec<f32> = weight.chunks(EMBD as usize).map(|row| row[0]).collect();
        assert_eq!(bias, first_of_rows, "{proj}: bias follows its rows");
        let gguf_order: Vec<f32> = (0..heads * HEAD_DIM).map(|r| r as f32).collect();
        assert_ne!(bias, gguf_order, "{proj}: the permutation was undone");
        assert_eq!(bias, expected_unpermuted(&gguf_order, 1, heads as usize));
    }
    assert_eq!(
        tensor("model.layers.0.self_attn.v_proj.bias"),
        specs[13].values
    );
    let config = read_json_file(&opts.out.join("config.json"));
    assert_eq!(config["attention_bias"], true);
}

#[test]
fn output_holding_the_gguf_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = dir.path().join("models");
    std::fs::create_dir(&models).expect("mkdir");
    let gguf = models.join("x.gguf");
    let mut m = Metadata::new();
    let n_vocab = hparams(&mut m, "llama", 6);
    bpe_vocab(&mut m);
    write_model(&gguf, &m, &layer_specs("llama", n_vocab));
    let before = std::fs::read(&gguf).expect("gguf");

    // `import-gguf models/x.gguf --out models --overwrite` used to delete the GGUF.
    for out in [models.clone(), dir.path().to_owned(), gguf.clone()] {
        let opts = ImportOptions {
            gguf: gguf.clone(),
            out: out.clone(),
            overwrite: true,
        };
        let err = import_gguf(&opts, &|_, _| {}).expect_err("out holds the input");
        assert!(matches!(err, ImportError::OutputIsInput { .. }), "{err}");
        assert_eq!(
            std::fs::read(&gguf).expect("kept"),
            before,
            "{}",
            out.display()
        );
    }
    // A directory beside the GGUF is fine.
    let opts = ImportOptions {
        gguf: gguf.clone(),
        out: models.join("x-hf"),
        overwrite: true,
    };
    import_gguf(&opts, &|_, _| {}).expect("beside the GGUF");
    assert_eq!(std::fs::read(&gguf).expect("kept"), before);
}
