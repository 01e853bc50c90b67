//! A real HTTP/1.1 server on loopback for the model-downloader tests.
//!
//! [`TestServer::start`] binds `127.0.0.1:0` and serves on its own thread with its own tokio
//! runtime, so synchronous tests and tests running another runtime can both use it. It speaks
//! HTTP/1.1 with keep-alive (hyper), answers `GET` and `HEAD`, and follows RFC 9110 closely
//! enough for a strict client: `Accept-Ranges: bytes`, `Content-Length`, `ETag` (strong by
//! default), an optional `Last-Modified`, single byte ranges (`bytes=N-` and `bytes=N-M`) with
//! `206`/`416`, and `If-Range`. Content is served from memory ([`TestServer::serve_bytes`]) or
//! streamed from disk in 256 KiB chunks ([`TestServer::serve_file`]).
//!
//! Faults are set per path with [`TestServer::set_behavior`] (see [`Behavior`]): cut or stalled
//! bodies, ignored or wrong ranges, `416` for everything, redirects, error statuses, corrupted
//! bytes, changing ETags, and a rate limit; optionally only for the first N requests.
//!
//! The server counts what it does: TCP connections accepted ([`TestServer::connections`]),
//! every request in order ([`TestServer::requests`]) and the response-body bytes handed to
//! hyper for writing ([`TestServer::body_bytes_sent`]).
//!
//! ```no_run
//! use vazhi_tests::http_server::{Behavior, TestServer};
//!
//! let server = TestServer::start();
//! server.serve_bytes("/model.gguf", vec![7; 1 << 20]);
//! server.set_behavior(
//!     "/model.gguf",
//!     Behavior { times: Some(1), drop_after: Some(4096), ..Behavior::default() },
//! );
//! let url = server.url("/model.gguf"); // first GET is cut after 4 KiB, later ones succeed
//! # let _ = url;
//! ```

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// Body chunk size without a rate limit (memory and disk alike).
const CHUNK: u64 = 256 * 1024;
/// Body chunk size under a rate limit, so that the limit is smooth.
const RATE_LIMITED_CHUNK: u64 = 16 * 1024;
/// Chunks queued between the body producer and hyper.
const QUEUED_CHUNKS: usize = 4;
/// How long a stalled body stalls (it ends at once when the server shuts down).
const STALL: Duration = Duration::from_secs(3600);
/// Before aborting a body: how long the socket must have taken every write (not be blocked on a
/// slow reader), so that the client gets everything hyper was handed.
const FLUSH_GRACE: Duration = Duration::from_millis(20);
/// With [`Behavior::corrupt`], the byte at every offset that is a multiple of this is flipped.
pub const CORRUPT_EVERY: u64 = 64 * 1024;

/// How a resource's `ETag` is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EtagMode {
    /// A strong ETag, `"<16 hex digits>"`, from a hash of the content (for files: path, length
    /// and modification time) and the path's ETag generation.
    #[default]
    Strong,
    /// The same value as a weak ETag, `W/"<16 hex digits>"`: it never matches `If-Range`.
    Weak,
    /// No `ETag` header.
    None,
}

/// How the server answers requests for one path; the default serves correctly.
///
/// [`Behavior::etag`] and [`Behavior::last_modified`] describe the resource and always apply.
/// Every other field is a fault, and [`Behavior::times`] limits all of them together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Behavior {
    /// Apply the faults to only the first N requests for this path (`GET` and `HEAD` alike, from
    /// [`TestServer::set_behavior`] on), then serve correctly; `None` applies them always.
    pub times: Option<usize>,
    /// How the `ETag` is sent (always applies).
    pub etag: EtagMode,
    /// Every request sees a new strong ETag (the content may stay the same); the last one
    /// stays once the faults are used up.
    pub change_etag_each_request: bool,
    /// If `Some`, this `Last-Modified` value is sent verbatim (always applies); a date `If-Range`
    /// matches only when equal to it.
    pub last_modified: Option<String>,
    /// Abort the connection after this many bytes of a response body: the client sees the
    /// first bytes, then an unexpected EOF or reset before `Content-Length` is reached.
    pub drop_after: Option<u64>,
    /// Always answer `200` with the full body, even to a `Range` request.
    pub ignore_range: bool,
    /// Answer a range request that would get `206` with a `206` whose `Content-Range` and body
    /// start at another offset: `0`, or `1` when the request asked for `0`.
    pub wrong_content_range: bool,
    /// Answer every request with a `Range` header `416` with `Content-Range: bytes */LEN`.
    pub always_416: bool,
    /// After this many bytes of a response body, stop sending without closing (for an hour, or
    /// until the server shuts down).
    pub stall_after: Option<u64>,
    /// Answer `302 Found` with this `Location` (sent verbatim) and an empty body.
    pub redirect_to: Option<String>,
    /// Answer this status with an empty body (e.g. 503, 404, 500); wins over every other fault.
    pub status: Option<u16>,
    /// Serve content of the same size with the byte at every multiple of [`CORRUPT_EVERY`]
    /// XOR-ed with `0xFF` (so any body that includes offset 0 differs), honouring `Range` on
    /// the corrupted content. ETag and Last-Modified stay those of the real content.
    pub corrupt: bool,
    /// Send bodies at most this many bytes per second (in 16 KiB chunks, each sent once the
    /// limit allows all of its bytes: N bytes take at least N / rate seconds); `Some(0)` is no
    /// limit.
    pub rate_limit: Option<u64>,
}

/// One request the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLog {
    /// The request target's path (no query).
    pub path: String,
    /// The method, e.g. `GET`.
    pub method: String,
    /// The `Range` header, if sent.
    pub range: Option<String>,
    /// The `If-Range` header, if sent.
    pub if_range: Option<String>,
    /// The status answered.
    pub status: u16,
    /// Body bytes sent so far for this response (still growing while it streams).
    pub body_bytes: u64,
}

/// A loopback HTTP/1.1 server for tests; dropping it shuts it down and joins its thread.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .field("connections", &self.connections())
            .field("body_bytes_sent", &self.body_bytes_sent())
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Binds `127.0.0.1:0` and starts serving on a new thread.
    ///
    /// # Panics
    /// When the socket, the runtime or the thread cannot be created.
    pub fn start() -> TestServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("local address of the test server");
        listener
            .set_nonblocking(true)
            .expect("non-blocking test server socket");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("test-http-server")
            .enable_all()
            .build()
            .expect("tokio runtime for the test server");
        let shared = Arc::new(Shared::default());
        let (shutdown, shutdown_rx) = oneshot::channel();
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("test-http-server-{}", addr.port()))
                .spawn(move || {
                    runtime.block_on(accept_loop(listener, shared, shutdown_rx));
                    // Cancels every connection, including stalled and rate-limited bodies.
                    runtime.shutdown_timeout(Duration::from_secs(5));
                })
                .expect("test server thread")
        };
        TestServer {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The address the server listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/path` (a missing leading `/` is added).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, normalize(path))
    }

    /// `http://localhost:PORT/path`: the same server under another host name, e.g. for a
    /// redirect to another host. (`localhost` may resolve to `::1` first, where nothing
    /// listens; clients must fall back to `127.0.0.1`.)
    pub fn localhost_url(&self, path: &str) -> String {
        format!("http://localhost:{}{}", self.addr.port(), normalize(path))
    }

    /// Serves `data` from memory at `path`, replacing what was served there.
    pub fn serve_bytes(&self, path: &str, data: Vec<u8>) {
        let mut hasher = DefaultHasher::new();
        data.hash(&mut hasher);
        let content = Content::Memory {
            data: Bytes::from(data),
            id: hasher.finish(),
        };
        self.shared
            .update(path, |route| route.content = Some(content));
    }

    /// Serves `file` at `path`, streamed from disk in 256 KiB chunks (never loaded whole);
    /// its length and modification time are read on every request.
    pub fn serve_file(&self, path: &str, file: PathBuf) {
        self.shared
            .update(path, |route| route.content = Some(Content::File(file)));
    }

    /// Stops serving `path` (it answers 404 again) and forgets its behaviour.
    pub fn remove(&self, path: &str) {
        self.shared.routes().remove(&normalize(path));
    }

    /// Replaces the behaviour for `path` (which need not be served, e.g. for a redirect or a
    /// status), restarting the count for [`Behavior::times`].
    pub fn set_behavior(&self, path: &str, behavior: Behavior) {
        self.shared.update(path, |route| {
            route.behavior = behavior;
            route.faulted = 0;
        });
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.shared
            .log()
            .iter()
            .map(|entry| RequestLog {
                body_bytes: entry.body_bytes.load(Ordering::SeqCst),
                ..entry.request.clone()
            })
            .collect()
    }

    /// Total response-body bytes handed to hyper for writing to sockets so far (counted as the
    /// body streams yield them).
    pub fn body_bytes_sent(&self) -> u64 {
        self.shared.body_bytes_sent.load(Ordering::SeqCst)
    }

    /// Zeroes the connection and byte counts and clears the request log; content and
    /// behaviours (and their [`Behavior::times`] counts) stay.
    pub fn reset_counters(&self) {
        let mut log = self.shared.log();
        log.clear();
        self.shared.connections.store(0, Ordering::SeqCst);
        self.shared.body_bytes_sent.store(0, Ordering::SeqCst);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread has already been printed; don't panic in drop.
            let _ = thread.join();
        }
    }
}

/// State shared between the [`TestServer`] handle and its runtime.
#[derive(Default)]
struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    log: Mutex<Vec<LogEntry>>,
    connections: AtomicUsize,
    body_bytes_sent: Arc<AtomicU64>,
}

impl Shared {
    fn routes(&self) -> MutexGuard<'_, HashMap<String, Route>> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `change` on the route for `path`, creating it if needed.
    fn update(&self, path: &str, change: impl FnOnce(&mut Route)) {
        change(self.routes().entry(normalize(path)).or_default());
    }

    fn log(&self) -> MutexGuard<'_, Vec<LogEntry>> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What a request for `path` sees: its content, and its behaviour with the faults left out
    /// once [`Behavior::times`] is used up (counting this request).
    fn snapshot(&self, path: &str) -> (Option<Content>, Behavior, u64) {
        let mut routes = self.routes();
        let Some(route) = routes.get_mut(path) else {
            return (None, Behavior::default(), 0);
        };
        let active = match route.behavior.times {
            None => true,
            Some(times) if route.faulted < times => {
                route.faulted += 1;
                true
            }
            Some(_) => false,
        };
        let behavior = if active {
            route.behavior.clone()
        } else {
            Behavior {
                etag: route.behavior.etag,
                last_modified: route.behavior.last_modified.clone(),
                ..Behavior::default()
            }
        };
        if behavior.change_etag_each_request {
            route.generation += 1;
        }
        (route.content.clone(), behavior, route.generation)
    }
}

#[derive(Default)]
struct Route {
    content: Option<Content>,
    behavior: Behavior,
    /// Requests that have used up a fault of `behavior.times`.
    faulted: usize,
    /// Bumped by `change_etag_each_request`; part of the ETag.
    generation: u64,
}

#[derive(Clone)]
enum Content {
    Memory { data: Bytes, id: u64 },
    File(PathBuf),
}

struct LogEntry {
    request: RequestLog,
    body_bytes: Arc<AtomicU64>,
}

fn normalize(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("register the test server");
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // E.g. out of file descriptors: try again shortly.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let write_blocked = Arc::new(AtomicBool::new(false));
        let stream = Watched {
            stream,
            write_blocked: Arc::clone(&write_blocked),
        };
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let shared = Arc::clone(&shared);
                let write_blocked = Arc::clone(&write_blocked);
                async move { Ok::<_, Infallible>(handle(request, &shared, write_blocked)) }
            });
            // Client disconnects and aborted bodies end up here; nothing to do about them.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A connection's socket, noting whether its last write found the socket full.
struct Watched {
    stream: TcpStream,
    write_blocked: Arc<AtomicBool>,
}

impl Watched {
    fn note<T>(&self, poll: Poll<T>) -> Poll<T> {
        self.write_blocked
            .store(poll.is_pending(), Ordering::SeqCst);
        poll
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.note(poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.note(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A response being built: status, headers, and what the body sends.
struct Reply {
    status: StatusCode,
    headers: Vec<(header::HeaderName, String)>,
    /// The `Content-Length` header.
    length: u64,
    /// What the body sends; `None` for an empty body (and for `HEAD`).
    body: Option<Plan>,
}

impl Reply {
    fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            length: 0,
            body: None,
        }
    }
}

/// A body to stream: `len` bytes of `content` from `start`, with the faults that touch bodies.
struct Plan {
    content: Content,
    start: u64,
    len: u64,
    corrupt: bool,
    drop_after: Option<u64>,
    stall_after: Option<u64>,
    rate_limit: Option<u64>,
}

fn handle(
    request: Request<Incoming>,
    shared: &Arc<Shared>,
    write_blocked: Arc<AtomicBool>,
) -> Response<ServerBody> {
    let path = request.uri().path().to_owned();
    let header_text = |name: header::HeaderName| {
        request
            .headers()
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    let range = header_text(header::RANGE);
    let if_range = header_text(header::IF_RANGE);
    let method = request.method().clone();

    let (content, behavior, generation) = shared.snapshot(&path);
    let reply = respond(
        &method,
        range.as_deref(),
        if_range.as_deref(),
        content,
        &behavior,
        generation,
    );

    let body_bytes = Arc::new(AtomicU64::new(0));
    shared.log().push(LogEntry {
        request: RequestLog {
            path,
            method: method.to_string(),
            range,
            if_range,
            status: reply.status.as_u16(),
            body_bytes: 0,
        },
        body_bytes: Arc::clone(&body_bytes),
    });

    let body = match reply.body {
        Some(plan) if plan.len > 0 && method != Method::HEAD => {
            let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
            let len = plan.len;
            tokio::spawn(produce(plan, tx, write_blocked));
            ServerBody {
                rx: Some(rx),
                remaining: len,
                total: Arc::clone(&shared.body_bytes_sent),
                logged: body_bytes,
            }
        }
        _ => ServerBody {
            rx: None,
            remaining: 0,
            total: Arc::clone(&shared.body_bytes_sent),
            logged: body_bytes,
        },
    };
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    for (name, value) in reply.headers {
        // Values come from our own formatting or a test's Behavior; skip any a test made invalid.
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(name, value);
        }
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(reply.length));
    response
}

fn respond(
    method: &Method,
    range: Option<&str>,
    if_range: Option<&str>,
    content: Option<Content>,
    behavior: &Behavior,
    generation: u64,
) -> Reply {
    if let Some(code) = behavior.status {
        return Reply::empty(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        );
    }
    if let Some(location) = &behavior.redirect_to {
        let mut reply = Reply::empty(StatusCode::FOUND);
        reply.headers.push((header::LOCATION, location.clone()));
        return reply;
    }
    let Some(content) = content else {
        return Reply::empty(StatusCode::NOT_FOUND);
    };
    if method != Method::GET && method != Method::HEAD {
        let mut reply = Reply::empty(StatusCode::METHOD_NOT_ALLOWED);
        reply.headers.push((header::ALLOW, "GET, HEAD".to_owned()));
        return reply;
    }
    let (len, id) = match &content {
        Content::Memory { data, id } => (data.len() as u64, *id),
        Content::File(file) => match file_identity(file) {
            Ok(found) => found,
            Err(_) => return Reply::empty(StatusCode::INTERNAL_SERVER_ERROR),
        },
    };

    let tag = {
        let mut hasher = DefaultHasher::new();
        (id, generation).hash(&mut hasher);
        format!("\"{:016x}\"", hasher.finish())
    };
    let mut headers = vec![(header::ACCEPT_RANGES, "bytes".to_owned())];
    let strong_etag = match behavior.etag {
        EtagMode::Strong => {
            headers.push((header::ETAG, tag.clone()));
            Some(tag.as_str())
        }
        EtagMode::Weak => {
            headers.push((header::ETAG, format!("W/{tag}")));
            None
        }
        EtagMode::None => None,
    };
    if let Some(date) = &behavior.last_modified {
        headers.push((header::LAST_MODIFIED, date.clone()));
    }
    let plan = |start: u64, body_len: u64| Plan {
        content: content.clone(),
        start,
        len: body_len,
        corrupt: behavior.corrupt,
        drop_after: behavior.drop_after,
        stall_after: behavior.stall_after,
        rate_limit: behavior.rate_limit,
    };
    let full = Reply {
        status: StatusCode::OK,
        headers: headers.clone(),
        length: len,
        body: Some(plan(0, len)),
    };
    // Range is defined for GET only (RFC 9110 §14.2).
    let range = match range {
        Some(range) if *method == Method::GET && !behavior.ignore_range => range,
        _ => return full,
    };
    let unsatisfiable = |mut headers: Vec<(header::HeaderName, String)>| {
        headers.push((header::CONTENT_RANGE, format!("bytes */{len}")));
        Reply {
            status: StatusCode::RANGE_NOT_SATISFIABLE,
            headers,
            length: 0,
            body: None,
        }
    };
    if behavior.always_416 {
        return unsatisfiable(headers);
    }
    let Some((first, last)) = parse_range(range) else {
        return full;
    };
    if let Some(validator) = if_range {
        if !if_range_matches(validator, strong_etag, behavior.last_modified.as_deref()) {
            return full;
        }
    }
    if first >= len {
        return unsatisfiable(headers);
    }
    let mut last = last.map_or(len - 1, |last| last.min(len - 1));
    let mut first = first;
    if behavior.wrong_content_range && len > 1 {
        if first > 0 {
            first = 0;
        } else {
            first = 1;
            last = last.max(1);
        }
    }
    headers.push((header::CONTENT_RANGE, format!("bytes {first}-{last}/{len}")));
    let body_len = last - first + 1;
    Reply {
        status: StatusCode::PARTIAL_CONTENT,
        headers,
        length: body_len,
        body: Some(plan(first, body_len)),
    }
}

/// A file's length and an identity (path, length, modification time) for its ETag.
fn file_identity(file: &std::path::Path) -> io::Result<(u64, u64)> {
    let meta = std::fs::metadata(file)?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    let mut hasher = DefaultHasher::new();
    (file, meta.len(), modified).hash(&mut hasher);
    Ok((meta.len(), hasher.finish()))
}

/// `bytes=N-` or `bytes=N-M` (M >= N): `(N, M)`; anything else (other units, several ranges,
/// suffix ranges, junk) is `None`, and the `Range` is ignored.
fn parse_range(value: &str) -> Option<(u64, Option<u64>)> {
    let (unit, spec) = value.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let digits = |text: &str| -> Option<u64> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    let first = digits(first)?;
    if last.trim().is_empty() {
        return Some((first, None));
    }
    let last = digits(last)?;
    (last >= first).then_some((first, Some(last)))
}

/// Whether an `If-Range` value matches: a strong ETag equal to the current one (weak ETags
/// never match), or a date equal to the `Last-Modified` sent.
fn if_range_matches(value: &str, strong_etag: Option<&str>, last_modified: Option<&str>) -> bool {
    let value = value.trim();
    if value.starts_with("W/") {
        false
    } else if value.starts_with('"') {
        strong_etag == Some(value)
    } else {
        last_modified == Some(value)
    }
}

/// Where the body producer reads from.
enum Reader {
    Memory(Bytes),
    File(Option<std::fs::File>),
}

impl Reader {
    async fn open(content: Content, start: u64) -> io::Result<Reader> {
        match content {
            Content::Memory { data, .. } => Ok(Reader::Memory(data)),
            Content::File(path) => {
                let file = blocking(move || {
                    let mut file = std::fs::File::open(path)?;
                    file.seek(SeekFrom::Start(start))?;
                    Ok(file)
                })
                .await?;
                Ok(Reader::File(Some(file)))
            }
        }
    }

    /// The `len` bytes at `offset` (files are read sequentially from the `start` opened at).
    async fn read(&mut self, offset: u64, len: u64) -> io::Result<Bytes> {
        match self {
            Reader::Memory(data) => {
                let start = usize::try_from(offset).map_err(io::Error::other)?;
                let end = usize::try_from(offset + len).map_err(io::Error::other)?;
                if end > data.len() {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "past the end"));
                }
                Ok(data.slice(start..end))
            }
            Reader::File(slot) => {
                let mut file = slot
                    .take()
                    .ok_or_else(|| io::Error::other("an earlier read of this file failed"))?;
                let len = usize::try_from(len).map_err(io::Error::other)?;
                let (file, chunk) = blocking(move || {
                    let mut buf = vec![0; len];
                    let read = file.read_exact(&mut buf);
                    Ok((file, read.map(|()| Bytes::from(buf))))
                })
                .await?;
                *slot = Some(file);
                chunk
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

/// Flips the byte at every multiple of [`CORRUPT_EVERY`] within `chunk`, which starts at
/// content offset `offset`.
fn corrupt_chunk(chunk: Bytes, offset: u64) -> Bytes {
    let first = offset.div_ceil(CORRUPT_EVERY) * CORRUPT_EVERY;
    let end = offset + chunk.len() as u64;
    if first >= end {
        return chunk;
    }
    let mut bytes = chunk.to_vec();
    let mut at = first;
    while at < end {
        // `at - offset` < chunk.len(), which is a usize.
        bytes[(at - offset) as usize] ^= 0xFF;
        at += CORRUPT_EVERY;
    }
    Bytes::from(bytes)
}

/// Sleeps until `deadline`; `false` if the body was dropped first (client gone, shutdown).
async fn sleep_until(tx: &mpsc::Sender<io::Result<Bytes>>, deadline: Instant) -> bool {
    tokio::select! {
        _ = tokio::time::sleep_until(deadline.into()) => true,
        _ = tx.closed() => false,
    }
}

/// Streams `plan` into `tx`, applying the body faults; `write_blocked` is the connection's
/// [`Watched::write_blocked`].
async fn produce(plan: Plan, tx: mpsc::Sender<io::Result<Bytes>>, write_blocked: Arc<AtomicBool>) {
    let drop_at = plan.drop_after.filter(|&n| n < plan.len);
    let stall_at = plan.stall_after.filter(|&n| n < plan.len);
    let limit = match (drop_at, stall_at) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(plan.len),
    };
    let chunk = if plan.rate_limit.is_some() {
        RATE_LIMITED_CHUNK
    } else {
        CHUNK
    };
    let mut reader = match Reader::open(plan.content, plan.start).await {
        Ok(reader) => reader,
        Err(error) => {
            let _ = tx.send(Err(error)).await;
            return;
        }
    };
    let began = Instant::now();
    let mut sent = 0;
    while sent < limit {
        let len = chunk.min(limit - sent);
        let offset = plan.start + sent;
        let mut data = match reader.read(offset, len).await {
            Ok(data) => data,
            Err(error) => {
                let _ = tx.send(Err(error)).await;
                return;
            }
        };
        if plan.corrupt {
            data = corrupt_chunk(data, offset);
        }
        if let Some(rate) = plan.rate_limit.filter(|&rate| rate > 0) {
            let due = began + Duration::from_secs_f64((sent + len) as f64 / rate as f64);
            if !sleep_until(&tx, due).await {
                return;
            }
        }
        if tx.send(Ok(data)).await.is_err() {
            return;
        }
        sent += len;
    }
    if sent == plan.len {
        return; // complete: dropping `tx` ends the body
    }
    if stall_at == Some(limit) && drop_at != Some(limit) {
        // Stall without closing; the body stays pending, so hyper flushes what was sent.
        if !sleep_until(&tx, Instant::now() + STALL).await {
            return;
        }
    } else {
        // Let hyper take and write every chunk before the abort, so that the client gets
        // exactly `drop_after` bytes: a body error makes hyper drop the connection along with
        // its write buffer. Hyper writes while this body is pending, until the socket is full.
        while tx.capacity() < tx.max_capacity() {
            if !sleep_until(&tx, Instant::now() + Duration::from_millis(1)).await {
                return;
            }
        }
        loop {
            if !sleep_until(&tx, Instant::now() + FLUSH_GRACE).await {
                return;
            }
            if !write_blocked.load(Ordering::SeqCst) {
                break;
            }
        }
    }
    let _ = tx
        .send(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "test server: connection dropped mid-body",
        )))
        .await;
}

/// A response body fed by [`produce`], counting the bytes it yields.
struct ServerBody {
    rx: Option<mpsc::Receiver<io::Result<Bytes>>>,
    remaining: u64,
    total: Arc<AtomicU64>,
    logged: Arc<AtomicU64>,
}

impl Body for ServerBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let Some(rx) = this.rx.as_mut() else {
            return Poll::Ready(None);
        };
        match rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(data))) => {
                let len = data.len() as u64;
                this.remaining = this.remaining.saturating_sub(len);
                this.total.fetch_add(len, Ordering::SeqCst);
                this.logged.fetch_add(len, Ordering::SeqCst);
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Some(Err(error))) => {
                this.rx = None;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                this.rx = None;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rx.is_none() || self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
