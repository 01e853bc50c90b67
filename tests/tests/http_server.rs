//! The loopback test server (`vazhi_tests::http_server`) checked with a hand-written HTTP/1.1
//! client on a plain `TcpStream`: correct answers (headers, ranges, `If-Range`, `416`), every
//! fault, and its counters.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vazhi_tests::http_server::{Behavior, EtagMode, RequestLog, TestServer, CORRUPT_EVERY};

/// Reproducible pseudo-random bytes (xorshift), so that slices of them are all distinct.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Compares bodies without printing megabytes when they differ.
#[track_caller]
fn assert_bytes(got: &[u8], want: &[u8]) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "got {} bytes, expected {}; first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

/// A response as read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Lower-cased names, values as sent.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The body reached `Content-Length`.
    complete: bool,
    /// Reading the body hit the read timeout.
    timed_out: bool,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.iter().filter(|(n, _)| n == name);
        let value = values.next().map(|(_, v)| v.as_str());
        assert!(values.next().is_none(), "header {name} sent twice");
        value
    }

    fn content_length(&self) -> u64 {
        self.header("content-length")
            .expect("content-length")
            .parse()
            .unwrap()
    }
}

/// One HTTP/1.1 connection.
struct Client {
    reader: BufReader<TcpStream>,
    host: SocketAddr,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Client {
            reader: BufReader::new(stream),
            host: addr,
        }
    }

    fn set_read_timeout(&self, timeout: Duration) {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .unwrap();
    }

    /// Sends one request (`close`: with `Connection: close`) and reads its response.
    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], close: bool) -> Reply {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if close {
            request.push_str("Connection: close\r\n");
        }
        request.push_str("\r\n");
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        self.read_response(method == "HEAD")
    }

    fn read_response(&mut self, head: bool) -> Reply {
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status = parts.next().unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
            complete: true,
            timed_out: false,
        };
        assert_eq!(reply.header("transfer-encoding"), None);
        if head {
            return reply;
        }
        let length = reply.content_length();
        let mut buf = vec![0; 1 << 16];
        while (reply.body.len() as u64) < length {
            let want = buf.len().min((length - reply.body.len() as u64) as usize);
            match self.reader.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => reply.body.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    reply.timed_out = true;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break, // reset by peer
            }
        }
        reply.complete = reply.body.len() as u64 == length;
        reply
    }

    /// After a `Connection: close` response: the server closes without sending more.
    fn assert_closed(&mut self) {
        let mut rest = Vec::new();
        let _ = self.reader.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{} bytes after the response", rest.len());
    }
}

/// A request on a fresh connection with `Connection: close`.
fn fetch(server: &TestServer, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut client = Client::connect(server.addr());
    let reply = client.send(method, path, headers, true);
    if reply.complete && !reply.timed_out {
        client.assert_closed();
    }
    reply
}

fn get(server: &TestServer, path: &str) -> Reply {
    fetch(server, "GET", path, &[])
}

fn get_range(server: &TestServer, path: &str, range: &str) -> Reply {
    fetch(server, "GET", path, &[("Range", range)])
}

#[test]
fn full_get_head_and_unknown_paths() {
    let server = TestServer::start();
    let content = data(100_000, 1);
    server.serve_bytes("/model.gguf", content.clone());

    let reply = get(&server, "/model.gguf");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_length(), 100_000);
    assert_eq!(reply.header("accept-ranges"), Some("bytes"));
    assert!(reply.header("date").is_some());
    assert_eq!(reply.header("last-modified"), None);
    let etag = reply.header("etag").unwrap();
    assert!(
        etag.len() == 18
            && etag.starts_with('"')
            && etag.ends_with('"')
            && etag[1..17].bytes().all(|b| b.is_ascii_hexdigit()),
        "strong etag {etag}"
    );
    assert!(reply.complete);
    assert_bytes(&reply.body, &content);

    // The same content elsewhere has the same ETag; other content another one.
    server.serve_bytes("same", content.clone());
    assert_eq!(get(&server, "/same").header("etag"), Some(etag));
    server.serve_bytes("/other", data(100_000, 2));
    assert_ne!(get(&server, "/other").header("etag"), Some(etag));

    let head = fetch(&server, "HEAD", "/model.gguf", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.content_length(), 100_000);
    assert_eq!(head.header("etag"), Some(etag));
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
    // HEAD never answers a range.
    let head = fetch(&server, "HEAD", "/model.gguf", &[("Range", "bytes=10-")]);
    assert_eq!((head.status, head.content_length()), (200, 100_000));
    assert_eq!(head.header("content-range"), None);

    let missing = get(&server, "/nope");
    assert_eq!((missing.status, missing.content_length()), (404, 0));
    assert_eq!(fetch(&server, "HEAD", "/nope", &[]).status, 404);

    let post = fetch(&server, "POST", "/model.gguf", &[("Content-Length", "0")]);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    // A query string is not part of the path.
    assert_bytes(&get(&server, "/model.gguf?download=1").body, &content);

    server.remove("/model.gguf");
    assert_eq!(get(&server, "/model.gguf").status, 404);

    let empty = TestServer::start();
    empty.serve_bytes("/empty", Vec::new());
    let reply = get(&empty, "/empty");
    assert_eq!((reply.status, reply.content_length()), (200, 0));
    assert!(reply.body.is_empty());
    // No range of an empty representation is satisfiable.
    let reply = get_range(&empty, "/empty", "bytes=0-");
    assert_eq!(reply.status, 416);
    assert_eq!(reply.header("content-range"), Some("bytes */0"));
}

#[test]
fn single_ranges_get_206_and_everything_else_200() {
    let server = TestServer::start();
    let content = data(100_000, 3);
    server.serve_bytes("/f", content.clone());

    let reply = get_range(&server, "/f", "bytes=1000-");
    assert_eq!(reply.status, 206);
    assert_eq!(
        reply.header("content-range"),
        Some("bytes 1000-99999/100000")
    );
    assert_eq!(reply.content_length(), 99_000);
    assert_eq!(reply.header("accept-ranges"), Some("bytes"));
    assert!(reply.header("etag").is_some());
    assert_bytes(&reply.body, &content[1000..]);

    let reply = get_range(&server, "/f", "bytes=10-19");
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-range"), Some("bytes 10-19/100000"));
    assert_bytes(&reply.body, &content[10..20]);

    let reply = get_range(&server, "/f", "bytes=99999-99999");
    assert_eq!(
        reply.header("content-range"),
        Some("bytes 99999-99999/100000")
    );
    assert_bytes(&reply.body, &content[99_999..]);

    // The last position is clamped to the end.
    let reply = get_range(&server, "/f", "bytes=99990-500000");
    assert_eq!(reply.status, 206);
    assert_eq!(
        reply.header("content-range"),
        Some("bytes 99990-99999/100000")
    );
    assert_bytes(&reply.body, &content[99_990..]);

    // Unit names are case-insensitive.
    assert_eq!(get_range(&server, "/f", "Bytes=5-").status, 206);

    // Ranges the server does not do, or invalid ones, are ignored: full 200.
    for range in [
        "bytes=-500",
        "bytes=0-1,5-6",
        "items=0-1",
        "bytes=20-10",
        "bytes=x-",
        "bytes",
    ] {
        let reply = get_range(&server, "/f", range);
        assert_eq!(reply.status, 200, "{range}");
        assert_eq!(reply.header("content-range"), None, "{range}");
        assert_bytes(&reply.body, &content);
    }
}

#[test]
fn ranges_past_the_end_get_416() {
    let server = TestServer::start();
    server.serve_bytes("/f", data(100_000, 4));
    for range in ["bytes=100000-", "bytes=100000-100010", "bytes=5000000-"] {
        let reply = get_range(&server, "/f", range);
        assert_eq!(reply.status, 416, "{range}");
        assert_eq!(reply.header("content-range"), Some("bytes */100000"));
        assert_eq!(reply.content_length(), 0);
        assert!(reply.body.is_empty());
    }
}

#[test]
fn if_range_with_etags_and_dates() {
    let server = TestServer::start();
    let content = data(50_000, 5);
    server.serve_bytes("/f", content.clone());
    let etag = get(&server, "/f").header("etag").unwrap().to_owned();

    let ranged = |if_range: &str| {
        fetch(
            &server,
            "GET",
            "/f",
            &[("Range", "bytes=100-"), ("If-Range", if_range)],
        )
    };
    let reply = ranged(&etag);
    assert_eq!(reply.status, 206);
    assert_bytes(&reply.body, &content[100..]);

    let reply = ranged("\"0123456789abcdef\"");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-range"), None);
    assert_bytes(&reply.body, &content);

    // A weak validator never matches, even with the same opaque tag.
    assert_eq!(ranged(&format!("W/{etag}")).status, 200);
    // Not a date we sent (no Last-Modified yet).
    assert_eq!(ranged("Tue, 01 Apr 2025 10:00:00 GMT").status, 200);
    // If-Range does not rescue an unsatisfiable range when it mismatches: full 200.
    let reply = fetch(
        &server,
        "GET",
        "/f",
        &[("Range", "bytes=999999-"), ("If-Range", "\"other\"")],
    );
    assert_eq!(reply.status, 200);

    let date = "Tue, 01 Apr 2025 10:00:00 GMT";
    server.set_behavior(
        "/f",
        Behavior {
            etag: EtagMode::Weak,
            last_modified: Some(date.to_owned()),
            ..Behavior::default()
        },
    );
    let reply = get(&server, "/f");
    let weak = reply.header("etag").unwrap().to_owned();
    assert_eq!(weak, format!("W/{etag}"));
    assert_eq!(reply.header("last-modified"), Some(date));
    assert_eq!(ranged(&weak).status, 200);
    // Now the strong ETag is not current either (only a weak one is sent).
    assert_eq!(ranged(&etag).status, 200);
    let reply = ranged(date);
    assert_eq!(reply.status, 206);
    assert_bytes(&reply.body, &content[100..]);
    assert_eq!(ranged("Wed, 02 Apr 2025 10:00:00 GMT").status, 200);

    server.set_behavior(
        "/f",
        Behavior {
            etag: EtagMode::None,
            ..Behavior::default()
        },
    );
    let reply = get(&server, "/f");
    assert_eq!(reply.header("etag"), None);
    assert_eq!(ranged(&etag).status, 200);
    // Range alone still works without validators.
    assert_eq!(get_range(&server, "/f", "bytes=100-").status, 206);
}

#[test]
fn change_etag_each_request() {
    let server = TestServer::start();
    let content = data(10_000, 6);
    server.serve_bytes("/f", content.clone());
    server.set_behavior(
        "/f",
        Behavior {
            change_etag_each_request: true,
            times: Some(3),
            ..Behavior::default()
        },
    );
    let first = get(&server, "/f");
    let second = get(&server, "/f");
    assert_bytes(&first.body, &content);
    assert_bytes(&second.body, &content);
    let (a, b) = (
        first.header("etag").unwrap(),
        second.header("etag").unwrap(),
    );
    assert!(a.starts_with('"') && b.starts_with('"'), "{a} {b}");
    assert_ne!(a, b);
    // The third request sees yet another ETag, so the second one no longer matches.
    let reply = fetch(
        &server,
        "GET",
        "/f",
        &[("Range", "bytes=10-"), ("If-Range", b)],
    );
    assert_eq!(reply.status, 200);
    assert_bytes(&reply.body, &content);
    let third = reply.header("etag").unwrap().to_owned();
    assert_ne!(third, b);
    // Faults used up: the ETag stays the last one and If-Range with it matches.
    let reply = fetch(
        &server,
        "GET",
        "/f",
        &[("Range", "bytes=10-"), ("If-Range", &third)],
    );
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("etag"), Some(third.as_str()));
    assert_bytes(&reply.body, &content[10..]);
}

#[test]
fn ignore_range_wrong_content_range_and_always_416() {
    let server = TestServer::start();
    let content = data(100_000, 7);
    server.serve_bytes("/f", content.clone());

    server.set_behavior(
        "/f",
        Behavior {
            ignore_range: true,
            ..Behavior::default()
        },
    );
    let reply = get_range(&server, "/f", "bytes=5000-");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-range"), None);
    assert_bytes(&reply.body, &content);

    server.set_behavior(
        "/f",
        Behavior {
            wrong_content_range: true,
            ..Behavior::default()
        },
    );
    let reply = get_range(&server, "/f", "bytes=5000-");
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-range"), Some("bytes 0-99999/100000"));
    assert_bytes(&reply.body, &content);
    let reply = get_range(&server, "/f", "bytes=0-99");
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-range"), Some("bytes 1-99/100000"));
    assert_bytes(&reply.body, &content[1..100]);

    server.set_behavior(
        "/f",
        Behavior {
            always_416: true,
            ..Behavior::default()
        },
    );
    for range in ["bytes=0-", "bytes=10-20", "bytes=-5"] {
        let reply = get_range(&server, "/f", range);
        assert_eq!(reply.status, 416, "{range}");
        assert_eq!(reply.header("content-range"), Some("bytes */100000"));
        assert!(reply.body.is_empty());
    }
    let reply = get(&server, "/f");
    assert_eq!(reply.status, 200);
    assert_bytes(&reply.body, &content);
}

#[test]
fn drop_after_cuts_the_body_after_exactly_that_many_bytes() {
    let server = TestServer::start();
    let content = data(4_000_000, 8);
    server.serve_bytes("/f", content.clone());

    for cut in [1_000, 300_000, 3_000_000] {
        server.set_behavior(
            "/f",
            Behavior {
                drop_after: Some(cut),
                ..Behavior::default()
            },
        );
        server.reset_counters();
        let reply = get(&server, "/f");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_length(), 4_000_000);
        assert!(!reply.complete && !reply.timed_out);
        assert_eq!(reply.body.len() as u64, cut);
        assert_bytes(&reply.body, &content[..cut as usize]);
        assert_eq!(server.body_bytes_sent(), cut);
    }

    // A slow reader still gets every byte before the cut: the abort waits while the socket
    // is full.
    let big = data(16 << 20, 16);
    server.serve_bytes("/big", big.clone());
    server.set_behavior(
        "/big",
        Behavior {
            drop_after: Some(12_000_000),
            ..Behavior::default()
        },
    );
    let mut client = Client::connect(server.addr());
    client
        .reader
        .get_mut()
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let reply = client.read_response(false);
    assert!(!reply.complete && !reply.timed_out);
    assert_bytes(&reply.body, &big[..12_000_000]);

    // Counted from the start of the response body, also for a range.
    server.set_behavior(
        "/f",
        Behavior {
            drop_after: Some(500),
            ..Behavior::default()
        },
    );
    let reply = get_range(&server, "/f", "bytes=1000000-");
    assert_eq!(reply.status, 206);
    assert_eq!(reply.content_length(), 3_000_000);
    assert!(!reply.complete);
    assert_bytes(&reply.body, &content[1_000_000..1_000_500]);

    // A cut at or past the end is no cut.
    server.set_behavior(
        "/f",
        Behavior {
            drop_after: Some(4_000_000),
            ..Behavior::default()
        },
    );
    let reply = get(&server, "/f");
    assert!(reply.complete);
    assert_bytes(&reply.body, &content);
}

#[test]
fn stall_after_stops_sending_until_shutdown() {
    let server = TestServer::start();
    let content = data(1_000_000, 9);
    server.serve_bytes("/f", content.clone());
    server.set_behavior(
        "/f",
        Behavior {
            stall_after: Some(200_000),
            ..Behavior::default()
        },
    );
    let mut client = Client::connect(server.addr());
    client.set_read_timeout(Duration::from_millis(700));
    let reply = client.send("GET", "/f", &[], true);
    assert_eq!(reply.status, 200);
    assert!(reply.timed_out, "the stalled body must not end");
    assert!(!reply.complete);
    assert_bytes(&reply.body, &content[..200_000]);

    // Another request stalls too, while the first connection stays open.
    let mut other = Client::connect(server.addr());
    other.set_read_timeout(Duration::from_millis(300));
    assert!(other.send("GET", "/f", &[], true).timed_out);

    // Shutting down ends the stalls promptly and closes the connections.
    let addr = server.addr();
    let (done, dropped) = mpsc::channel();
    std::thread::spawn(move || {
        drop(server);
        done.send(()).unwrap();
    });
    dropped
        .recv_timeout(Duration::from_secs(10))
        .expect("dropping a server with stalled bodies must not hang");
    client.set_read_timeout(Duration::from_secs(5));
    let mut rest = Vec::new();
    let _ = client.reader.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
}

#[test]
fn redirects_and_statuses() {
    let server = TestServer::start();
    let other = TestServer::start();
    let content = data(1000, 10);
    server.serve_bytes("/new", content.clone());
    other.serve_bytes("/there", content.clone());

    // To another path on the same server; /old has no content of its own.
    server.set_behavior(
        "/old",
        Behavior {
            redirect_to: Some(server.url("/new")),
            ..Behavior::default()
        },
    );
    let reply = get(&server, "/old");
    assert_eq!(reply.status, 302);
    assert_eq!(reply.content_length(), 0);
    let location = reply.header("location").unwrap();
    assert_eq!(location, format!("http://{}/new", server.addr()));
    assert_bytes(&get(&server, "/new").body, &content);

    // To another server, and under another host name.
    server.set_behavior(
        "/away",
        Behavior {
            redirect_to: Some(other.url("/there")),
            ..Behavior::default()
        },
    );
    assert_eq!(
        get(&server, "/away").header("location"),
        Some(other.url("/there").as_str())
    );
    let host = server.localhost_url("/new");
    assert_eq!(
        host,
        format!("http://localhost:{}/new", server.addr().port())
    );
    server.set_behavior(
        "/host",
        Behavior {
            redirect_to: Some(host.clone()),
            ..Behavior::default()
        },
    );
    assert_eq!(
        get(&server, "/host").header("location"),
        Some(host.as_str())
    );
    // Relative locations are sent verbatim.
    server.set_behavior(
        "/relative",
        Behavior {
            redirect_to: Some("/new".to_owned()),
            ..Behavior::default()
        },
    );
    assert_eq!(get(&server, "/relative").header("location"), Some("/new"));

    for code in [503, 404, 500, 403] {
        server.set_behavior(
            "/new",
            Behavior {
                status: Some(code),
                ..Behavior::default()
            },
        );
        let reply = get(&server, "/new");
        assert_eq!(reply.status, code);
        assert_eq!(reply.content_length(), 0);
        assert_eq!(fetch(&server, "HEAD", "/new", &[]).status, code);
    }
    server.set_behavior("/new", Behavior::default());
    assert_eq!(get(&server, "/new").status, 200);
}

#[test]
fn corrupt_serves_the_same_length_with_flipped_bytes() {
    let server = TestServer::start();
    let content = data(200_000, 11);
    server.serve_bytes("/f", content.clone());
    let etag = get(&server, "/f").header("etag").unwrap().to_owned();
    server.set_behavior(
        "/f",
        Behavior {
            corrupt: true,
            ..Behavior::default()
        },
    );
    let reply = get(&server, "/f");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_length(), 200_000);
    assert_eq!(reply.body.len(), content.len());
    assert_ne!(reply.body, content);
    // The validators are those of the real content.
    assert_eq!(reply.header("etag"), Some(etag.as_str()));
    let differ: Vec<usize> = (0..content.len())
        .filter(|&i| reply.body[i] != content[i])
        .collect();
    let every = CORRUPT_EVERY as usize;
    assert_eq!(differ, [0, every, 2 * every, 3 * every]);
    for &i in &differ {
        assert_eq!(reply.body[i], content[i] ^ 0xFF);
    }

    // Ranges are served from the corrupted content.
    let ranged = get_range(&server, "/f", &format!("bytes={}-", every - 10));
    assert_eq!(ranged.status, 206);
    assert_bytes(&ranged.body, &reply.body[every - 10..]);
    let ranged = get_range(&server, "/f", "bytes=1-100");
    assert_bytes(&ranged.body, &content[1..101]);
}

#[test]
fn faults_apply_to_the_first_requests_only() {
    let server = TestServer::start();
    let content = data(100_000, 12);
    server.serve_bytes("/f", content.clone());

    server.set_behavior(
        "/f",
        Behavior {
            times: Some(1),
            status: Some(503),
            ..Behavior::default()
        },
    );
    assert_eq!(get(&server, "/f").status, 503);
    let reply = get(&server, "/f");
    assert_eq!(reply.status, 200);
    assert_bytes(&reply.body, &content);
    assert_eq!(get(&server, "/f").status, 200);

    // Setting a behaviour restarts the count.
    server.set_behavior(
        "/f",
        Behavior {
            times: Some(2),
            drop_after: Some(10_000),
            ..Behavior::default()
        },
    );
    for _ in 0..2 {
        let reply = get(&server, "/f");
        assert!(!reply.complete);
        assert_bytes(&reply.body, &content[..10_000]);
    }
    let reply = get(&server, "/f");
    assert!(reply.complete);
    assert_bytes(&reply.body, &content);

    // The resource settings stay after the faults are used up.
    server.set_behavior(
        "/f",
        Behavior {
            times: Some(1),
            etag: EtagMode::Weak,
            last_modified: Some("Tue, 01 Apr 2025 10:00:00 GMT".to_owned()),
            ignore_range: true,
            ..Behavior::default()
        },
    );
    assert_eq!(get_range(&server, "/f", "bytes=10-").status, 200);
    let reply = get_range(&server, "/f", "bytes=10-");
    assert_eq!(reply.status, 206);
    assert!(reply.header("etag").unwrap().starts_with("W/"));
    assert!(reply.header("last-modified").is_some());
}

#[test]
fn rate_limit_slows_the_body() {
    let server = TestServer::start();
    let content = data(64 * 1024, 13);
    server.serve_bytes("/f", content.clone());
    let started = Instant::now();
    assert_bytes(&get(&server, "/f").body, &content);
    let unlimited = started.elapsed();

    server.set_behavior(
        "/f",
        Behavior {
            rate_limit: Some(256 * 1024),
            ..Behavior::default()
        },
    );
    let started = Instant::now();
    let reply = get(&server, "/f");
    let limited = started.elapsed();
    assert_bytes(&reply.body, &content);
    // 64 KiB at 256 KiB/s is 250 ms.
    assert!(
        limited >= Duration::from_millis(200),
        "{limited:?} (unlimited: {unlimited:?})"
    );
}

#[test]
fn counts_connections_requests_and_body_bytes() {
    let server = TestServer::start();
    let content = data(1000, 14);
    server.serve_bytes("/f", content.clone());
    assert_eq!(server.connections(), 0);
    assert!(server.requests().is_empty());

    // Keep-alive: three requests on one connection.
    let mut client = Client::connect(server.addr());
    let full = client.send("GET", "/f", &[], false);
    assert_bytes(&full.body, &content);
    assert_eq!(full.header("connection"), None);
    let ranged = client.send("GET", "/f", &[("Range", "bytes=900-")], false);
    assert_bytes(&ranged.body, &content[900..]);
    let head = client.send("HEAD", "/f", &[], false);
    assert_eq!(head.status, 200);
    let missing = client.send("GET", "/missing", &[], true);
    assert_eq!(missing.status, 404);
    client.assert_closed();
    assert_eq!(server.connections(), 1);

    let etag = full.header("etag").unwrap().to_owned();
    get(&server, "/f");
    assert_eq!(server.connections(), 2);
    let partial = fetch(
        &server,
        "GET",
        "/f",
        &[("Range", "bytes=10-19"), ("If-Range", &etag)],
    );
    assert_eq!(partial.status, 206);
    assert_eq!(server.connections(), 3);
    assert_eq!(server.body_bytes_sent(), 1000 + 100 + 1000 + 10);

    let log = |method: &str, path: &str, range: Option<&str>, status: u16, bytes: u64| RequestLog {
        path: path.to_owned(),
        method: method.to_owned(),
        range: range.map(str::to_owned),
        if_range: None,
        status,
        body_bytes: bytes,
    };
    let mut last = log("GET", "/f", Some("bytes=10-19"), 206, 10);
    last.if_range = Some(etag);
    assert_eq!(
        server.requests(),
        [
            log("GET", "/f", None, 200, 1000),
            log("GET", "/f", Some("bytes=900-"), 206, 100),
            log("HEAD", "/f", None, 200, 0),
            log("GET", "/missing", None, 404, 0),
            log("GET", "/f", None, 200, 1000),
            last,
        ]
    );

    server.reset_counters();
    assert_eq!(server.connections(), 0);
    assert_eq!(server.body_bytes_sent(), 0);
    assert!(server.requests().is_empty());
    get(&server, "/f");
    assert_eq!(server.connections(), 1);
    assert_eq!(server.body_bytes_sent(), 1000);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn serve_file_streams_64_mib_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let content = data(64 << 20, 15);
    std::fs::write(&path, &content).unwrap();

    let server = TestServer::start();
    server.serve_file("/big.bin", path.clone());
    let head = fetch(&server, "HEAD", "/big.bin", &[]);
    assert_eq!(head.content_length(), 64 << 20);
    let etag = head.header("etag").unwrap().to_owned();

    let started = Instant::now();
    let reply = get(&server, "/big.bin");
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("etag"), Some(etag.as_str()));
    assert!(reply.complete);
    assert!(reply.body == content, "the file came back different");
    assert_eq!(server.body_bytes_sent(), 64 << 20);
    eprintln!(
        "64 MiB from disk in {elapsed:?} ({:.0} MiB/s)",
        64.0 / elapsed.as_secs_f64()
    );

    let start = (32 << 20) + 7;
    let reply = fetch(
        &server,
        "GET",
        "/big.bin",
        &[("Range", &format!("bytes={start}-")), ("If-Range", &etag)],
    );
    assert_eq!(reply.status, 206);
    assert_eq!(
        reply.header("content-range").unwrap(),
        format!("bytes {start}-{}/{}", (64 << 20) - 1, 64 << 20)
    );
    assert!(reply.body == content[start..]);

    // Faults apply to files too.
    server.set_behavior(
        "/big.bin",
        Behavior {
            drop_after: Some(1_000_000),
            corrupt: true,
            ..Behavior::default()
        },
    );
    let reply = get(&server, "/big.bin");
    let mut expected = content[..1_000_000].to_vec();
    for at in (0..expected.len()).step_by(CORRUPT_EVERY as usize) {
        expected[at] ^= 0xFF;
    }
    assert_eq!(reply.body.len(), 1_000_000);
    assert!(reply.body == expected, "corrupted file body");

    // A missing file is a server error, not a hang.
    server.serve_file("/gone", dir.path().join("gone.bin"));
    assert_eq!(get(&server, "/gone").status, 500);
}

#[test]
fn serves_many_threads_and_shuts_down() {
    let server = TestServer::start();
    server.serve_bytes("f", b"hello".to_vec());
    assert_eq!(
        server.url("f"),
        format!("http://127.0.0.1:{}/f", server.addr().port())
    );
    assert!(server.addr().ip().is_loopback());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let addr = server.addr();
            std::thread::spawn(move || Client::connect(addr).send("GET", "/f", &[], true).body)
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), b"hello");
    }
    assert_eq!(server.connections(), 8);
    let addr = server.addr();
    drop(server);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
}

#[test]
fn starts_and_stops_inside_another_tokio_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = TestServer::start();
        server.serve_bytes("/f", b"from a runtime".to_vec());
        let addr = server.addr();
        let body = tokio::task::spawn_blocking(move || {
            Client::connect(addr).send("GET", "/f", &[], true).body
        })
        .await
        .unwrap();
        assert_eq!(body, b"from a runtime");
        drop(server);
        assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
    });
}
