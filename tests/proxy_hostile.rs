//! Hostile HTTP/1.1 as an attacker would send it, on both engines (the direct path and
//! hyper's), through the reverse route (TLS) and the forward proxy (absolute-form), to a
//! raw upstream that records every request it parses: smuggling by a framing header named
//! in `Connection`, cross-client poisoning, h2c upgrades to an h2c-capable origin, two
//! `Host`s, a spoofed `X-Forwarded-Host`, malformed chunked bodies; and DNS rebinding
//! through a real DNS server (TTL 0): one resolution and one decision per request.

mod common;

use std::time::Duration;

use common::dns::{DnsServer, Reply};
use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Engine, Fixture, RouteSpec};
use common::raw::{self, statuses, RawUpstream};

const RULES: &str = r#"
[[rule]]
id = "no-admin"
hosts = ["fr.test"]
paths = ["/admin"]
action = "block"
"#;

const QUIET: Duration = Duration::from_millis(1500);

/// douane on `engine`, route app.localhost → the raw upstream (fr.test), the forward proxy
/// to the same; `/admin` blocked by a path rule.
async fn start(engine: Engine) -> (Fixture, Douane, RawUpstream) {
    let up = RawUpstream::start().await;
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[up.port], RULES));
    fx.write_config(&ConfigSpec {
        engine,
        overrides: standard_overrides(),
        routes: vec![RouteSpec::app(format!("http://fr.test:{}", up.port))],
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;
    (fx, douane, up)
}

/// The bytes sent to each listener: reverse (origin-form, over TLS) and forward
/// (absolute-form to fr.test).
struct Listeners<'a> {
    fx: &'a Fixture,
    douane: &'a Douane,
    port: u16,
}

impl Listeners<'_> {
    async fn reverse(&self, head: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = head
            .replace("{T}", "")
            .replace("{H}", "app.localhost")
            .into_bytes();
        bytes.extend_from_slice(body);
        raw::tls(
            self.douane.reverse,
            &self.fx.ca,
            "app.localhost",
            &bytes,
            QUIET,
        )
        .await
    }

    async fn forward(&self, head: &str, body: &[u8]) -> Vec<u8> {
        let authority = format!("fr.test:{}", self.port);
        let mut bytes = head
            .replace("{T}", &format!("http://{authority}"))
            .replace("{H}", &authority)
            .into_bytes();
        bytes.extend_from_slice(body);
        raw::plain(self.douane.forward, &bytes, QUIET).await
    }
}

fn metric(douane: &Douane, prefix: &str) -> f64 {
    let (_, text) = douane.admin_get("/metrics");
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

const SMUGGLED: &[u8] = b"GET /admin/secret HTTP/1.1\r\nHost: fr.test\r\n\r\n";

on_both_engines! {
    async fn framing_named_in_connection_is_refused_and_never_smuggled(engine: Engine) {
        let (fx, douane, up) = start(engine).await;
        let l = Listeners { fx: &fx, douane: &douane, port: up.port };
        let n = SMUGGLED.len();
        for connection in [
            "content-length",
            "close, Content-Length",
            "keep-alive, CONTENT-LENGTH",
            "x-a, x-b, content-length, x-c",
            "Transfer-Encoding",
        ] {
            let head = format!(
                "POST {{T}}/public HTTP/1.1\r\nHost: {{H}}\r\nConnection: {connection}\r\nContent-Length: {n}\r\n\r\n"
            );
            for (side, answer) in [
                ("reverse", l.reverse(&head, SMUGGLED).await),
                ("forward", l.forward(&head, SMUGGLED).await),
            ] {
                assert_eq!(
                    statuses(&answer),
                    vec![400],
                    "{engine:?} {side} Connection: {connection}: {}",
                    String::from_utf8_lossy(&answer)
                );
            }
        }
        assert!(up.targets().is_empty(), "the upstream parsed {:?}", up.targets());
        let refused = metric(&douane, "douane_refusals_total{kind=\"framing_named_in_connection\"}");
        assert_eq!(refused, 10.0);
        assert_eq!(douane.log_count("\"refusal\":\"framing_named_in_connection\""), 10);
        assert_eq!(douane.log_count("request ended without finish"), 0);
    }

    async fn a_smuggling_attempt_cannot_poison_the_next_client(engine: Engine) {
        let (fx, douane, up) = start(engine).await;
        let l = Listeners { fx: &fx, douane: &douane, port: up.port };
        // A slow smuggled request, then another client on a fresh connection: it must get
        // its own answer, never the smuggled one.
        let slow = b"GET /slow-admin HTTP/1.1\r\nHost: fr.test\r\n\r\n";
        let head = format!(
            "POST {{T}}/public HTTP/1.1\r\nHost: {{H}}\r\nConnection: close, content-length\r\nContent-Length: {}\r\n\r\n",
            slow.len()
        );
        for _ in 0..3 {
            let attack = l.reverse(&head, slow).await;
            assert_eq!(statuses(&attack), vec![400]);
            let next = l.reverse("GET {T}/mine HTTP/1.1\r\nHost: {H}\r\n\r\n", b"").await;
            let text = String::from_utf8_lossy(&next);
            assert!(text.contains("x-path: /mine"), "{engine:?}: {text}");
            assert!(!text.contains("slow-admin"), "{engine:?}: {text}");
        }
        assert_eq!(up.targets(), vec!["/mine"; 3]);
    }

    async fn ambiguous_framing_and_two_hosts_are_refused(engine: Engine) {
        let (fx, douane, up) = start(engine).await;
        let l = Listeners { fx: &fx, douane: &douane, port: up.port };
        for head in [
            "GET {T}/x HTTP/1.1\r\nHost: {H}\r\nHost: evil.localhost\r\n\r\n",
            "POST {T}/x HTTP/1.1\r\nHost: {H}\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        ] {
            for (side, answer) in [
                ("reverse", l.reverse(head, b"").await),
                ("forward", l.forward(head, b"").await),
            ] {
                assert_eq!(statuses(&answer), vec![400], "{engine:?} {side} {head:?}");
            }
        }
        // Both framings, and two equal lengths: refused on both engines (hyper would drop
        // the length, RFC 9112 §6.3, or fold the two; the framing watch sees them first).
        for (side, head, body) in [
            ("reverse", "POST {T}/both HTTP/1.1\r\nHost: {H}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", &b"0\r\n\r\n"[..]),
            ("forward", "POST {T}/both HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", &b"0\r\n\r\n"[..]),
            ("reverse", "POST {T}/eq HTTP/1.1\r\nHost: {H}\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", &b"abc"[..]),
        ] {
            let answer = match side {
                "reverse" => l.reverse(head, body).await,
                _ => l.forward(head, body).await,
            };
            let text = String::from_utf8_lossy(&answer);
            assert_eq!(statuses(&answer), vec![400], "{engine:?} {side}: {text}");
            assert!(text.contains("ambiguous message framing"), "{engine:?} {side}: {text}");
        }
        assert!(up.targets().is_empty(), "{:?}", up.targets());
        for p in up.parsed() {
            assert!(
                !(p.header("content-length").is_some() && p.header("transfer-encoding").is_some()),
                "{p:?}"
            );
        }
        assert!(!up.targets().iter().any(|t| t == "/x"), "{:?}", up.targets());
    }

    async fn h2c_never_reaches_an_h2c_capable_origin(engine: Engine) {
        let (fx, douane, up) = start(engine).await;
        let l = Listeners { fx: &fx, douane: &douane, port: up.port };
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
        for upgrade in ["h2c", "H2C", "websocket, h2c", "foo"] {
            let head = format!(
                "GET {{T}}/public HTTP/1.1\r\nHost: {{H}}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: {upgrade}\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
            );
            for (side, answer) in [
                ("reverse", l.reverse(&head, preface).await),
                ("forward", l.forward(&head, preface).await),
            ] {
                let s = statuses(&answer);
                assert!(!s.contains(&101), "{engine:?} {side} {upgrade}: {s:?}");
                assert_eq!(s.first(), Some(&200), "{engine:?} {side} {upgrade}: {}", String::from_utf8_lossy(&answer));
            }
        }
        for p in up.parsed() {
            assert_ne!(p.line, "<h2c tunnel>", "undecided bytes reached the origin: {p:?}");
            assert!(!p.line.starts_with("PRI"), "{p:?}");
            assert!(p.header("upgrade").is_none(), "{p:?}");
            assert!(p.header("http2-settings").is_none(), "{p:?}");
        }
    }

    async fn an_untrusted_x_forwarded_host_never_reaches_the_upstream(engine: Engine) {
        let (fx, douane, up) = start(engine).await;
        let l = Listeners { fx: &fx, douane: &douane, port: up.port };
        for head in [
            "GET /a HTTP/1.1\r\nHost: app.localhost\r\nX-Forwarded-Host: evil.example\r\n\r\n",
            "GET http://app.localhost/b HTTP/1.1\r\nHost: a\"b\r\nX-Forwarded-Host: evil.example\r\n\r\n",
            "GET http://app.localhost/c HTTP/1.1\r\nHost: app.localhost\r\nx-forwarded-host: evil.example\r\n\r\n",
        ] {
            let answer = l.reverse(head, b"").await;
            assert_eq!(statuses(&answer), vec![200], "{engine:?} {head:?}: {}", String::from_utf8_lossy(&answer));
        }
        let parsed = up.parsed();
        assert_eq!(parsed.len(), 3);
        for p in parsed {
            assert!(!p.headers.iter().any(|h| h.contains("evil.example")), "{engine:?}: {p:?}");
        }
    }

    async fn a_malformed_chunked_body_is_the_clients_400(engine: Engine) {
        let (fx, douane, up) = start(engine).await;
        let l = Listeners { fx: &fx, douane: &douane, port: up.port };
        let head = "POST {T}/upload HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n";
        for body in [
            &b"fffffffffffffffffff\r\nx\r\n0\r\n\r\n"[..],
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
        ] {
            for (side, answer) in [
                ("reverse", l.reverse(head, body).await),
                ("forward", l.forward(head, body).await),
            ] {
                assert_eq!(
                    statuses(&answer),
                    vec![400],
                    "{engine:?} {side} {:?}: {}",
                    String::from_utf8_lossy(body),
                    String::from_utf8_lossy(&answer)
                );
            }
        }
        assert_eq!(metric(&douane, "douane_upstream_errors_total"), 0.0);
        assert_eq!(metric(&douane, "douane_refusals_total{kind=\"malformed_body\"}"), 6.0);
    }

    async fn a_tls_client_hello_on_the_forward_port_is_answered_at_once(engine: Engine) {
        let (fx, douane, _up) = start(engine).await;
        let started = std::time::Instant::now();
        let tcp = tokio::net::TcpStream::connect(douane.forward).await.unwrap();
        let handshake = common::client::tls(tcp, fx.ca.client_config(&[b"http/1.1"]), "app.localhost");
        let result = tokio::time::timeout(Duration::from_secs(3), handshake).await;
        assert!(matches!(result, Ok(Err(_))), "{engine:?}: the handshake must fail at once");
        assert!(started.elapsed() < Duration::from_secs(2), "{engine:?}: {:?}", started.elapsed());
        assert!(douane.wait_log("a TLS ClientHello came to a plain proxy port", Duration::from_secs(10)).await);
        assert_eq!(metric(&douane, "douane_refusals_total{kind=\"tls_on_proxy_port\"}"), 1.0);
    }

    async fn rebinding_gets_one_resolution_and_one_decision_per_request(engine: Engine) {
        let ports = common::upstream::start(&["127.0.0.2", "127.0.0.3"], None).await;
        let dns = DnsServer::start([(
            "rebind.test",
            Reply::alternating(&[&["127.0.0.2"], &["127.0.0.3"]], 0),
        )])
        .await;
        let fx = Fixture::new();
        fx.write_policy(&policy("all", "enforce", &[ports], ""));
        fx.write_config(&ConfigSpec {
            engine,
            overrides: standard_overrides(),
            nameserver: Some(dns.addr),
            resolver_extra: "min_ttl = 0".into(),
            routes: vec![RouteSpec {
                name: "rebind",
                host: "app.localhost",
                path_prefix: "/",
                upstream: format!("http://rebind.test:{ports}"),
            }],
            ..ConfigSpec::default()
        });
        let douane = fx.start().await;
        let mut statuses = Vec::new();
        for i in 0..20 {
            let reply = if i % 2 == 0 {
                common::client::forward(douane.forward, "GET", &format!("http://rebind.test:{ports}/r{i}"), &[]).await
            } else {
                common::client::reverse(
                    douane.reverse,
                    |alpn| fx.ca.client_config(alpn),
                    "app.localhost",
                    "app.localhost",
                    false,
                    &format!("/r{i}"),
                )
                .await
            };
            if reply.status == 200 {
                // The connected address is the one the decision checked: the FR one.
                assert_eq!(reply.json()["server"], "127.0.0.2", "{engine:?} {}", reply.text());
            }
            statuses.push(reply.status);
        }
        assert_eq!(dns.queries("rebind.test"), 20, "one resolution per request: {statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 451).count(), 10, "{statuses:?}");
        assert!(douane.wait_log_count("request decided", 20, Duration::from_secs(5)).await);
        assert_eq!(douane.log_count("request decided"), 20, "one decision per request");
        let blocked = fx
            .audit_records()
            .iter()
            .filter(|r| r.to_string().contains("location_not_allowed"))
            .count();
        assert_eq!(blocked, 10, "every block recorded once");
        assert_eq!(douane.log_count("request ended without finish"), 0);
    }
}
