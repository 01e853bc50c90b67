//! Download benchmark: `vazhi model download` against `curl` on the same file, from the same
//! loopback server, in the same run. Prints throughput ratios, bytes fetched on resume after a
//! `kill -9` against bytes missing, SHA-256 throughput, and peak RSS at two file sizes.
//!
//! `cargo bench -p vazhi-cli --bench download` (or `scripts/bench-download`);
//! `VAZHI_BENCH_MB` sets the file size (default 500).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use vazhi_tests::http_server::TestServer;
use vazhi_tests::measure::{wait_measured, Cost};

const ID: &str = "bench-model";
const RUNS: usize = 5;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `mib` MiB of pseudo-random bytes to `path`; returns their SHA-256.
fn make_file(path: &Path, mib: usize) -> String {
    let mut rng = fastrand::Rng::with_seed(42);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        rng.fill(&mut block);
        hasher.update(&block);
        out.write_all(&block).unwrap();
    }
    out.flush().unwrap();
    hex(&hasher.finalize())
}

struct Bench {
    server: TestServer,
    dir: PathBuf,
    catalog: PathBuf,
    size: u64,
}

impl Bench {
    fn vazhi(&self, data_dir: &Path) -> Command {
        // VAZHI_BIN: run another build of vazhi (e.g. a copy carried to another machine).
        let bin = std::env::var_os("VAZHI_BIN")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vazhi")), PathBuf::from);
        let mut cmd = Command::new(bin);
        cmd.env("VAZHI_CATALOG", &self.catalog)
            .env("VAZHI_ALLOW_LOOPBACK_HTTP", "1")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["model", "download", ID, "--json"])
            .stderr(Stdio::inherit());
        cmd
    }

    /// One vazhi download from scratch: (seconds to the last byte, cost to a verified install).
    fn run_vazhi(&self) -> (f64, Cost) {
        let data_dir = self.dir.join("vazhi-data");
        let _ = std::fs::remove_dir_all(&data_dir);
        let started = Instant::now();
        let mut child = self
            .vazhi(&data_dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut last_byte = None;
            for line in std::io::BufReader::new(stdout).lines() {
                let line = line.unwrap();
                if last_byte.is_none() && line.contains(r#""phase":"verifying""#) {
                    last_byte = Some(started.elapsed());
                }
            }
            last_byte
        });
        let cost = wait_measured(child, started).unwrap();
        assert!(cost.ok, "vazhi download failed");
        let last_byte = reader.join().unwrap().unwrap_or(cost.wall);
        (last_byte.as_secs_f64(), cost)
    }

    /// One curl download.
    fn run_curl(&self) -> Cost {
        let out = self.dir.join("curl.bin");
        let _ = std::fs::remove_file(&out);
        let started = Instant::now();
        let child = Command::new("curl")
            .args(["-s", "-f", "-o"])
            .arg(&out)
            .arg(self.server.url("/model.gguf"))
            .spawn()
            .unwrap();
        let cost = wait_measured(child, started).unwrap();
        assert!(cost.ok, "curl failed");
        assert_eq!(std::fs::metadata(&out).unwrap().len(), self.size);
        cost
    }

    /// Kills a download with SIGKILL at about half way, resumes it, and returns (bytes missing
    /// at the resume, bytes the server sent for the resume).
    fn resume_after_kill(&self) -> (u64, u64) {
        let data_dir = self.dir.join("resume-data");
        let _ = std::fs::remove_dir_all(&data_dir);
        let part = data_dir.join(format!("downloads/{ID}.gguf.part"));
        let mut child = self.vazhi(&data_dir).stdout(Stdio::null()).spawn().unwrap();
        while std::fs::metadata(&part).map_or(0, |m| m.len()) < self.size / 2 {
            std::thread::sleep(Duration::from_micros(200));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let have = std::fs::metadata(&part).unwrap().len();
        self.server.reset_counters();
        let status = self
            .vazhi(&data_dir)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        (self.size - have, self.server.body_bytes_sent())
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; nothing to list here.
    }
    let mib: usize = std::env::var("VAZHI_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let tmp = tempfile::Builder::new()
        .prefix("vazhi-download-bench")
        .tempdir_in(
            std::env::var_os("VAZHI_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from),
        )
        .unwrap();
    let dir = tmp.path().to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "download benchmark: {mib} MiB over loopback, {RUNS} runs each, medians, {cores} cores"
    );

    // SHA-256 throughput in memory.
    let buf = vec![0xA5u8; 256 << 20];
    let started = Instant::now();
    let mut total = 0usize;
    while started.elapsed() < Duration::from_secs(2) {
        std::hint::black_box(Sha256::digest(&buf));
        total += buf.len();
    }
    let sha_gbs = total as f64 / started.elapsed().as_secs_f64() / 1e9;
    let shani = std::arch::is_x86_feature_detected!("sha");
    println!(
        "  sha256      {sha_gbs:.2} GB/s (sha2 crate, CPU SHA extensions: {shani}; target ≥ 1.5)"
    );
    drop(buf);

    let file = dir.join("model.gguf");
    let sha = make_file(&file, mib);
    let size = (mib as u64) << 20;
    let server = TestServer::start();
    server.serve_file("/model.gguf", file.clone());
    let catalog = dir.join("catalog.json");
    std::fs::write(
        &catalog,
        serde_json::json!({"format": 1, "models": [{
            "id": ID, "urls": [server.url("/model.gguf")], "sha256": sha, "size": size,
            "quant": "Q4_K_M", "arch": "llama", "context_length": 2048,
            "min_ram_mb": 64, "licence": "MIT"}]})
        .to_string(),
    )
    .unwrap();
    let bench = Bench {
        server,
        dir: dir.clone(),
        catalog,
        size,
    };
    // Warm the page cache and both code paths once.
    bench.run_curl();
    bench.run_vazhi();

    let (mut curl_t, mut vazhi_t, mut vazhi_total) = (vec![], vec![], vec![]);
    let (mut curl_cpu, mut vazhi_cpu) = (vec![], vec![]);
    let (mut curl_rss, mut vazhi_rss) = (0, 0);
    for _ in 0..RUNS {
        let cost = bench.run_curl();
        curl_t.push(cost.wall.as_secs_f64());
        curl_cpu.push(cost.cpu);
        curl_rss = curl_rss.max(cost.peak_kib);
        let (t, cost) = bench.run_vazhi();
        vazhi_t.push(t);
        vazhi_total.push(cost.wall.as_secs_f64());
        vazhi_cpu.push(cost.cpu);
        vazhi_rss = vazhi_rss.max(cost.peak_kib);
    }
    let mb = size as f64 / 1e6;
    let (c, v, vt) = (median(curl_t), median(vazhi_t), median(vazhi_total));
    println!("  curl        {:.0} MB/s ({c:.2} s)", mb / c);
    println!(
        "  vazhi       {:.0} MB/s to the last byte ({v:.2} s) = {:.2} × curl (target ≥ 0.9)",
        mb / v,
        c / v
    );
    println!(
        "              {:.0} MB/s to a verified, fsynced install ({vt:.2} s) = {:.2} × curl",
        mb / vt,
        c / vt
    );
    let (cc, vc) = (median(curl_cpu), median(vazhi_cpu));
    println!(
        "  CPU         curl {cc:.2} s, vazhi {vc:.2} s (SHA-256 of the file alone: {:.2} s at the rate above)",
        size as f64 / 1e9 / sha_gbs
    );
    let (missing, fetched) = bench.resume_after_kill();
    println!(
        "  resume      fetched {fetched} bytes for {missing} missing after kill -9 at ~50% = {:.4} (target ≤ 1.01)",
        fetched as f64 / missing as f64
    );
    // Peak RSS at a fifth of the size, to show it does not grow with the file.
    let small_mib = (mib / 5).max(1);
    let small = dir.join("small.gguf");
    let small_sha = make_file(&small, small_mib);
    bench.server.serve_file("/model.gguf", small);
    std::fs::write(
        &bench.catalog,
        serde_json::json!({"format": 1, "models": [{
            "id": ID, "urls": [bench.server.url("/model.gguf")], "sha256": small_sha,
            "size": (small_mib as u64) << 20, "quant": "Q4_K_M", "arch": "llama",
            "context_length": 2048, "min_ram_mb": 64, "licence": "MIT"}]})
        .to_string(),
    )
    .unwrap();
    let small_rss = bench.run_vazhi().1.peak_kib;
    println!(
        "  peak RSS    vazhi {:.1} MiB at {mib} MiB, {:.1} MiB at {small_mib} MiB (curl {:.1} MiB)",
        vazhi_rss as f64 / 1024.0,
        small_rss as f64 / 1024.0,
        curl_rss as f64 / 1024.0
    );
}
