//! A parent proxy (a departmental proxy douane sits behind): douane decides on the address
//! it resolved itself, then goes out through the parent with CONNECT to that checked
//! address, never a name; the audit record names the parent hop.

mod common;

use common::client;
use common::parent;
use common::proxy::{policy, standard_overrides, ConfigSpec, Fixture};
use common::upstream;

on_both_engines! {
    async fn allowed_traffic_goes_through_the_parent_to_the_checked_address(engine: Engine) {
        let fx = Fixture::new();
        let port = upstream::start(&["127.0.0.2", "127.0.0.3"], None).await;
        let (parent, seen) = parent::start(None).await;
        fx.write_policy(&policy("pin", "enforce", &[port], ""));
        fx.write_config(&ConfigSpec {
            engine,
            overrides: standard_overrides(),
            parent_proxy: Some(format!("http://{parent}")),
            ..ConfigSpec::default()
        });
        let douane = fx.start().await;

        // mixed.test: US first, FR second; pinned to FR, and the parent is asked for that IP.
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://mixed.test:{port}/"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()["server"], "127.0.0.2");
        assert_eq!(parent::targets(&seen), vec![format!("127.0.0.2:{port}")]);

        // A CONNECT tunnel too.
        let (stream, _) = client::connect(douane.forward, &format!("fr.test:{port}"), &[])
            .await
            .tunnel();
        let mut sender = client::h1(stream).await;
        let reply = client::collect(
            sender
                .send_request(client::request("GET", "/", &[("host", "fr.test")]))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.json()["server"], "127.0.0.2");
        assert_eq!(seen.lock().unwrap().len(), 2);

        // Blocked: the parent never hears of it; the record names the parent hop.
        let blocked = client::forward(
            douane.forward,
            "GET",
            &format!("http://us.test:{port}/"),
            &[],
        )
        .await;
        assert_eq!(blocked.status, 451);
        assert_eq!(seen.lock().unwrap().len(), 2);
        let id = blocked.header("douane-request-id").unwrap();
        let records = fx.audit_records();
        let record = records
            .iter()
            .find(|r| r["request_id"] == id)
            .expect("audit record");
        assert_eq!(record["via"], parent.to_string(), "{record}");
    }
}
