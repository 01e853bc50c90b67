//! The `vazhi` binary as a user meets it: help, exit codes, one-line errors, JSON events.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn vazhi() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vazhi"));
    cmd.env_remove("VAZHI_LOG");
    cmd
}

use vazhi_tests::{model, SMOLLM2 as SMOL};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_one_line_error(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "stderr: {}", stderr(out));
    let err = stderr(out);
    let lines: Vec<_> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got {err:?}");
    assert!(lines[0].starts_with("vazhi: error: "), "{err:?}");
}

#[test]
fn help_lists_the_commands() {
    let out = vazhi().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in ["info", "ask", "chat", "bench", "--data-dir", "Exit codes"] {
        assert!(text.contains(word), "--help lacks {word}");
    }
}

#[test]
fn info_on_a_missing_file_exits_4() {
    let out = vazhi()
        .args(["info", "/nonexistent/model.gguf"])
        .output()
        .unwrap();
    assert_one_line_error(&out, 4);
    assert!(stderr(&out).contains("not found"));
}

#[test]
fn info_on_a_bad_file_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x01\x00\x00\x00garbage").unwrap();
    let out = vazhi().arg("info").arg(&bad).output().unwrap();
    assert_one_line_error(&out, 3);
    assert!(stderr(&out).contains("version"), "{}", stderr(&out));
}

#[test]
fn info_reports_real_models() {
    let Some(smol) = model(SMOL) else { return };
    let out = vazhi().arg("info").arg(&smol).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("MOSTLY_Q4_1") && text.contains("llama"),
        "{text}"
    );
    let out = vazhi()
        .args(["info", "--json"])
        .arg(&smol)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["file_type"], 3);
    assert_eq!(json["block_count"], 30);
}

#[test]
fn ask_json_streams_events_that_add_up() {
    let Some(smol) = model(SMOL) else { return };
    let out = vazhi()
        .args([
            "ask",
            "--json",
            "--temperature",
            "0",
            "--max-tokens",
            "16",
            "--model",
        ])
        .arg(&smol)
        .arg("What is 2 + 2?")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (done, tokens) = events.split_last().unwrap();
    assert_eq!(done["event"], "done");
    let streamed: String = tokens.iter().map(|e| e["text"].as_str().unwrap()).collect();
    assert_eq!(streamed, done["answer"]["text"].as_str().unwrap());
    assert!(
        done["answer"]["metrics"]["generation_tokens_per_s"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn ask_with_an_empty_prompt_is_bad_usage() {
    let Some(smol) = model(SMOL) else { return };
    let out = vazhi()
        .args(["ask", "--model"])
        .arg(&smol)
        .arg("  ")
        .output()
        .unwrap();
    assert_one_line_error(&out, 2);
    assert!(stderr(&out).contains("empty"));
}

#[test]
fn default_model_comes_from_the_data_dir_else_a_clear_error() {
    let Some(smol) = model(SMOL) else { return };
    let data = tempfile::tempdir().unwrap();
    // Nowhere to find it: exit 4 naming both places.
    let out = vazhi()
        .env("VAZHI_MODELS", data.path().join("no-cache"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["ask", "hello"])
        .output()
        .unwrap();
    assert_one_line_error(&out, 4);
    assert!(stderr(&out).contains("scripts/setup"));
    // In the data dir's models/: found.
    std::fs::create_dir_all(data.path().join("models")).unwrap();
    std::fs::copy(&smol, data.path().join("models").join(SMOL)).unwrap();
    let out = vazhi()
        .env("VAZHI_MODELS", data.path().join("no-cache"))
        .env("VAZHI_DATA_DIR", data.path())
        .args(["ask", "--max-tokens", "4", "hello"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn chat_reads_turns_until_quit() {
    let Some(smol) = model(SMOL) else { return };
    let mut child = vazhi()
        .args([
            "chat",
            "--temperature",
            "0",
            "--max-tokens",
            "12",
            "--model",
        ])
        .arg(&smol)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Hello!\n/reset\nWhat is the sun?\n/quit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("> ").count(), 4, "{text}");
    assert!(stderr(&out).contains("history cleared"));
}
