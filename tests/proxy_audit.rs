//! The audit log through the proxy, as an auditor and an ops team see it: what a client
//! sends cannot break or forge a line, and a log that cannot be written turns douane
//! not-ready and (by default) refuses the requests that need a record.

mod common;

use common::client;
use common::proxy::{policy, standard_overrides, ConfigSpec, Fixture};
use common::upstream;

const JSON: [(&str, &str); 1] = [("accept", "application/json")];

on_both_engines! {
    async fn client_controlled_values_stay_on_one_line_and_the_chain_verifies(engine: Engine) {
        let fx = Fixture::new();
        let port = upstream::start(&["127.0.0.2", "127.0.0.3"], None).await;
        fx.write_policy(&policy("all", "enforce", &[port], ""));
        fx.write_config(&ConfigSpec {
            engine,
            overrides: standard_overrides(),
            ..ConfigSpec::default()
        });
        let douane = fx.start().await;

        // Quotes, braces, backslashes and a JSON look-alike in the path and query; a made-up
        // method; a path far longer than max_field_bytes (2048).
        let forged = r#"/x"},"outcome":"allow","seq":0,"hash":"00"}{"a":"\\"#;
        let long = format!("/{}", "a".repeat(10_000));
        let mut ids = Vec::new();
        for (method, path) in [
            ("GET", forged.to_string()),
            ("BREW", long),
            ("GET", "/plain".into()),
        ] {
            let url = format!(
                "http://us.test:{port}{}",
                path.replace('"', "%22").replace('\\', "%5C")
            );
            let raw_url = format!("http://us.test:{port}{path}");
            // Send the raw form when the URI parser takes it, the percent-encoded one otherwise.
            let target = if raw_url.parse::<http::Uri>().is_ok() {
                raw_url
            } else {
                url
            };
            let reply = client::forward(douane.forward, method, &target, &JSON).await;
            assert_eq!(reply.status, 451, "{}", reply.text());
            ids.push(reply.json()["request_id"].as_str().unwrap().to_owned());
        }
        let records = fx.audit_records(); // every line parses as one JSON object
        assert_eq!(records.len(), 3, "one line per request: {records:#?}");
        for (record, id) in records.iter().zip(&ids) {
            assert_eq!(record["request_id"], id.as_str());
            assert_eq!(
                record["outcome"], "block",
                "nothing a client sends changes the outcome"
            );
        }
        assert_eq!(records[1]["method"], "BREW");
        let cut = records[1]["path"].as_str().unwrap();
        assert!(
            cut.len() < 2200,
            "the long path is cut: {} bytes",
            cut.len()
        );
        assert!(cut.contains("truncated"), "and the cut is marked: {cut}");
        let (ok, out) = fx.audit_verify();
        assert!(ok, "{out}");
    }
}

on_both_engines! {
    async fn an_unwritable_audit_log_turns_not_ready_and_refuses_blocks_with_503(engine: Engine) {
        let fx = Fixture::new();
        let port = upstream::start(&["127.0.0.2", "127.0.0.3"], None).await;
        fx.write_policy(&policy("all", "enforce", &[port], ""));
        fx.write_config(&ConfigSpec {
            engine,
            overrides: standard_overrides(),
            ..ConfigSpec::default()
        });
        // The disk is full: every write fails.
        let config = std::fs::read_to_string(fx.path("douane.toml")).unwrap();
        let config = config.replace(
            "path = \"audit/douane-audit.jsonl\"",
            "path = \"/dev/full\"",
        );
        assert!(config.contains("/dev/full"));
        std::fs::write(fx.path("douane.toml"), config).unwrap();
        let douane = fx.start().await;

        // An allowed request needs no record (record_allowed = false): it goes through.
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://fr.test:{port}/"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());

        // A block needs one; it cannot be written, so no unrecorded decision: 503.
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://us.test:{port}/"),
            &JSON,
        )
        .await;
        assert_eq!(reply.status, 503, "{}", reply.text());
        let id = reply
            .header("douane-request-id")
            .expect("request id")
            .to_owned();
        // The log line says what the client got: 503, never the 451 it did not get.
        assert!(
            douane
                .wait_log(&id, std::time::Duration::from_secs(2))
                .await
        );
        let line = douane
            .logs()
            .into_iter()
            .find(|l| l.contains(&id) && l.contains("request decided"))
            .expect("the request's log line");
        assert!(line.contains("\"status\":503"), "{line}");

        let (status, body) = douane.admin_get("/readyz");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("audit"), "{body}");
        let (_, metrics) = douane.admin_get("/metrics");
        let failures = metrics
            .lines()
            .find(|l| l.starts_with("douane_audit_write_failures_total"))
            .unwrap_or_else(|| panic!("no audit failure metric: {metrics}"));
        assert!(!failures.ends_with(" 0"), "{failures}");
        let (status, _) = douane.admin_get("/healthz");
        assert_eq!(status, 200, "the process itself is alive");
    }
}
