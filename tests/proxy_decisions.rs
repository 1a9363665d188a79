//! Decisions as they play out on the wire: a name resolving to mixed countries under
//! `ip_selection = "all"` and `"pin"` (and which address really answers), the next checked
//! address when the first refuses, monitor mode, exemptions live and expired.

mod common;

use common::client;
use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Engine, Fixture};
use common::upstream;

async fn start(
    engine: Engine,
    ip_selection: &str,
    mode: &str,
    rules: &str,
) -> (Fixture, Douane, u16) {
    let fx = Fixture::new();
    let port = upstream::start(&["127.0.0.2", "127.0.0.3", "127.0.0.4"], None).await;
    fx.write_policy(&policy(ip_selection, mode, &[port], rules));
    fx.write_config(&ConfigSpec {
        engine,
        overrides: standard_overrides(),
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;
    (fx, douane, port)
}

const JSON: [(&str, &str); 1] = [("accept", "application/json")];

fn record_for<'a>(records: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    records
        .iter()
        .find(|r| r.to_string().contains(id))
        .unwrap_or_else(|| panic!("no audit record for {id}: {records:#?}"))
}

on_both_engines! {
    async fn mixed_countries_are_blocked_under_all(engine: Engine) {
        let (_fx, douane, port) = start(engine, "all", "enforce", "").await;
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://mixed.test:{port}/"),
            &JSON,
        )
        .await;
        assert_eq!(reply.status, 451, "{}", reply.text());
        assert_eq!(
            reply.json()["location"],
            "US",
            "the culprit is the US address"
        );
        // Both FR addresses of refused.test comply: the refusing first one is skipped.
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://refused.test:{port}/"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()["server"], "127.0.0.2");
    }
}

on_both_engines! {
    async fn pin_connects_only_to_the_compliant_address(engine: Engine) {
        let (_fx, douane, port) = start(engine, "pin", "enforce", "").await;
        // The US address comes first in the answer; douane must dial the FR one, every time
        // (a fresh connection each time, and pooled ones).
        for _ in 0..3 {
            let reply = client::forward(
                douane.forward,
                "GET",
                &format!("http://mixed.test:{port}/"),
                &[],
            )
            .await;
            assert_eq!(reply.status, 200, "{}", reply.text());
            assert_eq!(reply.json()["server"], "127.0.0.2");
        }
        // The CONNECT tunnel too.
        let (stream, _) = client::connect(douane.forward, &format!("mixed.test:{port}"), &[])
            .await
            .tunnel();
        let mut sender = client::h1(stream).await;
        let reply = client::collect(
            sender
                .send_request(client::request("GET", "/", &[("host", "mixed.test")]))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.json()["server"], "127.0.0.2");
        // Nothing compliant at all: blocked.
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://us.test:{port}/"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 451);
        // The first compliant address refuses: the next compliant one answers.
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://refused.test:{port}/"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()["server"], "127.0.0.2");
    }
}

on_both_engines! {
    async fn monitor_mode_lets_through_and_records_would_block(engine: Engine) {
        let (fx, douane, port) = start(engine, "all", "monitor", "").await;
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://us.test:{port}/watched"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()["server"], "127.0.0.3");
        let records = fx.audit_records();
        let record = records
            .iter()
            .find(|r| r.to_string().contains("/watched"))
            .unwrap_or_else(|| panic!("no would-block record: {records:#?}"));
        assert!(record.to_string().contains("would-block"), "{record}");
        assert!(
            record.to_string().contains("location_not_allowed"),
            "{record}"
        );
        // The bytes that left for the US are counted as exposure, on the location axis.
        let received = reply.body.len() as u64;
        let (_, metrics) = douane.admin_get("/metrics");
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("douane_exposure_received_bytes_total{")
                    && l.contains("jurisdiction=\"US\"")
                    && l.contains("axis=\"location\"")
                    && l.contains("would-block")
            })
            .unwrap_or_else(|| panic!("no exposure bytes: {metrics}"));
        let counted: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(counted, received, "{line}");
        // A security block stays a block in monitor mode: a port that is not allowed.
        let closed = common::proxy::free_port();
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://fr.test:{closed}/"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 403);
    }
}

on_both_engines! {
    async fn an_expired_exemption_does_not_apply_and_a_live_one_does(engine: Engine) {
        let rules = r#"
    [[rule]]
    id = "expired-exemption"
    hosts = ["us.test"]
    action = "allow"
    justification = "old contract"
    ticket = "T-1"
    expires = 2020-01-31

    [[rule]]
    id = "live-exemption"
    hosts = ["cn.test"]
    action = "allow"
    justification = "migration under way"
    ticket = "T-2"
    expires = 2999-12-31
    "#;
        let (fx, douane, port) = start(engine, "all", "enforce", rules).await;
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://us.test:{port}/"),
            &JSON,
        )
        .await;
        assert_eq!(reply.status, 451, "{}", reply.text());
        let body = reply.json();
        assert_ne!(body["rule"], "expired-exemption", "{body}");
        assert_eq!(body["reason"], "location_not_allowed");
        assert_eq!(body["notes"][0]["kind"], "exemption_expired", "{body}");
        assert_eq!(body["notes"][0]["rule"], "expired-exemption", "{body}");
        assert_eq!(body["notes"][0]["expired"], "2020-01-31", "{body}");

        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://cn.test:{port}/"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()["server"], "127.0.0.4");
        let records = fx.audit_records();
        assert!(
            records
                .iter()
                .any(|r| r.to_string().contains("live-exemption") && r.to_string().contains("exempt")),
            "the use of an exemption is recorded: {records:#?}"
        );
        let blocked = record_for(&records, body["request_id"].as_str().unwrap());
        assert_eq!(blocked["outcome"], "block", "{blocked}");
        assert!(blocked["rule"].is_null(), "{blocked}");
        assert_eq!(
            blocked["notes"][0]["kind"], "exemption_expired",
            "the auditor sees that an exemption no longer applied: {blocked}"
        );
        assert_eq!(blocked["notes"][0]["expired"], "2020-01-31", "{blocked}");
    }
}
