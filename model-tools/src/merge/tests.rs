//! End-to-end tests of `merge` against the numpy fixture in `tests/fixtures/merge` (see its
//! README and `make_fixture.py`): the expected merged tensors there were computed by numpy in
//! float64, not by this code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;
use crate::hf::{encode_f32, Dtype, TensorRef};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/merge")
        .join(name)
}

fn run(base: &str, adapters: &[&str], out: &Path) -> Result<MergeReport, MergeError> {
    run_dirs(
        &fixture(base),
        &adapters.iter().map(|a| fixture(a)).collect::<Vec<_>>(),
        out,
    )
}

fn run_dirs(base: &Path, adapters: &[PathBuf], out: &Path) -> Result<MergeReport, MergeError> {
    let opts = MergeOptions {
        base: base.to_owned(),
        adapters: adapters.to_vec(),
        out: out.to_owned(),
        overwrite: false,
        out_dtype: None,
    };
    let calls = std::cell::Cell::new(0usize);
    let report = merge(&opts, &|p: MergeProgress| {
        assert_eq!(p.done, calls.get() + 1, "progress counts up by one");
        assert!(p.done <= p.total);
        calls.set(p.done);
    })?;
    assert_eq!(
        calls.get(),
        report.tensors_total,
        "one progress call per tensor"
    );
    Ok(report)
}

/// Distance in units in the last place between two encodings of the same dtype.
fn ulps(dtype: &Dtype, a: &[u8], b: &[u8]) -> u64 {
    let ordered = |bits: u64, sign: u64| -> i128 {
        if bits & sign != 0 {
            -((bits & (sign - 1)) as i128)
        } else {
            bits as i128
        }
    };
    match dtype {
        Dtype::F32 => {
            let x = u32::from_le_bytes([a[0], a[1], a[2], a[3]]) as u64;
            let y = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
            (ordered(x, 1 << 31) - ordered(y, 1 << 31)).unsigned_abs() as u64
        }
        _ => {
            let x = u16::from_le_bytes([a[0], a[1]]) as u64;
            let y = u16::from_le_bytes([b[0], b[1]]) as u64;
            (ordered(x, 1 << 15) - ordered(y, 1 << 15)).unsigned_abs() as u64
        }
    }
}

/// F32 results may differ from numpy's float64 sum rounded to f32 by the f32 rounding of the
/// 2r + 2 operations per element: allowed up to 2^-20 of the tensor's largest magnitude.
fn f32_close(got: &TensorRef<'_>, want: &TensorRef<'_>) -> f64 {
    let (g, w) = (got.to_f32().expect("f32"), want.to_f32().expect("f32"));
    let scale = w.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = g
        .iter()
        .zip(&w)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    let relative = f64::from(worst) / f64::from(scale);
    assert!(
        relative <= 2f64.powi(-20),
        "{}: off by {relative:e} of its scale",
        got.name
    );
    relative
}

/// (largest ulp distance, elements not bit-identical, elements).
fn compare(got: &TensorRef<'_>, want: &TensorRef<'_>) -> (u64, usize, usize) {
    assert_eq!(got.dtype, want.dtype, "{}: dtype", got.name);
    assert_eq!(got.shape, want.shape, "{}: shape", got.name);
    let size = got.dtype.size().expect("sized dtype");
    let mut worst = 0;
    let mut inexact = 0;
    for (a, b) in got
        .data
        .chunks_exact(size)
        .zip(want.data.chunks_exact(size))
    {
        let d = ulps(&got.dtype, a, b);
        worst = worst.max(d);
        inexact += usize::from(d != 0);
    }
    (worst, inexact, got.len())
}

/// Checks every output tensor: 16-bit ones in `expected` within 1 ulp of numpy's (and ≥ 99 %
/// bit-exact: f32 arithmetic only differs from numpy's float64 where the exact sum lies within
/// about 2^-16 ulp of a rounding tie), F32 ones per [`f32_close`], every other tensor
/// byte-identical to the base. Returns (worst ulps, inexact, compared) of the 16-bit ones.
fn check_against(out: &Path, base: &Path, expected: &[&str]) -> (u64, usize, usize) {
    let got = Checkpoint::open(out).expect("open output");
    let base = Checkpoint::open(base).expect("open base");
    let expected: Vec<Checkpoint> = expected
        .iter()
        .map(|e| Checkpoint::open_file(&fixture(e)).expect("open expected"))
        .collect();
    assert_eq!(got.names(), base.names(), "same tensors as the base");
    let (mut worst, mut inexact, mut compared) = (0, 0, 0);
    for name in got.names() {
        let g = got.tensor(name).expect("tensor");
        match expected.iter().find(|e| e.contains(name)) {
            Some(e) if g.dtype == Dtype::F32 => {
                let relative = f32_close(&g, &e.tensor(name).expect("expected"));
                eprintln!("{name}: F32, off by {relative:e} of its scale");
            }
            Some(e) => {
                let (w, i, n) = compare(&g, &e.tensor(name).expect("expected"));
                assert!(w <= 1, "{name}: {w} ulps from numpy");
                worst = worst.max(w);
                inexact += i;
                compared += n;
            }
            None => {
                let b = base.tensor(name).expect("base");
                assert_eq!((&g.dtype, &g.shape), (&b.dtype, &b.shape), "{name}");
                assert!(g.data == b.data, "{name}: untargeted tensor changed");
            }
        }
    }
    assert!(
        inexact * 100 <= compared,
        "{inexact} of {compared} not bit-exact"
    );
    (worst, inexact, compared)
}

#[test]
fn adapter1_matches_numpy_and_keeps_everything_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("merged");
    let report = run("base", &["adapter1"], &out).expect("merge");
    let (worst, inexact, compared) =
        check_against(&out, &fixture("base"), &["expected_a1.safetensors"]);
    eprintln!("adapter1: worst {worst} ulp, {inexact}/{compared} not bit-exact");

    // q_proj ×2, v_proj ×2 (one with rank_pattern, one with alpha_pattern) and embed_tokens.
    assert_eq!(report.tensors_merged, 5);
    assert_eq!(report.adapters[0].tensors_merged, 5);
    assert_eq!(report.adapters[0].embedding_copies_checked, 1);
    assert_eq!(report.tensors_copied, report.tensors_total - 5);
    let base = Checkpoint::open(&fixture("base")).expect("base");
    let largest = base
        .names()
        .iter()
        .map(|n| base.tensor(n).expect("t").data.len() as u64)
        .max();
    assert_eq!(Some(report.largest_tensor_bytes), largest);

    // Same shards, same index (total size included), format metadata.
    for shard in [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ] {
        assert!(out.join(shard).is_file(), "{shard}");
        assert_eq!(
            std::fs::metadata(out.join(shard)).expect("stat").len(),
            std::fs::metadata(fixture("base").join(shard))
                .expect("stat")
                .len(),
            "{shard}: same header and data sizes"
        );
    }
    let index = crate::hf::read_json(&out.join("model.safetensors.index.json")).expect("index");
    let base_index =
        crate::hf::read_json(&fixture("base/model.safetensors.index.json")).expect("index");
    assert_eq!(index, base_index);
    let merged = Checkpoint::open(&out).expect("open");
    assert_eq!(
        merged.metadata().get("format").map(String::as_str),
        Some("pt")
    );

    // Side files copied byte for byte; weights files (the stale pickle) not.
    for file in [
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "chat_template.jinja",
    ] {
        assert_eq!(
            std::fs::read(out.join(file)).expect("copied"),
            std::fs::read(fixture("base").join(file)).expect("original"),
            "{file}"
        );
        assert!(report.files_copied.iter().any(|f| f == file), "{file}");
    }
    assert!(!out.join("pytorch_model.bin").exists());
    assert!(report.to_string().contains("5 merged"), "{report}");
    // Nothing left beside the output.
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
}

#[test]
fn a_full_precision_merge_writes_f32_that_rounds_to_the_base_dtype_merge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("merged-f32");
    let opts = MergeOptions {
        base: fixture("base"),
        adapters: vec![fixture("adapter1")],
        out: out.clone(),
        overwrite: false,
        out_dtype: Some(Dtype::F32),
    };
    let report = merge(&opts, &|_| {}).expect("merge");
    assert_eq!(report.tensors_merged, 5);
    let got = Checkpoint::open(&out).expect("open");
    let base = Checkpoint::open(&fixture("base")).expect("base");
    let expected = Checkpoint::open_file(&fixture("expected_a1.safetensors")).expect("expected");
    let mut kept_precision = 0;
    for name in base.names() {
        let (g, b) = (
            got.tensor(name).expect("got"),
            base.tensor(name).expect("base"),
        );
        assert_eq!(g.dtype, Dtype::F32, "{name}: every float tensor in F32");
        assert_eq!(g.shape, b.shape, "{name}");
        let values = g.to_f32().expect("f32");
        if !expected.contains(name) {
            assert_eq!(
                values,
                b.to_f32().expect("f32"),
                "{name}: unchanged, widened"
            );
            continue;
        }
        let want = expected.tensor(name).expect("expected");
        if want.dtype == Dtype::F32 {
            continue;
        }
        // Rounded to the base dtype, the F32 merge is the numpy merge (within 1 ulp); before
        // rounding it keeps precision the base dtype would drop.
        let rounded = encode_f32(&values, &want.dtype).expect("encode");
        let size = want.dtype.size().expect("sized");
        for (a, w) in rounded.chunks_exact(size).zip(want.data.chunks_exact(size)) {
            assert!(ulps(&want.dtype, a, w) <= 1, "{name}");
        }
        let mut widened = Vec::new();
        crate::hf::decode_to_f32(name, &want.dtype, &rounded, &mut widened).expect("decode");
        kept_precision += values.iter().zip(&widened).filter(|(a, b)| a != b).count();
    }
    assert!(
        kept_precision > 0,
        "F32 keeps bits a 16-bit merge rounds away"
    );
    let config = crate::hf::read_json(&out.join("config.json")).expect("config");
    assert_eq!(config["torch_dtype"], "float32");
}

#[test]
fn two_adapters_match_the_numpy_stack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("merged");
    let report = run("base", &["adapter1", "adapter2"], &out).expect("merge");
    // expected_a1_a2 holds what adapter 2 changes; the rest of adapter 1's work is expected_a1.
    let (worst, inexact, compared) = check_against(
        &out,
        &fixture("base"),
        &["expected_a1_a2.safetensors", "expected_a1.safetensors"],
    );
    eprintln!("adapter1+2: worst {worst} ulp, {inexact}/{compared} not bit-exact");
    assert_eq!(report.adapters[0].tensors_merged, 5);
    assert_eq!(
        report.adapters[1].tensors_merged, 5,
        "o_proj, up_proj ×2 and layer 1 q_proj"
    );
    assert_eq!(report.adapters[1].tensors_replaced, 1, "lm_head");
    assert_eq!(report.tensors_replaced, 1);
    assert_eq!(report.tensors_merged, 9, "layer 1 q_proj gets both deltas");
}

/// One unit in the last place of `x` in a 16-bit float format with `mantissa` stored bits.
fn ulp_16(x: f32, mantissa: i32, min_exponent: i32) -> f64 {
    let exponent = if x == 0.0 {
        min_exponent
    } else {
        (x.abs().log2().floor() as i32).max(min_exponent)
    };
    2f64.powi(exponent - mantissa)
}

#[test]
fn stacked_equals_sequential_up_to_the_intermediate_rounding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stacked = dir.path().join("stacked");
    let first = dir.path().join("first");
    let second = dir.path().join("second");
    run("base", &["adapter1", "adapter2"], &stacked).expect("stacked");
    run("base", &["adapter1"], &first).expect("first stage");
    run_dirs(&first, &[fixture("adapter2")], &second).expect("second stage");
    let (a, b, mid) = (
        Checkpoint::open(&stacked).expect("open"),
        Checkpoint::open(&second).expect("open"),
        Checkpoint::open(&first).expect("open"),
    );
    let (mut worst, mut differing) = (0f64, 0);
    for name in a.names() {
        let (x, y) = (a.tensor(name).expect("a"), b.tensor(name).expect("b"));
        assert_eq!((&x.dtype, &x.shape), (&y.dtype, &y.shape));
        if x.dtype == Dtype::F32 {
            // Same f32 operations in the same order, and the intermediate F32 is exact.
            assert!(x.data == y.data, "{name}: F32 differs");
            continue;
        }
        // The sequential merge rounds W + Δ1 to the base dtype before adding Δ2, moving it by
        // up to half an ulp of the intermediate; with the two final roundings the results
        // differ by at most 1.5 ulp of the largest of the three magnitudes.
        let (mantissa, min_exponent) = if x.dtype == Dtype::BF16 {
            (7, -126)
        } else {
            (10, -14)
        };
        let (xs, ys) = (x.to_f32().expect("f32"), y.to_f32().expect("f32"));
        let ms = mid.tensor(name).expect("mid").to_f32().expect("f32");
        for ((p, q), m) in xs.iter().zip(&ys).zip(&ms) {
            let largest = p.abs().max(q.abs()).max(m.abs());
            let units = f64::from((p - q).abs()) / ulp_16(largest, mantissa, min_exponent);
            assert!(
                units <= 1.5,
                "{name}: {p} vs {q} ({units} ulp of {largest})"
            );
            worst = worst.max(units);
            differing += usize::from(p != q);
        }
    }
    assert!(
        differing > 0,
        "the fixture's adapters overlap (layer 1 q_proj), so rounding shows"
    );
    eprintln!("stacked vs sequential: worst {worst} ulp, {differing} elements differ");
}

/// A copy of a fixture adapter with its tensors renamed (bytes unchanged).
fn rekeyed_adapter(dir: &Path, from: &str, rename: impl Fn(&str) -> String) -> PathBuf {
    let target = dir.join(format!("{from}_rekeyed"));
    std::fs::create_dir_all(&target).expect("mkdir");
    std::fs::copy(
        fixture(from).join("adapter_config.json"),
        target.join("adapter_config.json"),
    )
    .expect("copy");
    let source =
        Checkpoint::open_file(&fixture(from).join("adapter_model.safetensors")).expect("open");
    let plan: Vec<PlannedTensor> = source
        .names()
        .iter()
        .map(|n| {
            let t = source.tensor(n).expect("tensor");
            PlannedTensor {
                name: rename(n),
                dtype: t.dtype,
                shape: t.shape,
            }
        })
        .collect();
    let mut writer = SafetensorsWriter::create(
        &target.join("adapter_model.safetensors"),
        &plan,
        &BTreeMap::new(),
    )
    .expect("create");
    for name in source.names() {
        writer
            .write(source.tensor(name).expect("tensor").data)
            .expect("write");
    }
    writer.finish().expect("finish");
    target
}

#[test]
fn key_formats_with_and_without_adapter_names_merge_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Adapter 1 with the adapter name in every LoRA key and no `base_model.model.` prefix.
    let named = rekeyed_adapter(dir.path(), "adapter1", |k| {
        let k = k.strip_prefix("base_model.model.").unwrap_or(k);
        for (plain, with_name) in [
            (".lora_A.weight", ".lora_A.default.weight"),
            (".lora_B.weight", ".lora_B.default.weight"),
        ] {
            if let Some(module) = k.strip_suffix(plain) {
                return format!("{module}{with_name}");
            }
        }
        if k.ends_with("lora_embedding_A") || k.ends_with("lora_embedding_B") {
            return format!("{k}.default");
        }
        k.to_owned()
    });
    // Adapter 2 without adapter names, its lm_head copy keyed `lm_head.default.weight`.
    let plain = rekeyed_adapter(dir.path(), "adapter2", |k| {
        k.replace(".default", "")
            .replace("lm_head.weight", "lm_head.default.weight")
    });
    let (x, y) = (dir.path().join("x"), dir.path().join("y"));
    run_dirs(&fixture("base"), &[named, plain], &x).expect("renamed keys");
    run("base", &["adapter1", "adapter2"], &y).expect("fixture keys");
    let (x, y) = (
        Checkpoint::open(&x).expect("open"),
        Checkpoint::open(&y).expect("open"),
    );
    for name in x.names() {
        assert!(
            x.tensor(name).expect("x").data == y.tensor(name).expect("y").data,
            "{name}"
        );
    }
}

#[test]
fn fan_in_fan_out_conv1d_matches_numpy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("merged");
    let report = run("gpt2_base", &["gpt2_adapter"], &out).expect("merge");
    assert_eq!(report.tensors_merged, 2);
    assert!(out.join("model.safetensors").is_file());
    assert!(!out.join("model.safetensors.index.json").exists());
    assert!(out.join("vocab.json").is_file() && out.join("merges.txt").is_file());
    check_against(&out, &fixture("gpt2_base"), &["expected_gpt2.safetensors"]);
}

#[test]
fn quantized_bases_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = run("base_4bit", &["adapter1"], &dir.path().join("out")).expect_err("4-bit");
    assert!(matches!(err, MergeError::QuantizedBase { .. }), "{err}");
    assert!(err.to_string().contains("bitsandbytes"), "{err}");
    assert!(!dir.path().join("out").exists());

    // Without the config the tensors still give it away.
    let base = dir.path().join("no_config");
    std::fs::create_dir(&base).expect("mkdir");
    std::fs::copy(
        fixture("base_4bit/model.safetensors"),
        base.join("model.safetensors"),
    )
    .expect("copy");
    let err = run_dirs(&base, &[fixture("adapter1")], &dir.path().join("out")).expect_err("4-bit");
    assert!(matches!(err, MergeError::QuantizedBase { .. }), "{err}");
}

/// A copy of a fixture adapter with its config edited.
fn edited_adapter(dir: &Path, from: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let target = dir.join(format!("{from}_edited"));
    std::fs::create_dir_all(&target).expect("mkdir");
    std::fs::copy(
        fixture(from).join("adapter_model.safetensors"),
        target.join("adapter_model.safetensors"),
    )
    .expect("copy");
    let mut config =
        crate::hf::read_json(&fixture(from).join("adapter_config.json")).expect("config");
    edit(&mut config);
    std::fs::write(target.join("adapter_config.json"), config.to_string()).expect("write");
    target
}

/// An adapter whose weights are `tensors` (F32), with `config`.
fn written_adapter(
    dir: &Path,
    name: &str,
    config: Value,
    tensors: &[(&str, Vec<usize>, Vec<f32>)],
) -> PathBuf {
    let target = dir.join(name);
    std::fs::create_dir_all(&target).expect("mkdir");
    std::fs::write(target.join("adapter_config.json"), config.to_string()).expect("write");
    let plan: Vec<PlannedTensor> = tensors
        .iter()
        .map(|(n, shape, _)| PlannedTensor {
            name: n.to_string(),
            dtype: Dtype::F32,
            shape: shape.clone(),
        })
        .collect();
    let mut writer = SafetensorsWriter::create(
        &target.join("adapter_model.safetensors"),
        &plan,
        &BTreeMap::new(),
    )
    .expect("create");
    for (_, _, values) in tensors {
        writer
            .write(&crate::hf::encode_f32(values, &Dtype::F32).expect("encode"))
            .expect("write");
    }
    writer.finish().expect("finish");
    target
}

fn lora_config(targets: Value) -> Value {
    json!({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": targets,
           "bias": "none", "use_dora": false})
}

#[test]
fn adapters_that_do_not_fit_the_base_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let q = "model.layers.0.self_attn";

    // A module the base does not have.
    let absent = written_adapter(
        dir.path(),
        "absent",
        lora_config(json!(["x_proj"])),
        &[
            (
                &format!("base_model.model.{q}.x_proj.lora_A.weight"),
                vec![2, 64],
                vec![0.0; 128],
            ),
            (
                &format!("base_model.model.{q}.x_proj.lora_B.weight"),
                vec![64, 2],
                vec![0.0; 128],
            ),
        ],
    );
    let err = run_dirs(&fixture("base"), &[absent], &out).expect_err("absent module");
    match &err {
        MergeError::NoBaseTensor { base_tensor, .. } => {
            assert_eq!(base_tensor, &format!("{q}.x_proj.weight"))
        }
        other => panic!("wrong error: {other}"),
    }

    // target_modules selects k_proj, but the file has no k_proj weights.
    let missing = edited_adapter(dir.path(), "adapter1", |c| {
        c["target_modules"] = json!(["q_proj", "k_proj", "v_proj", "embed_tokens"])
    });
    let err = run_dirs(&fixture("base"), &[missing], &out).expect_err("missing");
    assert!(
        matches!(&err, MergeError::MissingTargetWeights { module, .. } if module.ends_with("k_proj")),
        "{err}"
    );

    // Weights for v_proj, which target_modules does not select.
    let untargeted = edited_adapter(dir.path(), "adapter1", |c| {
        c["target_modules"] = json!(["q_proj", "embed_tokens"])
    });
    let err = run_dirs(&fixture("base"), &[untargeted], &out).expect_err("untargeted");
    assert!(matches!(err, MergeError::UntargetedWeights { .. }), "{err}");

    // Without its rank_pattern, layer 1's rank-8 v_proj contradicts r = 4.
    let rank = edited_adapter(dir.path(), "adapter1", |c| c["rank_pattern"] = json!({}));
    let err = run_dirs(&fixture("base"), &[rank], &out).expect_err("rank");
    assert!(
        matches!(&err, MergeError::AdapterTensor { tensor, .. } if tensor.contains("layers.1.self_attn.v_proj")),
        "{err}"
    );

    // Shapes that do not fit.
    let shape = written_adapter(
        dir.path(),
        "shape",
        lora_config(json!(["k_proj"])),
        &[
            (
                &format!("{q}.k_proj.lora_A.weight"),
                vec![2, 64],
                vec![0.0; 128],
            ),
            (
                &format!("{q}.k_proj.lora_B.weight"),
                vec![64, 2],
                vec![0.0; 128],
            ),
        ],
    );
    let err = run_dirs(&fixture("base"), &[shape], &out).expect_err("shape");
    assert!(matches!(err, MergeError::AdapterTensor { .. }), "{err}");
    assert!(!out.exists());
}

#[test]
fn unsupported_adapters_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let dora = edited_adapter(dir.path(), "adapter1", |c| c["use_dora"] = json!(true));
    let err = run_dirs(&fixture("base"), &[dora], &out).expect_err("dora");
    assert!(matches!(err, MergeError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("use_dora"), "{err}");

    let pickle = dir.path().join("pickle");
    std::fs::create_dir(&pickle).expect("mkdir");
    std::fs::copy(
        fixture("adapter1/adapter_config.json"),
        pickle.join("adapter_config.json"),
    )
    .expect("copy");
    std::fs::write(pickle.join("adapter_model.bin"), b"pickle").expect("write");
    let err = run_dirs(&fixture("base"), &[pickle], &out).expect_err("pickle");
    assert!(matches!(err, MergeError::PickleAdapter { .. }), "{err}");

    let err = run_dirs(&fixture("base"), &[fixture("base")], &out).expect_err("not an adapter");
    assert!(matches!(err, MergeError::NotAnAdapter { .. }), "{err}");
    assert!(matches!(
        run_dirs(&fixture("base"), &[], &out),
        Err(MergeError::NoAdapters)
    ));
}

#[test]
fn a_failure_while_writing_leaves_no_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let q = "model.layers.1.self_attn.q_proj";
    let broken = written_adapter(
        dir.path(),
        "broken",
        lora_config(json!(r"model\.layers\.1\.self_attn\.q_proj")),
        &[
            (
                &format!("base_model.model.{q}.lora_A.weight"),
                vec![2, 64],
                vec![1.0; 128],
            ),
            (
                &format!("base_model.model.{q}.lora_B.weight"),
                vec![64, 2],
                vec![f32::INFINITY; 128],
            ),
        ],
    );
    let err = run_dirs(&fixture("base"), &[broken], &out).expect_err("NaN/Inf delta");
    assert!(
        matches!(&err, MergeError::BaseTensor { tensor, .. } if tensor == &format!("{q}.weight")),
        "{err}"
    );
    assert!(!out.exists(), "no --out after a failure");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("broken")],
        "no temp dir left"
    );
}

#[test]
fn existing_outputs_need_overwrite_and_inputs_are_never_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    std::fs::write(out.join("old.txt"), b"old").expect("write");
    let err = run("base", &["adapter1"], &out).expect_err("exists");
    assert!(matches!(err, MergeError::OutputExists { .. }), "{err}");
    assert!(out.join("old.txt").exists());

    let mut opts = MergeOptions {
        base: fixture("base"),
        adapters: vec![fixture("adapter1")],
        out: out.clone(),
        overwrite: true,
        out_dtype: None,
    };
    merge(&opts, &|_| {}).expect("overwrite");
    assert!(!out.join("old.txt").exists());
    assert!(out.join("config.json").exists());

    opts.out = fixture("base");
    let err = merge(&opts, &|_| {}).expect_err("out is the base");
    assert!(matches!(err, MergeError::OutputIsInput { .. }), "{err}");
    opts.out = fixture("");
    let err = merge(&opts, &|_| {}).expect_err("out holds the base");
    assert!(matches!(err, MergeError::OutputIsInput { .. }), "{err}");
}
