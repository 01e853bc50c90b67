//! Pausing and cancelling a running download, and the progress it reports.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

const RUNNING: u8 = 0;
const PAUSE: u8 = 1;
const CANCEL: u8 = 2;

/// What the app asked a download to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRequest {
    /// Stop and keep the part.
    Pause,
    /// Stop and delete the part.
    Cancel,
}

/// A handle the app keeps to pause or cancel a download from any thread. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct DownloadControl {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: AtomicU8,
    notify: Notify,
}

impl DownloadControl {
    /// A fresh control (running).
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the download, keeping the part for a later resume.
    pub fn pause(&self) {
        let _ =
            self.inner
                .state
                .compare_exchange(RUNNING, PAUSE, Ordering::SeqCst, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Stops the download and deletes the part (overrides a pause).
    pub fn cancel(&self) {
        self.inner.state.store(CANCEL, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Makes the control usable for another download call after a pause.
    pub fn reset(&self) {
        self.inner.state.store(RUNNING, Ordering::SeqCst);
    }

    /// The stop asked for, if any.
    pub fn requested(&self) -> Option<StopRequest> {
        match self.inner.state.load(Ordering::SeqCst) {
            PAUSE => Some(StopRequest::Pause),
            CANCEL => Some(StopRequest::Cancel),
            _ => None,
        }
    }

    /// Resolves when a stop is asked for.
    pub async fn stopped(&self) -> StopRequest {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.requested() {
                return r;
            }
            notified.await;
        }
    }
}

/// The controls of the downloads in flight, so that one switch can pause them all — as going
/// offline must: the offline setting is read when a download starts, and a download already
/// running would otherwise keep its socket. Cloning shares the set.
///
/// To be race-free with a switch that changes the downloader: register a download
/// ([`track`](Self::track)) *before* reading the setting it starts with, and change the
/// setting *before* calling [`pause_all`](Self::pause_all). Then every download either starts
/// with the new setting or is paused.
#[derive(Debug, Clone, Default)]
pub struct RunningDownloads {
    inner: Arc<std::sync::Mutex<Running>>,
}

#[derive(Debug, Default)]
struct Running {
    next: u64,
    controls: Vec<(u64, DownloadControl)>,
}

/// Keeps a download in its [`RunningDownloads`] until dropped (when the download call ends).
#[derive(Debug)]
pub struct Tracked {
    set: RunningDownloads,
    key: u64,
}

impl RunningDownloads {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Running> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `control` until the returned guard is dropped.
    pub fn track(&self, control: &DownloadControl) -> Tracked {
        let mut running = self.running();
        let key = running.next;
        running.next += 1;
        running.controls.push((key, control.clone()));
        Tracked {
            set: self.clone(),
            key,
        }
    }

    /// Pauses every download in the set (each keeps its part); how many there were.
    pub fn pause_all(&self) -> usize {
        let running = self.running();
        for (_, control) in &running.controls {
            control.pause();
        }
        running.controls.len()
    }

    /// How many downloads are in the set.
    pub fn len(&self) -> usize {
        self.running().controls.len()
    }

    /// Whether no download is in the set.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.set.running().controls.retain(|(k, _)| *k != self.key);
    }
}

/// What a download is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Contacting the server.
    Connecting,
    /// Receiving bytes.
    Downloading,
    /// Waiting before a retry.
    Retrying,
    /// Checking the SHA-256 of a complete file.
    Verifying,
    /// Verified and installed.
    Installed,
}

/// A progress event.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Catalog id.
    pub id: String,
    /// What is happening.
    pub phase: Phase,
    /// Bytes in the part file.
    pub bytes: u64,
    /// Pinned size.
    pub total: u64,
    /// Recent speed, bytes per second (smoothed).
    pub bytes_per_sec: f64,
    /// Estimated time left at that speed.
    pub eta: Option<Duration>,
}

/// Turns byte counts into throttled [`Progress`] events.
#[derive(Debug)]
pub(crate) struct ProgressMeter {
    id: String,
    total: u64,
    interval: Duration,
    last_emit: Option<Instant>,
    last_bytes: u64,
    last_time: Instant,
    speed: f64,
}

impl ProgressMeter {
    pub(crate) fn new(id: &str, total: u64, interval: Duration) -> Self {
        Self {
            id: id.to_owned(),
            total,
            interval,
            last_emit: None,
            last_bytes: 0,
            last_time: Instant::now(),
            speed: 0.0,
        }
    }

    /// Resets the speed baseline (after a reconnect) at `bytes`.
    pub(crate) fn restart_at(&mut self, bytes: u64) {
        self.last_bytes = bytes;
        self.last_time = Instant::now();
    }

    /// An event for `bytes` if the interval has passed (or `force`).
    pub(crate) fn tick(&mut self, phase: Phase, bytes: u64, force: bool) -> Option<Progress> {
        let now = Instant::now();
        if !force && self.last_emit.is_some_and(|t| now - t < self.interval) {
            return None;
        }
        let dt = (now - self.last_time).as_secs_f64();
        if dt > 0.0 && bytes >= self.last_bytes {
            let instant = (bytes - self.last_bytes) as f64 / dt;
            self.speed = if self.speed == 0.0 {
                instant
            } else {
                0.7 * self.speed + 0.3 * instant
            };
        }
        self.last_bytes = bytes;
        self.last_time = now;
        self.last_emit = Some(now);
        let left = self.total.saturating_sub(bytes) as f64;
        let eta = (self.speed > 0.0 && phase == Phase::Downloading)
            .then(|| Duration::from_secs_f64(left / self.speed));
        Some(Progress {
            id: self.id.clone(),
            phase,
            bytes,
            total: self.total,
            bytes_per_sec: self.speed,
            eta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_requests_wake_the_waiter() {
        let c = DownloadControl::new();
        assert_eq!(c.requested(), None);
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.stopped().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.pause();
        assert_eq!(waiter.await.unwrap(), StopRequest::Pause);
        c.cancel();
        c.pause();
        assert_eq!(c.requested(), Some(StopRequest::Cancel), "cancel wins");
        c.reset();
        assert_eq!(c.requested(), None);
    }

    #[test]
    fn pause_all_pauses_only_the_downloads_still_tracked() {
        let set = RunningDownloads::new();
        let (a, b) = (DownloadControl::new(), DownloadControl::new());
        let tracked_a = set.track(&a);
        let tracked_b = set.track(&b);
        drop(tracked_b);
        assert_eq!(set.len(), 1);
        assert_eq!(set.clone().pause_all(), 1, "clones share the set");
        assert_eq!(a.requested(), Some(StopRequest::Pause));
        assert_eq!(b.requested(), None, "a finished download is not touched");
        drop(tracked_a);
        assert!(set.is_empty());
    }

    #[test]
    fn progress_is_throttled_and_estimates_time_left() {
        let mut m = ProgressMeter::new("m", 1000, Duration::from_secs(3600));
        assert!(m.tick(Phase::Downloading, 0, false).is_some());
        assert!(m.tick(Phase::Downloading, 10, false).is_none());
        std::thread::sleep(Duration::from_millis(20));
        let p = m.tick(Phase::Downloading, 500, true).unwrap();
        assert!(p.bytes_per_sec > 0.0);
        assert!(p.eta.is_some_and(|e| e > Duration::ZERO));
        assert_eq!((p.bytes, p.total), (500, 1000));
    }
}
