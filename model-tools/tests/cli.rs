//! The `model-tools` binary: exit codes, human and JSON output, on the planted-fault fixtures
//! and the real test models.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn model_tools(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_model-tools"))
        .args(args)
        .output()
        .expect("model-tools runs")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn validate_data_passes_clean_files_and_fails_planted_faults() {
    let clean = fixture("data/clean-sft-ta/data.jsonl");
    let out = model_tools(&[
        "validate-data",
        path(&clean),
        "--stage",
        "sft",
        "--lang",
        "ta",
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));

    for (name, stage, needle) in [
        ("mixed-formats", "sft", "mixed"),
        ("english-heavy-ta", "sft", "Latin"),
        ("missing-assistant", "sft", "assistant"),
        ("template-tokens", "sft", "<|im_"),
        ("duplicates", "sft", "duplicate"),
        ("bad-json", "sft", "JSON"),
    ] {
        let file = fixture(&format!("data/{name}/data.jsonl"));
        let out = model_tools(&[
            "validate-data",
            path(&file),
            "--stage",
            stage,
            "--lang",
            "ta",
        ]);
        assert_eq!(code(&out), 1, "{name}: {}", stdout(&out));
        assert!(
            stdout(&out).contains(needle),
            "{name} report names the fault: {}",
            stdout(&out)
        );
    }

    let file = fixture("data/english-heavy-ta/data.jsonl");
    let out = model_tools(&[
        "validate-data",
        path(&file),
        "--stage",
        "sft",
        "--lang",
        "ta",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["passed"], false);
}

/// Runs model-tools with standard output a pipe whose reader has already gone (`| head`
/// that exited): its first write fails with EPIPE.
fn model_tools_into_a_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_model-tools"))
        .args(args)
        .stdout(writer)
        .output()
        .expect("model-tools runs")
}

#[test]
fn a_closed_stdout_ends_quietly_with_the_usual_exit_code() {
    let clean = fixture("data/clean-sft-ta/data.jsonl");
    let faulty = fixture("data/duplicates/data.jsonl");
    let ok = fixture("tokenizers/chatml-ok");
    for (args, expected) in [
        (vec!["validate-data", path(&clean), "--stage", "sft"], 0),
        (
            vec!["validate-data", path(&clean), "--stage", "sft", "--json"],
            0,
        ),
        (vec!["validate-data", path(&faulty), "--stage", "sft"], 1),
        (vec!["audit-tokenizer", path(&ok)], 0),
        (vec!["audit-tokenizer", path(&ok), "--json"], 0),
        (vec!["--help"], 0),
    ] {
        let out = model_tools_into_a_closed_pipe(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            !stderr.to_lowercase().contains("broken pipe"),
            "{args:?}: {stderr}"
        );
        assert_eq!(code(&out), expected, "{args:?}: {stderr}");
    }
}

#[test]
fn audit_tokenizer_exit_codes_follow_findings_and_allow() {
    let ok = fixture("tokenizers/chatml-ok");
    assert_eq!(code(&model_tools(&["audit-tokenizer", path(&ok)])), 0);
    for (name, code_name) in [
        ("vocab-hole", "vocab-holes"),
        ("pad-is-eos", "pad-is-eos"),
        ("eos-mismatch", "eos-mismatch"),
        ("template-token-missing", "template-token-missing"),
    ] {
        let dir = fixture(&format!("tokenizers/{name}"));
        let out = model_tools(&["audit-tokenizer", path(&dir), "--json"]);
        assert_eq!(code(&out), 1, "{name}");
        assert!(stdout(&out).contains(code_name), "{name}: {}", stdout(&out));
    }
    let dir = fixture("tokenizers/pad-is-eos");
    let out = model_tools(&["audit-tokenizer", path(&dir), "--allow", "pad-is-eos"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let out = model_tools(&["audit-tokenizer", path(&dir), "--allow", "no-such-code"]);
    assert_eq!(code(&out), 3, "an unknown code is bad usage of the input");
}

#[test]
fn merge_refuses_a_4_bit_base_and_merges_the_fixture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("merged");
    let out = model_tools(&[
        "merge",
        "--base",
        path(&fixture("merge/base_4bit")),
        "--adapter",
        path(&fixture("merge/adapter1")),
        "--out",
        path(&out_dir),
    ]);
    assert_eq!(code(&out), 4);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("4-bit") || stderr.contains("quantized"),
        "{stderr}"
    );
    assert!(!out_dir.exists(), "nothing written");

    let out = model_tools(&[
        "merge",
        "--base",
        path(&fixture("merge/base")),
        "--adapter",
        path(&fixture("merge/adapter1")),
        "--adapter",
        path(&fixture("merge/adapter2")),
        "--out",
        path(&out_dir),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert!(report["tensors_merged"].as_u64().expect("count") > 0);
    assert!(out_dir.join("model.safetensors.index.json").exists());
    assert!(out_dir.join("tokenizer.json").exists());
}

#[test]
fn bad_inputs_get_distinct_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"not a model").expect("write");
    let out = model_tools(&["quantize", path(&garbage), path(&dir.path().join("q.gguf"))]);
    assert_eq!(code(&out), 3);
    let out = model_tools(&["quantize", path(&garbage), "x.gguf", "--type", "Q9_Z"]);
    assert_eq!(code(&out), 2, "unknown preset is bad usage");
    let out = model_tools(&[
        "convert",
        "--hf",
        path(dir.path()),
        "--out",
        path(&dir.path().join("o.gguf")),
    ]);
    assert_eq!(code(&out), 4);
    assert!(!dir.path().join("o.gguf").exists());
    let out = model_tools(&[
        "eval",
        "--model",
        path(&garbage),
        "--set",
        path(&dir.path().join("none.jsonl")),
    ]);
    assert_eq!(code(&out), 3);
}

#[test]
fn publish_reproduces_the_shipped_catalog_entry() {
    let Some(model) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        eprintln!("skipping: SmolLM2 not in the model cache");
        return;
    };
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/models/catalog.json");
    let catalog: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(catalog).expect("catalog")).expect("JSON");
    let shipped = &catalog["models"][0];
    let url = shipped["urls"][0].as_str().expect("url");
    let out = model_tools(&[
        "publish",
        path(&model),
        "--url",
        url,
        "--licence",
        "Apache-2.0",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let entry: serde_json::Value = serde_json::from_slice(&out.stdout).expect("entry JSON");
    for key in ["sha256", "size", "quant", "arch", "context_length", "urls"] {
        assert_eq!(entry[key], shipped[key], "{key}");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("catalog.json");
    for _ in 0..2 {
        let out = model_tools(&[
            "publish",
            path(&model),
            "--url",
            url,
            "--licence",
            "Apache-2.0",
            "--id",
            "my-smollm2",
            "--catalog",
            path(&file),
        ]);
        assert_eq!(code(&out), 0);
    }
    let written = std::fs::read_to_string(&file).expect("catalog written");
    let parsed = vazhi_core::download::Catalog::from_json(&written).expect("the SDK accepts it");
    assert_eq!(
        parsed.entries().len(),
        1,
        "publishing twice replaces the entry"
    );

    let out = model_tools(&[
        "publish",
        path(&model),
        "--url",
        "http://example.org/x.gguf",
    ]);
    assert_eq!(code(&out), 3, "plain http is refused by the SDK's rules");
}

#[test]
fn prepare_data_refuses_bad_data_before_touching_the_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_file = dir.path().join("sequences.jsonl");
    let data = fixture("data/mixed-formats/data.jsonl");
    let out = model_tools(&[
        "prepare-data",
        path(&data),
        "--stage",
        "sft",
        "--model",
        path(&dir.path().join("no-such-model")),
        "--out",
        path(&out_file),
    ]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("validate-data"));
    assert!(!out_file.exists());
}

#[test]
fn train_checks_the_data_before_any_python_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = model_tools(&[
        "train",
        "--model",
        path(&dir.path().join("no-model")),
        "--data",
        path(&fixture("data/english-heavy-ta/data.jsonl")),
        "--stage",
        "sft",
        "--lang",
        "ta",
        "--out",
        path(&dir.path().join("run")),
        "--python",
        "/no/such/python",
    ]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("validate-data"), "{stderr}");
    assert!(!dir.path().join("run/sequences.jsonl").exists());
}

#[test]
fn train_needs_data_for_some_stage_and_chains_check_the_first_stage_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = path(&dir.path().join("run")).to_owned();
    let out = model_tools(&["train", "--model", "m", "--out", &run]);
    assert_eq!(code(&out), 2, "no data at all is bad usage");
    let out = model_tools(&["train", "--model", "m", "--out", &run, "--data", "d.jsonl"]);
    assert_eq!(code(&out), 2, "--data needs --stage");
    // A chain stops at the first stage's data check, before any Python or merge.
    let out = model_tools(&[
        "train",
        "--model",
        path(&dir.path().join("no-model")),
        "--dapt-data",
        path(&fixture("data/english-heavy-ta/data.jsonl")),
        "--sft-data",
        path(&fixture("data/english-heavy-ta/data.jsonl")),
        "--out",
        &run,
        "--python",
        "/no/such/python",
    ]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stage dapt") && stderr.contains("validate-data"),
        "{stderr}"
    );
    assert!(!dir.path().join("run/sft").exists());
}
