//! The direct HTTP/1.1 path of reverse listeners (`proxy::h1`), byte for byte: a scripted
//! raw upstream on 127.0.0.2 answers each path with exact bytes (chunked with a trailer,
//! close-delimited, 1xx first, a HEAD, a 204, conflicting lengths, silence) and records
//! what it received; a raw HTTP/1.1 client over TLS checks what comes back, on kept-alive
//! and pipelined connections, and what douane hands to hyper instead.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Fixture, RouteSpec};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const BIG: usize = 3 * 1024 * 1024 + 7;

/// The raw upstream: every connection accepted is counted, every request head and body
/// recorded.
struct RawUpstream {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl RawUpstream {
    async fn start() -> RawUpstream {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let (port, connections) =
            common::raw::serve_counted(move |stream| serve_raw(stream, seen.clone())).await;
        RawUpstream {
            port,
            connections,
            requests,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn last_request(&self) -> String {
        self.requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

/// Answers requests on one upstream connection by path.
async fn serve_raw(mut stream: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    loop {
        let Some((head, body)) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        let text = format!("{head}{}", String::from_utf8_lossy(&body));
        seen.lock().unwrap().push(text.clone());
        let target = head.split_whitespace().nth(1).unwrap_or("/");
        let path = target.split('?').next().unwrap_or("/").to_owned();
        let reply: Vec<u8> = match path.as_str() {
            "/echo" => format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n{text}",
                text.len()
            )
            .into_bytes(),
            "/chunked" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: yes\r\n\r\n".to_vec(),
            "/hop" => b"HTTP/1.1 200 OK\r\nconnection: keep-alive, x-secret\r\nx-secret: 1\r\nkeep-alive: timeout=5\r\nx-kept: yes\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            "/head" => b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n".to_vec(),
            "/nocontent" => b"HTTP/1.1 204 No Content\r\nx-empty: 1\r\n\r\n".to_vec(),
            "/early" => b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfinal".to_vec(),
            "/conflict" => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok!".to_vec(),
            "/big" => {
                let mut r = format!("HTTP/1.1 200 OK\r\ncontent-length: {BIG}\r\n\r\n").into_bytes();
                r.extend((0..BIG).map(|i| (i % 251) as u8));
                r
            }
            "/close" => b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec(),
            "/late" => {
                tokio::time::sleep(Duration::from_millis(800)).await;
                b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate".to_vec()
            }
            "/silent" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            _ => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
        };
        if stream.write_all(&reply).await.is_err() {
            return;
        }
        // `/close`: a body that only the end of the connection delimits. `/drop-after`: an
        // idle keep-alive connection that the upstream drops, as servers do when their
        // keep-alive timeout passes.
        if path == "/close" || path == "/drop-after" {
            return;
        }
    }
}

/// Reads one request (head and `Content-Length` body, or a chunked body kept raw).
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let lower = head.to_ascii_lowercase();
    let body_len = if lower.contains("transfer-encoding: chunked") {
        loop {
            if let Some(i) = find(&buf[end..], b"0\r\n\r\n") {
                break i + 5;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    } else {
        lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    while buf.len() < end + body_len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[end..end + body_len].to_vec();
    buf.drain(..end + body_len);
    Some((head, body))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One response as the client reads it: the head as text, the body as raw bytes (chunked
/// bodies stay encoded), and whether the connection closed after it.
struct Raw {
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn status(&self) -> u16 {
        self.head
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// A raw HTTP/1.1 client connection, over TLS with ALPN http/1.1 (so the direct path).
struct Client {
    stream: TlsStream<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(fx: &Fixture, douane: &Douane, sni: &str) -> Client {
        let tcp = TcpStream::connect(douane.reverse).await.expect("connect");
        let stream = common::client::tls(tcp, fx.ca.client_config(&[b"http/1.1"]), sni)
            .await
            .expect("tls");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
        self.stream.flush().await.expect("flush");
    }

    async fn get(&mut self, host: &str, path: &str) -> Raw {
        self.send(format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n\r\n").as_bytes())
            .await;
        self.response(false).await
    }

    /// Reads one response; `to_head` for the answer to a HEAD request.
    async fn response(&mut self, to_head: bool) -> Raw {
        tokio::time::timeout(
            Duration::from_secs(10),
            read_response(&mut self.stream, &mut self.buf, to_head),
        )
        .await
        .expect("a response in time")
    }

    /// Whether the server closed the connection (nothing more to read).
    async fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut byte)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

async fn fill<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16384];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

async fn read_response<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    to_head: bool,
) -> Raw {
    let end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        assert!(fill(stream, buf).await, "closed before a response head");
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let raw = Raw {
        head,
        body: Vec::new(),
    };
    let status = raw.status();
    let body_len = if to_head || status == 204 || status == 304 {
        0
    } else if raw
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            if let Some(i) = find(&buf[end..], b"\r\n\r\n").filter(|i| {
                // the empty line that ends the trailer section follows a `0` chunk
                find(&buf[end..end + i + 4], b"0\r\n").is_some()
            }) {
                break i + 4;
            }
            assert!(fill(stream, buf).await, "closed inside a chunked body");
        }
    } else if let Some(len) = raw.header("content-length") {
        len.parse().unwrap()
    } else {
        while fill(stream, buf).await {}
        buf.len() - end
    };
    while buf.len() < end + body_len {
        assert!(fill(stream, buf).await, "closed inside a body");
    }
    let body = buf[end..end + body_len].to_vec();
    buf.drain(..end + body_len);
    Raw { body, ..raw }
}

/// douane with routes on its TLS listener: app.localhost → the raw upstream (fr.test, FR),
/// other.localhost → a US name on the same port (blocked), ws.localhost → a port where
/// nothing listens.
async fn start(extra: &str) -> (Fixture, Douane, RawUpstream) {
    let up = RawUpstream::start().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[up.port, dead], ""));
    let route = |name, host, upstream: String| RouteSpec {
        name,
        host,
        path_prefix: "/",
        upstream,
    };
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        routes: vec![
            route(
                "app",
                "app.localhost",
                format!("http://fr.test:{}", up.port),
            ),
            route(
                "other",
                "other.localhost",
                format!("http://us.test:{}", up.port),
            ),
            route("down", "ws.localhost", format!("http://fr.test:{dead}")),
        ],
        extra: extra.into(),
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;
    (fx, douane, up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_requests_pass_byte_for_byte_over_one_pooled_connection() {
    let (fx, douane, up) = start("").await;
    let mut c = Client::connect(&fx, &douane, "app.localhost").await;

    // The request as the upstream gets it: Host the upstream's, forwarding headers set,
    // hop-by-hop headers and what `Connection` names gone, the client's own X-Forwarded-For
    // dropped (an untrusted peer), the body intact.
    c.send(b"POST /echo?q=1 HTTP/1.1\r\nHost: App.Localhost:443\r\nConnection: keep-alive, x-secret\r\nx-secret: s\r\nProxy-Authorization: Basic Zm9v\r\nX-Forwarded-For: 6.6.6.6\r\nx-custom: kept\r\ncontent-length: 5\r\n\r\nhello").await;
    let echo = c.response(false).await;
    assert_eq!(echo.status(), 200, "{}", echo.head);
    let seen = String::from_utf8(echo.body).unwrap();
    let lower = seen.to_ascii_lowercase();
    assert!(seen.starts_with("POST /echo?q=1 HTTP/1.1\r\n"), "{seen}");
    assert!(
        lower.contains(&format!("host: fr.test:{}\r\n", up.port)),
        "{seen}"
    );
    assert!(lower.contains("x-forwarded-for: 127.0.0.1\r\n"), "{seen}");
    assert!(lower.contains("x-forwarded-proto: https\r\n"), "{seen}");
    assert!(
        lower.contains("x-forwarded-host: app.localhost:443\r\n"),
        "{seen}"
    );
    assert!(
        lower.contains("forwarded: for=127.0.0.1;proto=https;host=\"app.localhost:443\"\r\n"),
        "{seen}"
    );
    assert!(lower.contains("x-custom: kept\r\n"), "{seen}");
    for gone in ["x-secret", "proxy-authorization", "connection", "6.6.6.6"] {
        assert!(!lower.contains(gone), "{gone} crossed: {seen}");
    }
    assert!(seen.ends_with("\r\n\r\nhello"), "{seen}");

    // A chunked response passes as it is, trailer included.
    let chunked = c.get("app.localhost", "/chunked").await;
    assert_eq!(
        chunked.header("transfer-encoding").as_deref(),
        Some("chunked")
    );
    assert_eq!(
        chunked.body,
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: yes\r\n\r\n"
    );

    // Hop-by-hop response headers go, the rest stays.
    let hop = c.get("app.localhost", "/hop").await;
    assert_eq!(hop.header("x-kept").as_deref(), Some("yes"));
    assert_eq!(hop.header("x-secret"), None);
    assert_eq!(hop.header("keep-alive"), None);
    assert_eq!(hop.body, b"ok");

    // HEAD: the length of what GET would give, no body; 204: no body; 103 dropped.
    c.send(b"HEAD /head HTTP/1.1\r\nhost: app.localhost\r\n\r\n")
        .await;
    let head = c.response(true).await;
    assert_eq!(head.header("content-length").as_deref(), Some("10"));
    let empty = c.get("app.localhost", "/nocontent").await;
    assert_eq!(empty.status(), 204);
    assert_eq!(empty.header("x-empty").as_deref(), Some("1"));
    let early = c.get("app.localhost", "/early").await;
    assert_eq!(early.status(), 200, "{}", early.head);
    assert_eq!(early.body, b"final");

    // Pipelined: two requests in one write, two answers in order.
    c.send(b"GET /hop HTTP/1.1\r\nhost: app.localhost\r\n\r\nGET /chunked HTTP/1.1\r\nhost: app.localhost\r\n\r\n").await;
    assert_eq!(c.response(false).await.body, b"ok");
    assert!(c.response(false).await.body.starts_with(b"5\r\nhello"));

    // Bare LF line ends (which hyper accepts too) end a head as well.
    c.send(b"GET /hop HTTP/1.1\nhost: app.localhost\n\n").await;
    assert_eq!(c.response(false).await.body, b"ok");

    // A large body arrives whole.
    let big = c.get("app.localhost", "/big").await;
    assert_eq!(big.body.len(), BIG);
    assert!(big
        .body
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i % 251) as u8));

    // All of it over one upstream connection.
    assert_eq!(up.connections(), 1);
    assert!(
        douane
            .wait_log_count("request decided", 10, Duration::from_secs(5))
            .await,
        "every request logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_the_upstream_dropped_is_replaced() {
    let (fx, douane, up) = start("").await;
    let mut c = Client::connect(&fx, &douane, "app.localhost").await;
    assert_eq!(c.get("app.localhost", "/drop-after").await.status(), 404);
    tokio::time::sleep(Duration::from_millis(100)).await; // the close reaches douane
    for _ in 0..3 {
        let r = c.get("app.localhost", "/echo").await;
        assert_eq!(r.status(), 200, "{}", r.head);
    }
    assert_eq!(up.connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_delimited_by_close_closes_the_client_connection_too() {
    let (fx, douane, up) = start("").await;
    let mut c = Client::connect(&fx, &douane, "app.localhost").await;
    c.send(b"GET /close HTTP/1.1\r\nhost: app.localhost\r\n\r\n")
        .await;
    let r = c.response(false).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert_eq!(r.body, b"until the end");
    let _ = up;

    // `Connection: close` from the client: answered, then closed.
    let mut c = Client::connect(&fx, &douane, "app.localhost").await;
    c.send(b"GET /hop HTTP/1.1\r\nhost: app.localhost\r\nconnection: close\r\n\r\n")
        .await;
    let r = c.response(false).await;
    assert_eq!(r.body, b"ok");
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(c.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_direct_path_does_not_take_goes_to_hyper_on_the_same_connection() {
    let (fx, douane, up) = start("").await;
    let mut c = Client::connect(&fx, &douane, "app.localhost").await;
    assert_eq!(c.get("app.localhost", "/hop").await.body, b"ok");

    // A chunked request body: hyper streams it; the upstream gets it whole.
    c.send(b"POST /echo HTTP/1.1\r\nhost: app.localhost\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").await;
    let echo = c.response(false).await;
    assert_eq!(echo.status(), 200, "{}", echo.head);
    let seen = String::from_utf8(echo.body).unwrap();
    assert!(seen.starts_with("POST /echo HTTP/1.1"), "{seen}");
    assert!(seen.contains("abc") && seen.contains("de"), "{seen}");

    // A destination under US law, on a connection that SNI says is app.localhost: 421.
    let misdirected = c.get("other.localhost", "/echo").await;
    assert_eq!(misdirected.status(), 421);
    // Still served after the hand-over.
    assert_eq!(c.get("app.localhost", "/hop").await.body, b"ok");

    // The US route, on its own connection: 451 with the block page.
    let mut us = Client::connect(&fx, &douane, "other.localhost").await;
    let blocked = us.get("other.localhost", "/echo").await;
    assert_eq!(blocked.status(), 451, "{}", blocked.head);
    assert!(blocked.header("douane-request-id").is_some());
    assert_eq!(
        up.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.contains("us.test"))
            .count(),
        0,
        "nothing reached the upstream for the blocked route"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_answer_502_and_504_and_the_connection_goes_on() {
    let (fx, douane, up) = start("[limits]\nupstream_response_timeout_ms = 500\n").await;

    // Nothing listens on the route's port: 502, and the client connection stays usable.
    let mut c = Client::connect(&fx, &douane, "ws.localhost").await;
    let down = c.get("ws.localhost", "/").await;
    assert_eq!(down.status(), 502, "{}", down.head);
    assert!(down.header("douane-request-id").is_some());
    let again = c.get("ws.localhost", "/").await;
    assert_eq!(again.status(), 502);

    // Conflicting lengths from the upstream: 502, not a guess.
    let mut c = Client::connect(&fx, &douane, "app.localhost").await;
    let conflict = c.get("app.localhost", "/conflict").await;
    assert_eq!(conflict.status(), 502, "{}", conflict.head);

    // An upstream that never answers: 504 after the response timeout.
    let mut c = Client::connect(&fx, &douane, "app.localhost").await;
    let started = std::time::Instant::now();
    let silent = c.get("app.localhost", "/silent").await;
    assert_eq!(silent.status(), 504, "{}", silent.head);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(c.get("app.localhost", "/hop").await.body, b"ok");
    assert!(up.last_request().starts_with("GET /hop"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_request_in_flight_finish_closes_idle_connections_and_exits_0() {
    let (fx, mut douane, _up) = start("").await;
    let mut idle = Client::connect(&fx, &douane, "app.localhost").await;
    assert_eq!(idle.get("app.localhost", "/hop").await.body, b"ok");
    let mut busy = Client::connect(&fx, &douane, "app.localhost").await;
    busy.send(b"GET /late HTTP/1.1\r\nhost: app.localhost\r\n\r\n")
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    douane.signal("TERM");
    let late = busy.response(false).await;
    assert_eq!(late.status(), 200, "{}", late.head);
    assert_eq!(late.body, b"late");
    assert_eq!(late.header("connection").as_deref(), Some("close"));
    assert!(busy.closed().await);
    assert!(
        idle.closed().await,
        "an idle kept-alive connection is closed"
    );
    let status = douane.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_absolute_form_requests_take_the_direct_path_too() {
    let (_fx, douane, up) = start("").await;
    let mut tcp = TcpStream::connect(douane.forward).await.unwrap();
    let mut buf = Vec::new();
    let port = up.port;
    let request = format!(
        "GET http://fr.test:{port}/echo?x=1 HTTP/1.1\r\nHost: fr.test:{port}\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic Zm9v\r\nx-custom: kept\r\n\r\n"
    );
    let mut via = String::new();
    for _ in 0..2 {
        tcp.write_all(request.as_bytes()).await.unwrap();
        let r = read_response(&mut tcp, &mut buf, false).await;
        assert_eq!(r.status(), 200, "{}", r.head);
        via = r.header("via").unwrap_or_default();
        assert!(via.starts_with("1.1 douane-"), "{}", r.head);
        assert_ne!(via, "1.1 douane-00000000", "a random token");
        let seen = String::from_utf8(r.body).unwrap().to_ascii_lowercase();
        assert!(seen.starts_with("get /echo?x=1 http/1.1\r\n"), "{seen}");
        assert!(
            seen.contains(&format!("host: fr.test:{port}\r\n")),
            "{seen}"
        );
        assert!(seen.contains("via: 1.1 douane-"), "{seen}");
        assert!(seen.contains("x-custom: kept\r\n"), "{seen}");
        assert!(!seen.contains("proxy-"), "{seen}");
    }
    assert_eq!(up.connections(), 1, "one pooled upstream connection");

    // The next request on the same connection goes under US law: 451, from hyper's path.
    let blocked = format!("GET http://us.test:{port}/echo HTTP/1.1\r\nHost: us.test\r\n\r\n");
    tcp.write_all(blocked.as_bytes()).await.unwrap();
    let r = read_response(&mut tcp, &mut buf, false).await;
    assert_eq!(r.status(), 451, "{}", r.head);

    // A request that already went through this douane is a loop: 508.
    let looped =
        format!("GET http://fr.test:{port}/echo HTTP/1.1\r\nHost: fr.test\r\nVia: {via}\r\n\r\n");
    let mut tcp = TcpStream::connect(douane.forward).await.unwrap();
    let mut buf = Vec::new();
    tcp.write_all(looped.as_bytes()).await.unwrap();
    let r = read_response(&mut tcp, &mut buf, false).await;
    assert_eq!(r.status(), 508, "{}", r.head);
}

/// A small deterministic generator (xorshift): the same "random" inputs on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_malformed_requests_never_panic_and_never_reach_the_upstream_unchecked() {
    let (fx, douane, up) = start("[limits]\nheader_read_timeout_ms = 500\n").await;
    let mut inputs: Vec<Vec<u8>> = [
        "GET /echo HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "GET /echo HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: -1\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: app.localhost\r\nHost: other.localhost\r\n\r\n",
        "GET /echo HTTP/1.1\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: \u{ff}\u{fe}\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost app.localhost\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: app.localhost\r\n folded: value\r\n\r\n",
        "GET /echo HTTP/9.9\r\nHost: app.localhost\r\n\r\n",
        "GET\r\n\r\n",
        "\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GET http://evil.example/ HTTP/1.1\r\nHost: app.localhost\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: app.localhost\r\nConnection: a, b, c, d, e, f, g, h, i, j\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: app.localhost\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    inputs.push(
        format!(
            "GET /echo HTTP/1.1\r\nHost: app.localhost\r\n{}\r\n",
            "x-many: 1\r\n".repeat(300)
        )
        .into_bytes(),
    );
    inputs.push(
        format!(
            "GET /{} HTTP/1.1\r\nHost: app.localhost\r\n\r\n",
            "a".repeat(70_000)
        )
        .into_bytes(),
    );
    // Heads put together from plausible and implausible pieces.
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for _ in 0..150 {
        let mut head = String::new();
        head.push_str(noise.pick(&["GET", "POST", "HEAD", "G\0T", "", "DELETE", "CONNECT"]));
        head.push(' ');
        head.push_str(noise.pick(&[
            "/echo",
            "*",
            "http://fr.test/",
            "/echo?x=\u{7f}",
            "",
            "/%00",
        ]));
        head.push_str(noise.pick(&[" HTTP/1.1", " HTTP/1.0", "", " HTTP/1.1 x"]));
        head.push_str(noise.pick(&["\r\n", "\n", "\r"]));
        for _ in 0..(noise.next() % 6) {
            head.push_str(noise.pick(&[
                "Host: app.localhost",
                "host: APP.LOCALHOST.:443",
                "Content-Length: 3",
                "Content-Length: 0",
                "Transfer-Encoding: chunked",
                "Transfer-Encoding: gzip, chunked",
                "Connection: close",
                "Connection: x-a",
                "x-a: 1",
                "Upgrade: websocket",
                ": empty",
                "Via: 1.1 someone",
                "X-Forwarded-For: 1.2.3.4, garbage",
            ]));
            head.push_str(noise.pick(&["\r\n", "\n"]));
        }
        head.push_str(noise.pick(&["\r\n", "\n", "", "abc"]));
        inputs.push(head.into_bytes());
    }
    // All at once: some are answered, some closed, some wait out a timeout.
    let mut sends = tokio::task::JoinSet::new();
    for input in inputs {
        let mut c = Client::connect(&fx, &douane, "app.localhost").await;
        sends.spawn(async move {
            let _ = c.stream.write_all(&input).await;
            let _ = c.stream.flush().await;
            let mut sink = Vec::new();
            let read = c.stream.read_to_end(&mut sink);
            let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
        });
    }
    while sends.join_next().await.is_some() {}
    // Still serving, and nothing panicked.
    let mut c = Client::connect(&fx, &douane, "app.localhost").await;
    assert_eq!(c.get("app.localhost", "/hop").await.body, b"ok");
    assert_eq!(douane.log_count("panicked"), 0, "{:?}", douane.logs());
    // Whatever reached the upstream went through a decision: nothing for the US name, no
    // request without a Host the upstream knows.
    for seen in up.requests.lock().unwrap().iter() {
        let lower = seen.to_ascii_lowercase();
        assert!(
            lower.contains(&format!("host: fr.test:{}\r\n", up.port)),
            "{seen}"
        );
    }
}
