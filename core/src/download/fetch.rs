//! The download loop: one catalog entry, resumed and retried until it is installed, paused,
//! cancelled, or fails in a way retrying cannot fix.
//!
//! What each answer to a (resume) request leads to:
//!
//! | answer | action |
//! |---|---|
//! | 3xx | follow `Location` (≤ 5 hops), allowlist and scheme re-checked on every hop |
//! | 206, `Content-Range` starts at the part's length, same validator | append |
//! | 206, any other `Content-Range` | discard the answer, stop using ranges for this download, restart |
//! | 206, validator changed | discard the part, restart |
//! | 200 | truncate the part and write from byte 0 (never append a whole body) |
//! | 416 | the server's file is shorter than our part: discard, restart |
//! | 408, 425, 429, 5xx, network error, idle timeout | retry with backoff and jitter, resuming |
//! | other 4xx | try the next mirror, else fail |
//!
//! A part is resumed only if its state file names the same catalog pin and URL and holds a
//! strong validator; otherwise it starts over.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{HeaderValue, IF_RANGE, LOCATION, RANGE};
use reqwest::{StatusCode, Url};
use tracing::Instrument;

use super::allowlist::redact;
use super::control::{ProgressMeter, StopRequest};
use super::http::{ContentRange, Validator};
use super::install::{self, storage_error};
use super::sink::{hash_reader, hex, PartWriter};
use super::state::PartState;
use super::storage::TargetLock;
use super::{
    CatalogEntry, DownloadControl, DownloadError, DownloadOutcome, Downloader, Phase, Progress,
    MAX_REDIRECTS,
};

/// What one `download` call carries from one request to the next.
struct Run {
    /// Held until every thread working on the part has finished.
    lock: Arc<TargetLock>,
    /// Which of the catalog's URLs is in use.
    url_index: usize,
    /// The server answered a range with the wrong bytes: fetch whole files from now on.
    ranges_unreliable: bool,
    /// SHA-256 state over the part's first `.0` bytes, so a resume within this call does not
    /// re-read the part.
    carried: Option<(u64, sha2::Sha256)>,
}

impl Run {
    fn next_mirror(&mut self) {
        self.url_index += 1;
        self.ranges_unreliable = false;
        self.carried = None;
    }
}

/// How one request ended.
enum Attempt {
    /// Every byte is in the part; the digest if it was computed on the way.
    Complete(Option<(std::fs::File, String)>),
    /// The response ended cleanly before the end of the file (a short range): go on.
    Partial,
    /// Start again from the beginning of the decision (the part may have been discarded).
    Restart,
    /// The app paused or cancelled.
    Stopped(StopRequest),
}

/// A failed request: the error, and whether retrying may help.
struct Failure {
    error: DownloadError,
    transient: bool,
}

impl Failure {
    fn transient(error: DownloadError) -> Self {
        Self {
            error,
            transient: true,
        }
    }
    fn fatal(error: DownloadError) -> Self {
        Self {
            error,
            transient: false,
        }
    }
}

impl From<DownloadError> for Failure {
    fn from(error: DownloadError) -> Self {
        Self::fatal(error)
    }
}

fn network(e: &reqwest::Error) -> DownloadError {
    // reqwest's Display names the URL (with any query token); keep only the kind and cause.
    let e = e.without_url_ref();
    DownloadError::ServerMisbehaved(format!("network: {e}"))
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut text = String::new();
        let mut source: Option<&dyn std::error::Error> = Some(self);
        let mut first = true;
        while let Some(e) = source {
            if !first {
                text.push_str(": ");
            }
            first = false;
            match e.downcast_ref::<reqwest::Error>() {
                Some(r) if r.is_timeout() => text.push_str("timed out"),
                Some(r) if r.is_connect() => text.push_str("connection failed"),
                Some(r) if r.is_body() || r.is_decode() => text.push_str("body interrupted"),
                Some(r) if r.is_request() => text.push_str("request failed"),
                Some(_) => text.push_str("error"),
                None => text.push_str(&e.to_string()),
            }
            source = e.source();
        }
        text
    }
}

fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 425 | 429) || status.is_server_error()
}

/// The download loop of one [`Downloader`], which reaches the downloader's fields and helpers
/// through `Deref`; [`Downloader::download`] runs it.
#[derive(Debug)]
pub(super) struct Fetch<'d>(pub(super) &'d Downloader);

impl std::ops::Deref for Fetch<'_> {
    type Target = Downloader;

    fn deref(&self) -> &Downloader {
        self.0
    }
}

impl Fetch<'_> {
    /// What [`Downloader::download`] does (see there).
    pub(super) async fn download(
        &self,
        id: &str,
        control: &DownloadControl,
        mut on_progress: impl FnMut(&Progress) + Send,
    ) -> Result<DownloadOutcome, DownloadError> {
        if self.config.offline {
            return Err(DownloadError::Offline);
        }
        let entry = self.entry(id)?.clone();
        self.create_dirs()?;
        let lock = Arc::new(TargetLock::acquire(&self.lock_path(&entry), id)?);
        let span = tracing::info_span!("download", id);
        self.download_locked(entry, lock, control, &mut on_progress)
            .instrument(span)
            .await
    }

    async fn download_locked(
        &self,
        entry: CatalogEntry,
        lock: Arc<TargetLock>,
        control: &DownloadControl,
        on_progress: &mut (impl FnMut(&Progress) + Send),
    ) -> Result<DownloadOutcome, DownloadError> {
        let mut meter = ProgressMeter::new(&entry.id, entry.size, self.config.progress_interval);
        let installed = match self.installed(&entry.id) {
            // A file without a (valid) record — a crash between the rename and the record, an
            // older record format, or a file changed since — is re-hashed before anything is
            // downloaded: right bytes are vouched for again, wrong ones quarantined.
            Err(DownloadError::Unverified { .. }) => {
                self.reverify(&entry, &lock, &mut meter, on_progress).await
            }
            other => other.ok(),
        };
        if let Some(model) = installed {
            tracing::info!("already installed and verified");
            if let Some(p) = meter.tick(Phase::Installed, entry.size, true) {
                on_progress(&p);
            }
            return Ok(DownloadOutcome::Installed(model));
        }
        self.check_fits(&entry.id)?;

        let mut run = Run {
            lock,
            url_index: 0,
            ranges_unreliable: false,
            carried: None,
        };
        let mut failures = 0u32;
        let mut restarts = 0u32;
        let mut high_water = self.part_len(&entry);
        loop {
            if let Some(stop) = control.requested() {
                return Ok(self.stopped(&entry, stop));
            }
            let result = self
                .attempt(&entry, &mut run, control, &mut meter, on_progress)
                .await;
            let len = self.part_len(&entry);
            if len > high_water {
                high_water = len;
                failures = 0;
            }
            match result {
                Ok(Attempt::Complete(hashed)) => {
                    let fresh = hashed.is_some();
                    match self
                        .finish(&entry, hashed, &run, &mut meter, on_progress)
                        .await
                    {
                        // A full-size part left by an earlier run that turns out wrong is set
                        // aside and downloaded again; wrong bytes just downloaded are the
                        // mirror's fault: try the next one, else report.
                        Err(
                            DownloadError::HashMismatch { .. } | DownloadError::SizeMismatch { .. },
                        ) if !fresh => {
                            run.carried = None;
                            high_water = 0;
                        }
                        Err(
                            e @ (DownloadError::HashMismatch { .. }
                            | DownloadError::SizeMismatch { .. }),
                        ) if run.url_index + 1 < entry.urls.len() => {
                            tracing::warn!(error = %e, "trying the next mirror");
                            run.next_mirror();
                            failures = 0;
                            high_water = 0;
                        }
                        other => return other,
                    }
                }
                Ok(Attempt::Partial) => {}
                Ok(Attempt::Restart) => {
                    restarts += 1;
                    if restarts > 4 {
                        return Err(DownloadError::ServerMisbehaved(
                            "the server keeps changing the file or its ranges".into(),
                        ));
                    }
                    high_water = self.part_len(&entry);
                }
                Ok(Attempt::Stopped(stop)) => return Ok(self.stopped(&entry, stop)),
                Err(Failure {
                    error,
                    transient: true,
                }) => {
                    failures += 1;
                    tracing::warn!(attempt = failures, error = %error, "transient failure");
                    if failures >= self.config.retry.max_attempts {
                        if run.url_index + 1 < entry.urls.len() {
                            run.next_mirror();
                            failures = 0;
                            continue;
                        }
                        return Err(DownloadError::GaveUp {
                            attempts: failures,
                            last: error.to_string(),
                        });
                    }
                    if let Some(p) = meter.tick(Phase::Retrying, len, true) {
                        on_progress(&p);
                    }
                    let delay = self.config.retry.delay(failures);
                    tokio::select! {
                        stop = control.stopped() => return Ok(self.stopped(&entry, stop)),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                Err(Failure { error, .. }) => {
                    let mirror_specific =
                        !matches!(error, DownloadError::Io { .. } | DownloadError::StorageFull);
                    if mirror_specific && run.url_index + 1 < entry.urls.len() {
                        tracing::warn!(error = %error, "trying the next mirror");
                        run.next_mirror();
                        failures = 0;
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Re-hashes an installed file that has no valid record; the model if its bytes are right.
    async fn reverify(
        &self,
        entry: &CatalogEntry,
        lock: &Arc<TargetLock>,
        meter: &mut ProgressMeter,
        on_progress: &mut (impl FnMut(&Progress) + Send),
    ) -> Option<install::VerifiedModel> {
        if let Some(p) = meter.tick(Phase::Verifying, entry.size, true) {
            on_progress(&p);
        }
        let (models, quarantine) = (self.models_dir(), self.quarantine_dir());
        let (owned, lock) = (entry.clone(), Arc::clone(lock));
        let result = tokio::task::spawn_blocking(move || {
            let _lock = lock;
            install::verify_installed(&models, &owned, &quarantine)
        })
        .await;
        match result {
            Ok(Ok(model)) => Some(model),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the installed file did not verify; downloading");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "re-verifying the installed file failed; downloading");
                None
            }
        }
    }

    fn stopped(&self, entry: &CatalogEntry, stop: StopRequest) -> DownloadOutcome {
        match stop {
            StopRequest::Pause => DownloadOutcome::Paused {
                bytes: self.part_len(entry),
            },
            StopRequest::Cancel => {
                self.discard_part(entry);
                DownloadOutcome::Cancelled
            }
        }
    }

    async fn attempt(
        &self,
        entry: &CatalogEntry,
        run: &mut Run,
        control: &DownloadControl,
        meter: &mut ProgressMeter,
        on_progress: &mut (impl FnMut(&Progress) + Send),
    ) -> Result<Attempt, Failure> {
        let url = entry.urls[run.url_index].as_str();
        let part_path = self.part_path(entry);
        let state_path = self.state_path(entry);
        if self.part_is_foreign(entry) {
            // Only a plain file of our own is a part: a link is removed (the file it names is
            // never read, written or truncated) and the download starts over.
            tracing::warn!("the partial download is a link or a special file; removing it");
            self.discard_part(entry);
            run.carried = None;
        }
        let part_len = self.part_len(entry);
        if part_len == entry.size {
            // Whatever its state says, a full-size part is hashed: size and SHA-256 are pinned.
            return Ok(Attempt::Complete(None));
        }
        let state = PartState::load(&state_path)
            .filter(|s| s.is_for(entry) && s.url == url && s.validator.is_some());
        let resume_from = match &state {
            Some(_) if !run.ranges_unreliable && part_len < entry.size => part_len,
            _ => 0,
        };
        let validator = state.as_ref().and_then(|s| s.validator.clone());
        if let Some(p) = meter.tick(Phase::Connecting, resume_from, true) {
            on_progress(&p);
        }
        let sent = self.send(
            url,
            resume_from,
            validator.as_ref().filter(|_| resume_from > 0),
        );
        let mut response = tokio::select! {
            biased;
            stop = control.stopped() => return Ok(Attempt::Stopped(stop)),
            response = sent => response?,
        };
        let status = response.status();
        let (start, body_len, state) = match status {
            StatusCode::PARTIAL_CONTENT if resume_from > 0 => {
                let range = ContentRange::from_headers(response.headers()).filter(|r| {
                    r.first == resume_from
                        && r.last < entry.size
                        && r.complete.is_none_or(|c| c == entry.size)
                });
                let Some(range) = range else {
                    tracing::warn!(resume_from, "206 with a Content-Range that does not start where asked; not using ranges for this download");
                    run.ranges_unreliable = true;
                    return Ok(Attempt::Restart);
                };
                let (Some(state), Some(v)) = (state, validator) else {
                    return Ok(Attempt::Restart);
                };
                if !v.matches(response.headers()) {
                    tracing::warn!(
                        "the file changed on the server (validator differs); starting over"
                    );
                    self.discard_part(entry);
                    return Ok(Attempt::Restart);
                }
                (resume_from, range.len(), state)
            }
            StatusCode::OK => {
                if resume_from > 0 {
                    tracing::info!(
                        resume_from,
                        "server sent the whole file; starting over from byte 0"
                    );
                }
                if let Some(len) = response.content_length() {
                    if len != entry.size {
                        return Err(Failure::fatal(DownloadError::ServerMisbehaved(format!(
                            "the server offers {len} bytes, the catalog pins {}",
                            entry.size
                        ))));
                    }
                }
                let validator = Validator::from_headers(response.headers());
                let state = PartState::new(entry, url.to_owned(), validator);
                // The old part goes first, then the new state is saved, before any byte of the
                // new body lands: a crash in between never pairs new state with old bytes.
                self.discard_part(entry);
                run.carried = None;
                save_state(&state, &state_path)?;
                (0, entry.size, state)
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                tracing::warn!(
                    resume_from,
                    "416: the server's file is shorter than our part; starting over"
                );
                self.discard_part(entry);
                return Ok(Attempt::Restart);
            }
            StatusCode::PARTIAL_CONTENT => {
                return Err(Failure::fatal(DownloadError::ServerMisbehaved(
                    "206 to a request without Range".into(),
                )))
            }
            s if is_transient_status(s) => {
                return Err(Failure::transient(DownloadError::HttpStatus {
                    status: s.as_u16(),
                }))
            }
            s => {
                return Err(Failure::fatal(DownloadError::HttpStatus {
                    status: s.as_u16(),
                }))
            }
        };

        let carried = run
            .carried
            .take()
            .filter(|(len, _)| *len == start)
            .map(|(_, hasher)| hasher);
        let writer = PartWriter::start(&part_path, start, carried, Arc::clone(&run.lock))
            .map_err(|e| Failure::fatal(storage_error(e, "opening the partial download")))?;
        meter.restart_at(start);
        let mut received = 0u64;
        let mut chunks = 0u64;
        let idle = self.config.read_idle_timeout;
        let end: Result<Option<StopRequest>, Failure> = loop {
            let next = tokio::select! {
                biased;
                stop = control.stopped() => break Ok(Some(stop)),
                next = tokio::time::timeout(idle, response.chunk()) => next,
            };
            let chunk: Bytes = match next {
                Err(_) => {
                    break Err(Failure::transient(DownloadError::ServerMisbehaved(
                        format!("no data for {} s", idle.as_secs_f32()),
                    )))
                }
                Ok(Err(e)) => break Err(Failure::transient(network(&e))),
                Ok(Ok(None)) => break Ok(None),
                Ok(Ok(Some(chunk))) => chunk,
            };
            let room = body_len - received;
            let too_long = chunk.len() as u64 > room;
            let chunk = if too_long {
                chunk.slice(..usize::try_from(room).unwrap_or(usize::MAX))
            } else {
                chunk
            };
            received += chunk.len() as u64;
            chunks += 1;
            if !chunk.is_empty() {
                let sent = tokio::select! {
                    biased;
                    stop = control.stopped() => break Ok(Some(stop)),
                    sent = writer.send(chunk) => sent,
                };
                if !sent {
                    break Ok(None); // the writer stopped on an error; finish() reports it
                }
            }
            if too_long {
                break Err(Failure::fatal(DownloadError::ServerMisbehaved(
                    "the body is longer than announced".into(),
                )));
            }
            if let Some(p) = meter.tick(Phase::Downloading, start + received, false) {
                on_progress(&p);
            }
        };
        tracing::debug!(received, chunks, "response body ended");
        let written = writer
            .finish()
            .await
            .map_err(|e| Failure::fatal(storage_error(e, "writing the partial download")))?;
        let mut state = state;
        state.bytes = written.len;
        if written.len < entry.size {
            run.carried = Some((written.len, written.hasher.clone()));
        }
        let stop = end?;
        if let Some(stop) = stop {
            if stop == StopRequest::Pause {
                written
                    .file
                    .sync_all()
                    .map_err(|e| Failure::fatal(storage_error(e, "syncing the part")))?;
                save_state(&state, &state_path)?;
            }
            return Ok(Attempt::Stopped(stop));
        }
        if written.len == entry.size {
            let digest = hex(&sha2::Digest::finalize(written.hasher));
            return Ok(Attempt::Complete(Some((written.file, digest))));
        }
        save_state(&state, &state_path)?;
        if received < body_len {
            return Err(Failure::transient(DownloadError::ServerMisbehaved(
                "the connection closed early".into(),
            )));
        }
        Ok(Attempt::Partial)
    }

    /// Sends a GET for `start`, following redirects by hand so that every hop is checked.
    async fn send(
        &self,
        start: &str,
        resume_from: u64,
        validator: Option<&Validator>,
    ) -> Result<reqwest::Response, Failure> {
        let client = self.client()?;
        let mut url = Url::parse(start).map_err(|_| DownloadError::InsecureUrl {
            url: "(unparseable catalog URL)".into(),
        })?;
        let wait = self
            .config
            .connect_timeout
            .saturating_add(self.config.read_idle_timeout);
        for _hop in 0..=MAX_REDIRECTS {
            self.allowlist.check(&url)?;
            tracing::debug!(url = %redact(&url), resume_from, "request");
            let mut request = client.get(url.clone());
            if resume_from > 0 {
                request = request.header(RANGE, format!("bytes={resume_from}-"));
                if let Some(v) =
                    validator.and_then(|v| HeaderValue::from_str(v.header_value()).ok())
                {
                    request = request.header(IF_RANGE, v);
                }
            }
            let response = match tokio::time::timeout(wait, request.send()).await {
                Err(_) => {
                    return Err(Failure::transient(DownloadError::ServerMisbehaved(
                        "no response in time".into(),
                    )))
                }
                Ok(Err(e)) => return Err(Failure::transient(network(&e))),
                Ok(Ok(r)) => r,
            };
            if response.status().is_redirection() && response.status() != StatusCode::NOT_MODIFIED {
                let next = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or(DownloadError::BadRedirect)?;
                tracing::debug!(to = %redact(&next), "redirect");
                url = next;
                continue;
            }
            return Ok(response);
        }
        Err(Failure::fatal(DownloadError::TooManyRedirects))
    }

    async fn finish(
        &self,
        entry: &CatalogEntry,
        hashed: Option<(std::fs::File, String)>,
        run: &Run,
        meter: &mut ProgressMeter,
        on_progress: &mut (impl FnMut(&Progress) + Send),
    ) -> Result<DownloadOutcome, DownloadError> {
        if let Some(p) = meter.tick(Phase::Verifying, entry.size, true) {
            on_progress(&p);
        }
        let part = self.part_path(entry);
        let (models, quarantine) = (self.models_dir(), self.quarantine_dir());
        let owned = entry.clone();
        // The lock travels with the blocking work: if the caller drops this future, the install
        // still finishes before anyone else can take the target.
        let lock = Arc::clone(&run.lock);
        let result = tokio::task::spawn_blocking(move || {
            let _lock = lock;
            let _span = tracing::info_span!("verify_and_install", id = %owned.id).entered();
            let (file, digest) = match hashed {
                Some(h) => h,
                None => {
                    // One handle, opened without following a link: the bytes hashed are the
                    // bytes installed (install_verified_part checks the path still names it).
                    let file = install::open_own_file(&part, false).map_err(|source| {
                        DownloadError::Io {
                            context: "opening the partial download",
                            source,
                        }
                    })?;
                    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
                    hash_reader(&mut &file, &mut hasher).map_err(|source| DownloadError::Io {
                        context: "hashing the partial download",
                        source,
                    })?;
                    (file, hex(&sha2::Digest::finalize(hasher)))
                }
            };
            install::install_verified_part(&part, &file, &digest, &owned, &models, &quarantine)
        })
        .await
        .map_err(|e| DownloadError::Io {
            context: "verifying the download",
            source: std::io::Error::other(e),
        })?;
        match &result {
            Ok(_)
            | Err(DownloadError::HashMismatch { .. } | DownloadError::SizeMismatch { .. }) => {
                let _ = std::fs::remove_file(self.state_path(entry));
            }
            Err(_) => {}
        }
        let model = result?;
        if let Some(p) = meter.tick(Phase::Installed, entry.size, true) {
            on_progress(&p);
        }
        Ok(DownloadOutcome::Installed(model))
    }
}

fn save_state(state: &PartState, path: &std::path::Path) -> Result<(), Failure> {
    state
        .save(path)
        .map_err(|e| Failure::fatal(storage_error(e, "saving the download state")))
}

#[allow(dead_code)]
fn _assert_send(d: &Downloader, c: &DownloadControl) {
    fn is_send<T: Send>(_: T) {}
    is_send(d.download("x", c, |_| {}));
}
