//! The downloader against a real HTTP server on loopback that misbehaves on request: every
//! misbehaviour must end in the safe outcome (a correct install, a clean resume, or a typed
//! error with nothing installed).

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use vazhi_core::app::{Models, ModelsConfig};
use vazhi_core::data_dir::DataDir;
use vazhi_core::download::{
    Catalog, DeviceInfo, DownloadConfig, DownloadControl, DownloadError, DownloadEvent,
    DownloadHandle, DownloadOutcome, Downloader, ModelStatus, RetryPolicy,
};
use vazhi_core::signing::TrustPolicy;
use vazhi_tests::http_server::{Behavior, EtagMode, TestServer};

const ID: &str = "test-model";
const PATH: &str = "/models/test-model.gguf";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic, incompressible-looking test content.
fn content(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn catalog_json(urls: &[String], data: &[u8]) -> String {
    serde_json::json!({
        "format": 1,
        "models": [{
            "id": ID, "name": "test", "urls": urls,
            "sha256": hex(&Sha256::digest(data)), "size": data.len(),
            "quant": "Q4_K_M", "arch": "llama", "context_length": 2048,
            "min_ram_mb": 512, "licence": "MIT"
        }]
    })
    .to_string()
}

struct Fixture {
    server: TestServer,
    data: Vec<u8>,
    dir: tempfile::TempDir,
    downloader: Downloader,
}

impl Fixture {
    fn new(len: usize) -> Self {
        Self::with(len, |_| {})
    }

    fn with(len: usize, configure: impl FnOnce(&mut DownloadConfig)) -> Self {
        let server = TestServer::start();
        let data = content(len);
        server.serve_bytes(PATH, data.clone());
        let dir = tempfile::tempdir().unwrap();
        let mut config = DownloadConfig::new(DataDir::new(dir.path()));
        config.allow_loopback_http = true;
        config.read_idle_timeout = Duration::from_millis(400);
        config.connect_timeout = Duration::from_secs(2);
        config.progress_interval = Duration::ZERO;
        config.retry = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        };
        configure(&mut config);
        let catalog = Catalog::from_json(&catalog_json(&[server.url(PATH)], &data)).unwrap();
        let downloader = Downloader::new(catalog, config);
        Self {
            server,
            data,
            dir,
            downloader,
        }
    }

    fn part(&self) -> std::path::PathBuf {
        self.dir.path().join("downloads/test-model.gguf.part")
    }

    fn installed_file(&self) -> std::path::PathBuf {
        self.dir.path().join("models/test-model.gguf")
    }

    async fn download(&self) -> Result<DownloadOutcome, DownloadError> {
        self.downloader
            .download(ID, &DownloadControl::new(), |_| {})
            .await
    }

    /// Downloads until at least `at` bytes are in the part, then pauses.
    async fn partial(&self, at: u64) -> u64 {
        let control = DownloadControl::new();
        let outcome = self
            .downloader
            .download(ID, &control, |p| {
                if p.bytes >= at {
                    control.pause();
                }
            })
            .await
            .unwrap();
        let DownloadOutcome::Paused { bytes } = outcome else {
            panic!("expected a pause, got {outcome:?}")
        };
        assert!(bytes >= at && bytes < self.data.len() as u64, "{bytes}");
        assert_eq!(std::fs::metadata(self.part()).unwrap().len(), bytes);
        bytes
    }

    /// Asserts the installed file is exactly the served content and nothing is left over.
    fn assert_installed(&self, outcome: Result<DownloadOutcome, DownloadError>) {
        let outcome = outcome.unwrap();
        let DownloadOutcome::Installed(model) = outcome else {
            panic!("expected an install, got {outcome:?}")
        };
        assert_eq!(model.path(), self.installed_file());
        let on_disk = std::fs::read(self.installed_file()).unwrap();
        assert_eq!(on_disk.len(), self.data.len());
        assert!(
            on_disk == self.data,
            "installed bytes differ from the served file"
        );
        assert!(!self.part().exists(), "part left behind");
        assert!(matches!(
            self.downloader.status(ID).unwrap(),
            ModelStatus::Installed(_)
        ));
    }

    fn assert_nothing_installed(&self) {
        assert!(!self.installed_file().exists());
        assert!(self.downloader.installed(ID).is_err());
    }
}

const MIB: usize = 1 << 20;

#[tokio::test]
async fn clean_download_installs_the_verified_file() {
    let f = Fixture::new(3 * MIB + 17);
    let events = AtomicUsize::new(0);
    let outcome = f
        .downloader
        .download(ID, &DownloadControl::new(), |p| {
            assert!(p.bytes <= p.total);
            events.fetch_add(1, Ordering::Relaxed);
        })
        .await;
    f.assert_installed(outcome);
    assert!(events.load(Ordering::Relaxed) >= 3);
    let requests = f.server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].range, None);
    // A second call finds it installed and opens no connection.
    f.server.reset_counters();
    f.assert_installed(f.download().await);
    assert_eq!(f.server.connections(), 0);
}

#[tokio::test]
async fn dropped_connection_resumes_with_range_and_if_range() {
    let f = Fixture::new(4 * MIB);
    f.server.set_behavior(
        PATH,
        Behavior {
            drop_after: Some(1_500_000),
            times: Some(1),
            ..Behavior::default()
        },
    );
    f.assert_installed(f.download().await);
    let requests = f.server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let range = requests[1].range.clone().expect("resume sends Range");
    let start: u64 = range
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(start > 0 && start <= 1_500_000, "{range}");
    assert!(requests[1]
        .if_range
        .as_deref()
        .is_some_and(|v| v.starts_with('"')));
    assert_eq!(requests[1].status, 206);
    // Bytes fetched on resume = bytes missing, exactly.
    assert_eq!(requests[1].body_bytes, f.data.len() as u64 - start);
}

#[tokio::test]
async fn pause_keeps_the_part_and_resume_fetches_only_the_rest() {
    let f = Fixture::new(4 * MIB);
    let kept = f.partial(MIB as u64).await;
    assert!(matches!(
        f.downloader.status(ID).unwrap(),
        ModelStatus::Partial { bytes } if bytes == kept
    ));
    f.server.reset_counters();
    f.assert_installed(f.download().await);
    let requests = f.server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].range.as_deref(),
        Some(&*format!("bytes={kept}-"))
    );
    assert_eq!(f.server.body_bytes_sent(), f.data.len() as u64 - kept);
}

#[tokio::test]
async fn cancel_deletes_the_part() {
    let f = Fixture::new(2 * MIB);
    let control = DownloadControl::new();
    let outcome = f
        .downloader
        .download(ID, &control, |p| {
            if p.bytes > 100_000 {
                control.cancel();
            }
        })
        .await
        .unwrap();
    assert_eq!(outcome, DownloadOutcome::Cancelled);
    assert!(!f.part().exists());
    assert!(!f
        .dir
        .path()
        .join("downloads/test-model.gguf.part.json")
        .exists());
    assert_eq!(f.downloader.status(ID).unwrap(), ModelStatus::Absent);
    f.assert_nothing_installed();
}

#[tokio::test]
async fn a_200_to_a_resume_truncates_and_never_appends() {
    let f = Fixture::new(3 * MIB);
    f.partial(MIB as u64).await;
    f.server.set_behavior(
        PATH,
        Behavior {
            ignore_range: true,
            ..Behavior::default()
        },
    );
    f.server.reset_counters();
    f.assert_installed(f.download().await);
    let requests = f.server.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].range.is_some());
    assert_eq!(requests[0].status, 200);
}

#[tokio::test]
async fn a_206_with_the_wrong_content_range_is_discarded() {
    let f = Fixture::new(3 * MIB);
    let kept = f.partial(MIB as u64).await;
    f.server.set_behavior(
        PATH,
        Behavior {
            wrong_content_range: true,
            ..Behavior::default()
        },
    );
    f.server.reset_counters();
    f.assert_installed(f.download().await);
    let requests = f.server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[0].range.as_deref(),
        Some(&*format!("bytes={kept}-"))
    );
    assert_eq!(requests[0].status, 206);
    // The wrong answer is not used; the download restarts without ranges.
    assert_eq!(requests[1].range, None);
    assert_eq!(requests[1].status, 200);
}

#[tokio::test]
async fn a_changed_etag_restarts_from_zero() {
    let f = Fixture::new(3 * MIB);
    f.partial(MIB as u64).await;
    f.server.set_behavior(
        PATH,
        Behavior {
            change_etag_each_request: true,
            times: Some(1),
            ..Behavior::default()
        },
    );
    f.server.reset_counters();
    f.assert_installed(f.download().await);
    let requests = f.server.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].if_range.is_some());
    assert_eq!(requests[0].status, 200, "If-Range did not match: full body");
    assert_eq!(requests[0].body_bytes, f.data.len() as u64);
}

#[tokio::test]
async fn a_416_discards_the_part_and_starts_over() {
    let f = Fixture::new(2 * MIB);
    f.partial(MIB as u64).await;
    f.server.set_behavior(
        PATH,
        Behavior {
            always_416: true,
            ..Behavior::default()
        },
    );
    f.server.reset_counters();
    f.assert_installed(f.download().await);
    let statuses: Vec<u16> = f.server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [416, 200]);
}

#[tokio::test]
async fn weak_etags_are_not_validators() {
    let f = Fixture::new(2 * MIB);
    f.server.set_behavior(
        PATH,
        Behavior {
            etag: EtagMode::Weak,
            ..Behavior::default()
        },
    );
    f.partial(MIB as u64).await;
    f.server.reset_counters();
    f.assert_installed(f.download().await);
    let requests = f.server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].range, None, "no strong validator: no resume");
    assert_eq!(requests[0].if_range, None);
}

#[tokio::test]
async fn an_old_last_modified_date_is_a_strong_enough_validator() {
    let f = Fixture::new(2 * MIB);
    let date = "Sun, 01 Nov 2026 10:00:00 GMT";
    f.server.set_behavior(
        PATH,
        Behavior {
            etag: EtagMode::None,
            last_modified: Some(date.into()),
            ..Behavior::default()
        },
    );
    let kept = f.partial(MIB as u64).await;
    f.server.reset_counters();
    f.assert_installed(f.download().await);
    let requests = f.server.requests();
    assert_eq!(
        requests[0].range.as_deref(),
        Some(&*format!("bytes={kept}-"))
    );
    assert_eq!(requests[0].if_range.as_deref(), Some(date));
    assert_eq!(requests[0].status, 206);
}

#[tokio::test]
async fn a_stalled_body_times_out_and_resumes() {
    let f = Fixture::new(2 * MIB);
    f.server.set_behavior(
        PATH,
        Behavior {
            stall_after: Some(700_000),
            times: Some(1),
            ..Behavior::default()
        },
    );
    let started = Instant::now();
    f.assert_installed(f.download().await);
    assert!(started.elapsed() < Duration::from_secs(10));
    let requests = f.server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].range.is_some());
}

#[tokio::test]
async fn transient_statuses_are_retried_then_given_up() {
    let f = Fixture::new(MIB);
    f.server.set_behavior(
        PATH,
        Behavior {
            status: Some(503),
            times: Some(2),
            ..Behavior::default()
        },
    );
    f.assert_installed(f.download().await);
    assert_eq!(f.server.requests().len(), 3);

    let g = Fixture::new(MIB);
    g.server.set_behavior(
        PATH,
        Behavior {
            status: Some(500),
            ..Behavior::default()
        },
    );
    let err = g.download().await.unwrap_err();
    assert!(
        matches!(err, DownloadError::GaveUp { attempts: 4, .. }),
        "{err}"
    );
    assert_eq!(g.server.requests().len(), 4);
    g.assert_nothing_installed();
}

#[tokio::test]
async fn a_404_fails_without_retrying() {
    let f = Fixture::new(MIB);
    f.server.set_behavior(
        PATH,
        Behavior {
            status: Some(404),
            ..Behavior::default()
        },
    );
    let err = f.download().await.unwrap_err();
    assert!(
        matches!(err, DownloadError::HttpStatus { status: 404 }),
        "{err}"
    );
    assert_eq!(f.server.requests().len(), 1);
    f.assert_nothing_installed();
}

#[tokio::test]
async fn same_size_wrong_bytes_are_quarantined_never_installed() {
    let f = Fixture::new(2 * MIB);
    f.server.set_behavior(
        PATH,
        Behavior {
            corrupt: true,
            ..Behavior::default()
        },
    );
    let err = f.download().await.unwrap_err();
    let DownloadError::HashMismatch {
        expected,
        actual,
        quarantined,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_ne!(expected, actual);
    let quarantined = quarantined.clone().unwrap();
    assert_eq!(
        std::fs::metadata(&quarantined).unwrap().len(),
        f.data.len() as u64
    );
    assert!(quarantined.starts_with(f.dir.path().join("downloads/quarantine")));
    assert!(!f.part().exists());
    f.assert_nothing_installed();
    // The server is fixed: the next download starts clean and installs.
    f.server.set_behavior(PATH, Behavior::default());
    f.assert_installed(f.download().await);
}

#[tokio::test]
async fn a_stale_full_size_part_is_checked_then_replaced_and_quarantine_stays_small() {
    let f = Fixture::new(MIB);
    std::fs::create_dir_all(f.part().parent().unwrap()).unwrap();
    // A full-size part with the wrong bytes and no state: hashed, set aside, downloaded again.
    std::fs::write(f.part(), vec![0u8; MIB]).unwrap();
    f.assert_installed(f.download().await);
    // A full-size part with the right bytes and no state: installed without a request.
    let g = Fixture::new(MIB);
    std::fs::create_dir_all(g.part().parent().unwrap()).unwrap();
    std::fs::write(g.part(), &g.data).unwrap();
    g.assert_installed(g.download().await);
    assert!(g.server.requests().is_empty());
    // Repeated bad downloads keep one quarantined file per model, and remove clears it.
    let h = Fixture::new(MIB);
    h.server.set_behavior(
        PATH,
        Behavior {
            corrupt: true,
            ..Behavior::default()
        },
    );
    for _ in 0..3 {
        assert!(matches!(
            h.download().await,
            Err(DownloadError::HashMismatch { .. })
        ));
    }
    let quarantine = h.dir.path().join("downloads/quarantine");
    assert_eq!(std::fs::read_dir(&quarantine).unwrap().count(), 1);
    h.downloader.remove(ID).unwrap();
    assert_eq!(std::fs::read_dir(&quarantine).unwrap().count(), 0);
}

#[tokio::test]
async fn wrong_bytes_from_one_mirror_fall_back_to_the_next() {
    let f = Fixture::new(MIB);
    f.server.serve_bytes("/bad", f.data.clone());
    f.server.set_behavior(
        "/bad",
        Behavior {
            corrupt: true,
            ..Behavior::default()
        },
    );
    let urls = [f.server.url("/bad"), f.server.url(PATH)];
    let catalog = Catalog::from_json(&catalog_json(&urls, &f.data)).unwrap();
    let d = Downloader::new(catalog, f.downloader.config().clone());
    f.assert_installed(d.download(ID, &DownloadControl::new(), |_| {}).await);
}

#[tokio::test]
async fn a_paused_part_can_be_discarded_without_the_network() {
    let f = Fixture::with(2 * MIB, |_| {});
    f.partial(MIB as u64 / 2).await;
    assert!(f.downloader.discard_partial(ID).unwrap());
    assert!(!f.part().exists());
    assert!(!f.downloader.discard_partial(ID).unwrap());
    assert_eq!(f.downloader.status(ID).unwrap(), ModelStatus::Absent);
}

#[tokio::test]
async fn redirects_are_followed_within_the_allowlist() {
    let f = Fixture::new(MIB);
    f.server.set_behavior(
        "/start",
        Behavior {
            redirect_to: Some(PATH.into()),
            ..Behavior::default()
        },
    );
    let catalog = Catalog::from_json(&catalog_json(&[f.server.url("/start")], &f.data)).unwrap();
    let d = Downloader::new(catalog, f.downloader.config().clone());
    let outcome = d.download(ID, &DownloadControl::new(), |_| {}).await;
    f.assert_installed(outcome);
    let paths: Vec<String> = f.server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/start", PATH]);
}

#[tokio::test]
async fn a_redirect_off_the_allowlist_or_to_plain_http_is_refused() {
    let f = Fixture::new(MIB);
    for (target, expect_host) in [
        (f.server.localhost_url(PATH), true),
        ("http://example.org/m.gguf".to_string(), false),
        ("ftp://127.0.0.1/m.gguf".to_string(), false),
    ] {
        f.server.set_behavior(
            PATH,
            Behavior {
                redirect_to: Some(target.clone()),
                ..Behavior::default()
            },
        );
        f.server.reset_counters();
        let err = f.download().await.unwrap_err();
        if expect_host {
            assert!(
                matches!(&err, DownloadError::HostNotAllowed { host } if host == "localhost"),
                "{target}: {err}"
            );
        } else {
            assert!(
                matches!(err, DownloadError::InsecureUrl { .. }),
                "{target}: {err}"
            );
        }
        assert_eq!(
            f.server.requests().len(),
            1,
            "the redirect target is never contacted"
        );
        f.assert_nothing_installed();
    }
}

#[tokio::test]
async fn redirect_loops_stop_after_five_hops() {
    let f = Fixture::new(MIB);
    for i in 0..10 {
        f.server.set_behavior(
            &format!("/hop{i}"),
            Behavior {
                redirect_to: Some(format!("/hop{}", i + 1)),
                ..Behavior::default()
            },
        );
    }
    let catalog = Catalog::from_json(&catalog_json(&[f.server.url("/hop0")], &f.data)).unwrap();
    let d = Downloader::new(catalog, f.downloader.config().clone());
    let err = d
        .download(ID, &DownloadControl::new(), |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::TooManyRedirects), "{err}");
    assert_eq!(f.server.requests().len(), 6);
}

#[tokio::test]
async fn a_broken_mirror_falls_back_to_the_next() {
    let f = Fixture::new(MIB);
    f.server.set_behavior(
        "/dead",
        Behavior {
            status: Some(404),
            ..Behavior::default()
        },
    );
    let urls = [f.server.url("/dead"), f.server.url(PATH)];
    let catalog = Catalog::from_json(&catalog_json(&urls, &f.data)).unwrap();
    let d = Downloader::new(catalog, f.downloader.config().clone());
    f.assert_installed(d.download(ID, &DownloadControl::new(), |_| {}).await);
}

#[tokio::test]
async fn offline_opens_no_socket() {
    let f = Fixture::with(MIB, |c| c.offline = true);
    let started = Instant::now();
    for _ in 0..3 {
        assert!(matches!(f.download().await, Err(DownloadError::Offline)));
    }
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(f.server.connections(), 0);
    assert!(f.server.requests().is_empty());
}

#[tokio::test]
async fn plain_http_without_the_test_setting_opens_no_socket() {
    let f = Fixture::with(MIB, |c| c.allow_loopback_http = false);
    assert!(matches!(
        f.download().await,
        Err(DownloadError::InsecureUrl { .. })
    ));
    assert_eq!(f.server.connections(), 0);
}

#[tokio::test]
async fn a_device_that_does_not_fit_is_refused_before_any_byte() {
    let f = Fixture::with(MIB, |c| {
        c.device = DeviceInfo {
            ram_mb: Some(256),
            free_storage_bytes: None,
        }
    });
    assert!(matches!(
        f.download().await,
        Err(DownloadError::NotEnoughRam { .. })
    ));
    let g = Fixture::with(MIB, |c| {
        c.device = DeviceInfo {
            ram_mb: None,
            free_storage_bytes: Some(4 << 20),
        }
    });
    assert!(matches!(
        g.download().await,
        Err(DownloadError::InsufficientStorage { .. })
    ));
    assert_eq!(f.server.connections() + g.server.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_download_per_target() {
    let f = Arc::new(Fixture::new(2 * MIB));
    f.server.set_behavior(
        PATH,
        Behavior {
            rate_limit: Some(4 << 20),
            ..Behavior::default()
        },
    );
    let control = DownloadControl::new();
    let first = {
        let (f, control) = (Arc::clone(&f), control.clone());
        tokio::spawn(async move { f.downloader.download(ID, &control, |_| {}).await })
    };
    while f.server.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(matches!(
        f.download().await,
        Err(DownloadError::Busy { .. })
    ));
    f.assert_installed(first.await.unwrap());
}

#[test]
fn the_engine_loads_only_the_verified_file() {
    let Some(model) = vazhi_tests::model(vazhi_tests::SMOLLM2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(&model).unwrap();
    let catalog =
        Catalog::from_json(&catalog_json(&["https://example.org/m".into()], &data)).unwrap();
    let d = Downloader::new(catalog, DownloadConfig::new(DataDir::new(dir.path())));
    let verified = d.install_downloaded(ID, &model).unwrap();
    let config = vazhi_core::engine::EngineConfig {
        n_ctx: Some(256),
        ..Default::default()
    };
    let engine = vazhi_core::engine::Engine::load_verified(&verified, config.clone()).unwrap();
    drop(engine);
    // Same bytes, but a new file at that path: not the file that was verified.
    let installed = verified.path().to_owned();
    let copy = dir.path().join("copy");
    std::fs::copy(&installed, &copy).unwrap();
    std::fs::rename(&copy, &installed).unwrap();
    let err = vazhi_core::engine::Engine::load_verified(&verified, config).unwrap_err();
    assert!(
        matches!(
            err,
            vazhi_core::engine::EngineError::Model(
                vazhi_core::engine::ModelError::Unverified { .. }
            )
        ),
        "{err}"
    );
    assert!(matches!(
        d.installed(ID),
        Err(DownloadError::Unverified { .. })
    ));
    // A full verify re-hashes, finds the right bytes and vouches for the new file.
    let again = d.verify(ID).unwrap();
    assert!(again.is_unchanged());
}

/// Changes one byte of `path` in place (same inode, same length), then puts its mtime back: only
/// the ctime, which user space cannot set, shows the edit.
fn edit_in_place_keeping_mtime(path: &std::path::Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let before = std::fs::metadata(path).unwrap();
    // Past the kernel's coarse clock tick, so that the edit's ctime differs from the install's.
    std::thread::sleep(Duration::from_millis(50));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8; 1];
    file.read_exact(&mut byte).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(&[byte[0] ^ 0xFF]).unwrap();
    file.set_modified(before.modified().unwrap()).unwrap();
    drop(file);
    let after = std::fs::metadata(path).unwrap();
    assert_eq!(after.modified().unwrap(), before.modified().unwrap());
    assert_eq!(after.len(), before.len());
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!((after.dev(), after.ino()), (before.dev(), before.ino()));
    }
}

#[tokio::test]
async fn a_model_edited_in_place_with_its_mtime_put_back_is_not_trusted() {
    let f = Fixture::new(MIB);
    let outcome = f.download().await.unwrap();
    let DownloadOutcome::Installed(model) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(model.is_unchanged());
    edit_in_place_keeping_mtime(&f.installed_file());
    assert!(!model.is_unchanged(), "the engine's check before loading");
    assert!(matches!(
        f.downloader.installed(ID),
        Err(DownloadError::Unverified { .. })
    ));
    assert_eq!(f.downloader.status(ID).unwrap(), ModelStatus::Unverified);
    let err = vazhi_core::engine::Engine::load_verified(&model, Default::default()).unwrap_err();
    assert!(matches!(
        err,
        vazhi_core::engine::EngineError::Model(vazhi_core::engine::ModelError::Unverified { .. })
    ));
    // Downloading again re-hashes it, sets the edited file aside and installs the right bytes.
    f.server.reset_counters();
    f.assert_installed(f.download().await);
    assert_eq!(f.server.requests().len(), 1);
    let quarantine = f.dir.path().join("downloads/quarantine");
    assert_eq!(std::fs::read_dir(quarantine).unwrap().count(), 1);
}

#[tokio::test]
async fn a_crash_between_the_rename_and_the_record_costs_a_rehash_not_a_download() {
    let f = Fixture::new(MIB);
    f.assert_installed(f.download().await);
    // What a crash right after the rename leaves: the verified file, no record.
    let record = f.dir.path().join("models/test-model.gguf.verified");
    std::fs::remove_file(&record).unwrap();
    assert_eq!(f.downloader.status(ID).unwrap(), ModelStatus::Unverified);
    f.server.reset_counters();
    f.assert_installed(f.download().await);
    assert!(f.server.requests().is_empty(), "re-hashed, not downloaded");
    assert!(record.exists());
    assert!(f.downloader.installed(ID).unwrap().is_unchanged());
}

#[cfg(unix)]
#[tokio::test]
async fn a_full_size_part_that_is_a_symlink_is_never_installed_through_the_link() {
    let f = Fixture::new(MIB);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("right-bytes-elsewhere");
    std::fs::write(&target, &f.data).unwrap();
    std::fs::create_dir_all(f.part().parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&target, f.part()).unwrap();
    f.assert_installed(f.download().await);
    let installed = std::fs::symlink_metadata(f.installed_file()).unwrap();
    assert!(
        installed.file_type().is_file(),
        "a file of our own, not the link"
    );
    assert_eq!(std::fs::read(&target).unwrap(), f.data, "left alone");
    assert_eq!(
        f.server.requests().len(),
        1,
        "downloaded, not taken from the link"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_resumable_part_that_is_a_symlink_is_neither_appended_to_nor_truncated() {
    let f = Fixture::new(2 * MIB);
    let kept = f.partial(MIB as u64 / 2).await;
    // Its state allows a resume; the part itself is swapped for a link to a file elsewhere.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("precious");
    let precious: Vec<u8> = f.data[..kept as usize].to_vec();
    std::fs::rename(f.part(), &target).unwrap();
    std::os::unix::fs::symlink(&target, f.part()).unwrap();
    assert_eq!(f.downloader.status(ID).unwrap(), ModelStatus::Absent);
    f.server.reset_counters();
    f.assert_installed(f.download().await);
    assert_eq!(std::fs::read(&target).unwrap(), precious, "left alone");
    let requests = f.server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].range, None,
        "started over, not resumed into the link"
    );
    // A hard link is no better: its bytes are never cut or appended to either.
    let g = Fixture::new(2 * MIB);
    let kept = g.partial(MIB as u64 / 2).await;
    let other = outside.path().join("hard");
    std::fs::hard_link(g.part(), &other).unwrap();
    g.assert_installed(g.download().await);
    assert_eq!(std::fs::read(&other).unwrap(), &g.data[..kept as usize]);
}

/// `Models` over a fresh data directory whose catalog serves `f`'s file, and the rate-limited
/// server behind it (so that a download is still running when the test acts on it).
fn models_over(f: &Fixture, bytes_per_second: u64) -> (Models, tempfile::TempDir) {
    f.server.set_behavior(
        PATH,
        Behavior {
            rate_limit: Some(bytes_per_second),
            ..Behavior::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let models = Models::new(ModelsConfig {
        catalog_json: Some(catalog_json(&[f.server.url(PATH)], &f.data)),
        trust: TrustPolicy::any(),
        allow_loopback_http: true,
        ..ModelsConfig::new(dir.path())
    })
    .unwrap();
    (models, dir)
}

/// The last event a download's sink got, after waiting for the handle.
fn last_event(
    handle: &DownloadHandle,
    events: &std::sync::mpsc::Receiver<DownloadEvent>,
) -> DownloadEvent {
    assert!(
        handle.wait(Duration::from_secs(60)),
        "the download never finished"
    );
    let last = events.try_iter().last().expect("no event");
    assert!(events.try_recv().is_err());
    last
}

#[test]
fn start_download_streams_progress_on_its_own_thread_and_going_offline_pauses_it() {
    let f = Fixture::new(2 * MIB);
    let (models, _dir) = models_over(&f, 1 << 20);
    let (tx, events) = std::sync::mpsc::channel();
    let handle = models
        .start_download(ID, move |event| tx.send(event).is_ok())
        .unwrap();
    assert!(!handle.is_finished());
    // Progress arrives while the call has long returned; go offline once bytes have come.
    loop {
        match events.recv_timeout(Duration::from_secs(30)).unwrap() {
            DownloadEvent::Progress(p) if p.bytes > 0 => break,
            DownloadEvent::Progress(_) => {}
            other => panic!("{other:?} before any byte"),
        }
    }
    models.set_offline(true).unwrap();
    let DownloadEvent::Finished(DownloadOutcome::Paused { bytes }) = last_event(&handle, &events)
    else {
        panic!("going offline did not pause the running download")
    };
    assert!(bytes < f.data.len() as u64);
    // Offline, a new download opens no socket; online again, it resumes and installs.
    f.server.reset_counters();
    let (tx, events) = std::sync::mpsc::channel();
    let handle = models
        .start_download(ID, move |e| tx.send(e).is_ok())
        .unwrap();
    let DownloadEvent::Failed(e) = last_event(&handle, &events) else {
        panic!("offline download did not fail")
    };
    assert!(matches!(e, DownloadError::Offline), "{e}");
    assert_eq!(f.server.connections(), 0);
    models.set_offline(false).unwrap();
    f.server.set_behavior(PATH, Behavior::default());
    let (tx, events) = std::sync::mpsc::channel();
    let handle = models
        .start_download(ID, move |e| tx.send(e).is_ok())
        .unwrap();
    let DownloadEvent::Finished(DownloadOutcome::Installed(model)) = last_event(&handle, &events)
    else {
        panic!("the resumed download did not install")
    };
    assert_eq!(std::fs::read(model.path()).unwrap(), f.data);
    assert_eq!(
        f.server.requests()[0].range,
        Some(format!("bytes={bytes}-"))
    );
}

#[test]
fn a_sink_that_refuses_or_panics_pauses_the_download_and_still_gets_the_end() {
    for panics in [false, true] {
        let f = Fixture::new(2 * MIB);
        let (models, _dir) = models_over(&f, 1 << 20);
        let (tx, events) = std::sync::mpsc::channel();
        let handle = models
            .start_download(ID, move |event| {
                let progress = matches!(event, DownloadEvent::Progress(_));
                tx.send(event).unwrap();
                assert!(!(panics && progress), "the app's listener threw");
                !progress
            })
            .unwrap();
        let DownloadEvent::Finished(DownloadOutcome::Paused { .. }) = last_event(&handle, &events)
        else {
            panic!("a refused progress event did not pause the download (panics: {panics})")
        };
    }
}

#[test]
fn a_handle_made_first_stops_a_download_the_moment_it_starts() {
    let f = Fixture::new(MIB);
    let (models, _dir) = models_over(&f, 1 << 20);
    let handle = DownloadHandle::new();
    handle.pause();
    let (tx, events) = std::sync::mpsc::channel();
    models
        .start_download_on(&handle, ID, move |e| tx.send(e).is_ok())
        .unwrap();
    let last = last_event(&handle, &events);
    assert!(
        matches!(
            last,
            DownloadEvent::Finished(DownloadOutcome::Paused { .. })
        ),
        "{last:?}"
    );
}
