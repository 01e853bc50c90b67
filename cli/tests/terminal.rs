//! The `vazhi` binary in a pipe and on a terminal: a closed standard output ends every command
//! quietly with exit code 0 (no panic, no "Broken pipe" error), and pack text reaches the
//! terminal without control characters.

#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn vazhi(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vazhi"));
    cmd.env_remove("VAZHI_LOG")
        .env_remove("VAZHI_DATA_DIR")
        .env_remove("VAZHI_CATALOG")
        .arg("--data-dir")
        .arg(data_dir);
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn import(data_dir: &Path, pack: &Path) {
    let out = vazhi(data_dir)
        .env("VAZHI_ALLOW_UNSIGNED", "1")
        .args(["kb", "import"])
        .arg(pack)
        .output()
        .unwrap();
    assert!(out.status.success(), "import: {}", stderr(&out));
}

fn thirukkural() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../assets/packs/thirukkural"
    ))
}

/// Exit code 0 and nothing on stderr about the pipe: no panic, no error line.
fn assert_quiet_success(out: &Output, what: &str) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{what}: panicked: {err}");
    assert!(
        !err.to_lowercase().contains("broken pipe") && !err.contains("error"),
        "{what}: {err}"
    );
    assert_eq!(out.status.code(), Some(0), "{what}: {err}");
}

/// Runs `cmd` with standard output a pipe whose reading end is already closed, so that its
/// first write fails with EPIPE.
fn with_stdout_closed(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped());
    cmd.output().unwrap()
}

/// Runs `cmd` with standard output a small pipe, reads `n` bytes of it and closes it, like
/// `| head -c n`; the command still has output to write.
fn read_then_close(mut cmd: Command, n: usize) -> (Vec<u8>, Output) {
    let (mut reader, writer) = std::io::pipe().unwrap();
    // A one-page pipe, so the command is still writing when the reader goes away.
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: F_SETPIPE_SZ on a pipe descriptor we own; no memory is passed.
        let size = unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
        assert!(size >= 4096, "F_SETPIPE_SZ failed");
    }
    cmd.stdout(writer).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Our copy of the writing end goes with `cmd`, or the pipe would never close.
    drop(cmd);
    let mut first = vec![0; n];
    reader.read_exact(&mut first).unwrap();
    drop(reader);
    (first, child.wait_with_output().unwrap())
}

#[test]
fn a_closed_pipe_mid_output_ends_quietly() {
    let data = tempfile::tempdir().unwrap();
    import(data.path(), thirukkural());
    let search = || {
        let mut cmd = vazhi(data.path());
        cmd.args(["kb", "search", "kural", "--limit", "500"]);
        cmd
    };
    let full = search().output().unwrap();
    assert!(full.status.success(), "{}", stderr(&full));
    assert!(
        full.stdout.len() > 3 * 4096,
        "the search prints only {} bytes: it would fit the pipe and prove nothing",
        full.stdout.len()
    );
    let (first, out) = read_then_close(search(), 16);
    assert_eq!(first, full.stdout[..16]);
    assert_quiet_success(&out, "kb search | head -c 16");
}

#[test]
fn every_command_ends_quietly_on_a_closed_stdout() {
    let data = tempfile::tempdir().unwrap();
    import(data.path(), thirukkural());
    let mut cases: Vec<Vec<&str>> = vec![
        vec!["--help"],
        vec!["kb", "search", "kural", "--limit", "500"],
        vec!["kb", "search", "kural", "--json"],
        vec!["kb", "lookup", "thirukkural", "kural 1"],
        vec!["kb", "list"],
        vec!["kb", "list", "--json"],
        vec!["ask", "--no-model", "குறள் ௧"],
        vec!["ask", "--no-model", "--json", "குறள் ௧"],
        vec!["model", "list"],
        vec!["model", "list", "--json"],
        vec!["feedback", "count"],
    ];
    let smol = vazhi_tests::model(vazhi_tests::SMOLLM2);
    if let Some(smol) = smol.as_deref().and_then(Path::to_str) {
        cases.push(vec!["info", smol]);
        cases.push(vec!["info", "--json", smol]);
    }
    for args in cases {
        let mut cmd = vazhi(data.path());
        cmd.args(&args);
        let out = with_stdout_closed(cmd);
        assert_quiet_success(&out, &args.join(" "));
    }
}

#[test]
fn pack_text_reaches_the_terminal_without_control_characters() {
    let data = tempfile::tempdir().unwrap();
    let pack = tempfile::tempdir().unwrap();
    std::fs::write(
        pack.path().join("pack.toml"),
        concat!(
            "name = \"hostile\"\n",
            "title = \"Hostile \\u001b[2J pack \\u0007\"\n",
            "version = \"1.0.0\"\n",
            "languages = [\"en\"]\n",
            "licence = \"CC0 \\u009b31m\"\n",
            "source = \"made \\u001b]0;title\\u0007 up\"\n",
            "description = \"A pack whose text carries terminal escapes.\"\n",
        ),
    )
    .unwrap();
    let record = serde_json::json!({
        "id": "red\u{1b}[31m",
        "keys": ["crimson"],
        "title": "Crimson \u{1b}[31malert\u{1b}[0m \u{7}",
        "body": "crimson line one \u{1b}]0;pwned\u{7}\ncrimson line two \u{9b}31m \u{8}\r\u{0} over",
        "lang": "en",
        "source": "source \u{1b}[0m \u{85}",
    });
    std::fs::write(pack.path().join("records.jsonl"), format!("{record}\n")).unwrap();
    import(data.path(), pack.path());

    let run = |args: &[&str]| {
        let out = vazhi(data.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let clean = |text: &str, what: &str| {
        assert!(!text.contains('\u{1b}'), "{what}: ESC in {text:?}");
        let bad: Vec<char> = text
            .chars()
            .filter(|c| c.is_control() && *c != '\n')
            .collect();
        assert!(
            bad.is_empty(),
            "{what}: control characters {bad:?} in {text:?}"
        );
    };

    let search = run(&["kb", "search", "crimson"]);
    clean(&search, "kb search");
    assert!(search.contains("alert"), "{search}");
    let lookup = run(&["kb", "lookup", "hostile", "crimson"]);
    clean(&lookup, "kb lookup");
    // The body keeps its lines; only the controls inside them are blanked.
    assert!(lookup.contains("crimson line one"), "{lookup}");
    assert!(
        lookup.lines().any(|l| l.starts_with("crimson line two")),
        "{lookup}"
    );
    let list = run(&["kb", "list"]);
    clean(&list, "kb list");
    assert!(list.contains("Hostile"), "{list}");
    let ask = run(&["ask", "--no-model", "crimson"]);
    clean(&ask, "ask --no-model");
    // Imported again: the "already installed" line names the pack from its manifest.
    let again = vazhi(data.path())
        .env("VAZHI_ALLOW_UNSIGNED", "1")
        .args(["kb", "import"])
        .arg(pack.path())
        .output()
        .unwrap();
    clean(&String::from_utf8(again.stdout).unwrap(), "kb import");

    // JSON keeps the text exactly, escaped by serde.
    let json = run(&["kb", "search", "crimson", "--json"]);
    assert!(!json.contains('\u{1b}'));
    let hits: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(hits[0]["card"]["title"]
        .as_str()
        .unwrap()
        .contains("\u{1b}[31m"));
}
