//! Model files whose chat template loops forever, builds a huge string or doubles a value in
//! a namespace: `vazhi ask --model` must refuse each with "model file refused" (exit 3), and
//! end quickly within a small memory (the figures are printed: run with `--nocapture`).
//!
//! The files are the real SmolLM2 model with only `tokenizer.chat_template` replaced.

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use vazhi_gguf::{GgufWriter, Limits};
use vazhi_tests::measure::run_measured;

/// Writes a copy of `source` with its chat template replaced by `template`.
fn with_template(source: &Path, template: &str, dest: &Path) {
    let parsed = vazhi_gguf::read_file(source, &Limits::default()).unwrap();
    let mut metadata = parsed.metadata.clone();
    metadata.insert("tokenizer.chat_template", template);
    let out = BufWriter::new(File::create(dest).unwrap());
    let mut writer = GgufWriter::new(out, &metadata, &parsed.tensors).unwrap();
    let mut input = File::open(source).unwrap();
    for tensor in &parsed.tensors {
        let range = parsed.tensor_data_range(tensor);
        let mut data = vec![0u8; usize::try_from(range.end - range.start).unwrap()];
        input.seek(SeekFrom::Start(range.start)).unwrap();
        input.read_exact(&mut data).unwrap();
        writer.write_tensor_data(&data).unwrap();
    }
    writer.finish().unwrap().flush().unwrap();
}

#[test]
fn hostile_chat_templates_are_refused_quickly_in_little_memory() {
    let Some(model) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        return;
    };
    let chain: String = (0..40)
        .map(|i| format!("{{% set v{} = v{i} ~ v{i} %}}", i + 1))
        .collect();
    let cases = [
        (
            "loop 10^5 × 10^5",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
                .to_owned(),
        ),
        (
            "huge string",
            "{% set s = 'x' * 100000000 %}{% set t = s ~ s ~ s ~ s %}{{ t }}".to_owned(),
        ),
        (
            "namespace doubling",
            "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"
                .to_owned(),
        ),
        (
            "chain of doublings",
            format!("{{% set v0 = messages[0].content %}}{chain}{{{{ v40 }}}}"),
        ),
        (
            "recursive macro",
            "{% macro d(s, n) %}{% if n > 0 %}{{ d(s ~ s, n - 1) }}{% else %}{{ s }}{% endif %}{% endmacro %}{{ d('x', 60) }}"
                .to_owned(),
        ),
        (
            "printing without end",
            "{% for i in range(100000) %}{% for m in messages %}{{ 'x' * 10000 }}{% endfor %}{% endfor %}"
                .to_owned(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, template) in cases {
        let file = dir.path().join("hostile.gguf");
        with_template(&model, &template, &file);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vazhi"));
        cmd.args(["ask", "--model"])
            .arg(&file)
            .arg("hello")
            .env("VAZHI_DATA_DIR", dir.path().join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let started = std::time::Instant::now();
        let output = cmd.output().unwrap();
        let wall = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{name}: {stderr}");
        assert!(stderr.contains("chat template"), "{name}: {stderr}");
        // The same again, measured (peak RSS of the process).
        let cost = run_measured(
            Command::new(env!("CARGO_BIN_EXE_vazhi"))
                .args(["ask", "--model"])
                .arg(&file)
                .arg("hello")
                .env("VAZHI_DATA_DIR", dir.path().join("data"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap();
        println!(
            "hostile template {name:<22} refused in {:>6.3} s (measured run {:.3} s), peak RSS {:.0} MiB",
            wall.as_secs_f64(),
            cost.wall.as_secs_f64(),
            cost.peak_mib()
        );
    }
}
