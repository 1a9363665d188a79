//! The name inside a CONNECT tunnel, on both engines, against the real binary: a TLS
//! ClientHello (made by rustls) or a plain request's `Host` for another name than the
//! CONNECT's is decided too, on the tunnel's connected address, and a refused one closes
//! the tunnel before the upstream receives a byte of it — for a host rule's name and for a
//! name outside an exemption's scope. An allowed name's bytes reach the upstream unchanged.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::client;
use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Engine, Fixture};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;

const GUARD: Duration = Duration::from_secs(10);

const RULES: &str = r#"
[[rule]]
id = "no-denied"
hosts = ["denied.test"]
action = "block"

[[rule]]
id = "us-exemption"
hosts = ["us.test"]
action = "allow"
justification = "contract under migration"
ticket = "T-9"
expires = 2999-12-31
"#;

/// What the upstream received: the bytes of every connection, in order of arrival.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Vec<u8>>>>);

impl Received {
    fn connections(&self) -> Vec<Vec<u8>> {
        self.0.lock().unwrap().clone()
    }
}

/// A raw TCP upstream on 127.0.0.2 (FR) and 127.0.0.3 (US), same port, that records what
/// it reads and answers nothing.
async fn recorder() -> (u16, Received) {
    let received = Received::default();
    loop {
        let first = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = first.local_addr().unwrap().port();
        let Ok(second) = TcpListener::bind(SocketAddr::from(([127, 0, 0, 3], port))).await else {
            continue;
        };
        for listener in [first, second] {
            let received = received.clone();
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let index = {
                        let mut all = received.0.lock().unwrap();
                        all.push(Vec::new());
                        all.len() - 1
                    };
                    let received = received.clone();
                    tokio::spawn(async move {
                        let mut buf = [0u8; 4096];
                        while let Ok(n @ 1..) = stream.read(&mut buf).await {
                            received.0.lock().unwrap()[index].extend_from_slice(&buf[..n]);
                        }
                    });
                }
            });
        }
        return (port, received);
    }
}

async fn start(engine: Engine) -> (Fixture, Douane, u16, Received) {
    let fx = Fixture::new();
    let (port, received) = recorder().await;
    fx.write_policy(&policy("all", "enforce", &[port], RULES));
    fx.write_config(&ConfigSpec {
        engine,
        overrides: standard_overrides(),
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;
    (fx, douane, port, received)
}

/// The first flight of a real TLS client (rustls) for `name`.
fn client_hello(fx: &Fixture, name: &str) -> Vec<u8> {
    let config = fx.ca.client_config(&[b"http/1.1"]);
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

/// Everything the client gets until douane closes the tunnel.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    timeout(GUARD, stream.read_to_end(&mut got))
        .await
        .expect("douane closed the tunnel in time")
        .expect("read");
    got
}

/// Waits a little for bytes that must not come, then returns what the upstream has.
async fn upstream_after_a_while(received: &Received) -> Vec<Vec<u8>> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    received.connections()
}

/// The audit record of a name decided inside a tunnel.
fn record_for<'a>(records: &'a [serde_json::Value], host: &str) -> Option<&'a serde_json::Value> {
    records.iter().find(|r| r["host"] == host)
}

on_both_engines! {
    async fn a_client_hello_for_a_denied_name_is_refused_and_never_reaches_the_upstream(engine: Engine) {
        let (fx, douane, port, received) = start(engine).await;
        let (mut tunnel, head) = client::connect(douane.forward, &format!("fr.test:{port}"), &[])
            .await
            .tunnel();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        tunnel.write_all(&client_hello(&fx, "denied.test")).await.unwrap();
        let got = until_closed(&mut tunnel).await;
        // A fatal access_denied alert, then the close.
        assert_eq!(got, [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49], "{got:?}");
        let upstream = upstream_after_a_while(&received).await;
        assert_eq!(upstream.len(), 1, "the tunnel was connected once: {upstream:?}");
        assert!(upstream[0].is_empty(), "the upstream received {} bytes", upstream[0].len());
        let records = fx.audit_records();
        let r = record_for(&records, "denied.test").expect("a record for the name inside");
        assert_eq!(r["outcome"], "block", "{r}");
        assert_eq!(r["sni"], "denied.test", "{r}");
        assert!(douane.log_count("its first bytes name another host") >= 1);
    }

    async fn a_name_outside_an_exemption_cannot_ride_its_tunnel(engine: Engine) {
        let (fx, douane, port, received) = start(engine).await;
        // us.test is exempt (US address, 127.0.0.3); other.test on that address is not.
        let (mut tunnel, _) = client::connect(douane.forward, &format!("us.test:{port}"), &[])
            .await
            .tunnel();
        tunnel.write_all(&client_hello(&fx, "other.test")).await.unwrap();
        let got = until_closed(&mut tunnel).await;
        assert_eq!(got.first(), Some(&0x15), "a TLS alert: {got:?}");
        let upstream = upstream_after_a_while(&received).await;
        assert!(upstream.iter().all(Vec::is_empty), "the upstream received {upstream:?}");
        let records = fx.audit_records();
        let exempt = record_for(&records, "us.test").expect("the exemption's record");
        assert_eq!(exempt["outcome"], "exempt", "{exempt}");
        let inside = record_for(&records, "other.test").expect("the name inside is recorded");
        assert_eq!(inside["outcome"], "block", "{inside}");
        assert_eq!(inside["sni"], "other.test", "{inside}");
    }

    async fn the_connect_name_in_its_client_hello_goes_through_unchanged(engine: Engine) {
        let (fx, douane, port, received) = start(engine).await;
        let (mut tunnel, _) = client::connect(douane.forward, &format!("fr.test:{port}"), &[])
            .await
            .tunnel();
        let hello = client_hello(&fx, "fr.test");
        tunnel.write_all(&hello).await.unwrap();
        let started = std::time::Instant::now();
        while received.connections().first().map_or(0, Vec::len) < hello.len() {
            assert!(started.elapsed() < GUARD, "the ClientHello did not arrive");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(received.connections()[0] == hello, "the ClientHello changed on the way");
        // Still open: more bytes follow it.
        tunnel.write_all(b"more").await.unwrap();
        let started = std::time::Instant::now();
        while received.connections()[0].len() < hello.len() + 4 {
            assert!(started.elapsed() < GUARD, "the tunnel stopped relaying");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(douane.log_count("its first bytes name another host"), 0);
    }

    async fn a_plain_request_for_another_host_inside_a_tunnel_gets_the_block_page(engine: Engine) {
        let (fx, douane, port, received) = start(engine).await;
        let (mut tunnel, _) = client::connect(douane.forward, &format!("fr.test:{port}"), &[])
            .await
            .tunnel();
        tunnel
            .write_all(b"GET /secret HTTP/1.1\r\nHost: denied.test\r\n\r\n")
            .await
            .unwrap();
        let got = String::from_utf8_lossy(&until_closed(&mut tunnel).await).into_owned();
        assert!(got.starts_with("HTTP/1.1 451"), "{got}");
        assert!(got.contains("denied.test"), "the page names the host: {got}");
        let upstream = upstream_after_a_while(&received).await;
        assert!(upstream.iter().all(Vec::is_empty), "the upstream received {upstream:?}");
        let records = fx.audit_records();
        let r = record_for(&records, "denied.test").expect("a record for the Host inside");
        assert_eq!(r["requested_host"], "denied.test", "{r}");
        let id = r["request_id"].as_str().unwrap();
        assert!(got.contains(id), "the page carries the record's request id {id}");
        drop(douane);
    }
}
