//! The direct HTTP/1.1 path to an `https` upstream: one that chooses HTTP/1.1 by ALPN is
//! served over pooled TLS connections (sessions resumed, the certificate verified against
//! the upstream's name on every new one); one that chooses h2 is learnt on the first
//! request and served by hyper's path (HTTP/2) from then on. A raw TLS upstream on
//! 127.0.0.2 answers with a header in mixed case: hyper's path writes header names in
//! lowercase, the direct path passes them as they came, so the case tells which path
//! answered.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Fixture, RouteSpec};
use rustls::{HandshakeKind, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A raw HTTP/1.1 upstream over TLS: counts its handshakes (and the resumed ones), answers
/// `/bye` with `connection: close`, anything else with a mixed-case header.
struct TlsUpstream {
    port: u16,
    handshakes: Arc<AtomicUsize>,
    resumed: Arc<AtomicUsize>,
    /// The config the next handshake uses (swapped to a wrong certificate by a test).
    config: Arc<Mutex<Arc<ServerConfig>>>,
}

impl TlsUpstream {
    async fn start(config: Arc<ServerConfig>) -> TlsUpstream {
        let listener = TcpListener::bind("127.0.0.2:0").await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let resumed = Arc::new(AtomicUsize::new(0));
        let config = Arc::new(Mutex::new(config));
        let (h, r, c) = (handshakes.clone(), resumed.clone(), config.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = TlsAcceptor::from(c.lock().unwrap().clone());
                let (h, r) = (h.clone(), r.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    h.fetch_add(1, Ordering::SeqCst);
                    if tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed) {
                        r.fetch_add(1, Ordering::SeqCst);
                    }
                    serve(tls).await;
                });
            }
        });
        TlsUpstream {
            port,
            handshakes,
            resumed,
            config,
        }
    }
}

async fn serve(mut tls: tokio_rustls::server::TlsStream<TcpStream>) {
    let mut buf = Vec::new();
    while let Some(head) = common::raw::next_head(&mut tls, &mut buf).await {
        let bye = head.starts_with("GET /bye ");
        let reply: &[u8] = if bye {
            b"HTTP/1.1 200 OK\r\nX-Odd-Case: Kept\r\nconnection: close\r\ncontent-length: 3\r\n\r\nbye"
        } else {
            b"HTTP/1.1 200 OK\r\nX-Odd-Case: Kept\r\ncontent-length: 2\r\n\r\nok"
        };
        if tls.write_all(reply).await.is_err() || bye {
            let _ = tls.shutdown().await;
            return;
        }
    }
}

/// An upstream config offering only `http/1.1`, for a leaf of `names`.
fn http1_only(fx: &Fixture, names: &[&str]) -> Arc<ServerConfig> {
    let mut config = (*fx.ca.server_config(&fx.ca.leaf(names))).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

async fn start(fx: &Fixture) -> (Douane, TlsUpstream) {
    let up = TlsUpstream::start(http1_only(fx, &["fr.test"])).await;
    fx.write_policy(&policy("all", "enforce", &[up.port], ""));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        routes: vec![RouteSpec {
            name: "saas",
            host: "app.localhost",
            path_prefix: "/",
            upstream: format!("https://fr.test:{}", up.port),
        }],
        ..ConfigSpec::default()
    });
    (fx.start().await, up)
}

/// A raw HTTP/1.1 client over TLS (ALPN http/1.1, so the direct path may take it).
struct Client {
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(fx: &Fixture, douane: &Douane) -> Client {
        let tcp = TcpStream::connect(douane.reverse).await.expect("connect");
        let config = fx.ca.client_config(&[b"http/1.1"]);
        let stream = common::client::tls(tcp, config, "app.localhost")
            .await
            .expect("tls");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// One GET; the response head and its `content-length` body.
    async fn get(&mut self, host: &str, path: &str) -> (String, Vec<u8>) {
        let request = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n\r\n");
        self.stream.write_all(request.as_bytes()).await.unwrap();
        self.stream.flush().await.unwrap();
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let mut body = Vec::new();
        if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let line = loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    self.fill().await;
                };
                let size = std::str::from_utf8(&self.buf[..line]).unwrap();
                let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16)
                    .expect("a chunk size");
                while self.buf.len() < line + 2 + size + 2 {
                    self.fill().await;
                }
                body.extend_from_slice(&self.buf[line + 2..line + 2 + size]);
                self.buf.drain(..line + 2 + size + 2);
                if size == 0 {
                    break; // no trailers from these upstreams
                }
            }
        } else {
            let len: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .expect("a content-length");
            while self.buf.len() < len {
                self.fill().await;
            }
            body = self.buf.drain(..len).collect();
        }
        (head, body)
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "closed before a whole response");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

/// `GET path` on a kept-alive client connection; the response head and body.
async fn get(client: &mut Client, path: &str) -> (String, Vec<u8>) {
    tokio::time::timeout(Duration::from_secs(10), client.get("app.localhost", path))
        .await
        .expect("a response in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_that_chooses_http1_takes_the_direct_path_over_pooled_resumed_connections(
) {
    let fx = Fixture::new();
    let (douane, up) = start(&fx).await;
    let mut client = Client::connect(&fx, &douane).await;

    // The direct path (case as sent) from the first request, over one pooled connection.
    for _ in 0..5 {
        let (head, body) = get(&mut client, "/next").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("X-Odd-Case: Kept"), "{head}");
        assert_eq!(body, b"ok");
    }
    assert_eq!(up.handshakes.load(Ordering::SeqCst), 1);

    // The upstream closes that one: the next is a new connection, its session resumed.
    assert_eq!(get(&mut client, "/bye").await.1, b"bye");
    let (head, _) = get(&mut client, "/again").await;
    assert!(head.contains("X-Odd-Case: Kept"), "{head}");
    assert_eq!(up.handshakes.load(Ordering::SeqCst), 2);
    assert_eq!(up.resumed.load(Ordering::SeqCst), 1, "session resumption");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_that_chooses_h2_keeps_hyper_once_learnt() {
    let fx = Fixture::new();
    let leaf = fx.ca.leaf(&["fr.test"]);
    let port = common::upstream::start(&["127.0.0.2"], Some(fx.ca.server_config(&leaf))).await;
    fx.write_policy(&policy("all", "enforce", &[port], ""));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        routes: vec![RouteSpec {
            name: "saas",
            host: "app.localhost",
            path_prefix: "/",
            upstream: format!("https://fr.test:{port}"),
        }],
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;
    // Not known yet: the direct path learns that it chooses h2, and sends this request
    // over a second connection offered only http/1.1.
    let mut first = Client::connect(&fx, &douane).await;
    let (head, body) = get(&mut first, "/one").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["version"], "HTTP/1.1", "{seen}");
    // Known: hyper's path, over HTTP/2, on this connection and on a new one.
    for client in [&mut first, &mut Client::connect(&fx, &douane).await] {
        let (head, body) = get(client, "/two").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(seen["version"], "HTTP/2.0", "{seen}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_path_verifies_the_upstream_certificate_on_every_new_connection() {
    let fx = Fixture::new();
    let (douane, up) = start(&fx).await;
    let mut client = Client::connect(&fx, &douane).await;
    // A connection the upstream closes after this answer.
    let (head, _) = get(&mut client, "/bye").await;
    assert!(head.contains("X-Odd-Case"), "{head}");

    // The upstream now shows a certificate for another name: the next connection fails
    // verification, and the client gets a 502, not the upstream's answer.
    *up.config.lock().unwrap() = http1_only(&fx, &["us.test"]);
    let (head, _) = get(&mut client, "/after").await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    assert!(!head.contains("Kept"), "{head}");
    assert!(
        douane
            .wait_log(
                "tls handshake with `fr.test` failed",
                Duration::from_secs(5)
            )
            .await,
        "{:?}",
        douane.logs()
    );
    assert_eq!(up.handshakes.load(Ordering::SeqCst), 1);
}
