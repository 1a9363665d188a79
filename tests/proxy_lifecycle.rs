//! douane's life while it serves: reloads that change the decision under a streaming
//! response, invalid policies and broken databases kept out, SIGTERM draining.

mod common;

use std::time::{Duration, Instant};

use common::client;
use common::proxy::{policy, Douane, Engine, Fixture};
use common::upstream::{self, SLOW_CHUNKS};
use http_body_util::BodyExt;
use hyper::body::Incoming;

async fn start(engine: Engine) -> (Fixture, Douane, u16) {
    let fx = Fixture::new();
    let port = upstream::start(&["127.0.0.2", "127.0.0.3"], None).await;
    fx.write_enforcing(engine, port, Vec::new());
    let douane = fx.start().await;
    (fx, douane, port)
}

/// Starts `/slow` through the forward proxy and reads its first chunk.
async fn start_slow(douane: &Douane, port: u16) -> (Incoming, String) {
    let response = client::forward_response(
        douane.forward,
        "GET",
        &format!("http://fr.test:{port}/slow"),
        &[],
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = next_chunk(&mut body).await.expect("first chunk");
    (body, first)
}

async fn next_chunk(body: &mut Incoming) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("a chunk in time")?
            .expect("body frame");
        if let Ok(data) = frame.into_data() {
            return Some(String::from_utf8_lossy(&data).into_owned());
        }
    }
}

async fn rest(mut body: Incoming, mut text: String) -> String {
    while let Some(chunk) = next_chunk(&mut body).await {
        text.push_str(&chunk);
    }
    text
}

fn all_chunks() -> String {
    (0..SLOW_CHUNKS).map(|i| format!("chunk-{i}\n")).collect()
}

on_both_engines! {
    async fn a_reload_changes_the_decision_while_a_streaming_response_completes(engine: Engine) {
        let (fx, douane, port) = start(engine).await;
        let url = format!("http://fr.test:{port}/");
        let (body, first) = start_slow(&douane, port).await;

        // The policy now blocks fr.test; the file watch picks it up.
        let rule = "[[rule]]\nid = \"fr-now-blocked\"\nhosts = [\"fr.test\"]\naction = \"block\"\n";
        fx.write_policy(&policy("all", "enforce", &[port], rule));
        assert!(
            douane
                .wait_log("reloaded: new policy", Duration::from_secs(5))
                .await,
            "no reload: {:#?}",
            douane.logs()
        );
        let blocked = client::forward(douane.forward, "GET", &url, &[]).await;
        assert_eq!(blocked.status, 451, "{}", blocked.text());
        assert!(blocked.text().contains("fr-now-blocked"));
        // The response that started before the reload is intact.
        assert_eq!(rest(body, first).await, all_chunks());

        // An invalid policy is refused; the previous one keeps deciding.
        std::fs::write(fx.path("policies/00-test.toml"), "[policy\nname = ").unwrap();
        assert!(
            douane
                .wait_log("reload refused", Duration::from_secs(5))
                .await,
            "{:#?}",
            douane.logs()
        );
        let still = client::forward(douane.forward, "GET", &url, &[]).await;
        assert_eq!(still.status, 451);
        assert!(still.text().contains("fr-now-blocked"));
        assert_eq!(douane.admin_get("/readyz").0, 200);

        // SIGHUP with the fixed policy: back to allowed.
        fx.write_policy(&policy("all", "enforce", &[port], ""));
        douane.signal("HUP");
        assert!(
            douane
                .wait_log_count("reloaded: new policy", 2, Duration::from_secs(5))
                .await
        );
        let ok = client::forward(douane.forward, "GET", &url, &[]).await;
        assert_eq!(ok.status, 200, "{}", ok.text());
    }
}

on_both_engines! {
    async fn a_database_broken_in_place_is_refused_and_serving_goes_on(engine: Engine) {
        let (fx, mut douane, port) = start(engine).await;
        let url = format!("http://fr.test:{port}/");
        let country = fx.path("country.mmdb");

        // Truncated in place (same inode), then garbage: each reload is refused.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&country)
            .unwrap();
        file.set_len(0).unwrap();
        drop(file);
        assert!(
            douane
                .wait_log("reload refused", Duration::from_secs(5))
                .await
        );
        assert_eq!(
            client::forward(douane.forward, "GET", &url, &[])
                .await
                .status,
            200
        );
        std::fs::write(&country, b"\xab\xcd\xefMaxMind.com garbage").unwrap();
        assert!(
            douane
                .wait_log_count("reload refused", 2, Duration::from_secs(5))
                .await
        );
        assert_eq!(
            client::forward(douane.forward, "GET", &url, &[])
                .await
                .status,
            200
        );
        assert!(douane.running());
        assert_eq!(douane.admin_get("/readyz").0, 200);

        // Rewritten in place with a valid database that moves 127.0.0.2 to the US: taken.
        let moved = common::mmdb::country_db_bytes(
            &[("127.0.0.1", "FR"), ("127.0.0.2", "US")],
            douane::geo::Schema::GeoIp2,
        );
        std::fs::write(&country, moved).unwrap();
        assert!(
            douane
                .wait_log("reloaded: new policy", Duration::from_secs(5))
                .await,
            "{:#?}",
            douane.logs()
        );
        let reply = client::forward(
            douane.forward,
            "GET",
            &url,
            &[("accept", "application/json")],
        )
        .await;
        assert_eq!(reply.status, 451, "{}", reply.text());
        assert_eq!(reply.json()["location"], "US");
    }
}

on_both_engines! {
    async fn sigterm_drains_the_request_in_flight_then_exits_0(engine: Engine) {
        let (_fx, mut douane, port) = start(engine).await;
        let (body, first) = start_slow(&douane, port).await;
        let started = Instant::now();
        douane.signal("TERM");
        // New connections are no longer accepted once douane is draining.
        assert!(douane.wait_log("stopping", Duration::from_secs(5)).await);
        // (A short pause: the accept loops stop right after the log line.)
        tokio::time::sleep(Duration::from_millis(100)).await;
        for addr in [douane.forward, douane.reverse, douane.admin] {
            let refused =
                tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
                    .await;
            assert!(
                matches!(refused, Ok(Err(_))),
                "{addr} still accepts connections while draining"
            );
        }
        assert_eq!(rest(body, first).await, all_chunks());
        let status = douane
            .wait_exit(Duration::from_secs(10))
            .await
            .expect("douane exits after draining");
        assert!(status.success(), "{status}: {:#?}", douane.logs());
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{:?}",
            started.elapsed()
        );
    }
}
