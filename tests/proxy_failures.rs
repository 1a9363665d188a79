//! Upstream and client failures become statuses, never hangs: nothing listening (502), a
//! name that does not exist (502, from a real DNS server on loopback), a too-slow upstream
//! (504), a header too large (431).

mod common;

use std::time::{Duration, Instant};

use common::client;
use common::dns::{DnsServer, Reply};
use common::proxy::{policy, standard_overrides, ConfigSpec, Fixture};
use common::upstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_give_502_504_and_431() {
    let fx = Fixture::new();
    let port = upstream::start(&["127.0.0.2"], None).await;
    let dns = DnsServer::start([("dns.test", Reply::addresses(["127.0.0.2"]))]).await;
    fx.write_policy(&policy("all", "enforce", &[port], ""));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        nameserver: Some(dns.addr),
        extra: "[limits]\nupstream_response_timeout_ms = 500\nconnect_timeout_ms = 1000\n".into(),
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;

    // Through the real DNS server.
    let ok = client::forward(
        douane.forward,
        "GET",
        &format!("http://dns.test:{port}/"),
        &[],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(dns.queries("dns.test") > 0);

    // NXDOMAIN.
    let nx = client::forward(
        douane.forward,
        "GET",
        &format!("http://nx.test:{port}/"),
        &[],
    )
    .await;
    assert_eq!(nx.status, 502, "{}", nx.text());
    assert!(nx.text().contains("dns_nxdomain"), "{}", nx.text());
    assert!(nx.header("douane-request-id").is_some());
    let nx = client::connect(douane.forward, &format!("nx.test:{port}"), &[])
        .await
        .refused();
    assert_eq!(nx.status, 502);

    // Nothing listening on the only (checked) address.
    let down = client::forward(
        douane.forward,
        "GET",
        &format!("http://down.test:{port}/"),
        &[],
    )
    .await;
    assert_eq!(down.status, 502, "{}", down.text());
    let down = client::connect(douane.forward, &format!("down.test:{port}"), &[])
        .await
        .refused();
    assert_eq!(down.status, 502);

    // A slow upstream: 504 once upstream_response_timeout_ms has passed.
    let started = Instant::now();
    let slow = client::forward(
        douane.forward,
        "GET",
        &format!("http://fr.test:{port}/sleep"),
        &[],
    )
    .await;
    assert_eq!(slow.status, 504, "{}", slow.text());
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );

    // A 100 kB header: 431, and douane still serves.
    let mut stream = tokio::net::TcpStream::connect(douane.forward)
        .await
        .unwrap();
    let big = "a".repeat(100 * 1024);
    let head = format!(
        "GET http://fr.test:{port}/ HTTP/1.1\r\nHost: fr.test:{port}\r\nX-Big: {big}\r\n\r\n"
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let ok = client::forward(
        douane.forward,
        "GET",
        &format!("http://fr.test:{port}/"),
        &[],
    )
    .await;
    assert_eq!(ok.status, 200);
}
