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

on_both_engines! {
    async fn failures_give_502_504_and_431(engine: Engine) {
        let fx = Fixture::new();
        let port = upstream::start(&["127.0.0.2"], None).await;
        let dns = DnsServer::start([("dns.test", Reply::addresses(["127.0.0.2"]))]).await;
        fx.write_policy(&policy("all", "enforce", &[port], ""));
        fx.write_config(&ConfigSpec {
            engine,
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
}

on_both_engines! {
    async fn slow_clients_silent_dns_and_the_connection_limit(engine: Engine) {
        let fx = Fixture::new();
        let port = upstream::start(&["127.0.0.2"], None).await;
        let silent = common::dns::start_silent_server().await;
        fx.write_policy(&policy("all", "enforce", &[port], ""));
        fx.write_config(&ConfigSpec {
            engine,
            overrides: standard_overrides(),
            nameserver: Some(silent),
            extra: "[limits]\nupstream_response_timeout_ms = 500\nheader_read_timeout_ms = 500\nmax_connections = 3\n".into(),
            ..ConfigSpec::default()
        });
        let douane = fx.start().await;

        // A streaming body is not cut by the response timeout (it bounds the wait for the head).
        let slow = client::forward(
            douane.forward,
            "GET",
            &format!("http://fr.test:{port}/slow"),
            &[],
        )
        .await;
        assert_eq!(slow.status, 200);
        assert_eq!(slow.text().lines().count(), upstream::SLOW_CHUNKS);

        // DNS that never answers: 504, not a hang.
        let started = Instant::now();
        let timeout = client::forward(
            douane.forward,
            "GET",
            &format!("http://silent.test:{port}/"),
            &[],
        )
        .await;
        assert_eq!(timeout.status, 504, "{}", timeout.text());
        assert!(timeout.text().contains("dns_timeout"), "{}", timeout.text());
        assert!(started.elapsed() < Duration::from_secs(4));

        // A client that never finishes its head is let go.
        let mut stream = tokio::net::TcpStream::connect(douane.forward)
            .await
            .unwrap();
        stream
            .write_all(b"GET http://fr.test/ HTTP/1.1\r\nHost: fr")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a slow client holds its connection open");
        drop(stream);
        tokio::time::sleep(Duration::from_millis(200)).await;

        // Three connections held open: a fourth is closed at once.
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut s = tokio::net::TcpStream::connect(douane.forward)
                .await
                .unwrap();
            s.write_all(b"GET http://fr.test").await.unwrap();
            held.push(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut extra = tokio::net::TcpStream::connect(douane.forward)
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_millis(300), extra.read(&mut buf)).await;
        assert!(
            matches!(n, Ok(Ok(0)) | Ok(Err(_))),
            "over the limit yet served: {n:?}"
        );
        drop(held);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ok = client::forward(
            douane.forward,
            "GET",
            &format!("http://fr.test:{port}/"),
            &[],
        )
        .await;
        assert_eq!(ok.status, 200);
    }
}
