//! A parent proxy that wants credentials: `parent_proxy = "http://user:password@host:port"`
//! sends them as `Proxy-Authorization: Basic …` on every CONNECT to the parent, and they
//! appear nowhere else (not in the audit record's parent hop).

mod common;

use common::client;
use common::parent;
use common::proxy::{policy, standard_overrides, ConfigSpec, Fixture};
use common::upstream;

/// base64("alice:s@cret")
const EXPECTED: &str = "Proxy-Authorization: Basic YWxpY2U6c0BjcmV0\r\n";

on_both_engines! {
    async fn parent_proxy_credentials_are_sent_as_proxy_authorization(engine: Engine) {
        let fx = Fixture::new();
        let port = upstream::start(&["127.0.0.2"], None).await;
        let (parent, seen) = parent::start(Some(EXPECTED)).await;
        fx.write_policy(&policy("pin", "enforce", &[port], ""));
        fx.write_config(&ConfigSpec {
            engine,
            overrides: standard_overrides(),
            parent_proxy: Some(format!("http://alice:s%40cret@{parent}")),
            ..ConfigSpec::default()
        });
        let douane = fx.start().await;
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://fr.test:{port}/"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()["server"], "127.0.0.2");
        let heads = seen.lock().unwrap().clone();
        assert_eq!(heads.len(), 1, "{heads:?}");
        assert!(heads[0].starts_with(&format!("CONNECT 127.0.0.2:{port} HTTP/1.1\r\n")));
        assert!(heads[0].contains(EXPECTED), "{heads:?}");

        // The audit record names the parent hop without its credentials.
        let blocked = client::forward(
            douane.forward,
            "GET",
            &format!("http://us.test:{port}/"),
            &[],
        )
        .await;
        assert_eq!(blocked.status, 451);
        let records = fx.audit_records();
        let text = serde_json::to_string(&records).unwrap();
        assert!(!text.contains("alice") && !text.contains("cret"), "{text}");
        assert!(text.contains(&parent.to_string()), "{text}");
        let logs = douane.logs().join("\n");
        assert!(
            !logs.contains("YWxpY2U6") && !logs.contains("alice"),
            "{logs}"
        );
    }
}
