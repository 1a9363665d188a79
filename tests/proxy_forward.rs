//! The forward listener over real sockets: absolute-form requests and CONNECT tunnels,
//! allowed and blocked, as a browser behind douane sees them.

mod common;

use std::time::Duration;

use common::client;
use common::proxy::{free_port, policy, standard_overrides, ConfigSpec, Douane, Engine, Fixture};
use common::upstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Plain-HTTP upstreams on .2 (FR), .3 (US), .4 (CN); douane with the standard policy.
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

on_both_engines! {
    async fn absolute_form_allowed_reaches_the_upstream_with_via_and_without_hop_by_hop(engine: Engine) {
        let (_fx, douane, port) = start(engine, "all", "enforce", "").await;
        let url = format!("http://fr.test:{port}/echo?q=1");
        let reply = client::forward(
            douane.forward,
            "GET",
            &url,
            &[
                ("proxy-connection", "keep-alive"),
                ("proxy-authorization", "Basic dXNlcjpwdw=="),
                ("keep-alive", "timeout=5"),
                ("connection", "keep-alive, x-hop"),
                ("x-hop", "secret"),
                ("x-end-to-end", "kept"),
            ],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let seen = reply.json();
        assert_eq!(seen["server"], "127.0.0.2");
        assert_eq!(seen["uri"], "/echo?q=1", "origin-form upstream");
        let headers = &seen["headers"];
        assert_eq!(headers["host"][0], format!("fr.test:{port}"));
        assert_eq!(headers["x-end-to-end"][0], "kept");
        for hop in [
            "proxy-connection",
            "proxy-authorization",
            "keep-alive",
            "x-hop",
        ] {
            assert!(
                headers.get(hop).is_none(),
                "{hop} crossed the proxy: {headers}"
            );
        }
        let via = headers["via"][0].as_str().unwrap();
        assert!(via.starts_with("1.1 douane-"), "{via}");
        // The response carries douane's Via too, and a request that carries it is a loop.
        let response_via = reply.header("via").expect("via on the response").to_owned();
        assert_eq!(response_via, via);
        let looped = client::forward(douane.forward, "GET", &url, &[("via", &response_via)]).await;
        assert_eq!(looped.status, 508, "{}", looped.text());
        assert!(looped.header("douane-request-id").is_some());
        // Another proxy's Via is no loop.
        let other = client::forward(douane.forward, "GET", &url, &[("via", "1.1 squid")]).await;
        assert_eq!(other.status, 200);
    }
}

on_both_engines! {
    async fn absolute_form_blocked_gets_451_html_or_json_and_the_audit_record_comes_first(engine: Engine) {
        let rules = r#"
    [[rule]]
    id = "no-dragon"
    hosts = ["cn.test"]
    action = "block"
    "#;
        let (fx, douane, port) = start(engine, "all", "enforce", rules).await;

        // By location and operator (US): HTML by default.
        let url = format!("http://us.test:{port}/crm");
        let html = client::forward(douane.forward, "GET", &url, &[]).await;
        assert_eq!(html.status, 451, "{}", html.text());
        assert_eq!(
            html.header("link"),
            Some("<https://policy.example/blocked>; rel=\"blocked-by\"")
        );
        assert!(html
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        let id = html
            .header("douane-request-id")
            .expect("request id")
            .to_owned();
        // The audit record exists as soon as the client has the 451.
        let records = fx.audit_records();
        let record = records
            .iter()
            .find(|r| r.to_string().contains(&id))
            .unwrap_or_else(|| panic!("no audit record for {id}: {records:?}"));
        assert!(
            record.to_string().contains("location_not_allowed"),
            "{record}"
        );
        let page = html.text();
        for needle in [
            "location_not_allowed",
            "États-Unis",
            "United States",
            "Yankee Cloud",
            &id,
            "us.test",
        ] {
            assert!(
                page.contains(needle),
                "{needle} missing from the page:\n{page}"
            );
        }
        assert!(
            page.contains("Accès bloqué") && page.contains("Access blocked"),
            "FR and EN"
        );

        // JSON by Accept, naming the rule.
        let url = format!("http://cn.test:{port}/");
        let json = client::forward(
            douane.forward,
            "GET",
            &url,
            &[("accept", "application/json")],
        )
        .await;
        assert_eq!(json.status, 451);
        assert!(json
            .header("content-type")
            .unwrap()
            .starts_with("application/problem+json"));
        let body = json.json();
        assert_eq!(body["rule"], "no-dragon");
        assert_eq!(body["reason"], "rule_block");
        assert_eq!(body["location"], "CN");
        assert_eq!(body["operator_jurisdiction"], "CN");
        assert_eq!(
            body["request_id"],
            json.header("douane-request-id").unwrap()
        );

        // Operator jurisdiction named in JSON for the US one.
        let url = format!("http://us.test:{port}/");
        let body = client::forward(
            douane.forward,
            "GET",
            &url,
            &[("accept", "application/json")],
        )
        .await
        .json();
        assert_eq!(body["location"], "US");
        assert_eq!(body["operator"], "Yankee Cloud");
        assert_eq!(body["operator_jurisdiction"], "US");
        assert!(
            body["rule"].is_null(),
            "the policy defaults decided: {body}"
        );

        let (ok, out) = fx.audit_verify();
        assert!(ok, "audit verify failed: {out}");
        assert!(fx.audit_records().len() >= 3);
    }
}

on_both_engines! {
    async fn connect_allowed_carries_a_real_tls_handshake_and_blocked_gets_451(engine: Engine) {
        let fx = Fixture::new();
        let leaf = fx.ca.leaf(common::proxy::UPSTREAM_NAMES);
        let tls_port = upstream::start(
            &["127.0.0.2", "127.0.0.3"],
            Some(fx.ca.server_config(&leaf)),
        )
        .await;
        fx.write_policy(&policy("all", "enforce", &[tls_port], ""));
        fx.write_config(&ConfigSpec {
            engine,
            overrides: standard_overrides(),
            ..ConfigSpec::default()
        });
        let douane = fx.start().await;

        let (stream, head) = client::connect(douane.forward, &format!("fr.test:{tls_port}"), &[])
            .await
            .tunnel();
        assert!(
            head.to_ascii_lowercase().contains("douane-request-id"),
            "{head}"
        );
        let tls = client::tls(stream, fx.ca.client_config(&[b"http/1.1"]), "fr.test")
            .await
            .expect("TLS through the tunnel");
        let mut sender = client::h1(tls).await;
        let reply = client::collect(
            sender
                .send_request(client::request("GET", "/inside", &[("host", "fr.test")]))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["server"], "127.0.0.2");
        assert_eq!(reply.json()["uri"], "/inside");

        // Blocked: 451 instead of 200, JSON on request.
        let refused = client::connect(
            douane.forward,
            &format!("us.test:{tls_port}"),
            &[("accept", "application/json")],
        )
        .await
        .refused();
        assert_eq!(refused.status, 451);
        assert_eq!(refused.json()["reason"], "location_not_allowed");
        assert!(refused.header("douane-request-id").is_some());
        assert!(refused
            .header("link")
            .unwrap()
            .contains("rel=\"blocked-by\""));

        // Absolute-form https: douane verifies the upstream against the test CA.
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("https://fr.test:{tls_port}/tls"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()["server"], "127.0.0.2");
        // A certificate that does not name the upstream: 502, nothing sent.
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("https://nocert.test:{tls_port}/tls"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 502, "{}", reply.text());
    }
}

on_both_engines! {
    async fn connect_to_douane_itself_or_to_a_port_not_allowed_is_403(engine: Engine) {
        let fx = Fixture::new();
        let port = upstream::start(&["127.0.0.2"], None).await;
        let admin_port = free_port();
        // The admin port is allowed by the policy and 127/8 is a network entry: only douane's
        // own rule keeps the admin listener out of reach.
        fx.write_policy(&policy("all", "enforce", &[port, admin_port], ""));
        fx.write_config(&ConfigSpec {
            engine,
            overrides: standard_overrides(),
            admin_port,
            ..ConfigSpec::default()
        });
        let douane = fx.start().await;
        assert_eq!(douane.admin.port(), admin_port);
        let json = [("accept", "application/json")];

        let own = client::connect(douane.forward, &format!("127.0.0.1:{admin_port}"), &json)
            .await
            .refused();
        assert_eq!(own.status, 403, "{}", own.text());
        assert_eq!(own.json()["reason"], "own_listener");
        // The admin listener by absolute-form.
        let own = client::forward(
            douane.forward,
            "GET",
            &format!("http://127.0.0.1:{admin_port}/policy"),
            &json,
        )
        .await;
        assert_eq!(own.status, 403, "{}", own.text());

        let closed = free_port();
        let refused = client::connect(douane.forward, &format!("fr.test:{closed}"), &json)
            .await
            .refused();
        assert_eq!(refused.status, 403);
        assert_eq!(refused.json()["reason"], "port_not_allowed");

        // An allowed CONNECT still works on the same proxy (plain TCP echo of HTTP).
        let (mut stream, _) = client::connect(douane.forward, &format!("fr.test:{port}"), &[])
            .await
            .tunnel();
        stream
            .write_all(b"GET /raw HTTP/1.1\r\nHost: fr.test\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut text))
            .await
            .expect("tunnel answer in time")
            .unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.contains("127.0.0.2"), "{text}");
    }
}

on_both_engines! {
    async fn every_request_of_a_kept_alive_connection_is_decided_on_its_own(engine: Engine) {
        let (_fx, douane, port) = start(engine, "all", "enforce", "").await;
        let stream = tokio::net::TcpStream::connect(douane.forward)
            .await
            .unwrap();
        let mut sender = client::h1(stream).await;
        for (host, status) in [
            ("fr.test", 200),
            ("us.test", 451),
            ("fr.test", 200),
            ("cn.test", 451),
        ] {
            let url = format!("http://{host}:{port}/");
            let req = client::request("GET", &url, &[("host", &format!("{host}:{port}"))]);
            sender.ready().await.expect("the connection stays open");
            let reply = client::collect(sender.send_request(req).await.unwrap()).await;
            assert_eq!(reply.status, status, "{host}: {}", reply.text());
        }
    }
}

on_both_engines! {
    async fn the_unspecified_address_does_not_reach_douane_either(engine: Engine) {
        // 0.0.0.0 is placed by a network entry, so policy alone would let it through; but a
        // connection to 0.0.0.0 lands on this host, on douane's own listeners.
        let fx = Fixture::new();
        let port = upstream::start(&["127.0.0.2"], None).await;
        let admin_port = free_port();
        let network = "[[network]]\ncidr = \"0.0.0.0/8\"\nlocation = \"FR\"\noperator = \"FR\"\n";
        fx.write_policy(&policy("all", "enforce", &[port, admin_port], network));
        fx.write_config(&ConfigSpec {
            engine,
            overrides: standard_overrides(),
            admin_port,
            ..ConfigSpec::default()
        });
        let douane = fx.start().await;
        let json = [("accept", "application/json")];
        let own = client::connect(douane.forward, &format!("0.0.0.0:{admin_port}"), &json)
            .await
            .refused();
        assert_eq!(own.status, 403, "{}", own.text());
        assert_eq!(own.json()["reason"], "own_listener");
    }
}
