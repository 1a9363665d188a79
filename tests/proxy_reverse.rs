//! Reverse routes over TLS: SNI, HTTP/1.1 and HTTP/2 on both sides, path rules, 421 and
//! 404, the forwarding headers the upstream sees, and a WebSocket-style upgrade.

mod common;

use std::time::Duration;

use common::client;
use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Engine, Fixture, RouteSpec};
use common::upstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const RULES: &str = r#"
[[rule]]
id = "no-admin"
hosts = ["fr.test"]
paths = ["/admin"]
action = "block"
"#;

/// TLS upstreams (h2 and http/1.1) on .2 and .3, plain ones on .2; routes:
/// app.localhost → https://fr.test, other.localhost → https://us.test,
/// ws.localhost → https://fr.test and ws.localhost/plain → http://fr.test.
async fn start(engine: Engine) -> (Fixture, Douane, u16) {
    start_with(engine, RULES, "").await
}

async fn start_with(engine: Engine, rules: &str, extra: &str) -> (Fixture, Douane, u16) {
    let fx = Fixture::new();
    let leaf = fx.ca.leaf(common::proxy::UPSTREAM_NAMES);
    let tls_port = upstream::start(
        &["127.0.0.2", "127.0.0.3"],
        Some(fx.ca.server_config(&leaf)),
    )
    .await;
    let plain_port = upstream::start(&["127.0.0.2"], None).await;
    fx.write_policy(&policy("all", "enforce", &[tls_port, plain_port], rules));
    let route = |name, host, path_prefix, upstream: String| RouteSpec {
        name,
        host,
        path_prefix,
        upstream,
    };
    fx.write_config(&ConfigSpec {
        engine,
        overrides: standard_overrides(),
        routes: vec![
            route(
                "app",
                "app.localhost",
                "/",
                format!("https://fr.test:{tls_port}"),
            ),
            route(
                "other",
                "other.localhost",
                "/",
                format!("https://us.test:{tls_port}"),
            ),
            route(
                "ws",
                "ws.localhost",
                "/",
                format!("https://fr.test:{tls_port}"),
            ),
            route(
                "ws-plain",
                "ws.localhost",
                "/plain",
                format!("http://fr.test:{plain_port}"),
            ),
        ],
        extra: extra.into(),
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;
    (fx, douane, tls_port)
}

on_both_engines! {
    async fn routes_over_tls_in_http1_and_http2_allowed_and_blocked(engine: Engine) {
        let (fx, douane, tls_port) = start(engine).await;
        let cfg = |alpn: &[&[u8]]| fx.ca.client_config(alpn);
        // The direct path sends the first request to an https upstream whose ALPN choice
        // is not known yet over HTTP/1.1, and learns that it chooses h2: the next ones go
        // to hyper's path, over HTTP/2. hyper's engine offers h2 from the first.
        let first = client::reverse(
            douane.reverse,
            cfg,
            "app.localhost",
            "app.localhost",
            false,
            "/ok",
        )
        .await;
        assert_eq!(first.status, 200, "{}", first.text());
        let first_version = match engine {
            Engine::Direct => "HTTP/1.1",
            Engine::Hyper => "HTTP/2.0",
        };
        assert_eq!(first.json()["version"], first_version, "{}", first.text());
        for http2 in [false, true] {
            let ok = client::reverse(
                douane.reverse,
                cfg,
                "app.localhost",
                "app.localhost",
                http2,
                "/ok?x=1",
            )
            .await;
            assert_eq!(ok.status, 200, "h2={http2}: {}", ok.text());
            let seen = ok.json();
            assert_eq!(seen["server"], "127.0.0.2");
            assert_eq!(
                seen["version"], "HTTP/2.0",
                "the upstream offers h2: {seen}"
            );
            assert!(seen["uri"].as_str().unwrap().ends_with("/ok?x=1"), "{seen}");
            let headers = &seen["headers"];
            // h2 upstream: the Host is the :authority.
            assert!(
                seen["uri"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("fr.test:{tls_port}")),
                "{seen}"
            );
            assert_eq!(headers["x-forwarded-for"][0], "127.0.0.1");
            assert_eq!(headers["x-forwarded-proto"][0], "https");
            assert_eq!(
                headers["forwarded"][0],
                "for=127.0.0.1;proto=https;host=\"app.localhost\""
            );

            // The path rule blocks /admin on that route only.
            let admin = client::reverse(
                douane.reverse,
                cfg,
                "app.localhost",
                "app.localhost",
                http2,
                "/admin/users",
            )
            .await;
            assert_eq!(admin.status, 451, "h2={http2}: {}", admin.text());
            assert!(admin.text().contains("no-admin"));
            assert!(admin.header("douane-request-id").is_some());

            // A route whose upstream is under US law.
            let other = client::reverse(
                douane.reverse,
                cfg,
                "other.localhost",
                "other.localhost",
                http2,
                "/",
            )
            .await;
            assert_eq!(other.status, 451, "h2={http2}: {}", other.text());
            assert!(other.text().contains("Yankee Cloud"), "{}", other.text());

            // SNI and Host disagree: the route of neither.
            let misdirected = client::reverse(
                douane.reverse,
                cfg,
                "app.localhost",
                "other.localhost",
                http2,
                "/",
            )
            .await;
            assert_eq!(
                misdirected.status,
                421,
                "h2={http2}: {}",
                misdirected.text()
            );

            // No route for that host.
            let unknown = client::reverse(
                douane.reverse,
                cfg,
                "unrouted.localhost",
                "unrouted.localhost",
                http2,
                "/",
            )
            .await;
            assert_eq!(unknown.status, 404, "h2={http2}");
        }
    }
}

on_both_engines! {
    async fn an_untrusted_client_cannot_choose_its_forwarded_for(engine: Engine) {
        let (fx, douane, _) = start(engine).await;
        let stream = TcpStream::connect(douane.reverse).await.unwrap();
        let tls = client::tls(stream, fx.ca.client_config(&[b"http/1.1"]), "app.localhost")
            .await
            .unwrap();
        let mut sender = client::h1(tls).await;
        let req = client::request(
            "GET",
            "/",
            &[
                ("host", "app.localhost"),
                ("x-forwarded-for", "6.6.6.6"),
                ("forwarded", "for=6.6.6.6"),
            ],
        );
        let reply = client::collect(sender.send_request(req).await.unwrap()).await;
        assert_eq!(reply.status, 200);
        let headers = &reply.json()["headers"];
        assert_eq!(headers["x-forwarded-for"], serde_json::json!(["127.0.0.1"]));
        assert_eq!(
            headers["forwarded"].as_array().unwrap().len(),
            1,
            "{headers}"
        );
        assert!(!headers.to_string().contains("6.6.6.6"), "{headers}");
    }
}

/// A WebSocket-style upgrade: 101, then bytes both ways through douane.
async fn upgrade_echo(fx: &Fixture, douane: &Douane, path: &str) {
    let stream = TcpStream::connect(douane.reverse).await.unwrap();
    let tls = client::tls(stream, fx.ca.client_config(&[b"http/1.1"]), "ws.localhost")
        .await
        .unwrap();
    let mut sender = client::h1(tls).await;
    let req = client::request(
        "GET",
        path,
        &[
            ("host", "ws.localhost"),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    );
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.status(), 101, "{path}: {response:?}");
    assert_eq!(response.headers()["upgrade"], "websocket");
    let upgraded = hyper::upgrade::on(response).await.expect("upgraded");
    let mut io = hyper_util::rt::TokioIo::new(upgraded);
    for message in [&b"hello"[..], b"douane", &[0u8, 1, 2, 255]] {
        io.write_all(message).await.unwrap();
        let mut back = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(5), io.read_exact(&mut back))
            .await
            .expect("echo in time")
            .unwrap();
        assert_eq!(back, message);
    }
}

on_both_engines! {
    async fn websocket_upgrade_through_a_reverse_route(engine: Engine) {
        let (fx, douane, _) = start(engine).await;
        upgrade_echo(&fx, &douane, "/plain/socket").await;
        // The TLS upstream offers h2, where an HTTP/1.1 upgrade cannot go: douane must speak
        // HTTP/1.1 to it for this request.
        upgrade_echo(&fx, &douane, "/socket").await;
    }
}

on_both_engines! {
    async fn a_trusted_proxy_names_the_client_that_rules_match(engine: Engine) {
        let rules = r#"
    [[rule]]
    id = "sante-us-blocked"
    clients = ["10.20.0.0/16"]
    hosts = ["fr.test"]
    action = "block"
    "#;
        let (fx, douane, _) = start_with(engine, rules, "[trust]\nforwarded_from = [\"127.0.0.1\"]\n").await;
        let send = |xff: &'static str| {
            let config = fx.ca.client_config(&[b"http/1.1"]);
            let addr = douane.reverse;
            async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                let tls = client::tls(stream, config, "app.localhost").await.unwrap();
                let mut sender = client::h1(tls).await;
                let req = client::request(
                    "GET",
                    "/",
                    &[("host", "app.localhost"), ("x-forwarded-for", xff)],
                );
                client::collect(sender.send_request(req).await.unwrap()).await
            }
        };
        let blocked = send("10.20.3.4").await;
        assert_eq!(blocked.status, 451, "{}", blocked.text());
        assert!(blocked.text().contains("sante-us-blocked"));
        let ok = send("192.0.2.7").await;
        assert_eq!(ok.status, 200, "{}", ok.text());
        // The trusted hop's list is extended, not replaced.
        assert_eq!(
            ok.json()["headers"]["x-forwarded-for"][0],
            "192.0.2.7, 127.0.0.1"
        );
    }
}
