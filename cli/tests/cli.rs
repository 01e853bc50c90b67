//! The `vazhi` binary as a user meets it: help, exit codes, one-line errors, JSON events.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn vazhi() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vazhi"));
    cmd.env_remove("VAZHI_LOG");
    // Never touch the real data directory; tests that care pass --data-dir.
    let scratch = std::env::temp_dir().join(format!("vazhi-cli-tests-{}", std::process::id()));
    cmd.env("VAZHI_DATA_DIR", scratch);
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
    let (done, rest) = events.split_last().unwrap();
    assert_eq!(done["event"], "done");
    assert_eq!(rest[0]["event"], "routed");
    let streamed: String = rest
        .iter()
        .filter(|e| e["event"] == "token")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, done["answer"]["text"].as_str().unwrap());
    assert!(
        done["answer"]["metrics"]["generation_tokens_per_s"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn ask_json_marks_unsupported_sentences_and_runs_task_presets() {
    let Some(smol) = model(SMOL) else { return };
    let data = tempfile::tempdir().unwrap();
    let packs = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/packs/helplines");
    let import = vazhi()
        .arg("--data-dir")
        .arg(data.path())
        .args(["kb", "import", packs])
        .output()
        .unwrap();
    assert!(import.status.success(), "{}", stderr(&import));
    let ask = |args: &[&str], question: &str| {
        let out = vazhi()
            .arg("--data-dir")
            .arg(data.path())
            .args(["ask", "--json", "--temperature", "0", "--model"])
            .arg(&smol)
            .args(args)
            .arg(question)
            .output()
            .unwrap();
        let events: Vec<serde_json::Value> = String::from_utf8(out.stdout.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (out, events)
    };
    // Every token event says whether the guard marked it; done counts them.
    let (out, events) = ask(&["--max-tokens", "48"], "Say hello.");
    assert!(out.status.success(), "{}", stderr(&out));
    let tokens: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "token").collect();
    assert!(tokens.iter().all(|t| t["unsupported"].is_boolean()));
    let marked = tokens.iter().filter(|t| t["unsupported"] == true).count();
    let done = events.last().unwrap();
    assert_eq!(done["answer"]["unsupported_sentences"], marked);
    // A task preset: JSON in its schema, the task named in done.
    let (out, events) = ask(
        &[],
        "is this a scam: your electricity will be cut tonight, pay at bit.ly/eb-bill now",
    );
    let done = events.last().unwrap();
    assert_eq!(done["answer"]["task"], "scam-check", "{}", stderr(&out));
    if done["answer"]["finish"] == "end_of_text" {
        let answer: serde_json::Value =
            serde_json::from_str(done["answer"]["text"].as_str().unwrap()).unwrap();
        assert!(["scam", "suspicious", "safe"].contains(&answer["verdict"].as_str().unwrap()));
    }
    // A policy that does not exist is bad usage.
    let (out, _) = ask(&["--fact-guard", "warn"], "Say hello.");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ask_follows_a_json_schema_or_a_grammar_from_a_file() {
    let Some(smol) = model(SMOL) else { return };
    let data = with_thirukkural();
    let files = tempfile::tempdir().unwrap();
    let schema = files.path().join("kural.schema.json");
    std::fs::write(
        &schema,
        r#"{"type":"object","properties":{"number":{"type":"integer","minimum":1,"maximum":1330},
            "theme":{"enum":["virtue","wealth","love"]}},"required":["number","theme"],
            "additionalProperties":false}"#,
    )
    .unwrap();
    let ask = |extra: &[&str], question: &str| {
        vazhi()
            .arg("--data-dir")
            .arg(data.path())
            .args(["ask", "--json", "--temperature", "0", "--model"])
            .arg(&smol)
            .args(extra)
            .arg(question)
            .output()
            .unwrap()
    };
    let schema_arg = schema.to_str().unwrap();
    // An exact question: the model answers it, grounded on the record, in the schema's shape.
    let out = ask(&["--json-schema", schema_arg], "குறள் 1");
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["route"], "hybrid");
    assert!(events.iter().any(|e| e["event"] == "card"));
    let done = events.last().unwrap();
    assert_eq!(done["answer"]["finish"], "end_of_text");
    let answer: serde_json::Value =
        serde_json::from_str(done["answer"]["text"].as_str().unwrap()).unwrap();
    assert!(answer["number"].is_i64(), "{answer}");

    // Cut short: printed, then exit 5 with the reason.
    let out = ask(
        &["--json-schema", schema_arg, "--max-tokens", "3"],
        "Which kural?",
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("cut short"), "{}", stderr(&out));

    // A grammar file.
    let grammar = files.path().join("yes-no.gbnf");
    std::fs::write(&grammar, "root ::= \"yes\" | \"no\"\n").unwrap();
    let out = ask(&["--grammar", grammar.to_str().unwrap()], "Is water wet?");
    assert!(out.status.success(), "{}", stderr(&out));
    let last: serde_json::Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert!(["yes", "no"].contains(&last["answer"]["text"].as_str().unwrap()));

    // Unusable files: one line, bad usage, before any model loads.
    std::fs::write(&grammar, "answer ::= \"yes\"").unwrap();
    let out = ask(&["--grammar", grammar.to_str().unwrap()], "Is water wet?");
    assert_one_line_error(&out, 2);
    assert!(stderr(&out).contains("root"), "{}", stderr(&out));
    std::fs::write(&schema, "{\"type\": ").unwrap();
    let out = ask(&["--json-schema", schema_arg], "Hi");
    assert_one_line_error(&out, 2);
    let missing = files.path().join("missing.json");
    let out = ask(&["--json-schema", missing.to_str().unwrap()], "Hi");
    assert_ne!(out.status.code(), Some(0));
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
    // Nowhere to find it: the knowledge base still answers, and says so.
    let out = vazhi()
        .env("VAZHI_MODELS", data.path().join("no-cache"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["ask", "hello"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("knowledge base only"),
        "{}",
        stderr(&out)
    );
    // A --model that is not there is an error.
    let out = vazhi()
        .args(["ask", "--model", "/nonexistent.gguf", "hello"])
        .output()
        .unwrap();
    assert_one_line_error(&out, 4);
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

/// A data directory with the shipped Thirukkural pack imported.
fn with_thirukkural() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let pack = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/packs/thirukkural");
    let out = vazhi()
        .arg("--data-dir")
        .arg(data.path())
        .args(["kb", "import", pack])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    data
}

/// `vazhi chat` over `data` with these arguments, fed `input`; no model is found by default
/// (an empty model cache).
fn chat<S: AsRef<std::ffi::OsStr>>(data: &std::path::Path, args: &[S], input: &str) -> Output {
    let mut child = vazhi()
        .env("VAZHI_MODELS", data.join("no-cache"))
        .arg("--data-dir")
        .arg(data)
        .arg("chat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A chat that refuses to start may be gone before it reads anything.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

/// What `vazhi ask --no-model` prints for `question` over `data`.
fn ask_without_model(data: &std::path::Path, question: &str) -> String {
    let out = vazhi()
        .arg("--data-dir")
        .arg(data)
        .args(["ask", "--no-model", question])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn chat_answers_from_the_knowledge_base_as_ask_does() {
    let data = with_thirukkural();
    let card = ask_without_model(data.path(), "குறள் ௧");
    assert!(
        card.starts_with("┌ ") && card.contains("அகர முதல"),
        "{card}"
    );
    // No model installed: the knowledge base answers alone, and chat says so.
    let out = chat::<&str>(data.path(), &[], "குறள் ௧\n/reset\nகுறள் ௧\n/quit\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, format!("> {card}> > {card}> "));
    let err = stderr(&out);
    assert!(err.contains("knowledge base only"), "{err}");
    assert!(err.contains("history cleared"), "{err}");
    // The model alone needs a model.
    let out = chat(data.path(), &["--no-kb"], "குறள் ௧\n/quit\n");
    assert_one_line_error(&out, 4);
}

#[test]
fn chat_with_a_model_shows_cards_and_streams_tokens_unless_no_kb() {
    let Some(smol) = model(SMOL) else { return };
    let data = with_thirukkural();
    let card = ask_without_model(data.path(), "குறள் ௧");
    let args = |extra: &[&'static str]| -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = ["--temperature", "0", "--max-tokens", "12"]
            .iter()
            .chain(extra)
            .map(|s| std::ffi::OsString::from(*s))
            .collect();
        args.push("--model".into());
        args.push(smol.clone().into());
        args
    };
    let input = "குறள் ௧\nWhat is 2 + 2?\n/quit\n";

    // Through the knowledge base: the kural is the card `ask` prints (a lookup: no model
    // text after it), then the model answers the open question.
    let out = chat(data.path(), &args(&[]), input);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let turns: Vec<&str> = text.split("> ").collect();
    assert_eq!(turns.len(), 4, "{text}");
    assert_eq!(turns[1], card, "{text}");
    assert!(!turns[2].trim().is_empty(), "no model text: {text}");
    assert!(stderr(&out).contains("knowledge base"), "{}", stderr(&out));

    // The model alone: no card, model text for both turns.
    let out = chat(data.path(), &args(&["--no-kb"]), input);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("knowledge base"), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('┌') && !text.contains('└'), "{text}");
    assert!(!text.contains("அகர முதல எழுத்தெல்லாம்"), "{text}");
    let turns: Vec<&str> = text.split("> ").collect();
    assert_eq!(turns.len(), 4, "{text}");
    assert!(!turns[1].trim().is_empty(), "no model text: {text}");
}

/// `kill -9` during `vazhi kb import` leaves a consistent database with the old pack intact
/// (or the new one complete), never a half-imported pack.
#[test]
fn kill_during_import_keeps_the_old_pack() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let write_pack = |name: &str, version: &str, n: usize| {
        let p = dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("pack.toml"),
            format!("name = \"big\"\nversion = \"{version}\"\nlicence = \"CC0-1.0\"\nsource = \"test\"\n"),
        )
        .unwrap();
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(p.join("records.jsonl")).unwrap());
        for i in 0..n {
            writeln!(
                out,
                "{{\"id\":\"r{i}\",\"keys\":[\"key {i}\"],\"title\":\"Record {i} பதிவு\",\"body\":\"body text number {i} உரை {i}\"}}"
            )
            .unwrap();
        }
        p
    };
    let v1 = write_pack("v1", "1.0.0", 10);
    let v2 = write_pack("v2", "2.0.0", 150_000);
    let import = |p: &std::path::Path| {
        let mut cmd = vazhi();
        cmd.arg("--data-dir")
            .arg(&data)
            .env("VAZHI_ALLOW_UNSIGNED", "1")
            .args(["kb", "import"])
            .arg(p);
        cmd
    };
    assert!(import(&v1).status().unwrap().success());

    // How long a whole import takes here, to aim the kills inside it.
    let scratch = dir.path().join("scratch");
    let started = std::time::Instant::now();
    let full = vazhi()
        .arg("--data-dir")
        .arg(&scratch)
        .env("VAZHI_ALLOW_UNSIGNED", "1")
        .args(["kb", "import"])
        .arg(&v2)
        .output()
        .unwrap();
    assert!(full.status.success(), "{}", stderr(&full));
    let full_import = started.elapsed();
    let mut interrupted = 0;
    for step in 0..8u32 {
        let mut child = import(&v2)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill at 10 %, 20 %, … 80 % of a full import's time.
        std::thread::sleep(full_import * (step + 1) / 10);
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok(); // SIGKILL on Unix
        child.wait().unwrap();
        let kb = vazhi_core::knowledge::KnowledgeBase::open(&data.join("knowledge.db")).unwrap();
        kb.integrity_check().unwrap();
        let packs = kb.packs().unwrap();
        assert_eq!(packs.len(), 1);
        match packs[0].version.as_str() {
            "1.0.0" => {
                assert_eq!(packs[0].records, 10, "old pack damaged");
                assert!(kb.lookup("big", "key 9").unwrap().is_some());
                assert!(kb.lookup("big", "key 10").unwrap().is_none());
                interrupted += usize::from(!finished);
            }
            "2.0.0" => {
                assert_eq!(packs[0].records, 150_000, "new pack half-imported");
                break;
            }
            other => panic!("unexpected version {other}"),
        }
    }
    assert!(
        interrupted > 0,
        "no kill landed during an import; the test proved nothing"
    );
}

#[test]
fn exact_questions_are_answered_from_the_data_without_a_model() {
    let data = tempfile::tempdir().unwrap();
    let packs = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/packs/thirukkural");
    let import = || {
        vazhi()
            .arg("--data-dir")
            .arg(data.path())
            .env("VAZHI_ALLOW_UNSIGNED", "1")
            .args(["kb", "import", packs])
            .output()
            .unwrap()
    };
    assert!(import().status.success());
    let again = import();
    assert!(
        again.status.success(),
        "re-import of the same version must be a no-op"
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("already installed"));
    let out = vazhi()
        .arg("--data-dir")
        .arg(data.path())
        .args(["ask", "--no-model", "--json", "குறள் ௧"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "routed");
    assert_eq!(events[0]["route"], "lookup");
    assert_eq!(events[1]["event"], "card");
    assert!(events[1]["card"]["body"]
        .as_str()
        .unwrap()
        .starts_with("அகர முதல எழுத்தெல்லாம்"));
    assert!(!events[1]["card"]["source"].as_str().unwrap().is_empty());
    assert_eq!(events[2]["event"], "done");
    assert_eq!(events[2]["answer"]["cards"], 1);
    assert_eq!(events[2]["answer"]["model_unavailable"], false);
}

#[test]
fn kb_eval_scores_a_question_set_like_the_library() {
    let assets = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets");
    let set = format!("{assets}/eval/questions/dev.jsonl");
    let packs = ["thirukkural", "helplines"].map(|p| format!("{assets}/packs/{p}"));
    let eval = |extra: &[&str]| {
        vazhi()
            .args(["kb", "eval", "--pack", &packs[0], "--pack", &packs[1]])
            .args(extra)
            .arg(&set)
            .output()
            .unwrap()
    };
    let out = eval(&["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The same figures as the library computes over the same packs.
    let dir = tempfile::tempdir().unwrap();
    let kb = vazhi_core::knowledge::KnowledgeBase::open(&dir.path().join("kb.db")).unwrap();
    for pack in &packs {
        kb.import_dir(pack.as_ref(), &vazhi_core::signing::TrustPolicy::any())
            .unwrap();
    }
    let assistant = vazhi_core::assistant::Assistant::new(
        kb,
        vazhi_core::router::Router::builtin().unwrap(),
        None,
        vazhi_core::assistant::AssistantConfig::default(),
    );
    let questions = vazhi_core::eval::QuestionSet::read(set.as_ref()).unwrap();
    let expected = vazhi_core::eval::evaluate(&assistant, &questions).unwrap();
    let same = |got: &serde_json::Value, want: &vazhi_core::eval::Figures| {
        let want = serde_json::to_value(want).unwrap();
        for (field, value) in want.as_object().unwrap() {
            let (a, b) = (got[field].as_f64(), value.as_f64());
            assert!(
                matches!((a, b), (Some(a), Some(b)) if (a - b).abs() < 1e-12),
                "{field}: {got} vs {want}"
            );
        }
    };
    same(&report["overall"], &expected.overall);
    for lang in ["en", "ta"] {
        same(&report["by_lang"][lang], &expected.by_lang[lang]);
    }
    let missed = report["missed"].as_array().unwrap();
    assert_eq!(missed.len(), expected.missed().count());
    assert!(missed
        .iter()
        .all(|m| m["question"].is_string() && m["route"].is_string()));
    // Text: the table, then the misses.
    let out = eval(&["--show-missed", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("recall@3") && text.contains("\n  ta "),
        "{text}"
    );
    assert!(text.contains("; the first 3:"), "{text}");
}

#[test]
fn kb_eval_refuses_bad_labels_with_bad_usage() {
    let dir = tempfile::tempdir().unwrap();
    let pack = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/packs/helplines");
    let eval = |line: &str| {
        let set = dir.path().join("set.jsonl");
        std::fs::write(&set, format!("{line}\n")).unwrap();
        vazhi()
            .args(["kb", "eval", "--pack", pack])
            .arg(&set)
            .output()
            .unwrap()
    };
    let out = eval(r#"{"question":"police","lang":"en","route":"lookups","ids":[]}"#);
    assert_one_line_error(&out, 2);
    assert!(stderr(&out).contains("line 1") && stderr(&out).contains("unknown route"));
    let out = eval(
        r#"{"question":"police","lang":"en","route":"lookup","ids":["helplines/helpline-999"]}"#,
    );
    assert_one_line_error(&out, 2);
    assert!(stderr(&out).contains("helplines/helpline-999"));
    // Without --pack, the data directory must hold packs.
    let out = vazhi()
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["kb", "eval"])
        .arg(dir.path().join("set.jsonl"))
        .output()
        .unwrap();
    assert_one_line_error(&out, 1);
    assert!(stderr(&out).contains("no packs are installed"));
}

/// A pack author makes a key and signs a pack; an app trusting that key imports it, one that
/// does not refuses it (exit 7), an impostor of a shipped pack is refused even with
/// `--allow-unsigned`, and a signed catalog is checked against its `.sig`.
#[test]
fn packs_and_catalogs_are_trusted_by_digest_or_signature() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&std::ffi::OsStr]| {
        vazhi()
            .env_remove("VAZHI_TRUSTED_KEYS")
            .env_remove("VAZHI_ALLOW_UNSIGNED")
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap()
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let key_file = dir.path().join("author.key");
    let made = run(&[
        &os("kb"),
        &os("keygen"),
        key_file.as_os_str(),
        &os("--json"),
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let made: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    let public = made["public_key"].as_str().unwrap().to_owned();

    let pack = dir.path().join("civic");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(
        pack.join("pack.toml"),
        "name = \"civic\"\nversion = \"1.0.0\"\nlicence = \"CC0-1.0\"\nsource = \"tests\"\n",
    )
    .unwrap();
    std::fs::write(
        pack.join("records.jsonl"),
        "{\"id\": \"ward\", \"keys\": [\"ward office\"], \"title\": \"Ward office\", \"body\": \"9 to 5\"}\n",
    )
    .unwrap();
    let import = |extra: &[&str]| {
        let mut args: Vec<std::ffi::OsString> = vec![os("kb"), os("import"), pack.clone().into()];
        args.extend(extra.iter().map(|s| os(s)));
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        run(&refs)
    };
    // Unsigned: refused unless allowed.
    assert_eq!(
        import(&[]).status.code(),
        Some(7),
        "{}",
        stderr(&import(&[]))
    );
    let signed = run(&[
        &os("kb"),
        &os("sign"),
        pack.as_os_str(),
        &os("--key"),
        key_file.as_os_str(),
    ]);
    assert!(signed.status.success(), "{}", stderr(&signed));
    // Signed by a key this app does not trust.
    assert_eq!(import(&[]).status.code(), Some(7));
    let ok = import(&["--trusted-key", &public]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains(&format!("signed by {public}")));

    // An impostor `helplines` 999: refused, even where unsigned packs are allowed.
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/packs/helplines");
    assert!(run(&[&os("kb"), &os("import"), &os(shipped)])
        .status
        .success());
    let fake = dir.path().join("helplines");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(
        fake.join("pack.toml"),
        "name = \"helplines\"\nversion = \"999\"\nlicence = \"x\"\nsource = \"x\"\n",
    )
    .unwrap();
    std::fs::write(
        fake.join("records.jsonl"),
        "{\"id\": \"e\", \"keys\": [\"emergency numbers\"], \"title\": \"Emergency\", \"body\": \"Call 555\"}\n",
    )
    .unwrap();
    let refused = run(&[
        &os("kb"),
        &os("import"),
        fake.as_os_str(),
        &os("--allow-unsigned"),
    ]);
    assert_eq!(refused.status.code(), Some(7), "{}", stderr(&refused));
    let card = run(&[
        &os("kb"),
        &os("lookup"),
        &os("helplines"),
        &os("emergency numbers"),
    ]);
    assert!(String::from_utf8_lossy(&card.stdout).contains("112"));

    // A catalog: unsigned refused, signed by the trusted key accepted, edited after signing
    // refused.
    let catalog = dir.path().join("catalog.json");
    std::fs::write(&catalog, include_str!("../../assets/models/catalog.json")).unwrap();
    let list = |extra: &[&str]| {
        let mut args: Vec<std::ffi::OsString> = vec![
            os("model"),
            os("list"),
            os("--catalog"),
            catalog.clone().into(),
        ];
        args.extend(extra.iter().map(|s| os(s)));
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        run(&refs)
    };
    assert_eq!(list(&["--trusted-key", &public]).status.code(), Some(7));
    let sign = run(&[
        &os("model"),
        &os("sign-catalog"),
        catalog.as_os_str(),
        &os("--key"),
        key_file.as_os_str(),
    ]);
    assert!(sign.status.success(), "{}", stderr(&sign));
    let listed = list(&["--trusted-key", &public]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let mut json = std::fs::read_to_string(&catalog).unwrap();
    json.push('\n');
    std::fs::write(&catalog, json).unwrap();
    assert_eq!(list(&["--trusted-key", &public]).status.code(), Some(7));
}

#[test]
fn max_model_mb_reaches_the_model_check() {
    let Some(smol) = model(SMOL) else { return };
    let dir = tempfile::tempdir().unwrap();
    let ask = |limit: &str| {
        vazhi()
            .arg("--data-dir")
            .arg(dir.path())
            .args([
                "ask",
                "--max-tokens",
                "2",
                "--max-model-mb",
                limit,
                "--model",
            ])
            .arg(&smol)
            .arg("write a word")
            .output()
            .unwrap()
    };
    // SmolLM2 Q4_1 is about 90 MiB: refused under a 10 MiB limit, loaded under 1024.
    let refused = ask("10");
    assert_one_line_error(&refused, 3);
    assert!(stderr(&refused).contains("budget"), "{}", stderr(&refused));
    let loaded = ask("1024");
    assert!(loaded.status.success(), "{}", stderr(&loaded));
}

#[test]
fn ask_offers_tools_from_a_file_and_reads_results_from_stdin() {
    use std::io::Write as _;
    let Some(smol) = model(SMOL) else { return };
    let data = with_thirukkural();
    let files = tempfile::tempdir().unwrap();
    let tools = files.path().join("tools.json");
    std::fs::write(
        &tools,
        r#"[{"name": "get_weather", "description": "Get the current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string",
            "maxLength": 40}}, "required": ["city"]}}]"#,
    )
    .unwrap();
    let template = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../core/tests/fixtures/tool_templates/hermes.jinja"
    );
    let run = |template: Option<&str>| {
        let mut cmd = vazhi();
        cmd.arg("--data-dir")
            .arg(data.path())
            .args(["ask", "--json", "--temperature", "0", "--max-tokens", "64"])
            .args(["--ctx", "2048", "--require-tool-call", "--model"])
            .arg(&smol)
            .arg("--tools")
            .arg(&tools);
        if let Some(t) = template {
            cmd.args(["--chat-template", t]);
        }
        let mut child = cmd
            .arg("Is it raining in Madurai?")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // One result line per call (the model may make more than one).
        let mut stdin = child.stdin.take().unwrap();
        for _ in 0..4 {
            let _ = writeln!(stdin, r#"{{"rain_mm": 12}}"#);
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let out = run(Some(template));
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let calls: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "tool_call")
        .collect();
    assert!(!calls.is_empty(), "{events:?}");
    assert_eq!(calls[0]["call"]["name"], "get_weather");
    assert_eq!(calls[0]["builtin"], false);
    assert!(calls[0]["call"]["arguments"]["city"].is_string());
    let done = events.last().unwrap();
    assert_eq!(done["event"], "done");
    assert_eq!(done["answer"]["tool_calls"], calls.len());
    // The model's own template renders no tools: refused as bad usage.
    let out = run(None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("tools"), "{}", stderr(&out));
}

#[test]
fn chat_session_survives_a_restart_and_falls_back_on_a_damaged_file() {
    let Some(smol) = model(SMOL) else { return };
    let data = with_thirukkural();
    let session = data.path().join("chat.session");
    let mut args: Vec<std::ffi::OsString> = ["--temperature", "0", "--max-tokens", "16"]
        .iter()
        .map(|s| std::ffi::OsString::from(*s))
        .collect();
    args.extend(["--model".into(), smol.into_os_string()]);
    args.extend(["--session".into(), session.clone().into_os_string()]);

    // First run: a new session, saved after the answer.
    let out = chat(data.path(), &args, "explain kural 1\n/quit\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("new session"), "{}", stderr(&out));
    let saved = std::fs::read(&session).unwrap();
    assert!(saved.starts_with(b"VZHISESS"));
    assert!(
        !saved.windows(7).any(|w| w == b"kural 1"),
        "plaintext on disk"
    );

    // Second run: history and KV state back; the follow-up is answered.
    let out = chat(data.path(), &args, "explain kural 2\n/quit\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("session restored: 2 messages, KV state of"),
        "{err}"
    );
    let grown = std::fs::read(&session).unwrap();
    assert!(grown.len() > saved.len());
    // The restored turn is the turn one process gives by going on (greedy).
    let mut one_process = args.clone();
    one_process.truncate(one_process.len() - 2);
    let whole = chat(
        data.path(),
        &one_process,
        "explain kural 1\nexplain kural 2\n/quit\n",
    );
    assert!(whole.status.success(), "{}", stderr(&whole));
    let whole = String::from_utf8_lossy(&whole.stdout).into_owned();
    let restored = String::from_utf8_lossy(&out.stdout).into_owned();
    let second_turn = |text: &str| text.split("> ").nth(1).unwrap_or_default().to_owned();
    assert_eq!(
        whole.split("> ").nth(2).unwrap_or_default(),
        second_turn(&restored),
        "{whole}\n---\n{restored}"
    );
    assert!(!second_turn(&restored).trim().is_empty());

    // An altered byte in the state: the history is restored, the reason named.
    let mut tampered = grown.clone();
    let last = tampered.len() - 40;
    tampered[last] ^= 0x01;
    std::fs::write(&session, &tampered).unwrap();
    let out = chat(data.path(), &args, "explain kural 3\n/quit\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("session restored: 4 messages; KV state not used [tampered]"),
        "{err}"
    );

    // Cut short inside its header: nothing to restore, a new conversation that does not
    // write over the file.
    std::fs::write(&session, &grown[..40]).unwrap();
    let out = chat(data.path(), &args, "explain kural 3\n/quit\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("session not restored [truncated]"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&session).unwrap(), &grown[..40]);
    // Nor does a file that is not a session.
    std::fs::write(&session, b"my notes").unwrap();
    let out = chat(data.path(), &args, "explain kural 3\n/quit\n");
    assert!(
        stderr(&out).contains("[not_a_session_file]"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&session).unwrap(), b"my notes");

    // Not with --no-kb.
    let mut no_kb = args.clone();
    no_kb.push("--no-kb".into());
    let out = chat(data.path(), &no_kb, "/quit\n");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
