//! The HTTPS block page with `[local_ca]`, against the real binary on both engines: a
//! blocked CONNECT is answered `200`, and a real TLS client (rustls, trusting the local CA
//! only) reads the 451 page over HTTP/1.1 and over h2, with the request id of the CONNECT's
//! audit record. An allowed tunnel is not intercepted: the client sees the upstream's own
//! certificate (it trusts the upstream CA, not the local one).

mod common;

use std::sync::Arc;

use common::client;
use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Engine, Fixture};
use common::upstream;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The collectivité's local CA: written as `local-ca.pem` / `local-ca-key.pem`; returns
/// its certificate PEM.
fn local_ca(fx: &Fixture) -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Mairie test local CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(fx.path("local-ca.pem"), cert.pem()).unwrap();
    std::fs::write(fx.path("local-ca-key.pem"), key.serialize_pem()).unwrap();
    cert.pem()
}

/// A client that trusts only `ca_pem`, offering `alpn`.
fn trusting(ca_pem: &str, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// douane with `[local_ca]`, a TLS upstream (the test CA's leaf) on .2 (FR) and .3 (US).
async fn start(engine: Engine) -> (Fixture, Douane, u16, String) {
    let fx = Fixture::new();
    let ca_pem = local_ca(&fx);
    let leaf = fx.ca.leaf(common::proxy::UPSTREAM_NAMES);
    let tls = fx.ca.server_config(&leaf);
    let port = upstream::start(&["127.0.0.2", "127.0.0.3"], Some(tls)).await;
    fx.write_policy(&policy("all", "enforce", &[port], ""));
    fx.write_config(&ConfigSpec {
        engine,
        overrides: standard_overrides(),
        extra: "[local_ca]\ncert = \"local-ca.pem\"\nkey = \"local-ca-key.pem\"\n".into(),
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;
    (fx, douane, port, ca_pem)
}

/// The CONNECT's request id, from its `200`.
fn request_id(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("douane-request-id: "))
        .expect("douane-request-id on the 200")
        .trim()
        .to_owned()
}

on_both_engines! {
    async fn a_blocked_connect_shows_the_451_page_over_https_h1_and_h2(engine: Engine) {
        let (fx, douane, port, ca_pem) = start(engine).await;
        let authority = format!("us.test:{port}");
        for h2 in [false, true] {
            let (tunnel, head) = client::connect(douane.forward, &authority, &[]).await.tunnel();
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            let id = request_id(&head);
            let alpn: &[&[u8]] = if h2 { &[b"h2"] } else { &[b"http/1.1"] };
            let tls = client::tls(tunnel, trusting(&ca_pem, alpn), "us.test")
                .await
                .expect("the minted certificate is trusted through the local CA");
            let reply = if h2 {
                assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
                let mut sender = client::h2(tls).await;
                let req = client::request("GET", &format!("https://{authority}/crm"), &[]);
                client::collect(sender.send_request(req).await.expect("h2 request")).await
            } else {
                let mut sender = client::h1(tls).await;
                let req = client::request("GET", "/crm", &[("host", &authority)]);
                client::collect(sender.send_request(req).await.expect("h1 request")).await
            };
            assert_eq!(reply.status.as_u16(), 451, "h2={h2}: {}", reply.text());
            let page = reply.text();
            assert!(page.contains("us.test"), "the page names the host");
            assert!(page.contains(&id), "the page carries the CONNECT's request id {id}");
            assert_eq!(reply.header("douane-request-id"), Some(id.as_str()));
            let records = fx.audit_records();
            let r = records
                .iter()
                .find(|r| r["request_id"] == id.as_str())
                .expect("the audit record has the same request id");
            assert_eq!(r["outcome"], "block", "{r}");
        }
        // API clients get problem+json through the same tunnel.
        let (tunnel, _) = client::connect(douane.forward, &authority, &[]).await.tunnel();
        let tls = client::tls(tunnel, trusting(&ca_pem, &[b"http/1.1"]), "us.test").await.unwrap();
        let mut sender = client::h1(tls).await;
        let req = client::request("GET", "/", &[("host", &authority), ("accept", "application/problem+json")]);
        let reply = client::collect(sender.send_request(req).await.unwrap()).await;
        assert_eq!(reply.status.as_u16(), 451);
        assert!(reply.header("content-type").unwrap_or("").contains("problem+json"));
        assert!(douane.log_count("\"outcome\":\"block\"") >= 3);
    }

    async fn an_allowed_tunnel_is_never_intercepted(engine: Engine) {
        let (fx, douane, port, ca_pem) = start(engine).await;
        let authority = format!("fr.test:{port}");
        // Trusting only the local CA, the upstream's own certificate is refused...
        let (tunnel, _) = client::connect(douane.forward, &authority, &[]).await.tunnel();
        let refused = client::tls(tunnel, trusting(&ca_pem, &[b"http/1.1"]), "fr.test").await;
        assert!(refused.is_err(), "an allowed tunnel presented a local-CA certificate");
        // ...and trusting the upstream's CA, the handshake is the upstream's.
        let (tunnel, _) = client::connect(douane.forward, &authority, &[]).await.tunnel();
        let tls = client::tls(tunnel, fx.ca.client_config(&[b"http/1.1"]), "fr.test")
            .await
            .expect("the upstream's own certificate");
        let mut sender = client::h1(tls).await;
        let req = client::request("GET", "/", &[("host", "fr.test")]);
        let reply = client::collect(sender.send_request(req).await.unwrap()).await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text());
    }
}
