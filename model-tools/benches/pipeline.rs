//! model-tools benchmark: `convert` against llama.cpp's Python converter on the same
//! checkpoint (throughput and peak RSS, same run), `merge` peak RSS against its bound
//! (2 × the largest tensor + 200 MiB), and `quantize` time and size.
//!
//! `scripts/bench-model-tools` (or `cargo bench -p model-tools --bench pipeline`). The
//! checkpoints are the real test models imported back to Hugging Face form (f32 safetensors):
//! Gemma 3 270M is the largest model available here. The Python converter runs when the venv
//! of `scripts/setup-pyconvert` exists (`VAZHI_PYCONVERT=/path/to/python` to point elsewhere).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use model_tools::import::{import_gguf, ImportOptions};
use model_tools::synth::synth_lora;
use vazhi_tests::measure::{run_measured, Cost};

const RUNS: usize = 3;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_model-tools"));
    cmd.stdout(Stdio::null());
    cmd
}

fn median(mut costs: Vec<Cost>) -> Cost {
    assert!(costs.iter().all(|c| c.ok), "a measured run failed");
    costs.sort_by_key(|c| c.wall);
    costs[costs.len() / 2]
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn python() -> Option<(PathBuf, PathBuf)> {
    let python = std::env::var_os("VAZHI_PYCONVERT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap())
                .join(".cache/vazhi/pyconvert-venv/bin/python")
        });
    let script = PathBuf::from(std::env::var_os("HOME").unwrap()).join(
        ".cache/vazhi/llama.cpp-src/llama_cpp_python-0.3.36/vendor/llama.cpp/convert_hf_to_gguf.py",
    );
    (python.exists() && script.exists()).then_some((python, script))
}

fn bench_convert(name: &str, hf: &Path, work: &Path) {
    let input = dir_bytes(hf);
    let out = work.join(format!("{name}-rust.gguf"));
    let rust = median(
        (0..RUNS)
            .map(|_| {
                let _ = std::fs::remove_file(&out);
                run_measured(
                    bin()
                        .args(["convert", "--hf"])
                        .arg(hf)
                        .arg("--out")
                        .arg(&out)
                        .args(["--type", "f16"]),
                )
                .unwrap()
            })
            .collect(),
    );
    let mbps = |c: &Cost| input as f64 / 1e6 / c.wall.as_secs_f64();
    println!(
        "convert {name} f32 → f16 ({:.0} MB of safetensors)\n  model-tools  {:6.2} s  {:6.0} MB/s  peak RSS {:6.0} MiB  CPU {:.2} s",
        input as f64 / 1e6,
        rust.wall.as_secs_f64(),
        mbps(&rust),
        rust.peak_mib(),
        rust.cpu
    );
    let Some((python, script)) = python() else {
        println!("  python       skipped: run scripts/setup-pyconvert for llama.cpp's converter");
        return;
    };
    let py_out = work.join(format!("{name}-python.gguf"));
    let py = median(
        (0..RUNS)
            .map(|_| {
                let _ = std::fs::remove_file(&py_out);
                run_measured(
                    Command::new(&python)
                        .arg(&script)
                        .arg(hf)
                        .arg("--outfile")
                        .arg(&py_out)
                        .args(["--outtype", "f16"])
                        .env("HF_HUB_OFFLINE", "1")
                        .env("TRANSFORMERS_OFFLINE", "1")
                        .stdout(Stdio::null())
                        .stderr(Stdio::null()),
                )
                .unwrap()
            })
            .collect(),
    );
    println!(
        "  python       {:6.2} s  {:6.0} MB/s  peak RSS {:6.0} MiB  CPU {:.2} s\n  ratio        {:.2}× the Python converter's throughput (target ≥ 3), {:.2}× its peak RSS",
        py.wall.as_secs_f64(),
        mbps(&py),
        py.peak_mib(),
        py.cpu,
        py.wall.as_secs_f64() / rust.wall.as_secs_f64(),
        rust.peak_mib() / py.peak_mib()
    );
    compare_outputs(&out, &py_out);
}

/// Compares two GGUFs tensor by tensor (names, types, shapes, bytes) and lists the metadata
/// keys whose values differ.
fn compare_outputs(ours: &Path, theirs: &Path) {
    use model_tools::gguf::{read_file, Limits};
    let a = read_file(ours, &Limits::default()).unwrap();
    let b = read_file(theirs, &Limits::default()).unwrap();
    let bytes_a = std::fs::read(ours).unwrap();
    let bytes_b = std::fs::read(theirs).unwrap();
    let mut differ = Vec::new();
    for t in &a.tensors {
        let same = b.tensor(&t.name).is_some_and(|u| {
            let (ra, rb) = (a.tensor_data_range(t), b.tensor_data_range(u));
            u.ggml_type == t.ggml_type
                && u.dims == t.dims
                && bytes_a[ra.start as usize..ra.end as usize]
                    == bytes_b[rb.start as usize..rb.end as usize]
        });
        if !same {
            differ.push(t.name.clone());
        }
    }
    let keys: std::collections::BTreeSet<&str> =
        a.metadata.keys().chain(b.metadata.keys()).collect();
    let meta_differ: Vec<&str> = keys
        .into_iter()
        .filter(|k| a.metadata.get(k) != b.metadata.get(k))
        .collect();
    println!(
        "  same output  {} of {} tensors identical in type, shape and bytes ({} in theirs){}\n               metadata values differ for {:?}",
        a.tensors.len() - differ.len(),
        a.tensors.len(),
        b.tensors.len(),
        if differ.is_empty() { String::new() } else { format!("; differing: {differ:?}") },
        meta_differ
    );
}

fn bench_merge(hf: &Path, work: &Path) {
    let adapter = work.join("gemma3-lora");
    let _ = std::fs::remove_dir_all(&adapter);
    let targets = [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ];
    let modules = synth_lora(hf, &adapter, &targets, 16, 32.0, 1).unwrap();
    let out = work.join("gemma3-merged");
    let costs = (0..RUNS)
        .map(|_| {
            let _ = std::fs::remove_dir_all(&out);
            run_measured(
                bin()
                    .args(["merge", "--base"])
                    .arg(hf)
                    .arg("--adapter")
                    .arg(&adapter)
                    .arg("--out")
                    .arg(&out),
            )
            .unwrap()
        })
        .collect();
    let cost = median(costs);
    let checkpoint = model_tools::hf::Checkpoint::open(hf).unwrap();
    let largest = checkpoint
        .names()
        .iter()
        .map(|n| checkpoint.tensor(n).unwrap().data.len())
        .max()
        .unwrap() as f64
        / (1 << 20) as f64;
    let bound = 2.0 * largest + 200.0;
    println!(
        "merge gemma3-270m f32 + rank-16 LoRA on {modules} modules\n  {:.2} s, peak RSS {:.0} MiB; largest tensor {:.0} MiB → bound 2× + 200 = {:.0} MiB ({:.2} of the bound)",
        cost.wall.as_secs_f64(),
        cost.peak_mib(),
        largest,
        bound,
        cost.peak_mib() / bound
    );
}

fn bench_quantize(name: &str, input: &Path, work: &Path) {
    let out = work.join(format!("{name}-q4_k_m.gguf"));
    let cost = median(
        (0..RUNS)
            .map(|_| {
                let _ = std::fs::remove_file(&out);
                run_measured(
                    bin()
                        .arg("quantize")
                        .arg(input)
                        .arg(&out)
                        .args(["--type", "Q4_K_M"]),
                )
                .unwrap()
            })
            .collect(),
    );
    let report = Command::new(env!("CARGO_BIN_EXE_model-tools"))
        .args(["quantize", "--json", "--overwrite", "--type", "Q4_K_M"])
        .arg(input)
        .arg(&out)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    println!(
        "quantize {name} → Q4_K_M\n  {:.2} s, peak RSS {:.0} MiB, {:.1} MiB → {:.1} MiB, {:.2} bits per weight, tensors {}",
        cost.wall.as_secs_f64(),
        cost.peak_mib(),
        report["input_bytes"].as_f64().unwrap() / 1048576.0,
        report["output_bytes"].as_f64().unwrap() / 1048576.0,
        report["bits_per_weight"].as_f64().unwrap(),
        report["tensor_types"]
    );
}

fn main() {
    let models = PathBuf::from(
        std::env::var_os("VAZHI_MODELS").expect("VAZHI_MODELS (source scripts/env.sh)"),
    );
    let work = std::env::var_os("VAZHI_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/vazhi/bench-model-tools")
        });
    std::fs::create_dir_all(&work).unwrap();
    println!(
        "model-tools benchmark: medians of {RUNS} runs, {} cores",
        std::thread::available_parallelism().unwrap()
    );
    for (name, file) in [
        ("smollm2-135m", vazhi_tests::SMOLLM2),
        ("gemma3-270m", vazhi_tests::GEMMA3),
    ] {
        let hf = work.join(format!("{name}.hf"));
        if !hf.join("config.json").exists() {
            let _ = std::fs::remove_dir_all(&hf);
            import_gguf(
                &ImportOptions {
                    gguf: models.join(file),
                    out: hf.clone(),
                    overwrite: false,
                },
                &|_, _| {},
            )
            .unwrap();
        }
        bench_convert(name, &hf, &work);
        bench_quantize(name, &work.join(format!("{name}-rust.gguf")), &work);
    }
    bench_merge(&work.join("gemma3-270m.hf"), &work);
}
