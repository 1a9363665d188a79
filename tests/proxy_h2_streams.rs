//! Many HTTP/2 streams on one TLS connection of a reverse listener, to a plain HTTP/1.1
//! upstream: every stream answered with its own response, and the upstream connections the
//! streams opened kept for the next burst (each stream takes an HTTP/1.1 connection of its
//! own; a pool that kept fewer than a burst reopened the rest every time).

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::client;
use common::proxy::{Engine, Fixture, RouteSpec};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Streams in one burst: more than douane kept idle per upstream before (64).
const STREAMS: usize = 128;

/// How long the upstream holds each request: long enough for a whole burst to be in flight
/// at once, so it needs as many upstream connections as it has streams.
const HOLD: Duration = Duration::from_millis(300);

/// A plain HTTP/1.1 upstream on 127.0.0.2 (`fr.test`) that counts the connections it
/// accepts and answers every request, after [`HOLD`], with its path.
async fn counting_upstream() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.2:0")
        .await
        .expect("bind upstream");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    tokio::time::sleep(HOLD).await;
                    let path = Bytes::from(req.uri().path().to_owned());
                    Ok::<_, Infallible>(Response::new(Full::new(path)))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (port, accepted)
}

/// One burst: `STREAMS` concurrent GETs on the connection, each checked against its path.
async fn burst(
    sender: &hyper::client::conn::http2::SendRequest<http_body_util::Empty<Bytes>>,
    n: usize,
) {
    let mut streams = tokio::task::JoinSet::new();
    for i in 0..STREAMS {
        let mut sender = sender.clone();
        streams.spawn(async move {
            let path = format!("/burst-{n}/stream-{i}");
            let req = client::request("GET", &format!("https://app.localhost{path}"), &[]);
            let reply = client::collect(sender.send_request(req).await.expect("h2 request")).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.text());
            assert_eq!(reply.text(), path, "each stream gets its own response");
        });
    }
    let answered = tokio::time::timeout(Duration::from_secs(30), async {
        let mut answered = 0;
        while let Some(done) = streams.join_next().await {
            done.expect("stream task");
            answered += 1;
        }
        answered
    })
    .await
    .expect("the burst is answered in time");
    assert_eq!(answered, STREAMS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_of_one_connection_answered_and_their_upstream_connections_kept() {
    let fx = Fixture::new();
    let (port, accepted) = counting_upstream().await;
    let route = RouteSpec::app(format!("http://fr.test:{port}"));
    fx.write_enforcing(Engine::Direct, port, vec![route]);
    let douane = fx.start().await;

    let stream = TcpStream::connect(douane.reverse).await.expect("connect");
    let tls = client::tls(stream, fx.ca.client_config(&[b"h2"]), "app.localhost")
        .await
        .expect("tls to douane");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let sender = client::h2(tls).await;

    burst(&sender, 1).await;
    let first = accepted.load(Ordering::SeqCst);
    // The burst was in flight at once: it needed more upstream connections than the 64
    // douane used to keep.
    assert!(
        first > 64,
        "the first burst opened {first} upstream connections"
    );
    assert!(
        first <= STREAMS,
        "{first} upstream connections for {STREAMS} streams"
    );

    burst(&sender, 2).await;
    let both = accepted.load(Ordering::SeqCst);
    // Kept, they serve the second burst: at most the streams the first burst did not
    // overlap open a connection (none when it needed one per stream).
    assert!(
        both <= STREAMS,
        "{} upstream connections opened again for the second burst ({first} after the first)",
        both - first
    );
}
