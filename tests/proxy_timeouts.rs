//! Timeouts both ways, on both engines: a client that stops reading a large response, and a
//! request body that stops coming. Each has its deadline (`[limits] client_send_timeout_ms`,
//! `request_body_timeout_ms`); when it passes, the client connection and the upstream
//! socket behind it are released.

mod common;

use std::time::{Duration, Instant};

use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Engine, Fixture, RouteSpec};
use common::raw::RawUpstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(engine: Engine) -> (Fixture, Douane, RawUpstream) {
    start_with(engine, "").await
}

async fn start_with(engine: Engine, limits: &str) -> (Fixture, Douane, RawUpstream) {
    let up = RawUpstream::start().await;
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[up.port], ""));
    fx.write_config(&ConfigSpec {
        engine,
        overrides: standard_overrides(),
        routes: vec![RouteSpec::app(format!("http://fr.test:{}", up.port))],
        extra: format!(
            "[limits]\nclient_send_timeout_ms = 500\nrequest_body_timeout_ms = 500\n{limits}"
        ),
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;
    (fx, douane, up)
}

fn active(douane: &Douane, listener: &str) -> f64 {
    let (_, text) = douane.admin_get("/metrics");
    text.lines()
        .filter(|l| {
            l.starts_with("douane_connections_active{")
                && l.contains(&format!("listener=\"{listener}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs the futures at once, their outputs in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// An absolute-form `GET` of `http://fr.test:PORT{path}` through the forward listener on
/// a connection of its own; the whole answer, as text (what came within 10 s).
async fn forward_get(proxy: std::net::SocketAddr, port: u16, path: String) -> String {
    let mut client = TcpStream::connect(proxy).await.unwrap();
    let request = format!(
        "GET http://fr.test:{port}{path} HTTP/1.1\r\nHost: fr.test:{port}\r\nConnection: close\r\n\r\n"
    );
    client.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

async fn until(what: impl Fn() -> bool, within: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if what() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

on_both_engines! {
    async fn the_per_address_cap_answers_503(engine: Engine) {
        let (_fx, douane, up) =
            start_with(engine, "max_upstream_connections_per_address = 2\n").await;
        let port = up.port;
        let requests = (0..6).map(|i| forward_get(douane.forward, port, format!("/slow{i}")));
        let answers = futures_join_all(requests).await;
        let ok = answers.iter().filter(|a| a.starts_with("HTTP/1.1 200")).count();
        let capped = answers.iter().filter(|a| a.starts_with("HTTP/1.1 503")).count();
        assert_eq!(ok + capped, 6, "{engine:?}: {answers:?}");
        assert!(ok >= 2 && capped >= 1, "{engine:?}: {ok} ok, {capped} capped");
        assert!(up.connections.load(std::sync::atomic::Ordering::SeqCst) <= 2 + ok);
        let (_, metrics) = douane.admin_get("/metrics");
        let line = format!("douane_upstream_errors_total{{kind=\"per_address_cap\"}} {capped}");
        assert!(metrics.contains(&line), "{engine:?}: {line}");
    }

    async fn idle_pooled_connections_make_room_under_the_per_address_cap(engine: Engine) {
        let (_fx, douane, up) =
            start_with(engine, "max_upstream_connections_per_address = 2\n").await;
        let port = up.port;
        let forward = douane.forward;
        let get = move |path: &str| forward_get(forward, port, path.to_owned());
        // Two at once: two upstream connections, both pooled once answered, at the cap.
        let answers = futures_join_all(["/slow-a", "/slow-b"].into_iter().map(get)).await;
        assert!(answers.iter().all(|a| a.starts_with("HTTP/1.1 200")), "{engine:?}: {answers:?}");
        assert_eq!(up.connections.load(std::sync::atomic::Ordering::SeqCst), 2);
        // A tunnel to the same address takes the place of an idle one, not a 503.
        let mut tunnel = TcpStream::connect(douane.forward).await.unwrap();
        let connect = format!("CONNECT fr.test:{port} HTTP/1.1\r\nHost: fr.test:{port}\r\n\r\n");
        tunnel.write_all(connect.as_bytes()).await.unwrap();
        let mut head = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), tunnel.read(&mut head))
            .await
            .expect("an answer to the CONNECT")
            .unwrap();
        let head = String::from_utf8_lossy(&head[..n]);
        assert!(head.starts_with("HTTP/1.1 200"), "{engine:?}: {head}");
        // And a request beside it still has the other pooled connection.
        let answer = get("/after").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{engine:?}: {answer}");
        let (_, metrics) = douane.admin_get("/metrics");
        let capped = metrics
            .lines()
            .find(|l| l.starts_with("douane_upstream_errors_total{kind=\"per_address_cap\"}"));
        assert!(
            capped.is_none_or(|l| l.ends_with(" 0")),
            "{engine:?}: nothing was refused at the cap: {capped:?}"
        );
    }

    async fn a_client_that_stops_reading_is_let_go(engine: Engine) {
        let (_fx, douane, up) = start(engine).await;
        let mut client = TcpStream::connect(douane.forward).await.unwrap();
        let request = format!(
            "GET http://fr.test:{}/big HTTP/1.1\r\nHost: fr.test:{}\r\n\r\n",
            up.port, up.port
        );
        client.write_all(request.as_bytes()).await.unwrap();
        // Never read: the response fills every buffer on the way.
        assert!(until(|| up.open_now() == 1, Duration::from_secs(5)).await);
        assert!(
            until(|| active(&douane, "forward") == 0.0, Duration::from_secs(10)).await,
            "{engine:?}: the client connection is still held"
        );
        assert!(
            until(|| up.open_now() == 0, Duration::from_secs(5)).await,
            "{engine:?}: the upstream socket is still held"
        );
        // What was read is cut short, then the connection ends.
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut sink)).await;
        assert!(sink.len() < common::raw::BIG, "{engine:?}: {} bytes", sink.len());
    }

    async fn a_request_body_that_stops_coming_gets_408(engine: Engine) {
        let (_fx, douane, up) = start(engine).await;
        let mut client = TcpStream::connect(douane.forward).await.unwrap();
        let request = format!(
            "POST http://fr.test:{}/upload HTTP/1.1\r\nHost: fr.test:{}\r\nContent-Length: 100\r\n\r\nonly ten..",
            up.port, up.port
        );
        client.write_all(request.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut answer))
            .await
            .expect("an answer in time")
            .unwrap();
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 408"), "{engine:?}: {text}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            until(|| up.open_now() == 0, Duration::from_secs(5)).await,
            "{engine:?}: the upstream socket is still held"
        );
        let (_, metrics) = douane.admin_get("/metrics");
        assert!(
            metrics.contains("douane_refusals_total{kind=\"request_body_timeout\"} 1"),
            "{engine:?}"
        );
    }
}
