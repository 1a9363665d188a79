//! Reloads that touch what the listeners were built from: a certificate renewed on disk
//! while clients keep connecting (the file watch sees it; new handshakes get the new
//! certificate, an open connection finishes on the old one, no handshake fails), and a
//! listener change, which a reload announces as needing a restart instead of saying
//! "reloaded" and dropping it, while the route change beside it applies
//! (`tests/reload_routes.rs` has the rest of the route reloads).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::client;
use common::proxy::{Douane, Engine, Fixture, RouteSpec};
use common::upstream;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;

async fn start() -> (Fixture, Douane) {
    let fx = Fixture::new();
    let port = upstream::start(&["127.0.0.2"], None).await;
    let route = RouteSpec::app(format!("http://fr.test:{port}"));
    fx.write_enforcing(Engine::Direct, port, vec![route]);
    let douane = fx.start().await;
    (fx, douane)
}

/// A TLS connection to the reverse listener and the certificate it was given.
async fn handshake(
    fx: &Fixture,
    douane: &Douane,
) -> (
    tokio_rustls::client::TlsStream<TcpStream>,
    CertificateDer<'static>,
) {
    let tcp = TcpStream::connect(douane.reverse).await.unwrap();
    let tls = client::tls(tcp, fx.ca.client_config(&[b"http/1.1"]), "app.localhost")
        .await
        .expect("handshake");
    let cert = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    (tls, cert.into_owned())
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_serves_new_handshakes_and_open_connections_finish() {
    let (fx, douane) = start().await;
    let old = der(&std::fs::read_to_string(fx.path("certs/reverse.pem")).unwrap());

    // A connection opened before the renewal, kept alive across it.
    let (tls, cert) = handshake(&fx, &douane).await;
    assert_eq!(cert, old);
    let mut kept = client::h1(tls).await;
    let req = || client::request("GET", "/", &[("host", "app.localhost")]);
    let reply = client::collect(kept.send_request(req()).await.unwrap()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // Clients keep connecting while the files change under the listener.
    let stop = Arc::new(AtomicBool::new(false));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let connecting = {
        let (stop, handshakes) = (stop.clone(), handshakes.clone());
        let config = fx.ca.client_config(&[b"http/1.1"]);
        let addr = douane.reverse;
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let tcp = TcpStream::connect(addr).await.unwrap();
                client::tls(tcp, config.clone(), "app.localhost")
                    .await
                    .expect("no handshake fails during a renewal");
                handshakes.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    // The renewal, as certbot or cert-manager would: new files in place of the old.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let renewed = fx.ca.leaf(common::proxy::REVERSE_NAMES);
    let new = der(&renewed.cert_pem);
    assert_ne!(new, old);
    let (cert_tmp, key_tmp) = (fx.path("certs/new.pem"), fx.path("certs/new-key.pem"));
    renewed.write(&cert_tmp, &key_tmp);
    std::fs::rename(&key_tmp, fx.path("certs/reverse-key.pem")).unwrap();
    std::fs::rename(&cert_tmp, fx.path("certs/reverse.pem")).unwrap();
    assert!(
        douane
            .wait_log(
                "reloaded: new policy, databases and certificates in force",
                Duration::from_secs(10)
            )
            .await,
        "{:#?}",
        douane.logs()
    );

    // New handshakes see the new certificate.
    let (_, cert) = handshake(&fx, &douane).await;
    assert_eq!(
        cert, new,
        "a handshake after the reload gets the renewed certificate"
    );
    stop.store(true, Ordering::Relaxed);
    connecting
        .await
        .expect("the connecting client saw no failure");
    assert!(handshakes.load(Ordering::Relaxed) > 0);

    // The connection opened before finishes its work on the old certificate.
    let reply = client::collect(kept.send_request(req()).await.unwrap()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        douane.log_count("needs a restart"),
        0,
        "{:#?}",
        douane.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_renewal_keeps_the_old_certificate() {
    let (fx, douane) = start().await;
    let old = der(&std::fs::read_to_string(fx.path("certs/reverse.pem")).unwrap());
    std::fs::write(fx.path("certs/reverse.pem"), "not a certificate\n").unwrap();
    assert!(
        douane
            .wait_log("reload refused", Duration::from_secs(10))
            .await,
        "{:#?}",
        douane.logs()
    );
    assert!(
        douane.log_count("no PEM certificate in the file") > 0,
        "{:#?}",
        douane.logs()
    );
    let (_, cert) = handshake(&fx, &douane).await;
    assert_eq!(cert, old);

    // The fixed files, written in place one after the other, are the next reload.
    let renewed = fx.ca.leaf(common::proxy::REVERSE_NAMES);
    renewed.write(
        &fx.path("certs/reverse.pem"),
        &fx.path("certs/reverse-key.pem"),
    );
    assert!(
        douane
            .wait_log("certificates in force", Duration::from_secs(10))
            .await,
        "{:#?}",
        douane.logs()
    );
    let (_, cert) = handshake(&fx, &douane).await;
    assert_eq!(cert, der(&renewed.cert_pem));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_change_is_announced_as_needing_a_restart_and_a_route_change_applies() {
    let (fx, douane) = start().await;
    let (_, metrics) = douane.admin_get("/metrics");
    assert!(
        metrics.contains("douane_restart_required{change=\"listener\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("douane_geo_max_age_seconds 2592000"),
        "30 days by default: {metrics}"
    );
    let config = std::fs::read_to_string(fx.path("douane.toml")).unwrap();
    let changed = config
        .replacen(
            "[forward]\nlisten = \"127.0.0.1:0\"",
            "[forward]\nlisten = \"127.0.0.2:0\"",
            1,
        )
        .replace("http://fr.test:", "http://us.test:")
        .replace("[geo]\n", "[geo]\nmax_age_days = 7\n");
    assert_ne!(changed, config);
    std::fs::write(fx.path("douane.toml"), changed).unwrap();
    assert!(
        douane
            .wait_log("wait for a restart", Duration::from_secs(10))
            .await,
        "{:#?}",
        douane.logs()
    );
    assert_eq!(
        douane.log_count("forward listener moved from 127.0.0.1:0 to 127.0.0.2:0"),
        1,
        "{:#?}",
        douane.logs()
    );
    assert_eq!(
        douane.log_count("applied to new connections: route `app` changed"),
        1,
        "{:#?}",
        douane.logs()
    );
    assert_eq!(
        douane.log_count("new policy, databases and certificates in force"),
        0
    );
    let (_, metrics) = douane.admin_get("/metrics");
    for line in [
        "douane_restart_required{change=\"listener\"} 1",
        "douane_restart_required{change=\"limits\"} 0",
        "douane_reload_restart_required_total{change=\"listener\"} 1",
        "douane_geo_max_age_seconds 604800",
    ] {
        assert!(metrics.contains(line), "no `{line}` in {metrics}");
    }
    // The route now goes to us.test: a US destination, blocked (451) by the policy.
    let reply = client::reverse(
        douane.reverse,
        |alpn| fx.ca.client_config(alpn),
        "app.localhost",
        "app.localhost",
        false,
        "/",
    )
    .await;
    assert_eq!(reply.status, 451, "{}", reply.text());
}
