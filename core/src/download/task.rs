//! A download on a thread of its own, its events given to a sink: what
//! [`Models::start_download`](crate::app::Models::start_download) starts for the bindings, so
//! that neither binding crate holds a download thread of its own.

use std::sync::Arc;
use std::time::Duration;

use super::{DownloadControl, DownloadError, DownloadOutcome, Downloader, Progress, Tracked};
use crate::task::{self, Finished, SetOnDrop};

/// What happened in a download started with
/// [`Models::start_download`](crate::app::Models::start_download).
#[derive(Debug)]
pub enum DownloadEvent {
    /// Throttled progress.
    Progress(Progress),
    /// The download ended: installed, paused or cancelled. Nothing follows.
    Finished(DownloadOutcome),
    /// The download failed. Nothing follows.
    Failed(DownloadError),
}

/// Controls one download started with
/// [`Models::start_download`](crate::app::Models::start_download) (or made first, with
/// [`new`](Self::new), for [`Models::start_download_on`](crate::app::Models::start_download_on)).
/// Dropping the handle does not stop the download: pause or cancel it. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct DownloadHandle {
    control: DownloadControl,
    finished: Arc<Finished>,
}

impl DownloadHandle {
    /// A handle for a download not started yet: a pause or cancel before the start stops the
    /// download as soon as it starts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops and keeps the partial file; the sink gets `Finished(Paused)`.
    pub fn pause(&self) {
        self.control.pause();
    }

    /// Stops and deletes the partial file; the sink gets `Finished(Cancelled)`.
    pub fn cancel(&self) {
        self.control.cancel();
    }

    /// The control [`pause`](Self::pause) and [`cancel`](Self::cancel) use.
    pub fn control(&self) -> &DownloadControl {
        &self.control
    }

    /// Whether the sink has had its last event and the download's lock is released.
    pub fn is_finished(&self) -> bool {
        self.finished.is_set()
    }

    /// Blocks until [`is_finished`](Self::is_finished), at most `timeout`; whether it is.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.finished.wait(timeout)
    }
}

/// Runs `downloader.download_blocking(id)` on a new thread, events to `sink`. A sink that
/// refuses a progress event (returns `false` or panics) pauses the download. `tracked` keeps
/// the download among the running ones until the thread ends.
pub(crate) fn start(
    downloader: Arc<Downloader>,
    id: &str,
    tracked: Tracked,
    handle: &DownloadHandle,
    mut sink: impl FnMut(DownloadEvent) -> bool + Send + 'static,
) -> Result<(), DownloadError> {
    let control = handle.control.clone();
    let finished = SetOnDrop(Arc::clone(&handle.finished));
    let id = id.to_owned();
    task::spawn("vazhi-download", move || {
        // Dropped in this order when the thread ends: the lock is released (the download
        // call returned) and the download untracked before `finished` is set, and `finished`
        // is set before the sink (captured, so dropped after these) is dropped.
        let _finished = finished;
        let _tracked = tracked;
        let pause = control.clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            downloader.download_blocking(&id, &control, |p| {
                if !task::deliver(&mut sink, DownloadEvent::Progress(p.clone())) {
                    tracing::debug!("the download's sink refused progress; pausing");
                    pause.pause();
                }
            })
        }))
        .unwrap_or_else(|panic| {
            Err(DownloadError::Internal {
                detail: crate::error_kind::panic_message(panic.as_ref()),
            })
        });
        let last = match result {
            Ok(outcome) => DownloadEvent::Finished(outcome),
            Err(e) => DownloadEvent::Failed(e),
        };
        task::deliver(&mut sink, last);
    })
    .map_err(|source| DownloadError::Io {
        context: "starting the download thread",
        source,
    })
}
