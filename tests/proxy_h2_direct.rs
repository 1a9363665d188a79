//! HTTP/2 streams with no body, sent upstream over the direct path's HTTP/1.1 sockets
//! (`h1::client`): every framing an HTTP/1.1 upstream answers with is decoded into the
//! HTTP/2 response (a length, chunks in pieces with a trailer, the end of the connection,
//! none for HEAD and 204), 1xx heads are dropped, cookie crumbs are joined, a body cut short
//! reaches the client as an error, and a socket goes back to the pool only when its body
//! ended exactly on its boundary — a closed pooled socket is replaced for the next stream.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::client;
use common::proxy::{Douane, Engine, Fixture, RouteSpec};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The body of `/big`: several reads, and more than one HTTP/2 flow-control window.
const BIG: usize = 3 * 1024 * 1024 + 17;

/// A scripted HTTP/1.1 upstream on 127.0.0.2 (`fr.test`): the answer depends on the path;
/// it records every request head and counts the connections it accepts.
struct Scripted {
    port: u16,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    async fn start() -> Scripted {
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        let (port, accepted) =
            common::raw::serve_counted(move |stream| serve(stream, seen.clone())).await;
        Scripted {
            port,
            accepted,
            heads,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn last_head(&self) -> String {
        self.heads
            .lock()
            .expect("heads")
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

/// Serves the requests of one connection until the script closes it.
async fn serve(mut stream: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    while let Some(head) = common::raw::next_head(&mut stream, &mut buf).await {
        heads.lock().expect("heads").push(head.clone());
        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
        let keep = match path.as_str() {
            "/len" => write(&mut stream, b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello").await,
            "/chunked" => {
                // The chunks cross the reads: sizes, data and the trailer in pieces.
                let pieces: [&[u8]; 5] = [
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nab",
                    b"cd\r\n6;ext=1\r\nefghij\r\n",
                    b"1",
                    b"\r\nk\r\n0\r\nx-trailer: t\r\n",
                    b"\r\n",
                ];
                let mut ok = true;
                for piece in pieces {
                    ok &= write(&mut stream, piece).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                ok
            }
            "/close" => {
                let _ = write(&mut stream, b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nto the end").await;
                return;
            }
            "/head" => write(&mut stream, b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n").await,
            "/fields" => {
                // After an informational head, in the same write: repeated names, an empty
                // value, a tab inside a value, a custom name, and the body's first bytes.
                write(
                    &mut stream,
                    b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n\
                      HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nx-empty:\r\nset-cookie: b=2; Path=/\r\n\
                      x-tab: left\tright\r\nX-Mixed-Case: Value As Sent\r\ncontent-length: 4\r\n\r\nbody",
                )
                .await
            }
            "/none" => write(&mut stream, b"HTTP/1.1 204 No Content\r\n\r\n").await,
            "/early" => {
                write(
                    &mut stream,
                    b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                )
                .await
            }
            "/cut" => {
                let _ = write(&mut stream, b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten!!").await;
                return;
            }
            "/drop-after" => {
                // A whole answer that says nothing of closing, then the connection closed: the
                // pooled socket is closed when the next stream takes it.
                let _ = write(&mut stream, b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlast").await;
                return;
            }
            "/big" => {
                let mut reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {BIG}\r\n\r\n").into_bytes();
                reply.extend((0..BIG).map(|i| b'a' + (i % 26) as u8));
                write(&mut stream, &reply).await
            }
            _ => write(&mut stream, b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").await,
        };
        if !keep {
            return;
        }
    }
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    stream.write_all(bytes).await.is_ok()
}

async fn start(fx: &Fixture, upstream: &Scripted) -> Douane {
    let route = RouteSpec::app(format!("http://fr.test:{}", upstream.port));
    fx.write_enforcing(Engine::Direct, upstream.port, vec![route]);
    fx.start().await
}

async fn h2(
    fx: &Fixture,
    douane: &Douane,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Empty<Bytes>> {
    let stream = TcpStream::connect(douane.reverse).await.expect("connect");
    let tls = client::tls(stream, fx.ca.client_config(&[b"h2"]), "app.localhost")
        .await
        .expect("tls to douane");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    client::h2(tls).await
}

type Sender = hyper::client::conn::http2::SendRequest<http_body_util::Empty<Bytes>>;

/// One stream; its status, headers and body (or the body's error).
async fn stream(
    sender: &mut Sender,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, Result<Bytes, String>) {
    let req = client::request(method, &format!("https://app.localhost{path}"), headers);
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .expect("answered in time")
        .expect("h2 response");
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .expect("body in time")
        .map(|b| b.to_bytes())
        .map_err(|e| e.to_string());
    (parts.status.as_u16(), parts.headers, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_framing_is_decoded_and_sockets_go_home_only_after_a_clean_end() {
    let fx = Fixture::new();
    let upstream = Scripted::start().await;
    let douane = start(&fx, &upstream).await;
    let mut sender = h2(&fx, &douane).await;

    let (status, headers, body) = stream(&mut sender, "GET", "/len", &[]).await;
    assert_eq!((status, body.as_deref()), (200, Ok(&b"hello"[..])));
    assert_eq!(
        headers.get("content-length").map(|v| v.as_bytes()),
        Some(&b"5"[..])
    );
    let head = upstream.last_head();
    assert!(head.starts_with("GET /len HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("\r\nhost: fr.test:"),
        "{head}"
    );
    // One socket serves the streams one after the other.
    for _ in 0..3 {
        let (status, _, body) = stream(&mut sender, "GET", "/len", &[]).await;
        assert_eq!((status, body.as_deref()), (200, Ok(&b"hello"[..])));
    }
    assert_eq!(
        upstream.accepted(),
        1,
        "the socket went back to the pool each time"
    );

    let (status, headers, body) = stream(&mut sender, "GET", "/chunked", &[]).await;
    assert_eq!(
        (status, body.as_deref()),
        (200, Ok(&b"abcdefghijk"[..])),
        "chunks decoded"
    );
    assert!(
        headers.get("transfer-encoding").is_none(),
        "no chunked coding in HTTP/2"
    );
    let (status, _, body) = stream(&mut sender, "GET", "/len", &[]).await;
    assert_eq!((status, body.as_deref()), (200, Ok(&b"hello"[..])));
    assert_eq!(
        upstream.accepted(),
        1,
        "a chunked body that ended cleanly keeps its socket"
    );

    let (status, headers, body) = stream(&mut sender, "HEAD", "/head", &[]).await;
    assert_eq!((status, body.as_deref()), (200, Ok(&b""[..])));
    assert_eq!(
        headers.get("content-length").map(|v| v.as_bytes()),
        Some(&b"5"[..])
    );
    let (status, _, body) = stream(&mut sender, "GET", "/none", &[]).await;
    assert_eq!((status, body.as_deref()), (204, Ok(&b""[..])));
    let (status, _, body) = stream(&mut sender, "GET", "/early", &[]).await;
    assert_eq!(
        (status, body.as_deref()),
        (200, Ok(&b"ok"[..])),
        "the 103 is dropped"
    );
    let (status, _, body) = stream(&mut sender, "GET", "/len", &[]).await;
    assert_eq!((status, body.as_deref()), (200, Ok(&b"hello"[..])));
    assert_eq!(upstream.accepted(), 1, "HEAD, 204 and 103 kept the socket");

    let (status, _, body) = stream(&mut sender, "GET", "/close", &[]).await;
    assert_eq!((status, body.as_deref()), (200, Ok(&b"to the end"[..])));
    let (status, _, body) = stream(&mut sender, "GET", "/len", &[]).await;
    assert_eq!((status, body.as_deref()), (200, Ok(&b"hello"[..])));
    assert_eq!(
        upstream.accepted(),
        2,
        "a body the close delimits ends its socket"
    );

    let (status, _, body) = stream(&mut sender, "GET", "/big", &[]).await;
    assert_eq!(status, 200);
    let body = body.expect("the big body");
    assert_eq!(body.len(), BIG);
    assert!(
        body.iter()
            .enumerate()
            .all(|(i, b)| *b == b'a' + (i % 26) as u8),
        "bytes in order"
    );
    assert_eq!(upstream.accepted(), 2);

    // A body cut short is an error for the client: the stream is reset (before or after
    // its head reached the client), never ended as if whole.
    let req = client::request("GET", "https://app.localhost/cut", &[]);
    match sender.send_request(req).await {
        Ok(response) => {
            let body = response.into_body().collect().await;
            assert!(body.is_err(), "the cut body ended as if whole");
        }
        Err(e) => assert!(format!("{e:?}").contains("Reset"), "{e:?}"),
    }
    let (status, _, body) = stream(&mut sender, "GET", "/len", &[]).await;
    assert_eq!((status, body.as_deref()), (200, Ok(&b"hello"[..])));
    assert_eq!(
        upstream.accepted(),
        3,
        "a cut body's socket never serves again"
    );

    let (status, _, body) = stream(&mut sender, "GET", "/drop-after", &[]).await;
    assert_eq!((status, body.as_deref()), (200, Ok(&b"last"[..])));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _, body) = stream(&mut sender, "GET", "/len", &[]).await;
    assert_eq!(
        (status, body.as_deref()),
        (200, Ok(&b"hello"[..])),
        "a pooled socket the upstream closed is replaced"
    );
    assert_eq!(upstream.accepted(), 4);

    // Each stream finished with the bytes its client received: the chunked one, 11.
    let received = |douane: &Douane| -> Vec<u64> {
        douane
            .logs()
            .iter()
            .filter(|l| l.contains("\"request decided\""))
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                v.get("fields").unwrap_or(&v).get("received")?.as_u64()
            })
            .collect()
    };
    let wait = std::time::Instant::now();
    while received(&douane).len() < 17 && wait.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = received(&douane);
    assert_eq!(received.len(), 17, "one end per stream: {received:?}");
    assert_eq!(
        received.iter().filter(|n| **n == 11).count(),
        1,
        "{received:?}"
    );
    assert!(received.contains(&(BIG as u64)), "{received:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_crumbs_reach_an_http1_upstream_as_one_field() {
    let fx = Fixture::new();
    let upstream = Scripted::start().await;
    let douane = start(&fx, &upstream).await;
    let mut sender = h2(&fx, &douane).await;
    let (status, _, _) = stream(
        &mut sender,
        "GET",
        "/len",
        &[("cookie", "a=1"), ("cookie", "b=2")],
    )
    .await;
    assert_eq!(status, 200);
    let head = upstream.last_head().to_ascii_lowercase();
    assert_eq!(head.matches("\r\ncookie:").count(), 1, "{head}");
    assert!(head.contains("\r\ncookie: a=1; b=2\r\n"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_fields_reach_the_client_as_the_upstream_sent_them() {
    let fx = Fixture::new();
    let upstream = Scripted::start().await;
    let douane = start(&fx, &upstream).await;
    let mut sender = h2(&fx, &douane).await;
    // Twice on one socket: the second head is read where the first one's buffer was.
    for round in 0..2 {
        let (status, headers, body) = stream(&mut sender, "GET", "/fields", &[]).await;
        assert_eq!(
            (status, body.as_deref()),
            (200, Ok(&b"body"[..])),
            "round {round}"
        );
        let cookies: Vec<&[u8]> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(cookies, [&b"a=1"[..], &b"b=2; Path=/"[..]], "round {round}");
        assert_eq!(headers.get("x-empty").map(|v| v.as_bytes()), Some(&b""[..]));
        assert_eq!(
            headers.get("x-tab").map(|v| v.as_bytes()),
            Some(&b"left\tright"[..])
        );
        assert_eq!(
            headers.get("x-mixed-case").map(|v| v.as_bytes()),
            Some(&b"Value As Sent"[..])
        );
        assert!(
            headers.get("link").is_none(),
            "the 103's field stays behind"
        );
    }
    assert_eq!(upstream.accepted(), 1, "the socket went home each time");
}
