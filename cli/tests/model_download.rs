//! `vazhi model download` as a process: killed with SIGKILL at random offsets and resumed, run
//! into a full disk, offline, and through a dropped connection — the installed file's SHA-256
//! is checked every time.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use vazhi_tests::http_server::{Behavior, TestServer};

const ID: &str = "test-model";
const PATH: &str = "/test-model.gguf";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut data = vec![0u8; len];
    rng.fill(&mut data);
    data
}

struct Setup {
    server: TestServer,
    data: Vec<u8>,
    sha: String,
    catalog: PathBuf,
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl Setup {
    fn new(len: usize) -> Self {
        let server = TestServer::start();
        let data = content(len, 7);
        server.serve_bytes(PATH, data.clone());
        let sha = hex(&Sha256::digest(&data));
        let tmp = tempfile::tempdir().unwrap();
        let catalog = tmp.path().join("catalog.json");
        std::fs::write(
            &catalog,
            serde_json::json!({"format": 1, "models": [{
                "id": ID, "urls": [server.url(PATH)], "sha256": sha, "size": len,
                "quant": "Q4_K_M", "arch": "llama", "context_length": 2048,
                "min_ram_mb": 64, "licence": "MIT"}]})
            .to_string(),
        )
        .unwrap();
        let dir = tmp.path().to_owned();
        Self {
            server,
            data,
            sha,
            catalog,
            _dir: tmp,
            dir,
        }
    }

    fn vazhi(&self, data_dir: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vazhi"));
        cmd.env_remove("VAZHI_LOG")
            .env("VAZHI_CATALOG", &self.catalog)
            .env("VAZHI_ALLOW_UNSIGNED", "1")
            .env("VAZHI_ALLOW_LOOPBACK_HTTP", "1")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["model", "download", ID, "--json", "--read-timeout", "1"]);
        cmd
    }

    fn installed_sha(&self, data_dir: &Path) -> String {
        let bytes = std::fs::read(data_dir.join(format!("models/{ID}.gguf"))).unwrap();
        hex(&Sha256::digest(bytes))
    }
}

fn part_len(data_dir: &Path) -> u64 {
    std::fs::metadata(data_dir.join(format!("downloads/{ID}.gguf.part"))).map_or(0, |m| m.len())
}

fn range_start(range: &str) -> u64 {
    range
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap()
}

/// Kill -9 at 50+ random offsets, resume each time, check the final SHA-256 every time and that
/// every resume asked for exactly the bytes that were missing.
#[test]
fn kill_9_at_random_offsets_then_resume_gives_the_right_file() {
    const LEN: usize = 6 << 20;
    const ROUNDS: usize = 50;
    let s = Setup::new(LEN);
    // Slow enough that a kill lands mid-body: ~6 MiB at 24 MiB/s ≈ 250 ms.
    s.server.set_behavior(
        PATH,
        Behavior {
            rate_limit: Some(24 << 20),
            ..Behavior::default()
        },
    );
    let seed = fastrand::u64(..);
    eprintln!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut resumed, mut killed_mid_body) = (0, 0);
    for round in 0..ROUNDS {
        let data_dir = s.dir.join(format!("round{round}"));
        let target = rng.u64(1..LEN as u64);
        let mut child = s
            .vazhi(&data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while part_len(&data_dir) < target
            && child.try_wait().unwrap().is_none()
            && started.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_micros(300));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let left = part_len(&data_dir);
        if left > 0 && left < LEN as u64 {
            killed_mid_body += 1;
        }
        s.server.reset_counters();
        let out = s.vazhi(&data_dir).output().unwrap();
        assert!(
            out.status.success(),
            "round {round} (seed {seed}): resume failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            s.installed_sha(&data_dir),
            s.sha,
            "round {round} (seed {seed})"
        );
        let requests = s.server.requests();
        if left > 0 && left < LEN as u64 {
            let first = &requests[0];
            let start = range_start(first.range.as_deref().expect("a resume sends Range"));
            assert_eq!(
                start, left,
                "round {round}: resumed from where the part ended"
            );
            assert_eq!(first.status, 206);
            assert_eq!(first.body_bytes, LEN as u64 - left, "fetched = missing");
            resumed += 1;
        }
        std::fs::remove_dir_all(&data_dir).unwrap();
    }
    eprintln!("{ROUNDS} kills: {killed_mid_body} mid-body, {resumed} resumed with Range");
    assert!(
        killed_mid_body >= ROUNDS * 8 / 10,
        "kills should land mid-body"
    );
    assert!(resumed >= ROUNDS * 8 / 10);
}

#[test]
fn a_dropped_connection_is_resumed_by_the_cli() {
    let s = Setup::new(3 << 20);
    s.server.set_behavior(
        PATH,
        Behavior {
            drop_after: Some(1 << 20),
            times: Some(1),
            ..Behavior::default()
        },
    );
    let data_dir = s.dir.join("d");
    let out = s.vazhi(&data_dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.installed_sha(&data_dir), s.sha);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.iter().any(|e| e["phase"] == "retrying"), "{stdout}");
    let last = events.last().unwrap();
    assert_eq!(last["event"], "installed");
    assert_eq!(last["sha256"], s.sha.as_str());
    assert_eq!(s.server.requests().len(), 2);
    // verify and remove round-trip.
    let verify = Command::new(env!("CARGO_BIN_EXE_vazhi"))
        .env("VAZHI_CATALOG", &s.catalog)
        .env("VAZHI_ALLOW_UNSIGNED", "1")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["model", "verify", ID])
        .output()
        .unwrap();
    assert!(verify.status.success());
    let remove = Command::new(env!("CARGO_BIN_EXE_vazhi"))
        .env("VAZHI_CATALOG", &s.catalog)
        .env("VAZHI_ALLOW_UNSIGNED", "1")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["model", "remove", ID])
        .output()
        .unwrap();
    assert!(remove.status.success());
    assert!(!data_dir.join(format!("models/{ID}.gguf")).exists());
    assert_eq!(s.data.len(), 3 << 20);
}

#[test]
fn offline_cli_fails_fast_and_connects_to_nothing() {
    let s = Setup::new(1 << 20);
    let out = s
        .vazhi(&s.dir.join("d"))
        .env("VAZHI_OFFLINE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("offline"));
    assert_eq!(s.server.connections(), 0);
}

/// A real full disk: the download runs on a 48 MiB tmpfs in a private mount namespace, a filler
/// file eats the space mid-download. The CLI must stop with the storage error (exit 8), keep
/// the part, and resume to a verified file once space is back.
#[test]
fn disk_full_mid_download_keeps_the_part_and_resumes() {
    let probe = Command::new("unshare")
        .args(["-m", "true"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the disk-full test (needs unshare -m: root or user namespaces)"
        );
        eprintln!("skipping: cannot create a mount namespace here");
        return;
    }
    const LEN: usize = 12 << 20;
    let s = Setup::new(LEN);
    s.server.set_behavior(
        PATH,
        Behavior {
            rate_limit: Some(8 << 20),
            ..Behavior::default()
        },
    );
    let mnt = s.dir.join("tmpfs");
    std::fs::create_dir(&mnt).unwrap();
    let cmd = |_: ()| {
        let c = s.vazhi(&mnt);
        let mut line = shell_quote(c.get_program());
        for a in c.get_args() {
            line.push(' ');
            line.push_str(&shell_quote(a));
        }
        line
    };
    let download = cmd(());
    let part = format!("{}/downloads/{ID}.gguf.part", mnt.display());
    let script = format!(
        r#"set -u
mount -t tmpfs -o size=48m tmpfs '{mnt}' || exit 99
{download} > /dev/null 2>'{errf}' &
pid=$!
while [ ! -s '{part}' ] && kill -0 $pid 2>/dev/null; do sleep 0.01; done
dd if=/dev/zero of='{mnt}/filler' bs=1M 2>/dev/null
wait $pid; echo "first=$?"
echo "part=$(stat -c %s '{part}')"
echo "err=$(cat '{errf}')"
rm '{mnt}/filler'
{download} > /dev/null 2>&1; echo "second=$?"
echo "sha=$(sha256sum '{mnt}/models/{ID}.gguf' | cut -d' ' -f1)"
"#,
        mnt = mnt.display(),
        errf = s.dir.join("err1").display(),
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env("VAZHI_CATALOG", &s.catalog)
        .env("VAZHI_ALLOW_UNSIGNED", "1")
        .env("VAZHI_ALLOW_LOOPBACK_HTTP", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        get("first"),
        "8",
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(get("err").contains("storage is full"), "{text}");
    let kept: u64 = get("part").parse().unwrap();
    assert!(kept > 0 && kept < LEN as u64, "part kept: {kept}");
    assert_eq!(get("second"), "0", "{text}");
    assert_eq!(get("sha"), s.sha);
    // The second run resumed: it asked for a range.
    let resumed = s
        .server
        .requests()
        .into_iter()
        .filter_map(|r| r.range)
        .map(|r| range_start(&r))
        .collect::<Vec<_>>();
    assert!(resumed.contains(&kept), "resume from {kept}: {resumed:?}");
}

fn shell_quote(s: &std::ffi::OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"))
}
