//! A CONNECT's end is its tunnel's end, on both engines, against the real binary: the end
//! record of a tunnel is written when the tunnel closes, with the bytes each way, the time
//! it was held open, the status the client got and the connected address — also when the
//! upstream resets it — and what its first bytes were when they named nothing; a tunnel
//! refused by `[tunnel] unnamed = "block"` is a block record of its own (`tunnel_unnamed`)
//! that the chain, the report and the inventory read.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::client;
use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Engine, Fixture};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const GUARD: Duration = Duration::from_secs(10);

/// What each upstream connection does.
#[derive(Clone, Copy)]
enum Upstream {
    /// Echoes every byte, and closes once the client closed its side.
    Echo,
    /// Reads the first byte, writes `n` bytes, then resets the connection.
    ResetAfter(usize),
}

/// A raw TCP upstream on 127.0.0.2 (FR).
async fn upstream(kind: Upstream) -> u16 {
    let listener = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                match kind {
                    Upstream::Echo => {
                        let (mut r, mut w) = stream.split();
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                        let _ = w.shutdown().await;
                    }
                    Upstream::ResetAfter(n) => {
                        let mut byte = [0u8; 1];
                        let _ = stream.read_exact(&mut byte).await;
                        let _ = stream.write_all(&vec![7u8; n]).await;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let _ = stream.set_zero_linger();
                        drop(stream); // RST
                    }
                }
            });
        }
    });
    port
}

/// douane with allowed requests recorded, and `tunnel` as its `[tunnel]` table.
async fn start(engine: Engine, port: u16, tunnel: &str) -> (Fixture, Douane) {
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[port], ""));
    fx.write_config(&ConfigSpec {
        engine,
        overrides: standard_overrides(),
        extra: format!("[tunnel]\n{tunnel}\n"),
        ..ConfigSpec::default()
    });
    let config = std::fs::read_to_string(fx.path("douane.toml")).unwrap();
    let config = config.replace(
        "path = \"audit/douane-audit.jsonl\"",
        "path = \"audit/douane-audit.jsonl\"\nrecord_allowed = true",
    );
    assert!(config.contains("record_allowed = true"));
    std::fs::write(fx.path("douane.toml"), config).unwrap();
    let douane = fx.start().await;
    (fx, douane)
}

/// The request id of a CONNECT's `200`.
fn id_of(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("douane-request-id: "))
        .expect("request id on the 200")
        .trim()
        .to_owned()
}

/// Every end record of request `id`.
fn ends_of(fx: &Fixture, id: &str) -> Vec<serde_json::Value> {
    fx.audit_lines()
        .into_iter()
        .filter(|r| r["event"] == "end" && r["request_id"] == id)
        .collect()
}

/// The first flight of a real TLS client (rustls) for `name`: an IP address sends no SNI.
fn client_hello(fx: &Fixture, name: &str) -> Vec<u8> {
    let config = fx.ca.client_config(&[b"http/1.1"]);
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

async fn open(douane: &Douane, port: u16) -> (TcpStream, String) {
    let (tunnel, head) = client::connect(douane.forward, &format!("fr.test:{port}"), &[])
        .await
        .tunnel();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let id = id_of(&head);
    (tunnel, id)
}

on_both_engines! {
    async fn a_tunnel_finishes_when_it_closes_with_its_bytes_and_its_duration(engine: Engine) {
        let port = upstream(Upstream::Echo).await;
        let (fx, douane) = start(engine, port, "").await;
        let (mut tunnel, id) = open(&douane, port).await;
        let opened = Instant::now();
        let up: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (mut r, mut w) = tunnel.split();
        let mut back = vec![0u8; up.len()];
        let (wrote, read) = timeout(GUARD, async {
            tokio::join!(w.write_all(&up), r.read_exact(&mut back))
        })
        .await
        .expect("the echo came back in time");
        wrote.unwrap();
        read.unwrap();
        assert!(back == up, "the echo differs");
        // Open, and not finished: the CONNECT's end is the tunnel's.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(ends_of(&fx, &id).is_empty(), "an end record while the tunnel is open");
        w.shutdown().await.unwrap();
        let mut rest = Vec::new();
        timeout(GUARD, r.read_to_end(&mut rest)).await.expect("closed in time").unwrap();
        let held = opened.elapsed();
        drop(tunnel);
        let end = fx.audit_end(&id).await.expect("the end record, once the tunnel closed");
        assert_eq!(end["status"], 200, "{end}");
        assert_eq!(end["outcome"], "allow", "{end}");
        assert_eq!(end["bytes_from_client"], up.len() as u64, "{end}");
        assert_eq!(end["bytes_to_client"], up.len() as u64, "{end}");
        let connected: SocketAddr = end["connected"].as_str().expect("connected").parse().unwrap();
        assert_eq!(connected, SocketAddr::from(([127, 0, 0, 2], port)), "{end}");
        let duration = Duration::from_micros(end["duration_us"].as_u64().expect("duration"));
        assert!(duration >= Duration::from_millis(400), "{duration:?} for a tunnel held {held:?}");
        // Neither TLS nor HTTP: said in the record, let through (`unnamed = "allow"`).
        assert_eq!(end["first_bytes"], "other_protocol", "{end}");
        assert_eq!(ends_of(&fx, &id).len(), 1, "one end record");
        // The gate record came first, without the end's facts.
        let gate = fx.audit_records().into_iter().find(|r| r["request_id"] == id.as_str());
        let gate = gate.expect("the gate record");
        assert!(gate["status"].is_null() && gate["bytes_to_client"].is_null(), "{gate}");
        assert_eq!(douane.log_count("request ended without finish"), 0);
    }

    async fn a_tunnel_cut_by_douane_stopping_still_has_its_end_record_marked_cut(engine: Engine) {
        let port = upstream(Upstream::Echo).await;
        let (fx, mut douane) = start(engine, port, "\n[limits]\nshutdown_grace_ms = 300").await;
        let (mut tunnel, id) = open(&douane, port).await;
        tunnel.write_all(b"still talking").await.unwrap();
        let mut back = [0u8; 13];
        timeout(GUARD, tunnel.read_exact(&mut back)).await.expect("echoed").unwrap();
        // The tunnel stays open through the drain: its grace ends, the task is dropped.
        douane.signal("TERM");
        let status = douane.wait_exit(GUARD).await.expect("douane stopped after its grace");
        assert!(status.success(), "{status:?}");
        let ends = ends_of(&fx, &id);
        assert_eq!(ends.len(), 1, "one end record for the cut tunnel: {ends:?}");
        let end = &ends[0];
        assert_eq!(end["cut"], true, "{end}");
        assert_eq!(end["status"], 200, "{end}");
        assert!(end["connected"].is_string(), "{end}");
        // What the dropped relay had counted is not known: no figure rather than a wrong one.
        assert!(end["bytes_from_client"].is_null() && end["bytes_to_client"].is_null(), "{end}");
        assert_eq!(douane.log_count("request ended without finish"), 0);
        let (ok, out) = fx.audit_verify();
        assert!(ok, "{out}");
        drop(tunnel);
    }

    async fn a_tunnel_the_upstream_resets_still_finishes_once_with_what_it_moved(engine: Engine) {
        let port = upstream(Upstream::ResetAfter(5000)).await;
        let (fx, douane) = start(engine, port, "").await;
        let (mut tunnel, id) = open(&douane, port).await;
        tunnel.write_all(b"x").await.unwrap();
        let mut got = vec![0u8; 5000];
        timeout(GUARD, tunnel.read_exact(&mut got)).await.expect("bytes in time").unwrap();
        // The reset reaches the client as a close or an error.
        let mut rest = Vec::new();
        let _ = timeout(GUARD, tunnel.read_to_end(&mut rest)).await.expect("closed in time");
        let end = fx.audit_end(&id).await.expect("an end record after the reset");
        assert_eq!(end["status"], 200, "{end}");
        assert_eq!(end["bytes_from_client"], 1, "{end}");
        assert_eq!(end["bytes_to_client"], 5000, "{end}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(ends_of(&fx, &id).len(), 1, "exactly one end record");
        assert_eq!(douane.log_count("request ended without finish"), 0);
    }

    async fn an_unnamed_tunnel_let_through_says_what_its_first_bytes_were(engine: Engine) {
        let port = upstream(Upstream::Echo).await;
        let (fx, douane) = start(engine, port, "").await;
        let (mut tunnel, id) = open(&douane, port).await;
        let hello = client_hello(&fx, "127.0.0.2");
        tunnel.write_all(&hello).await.unwrap();
        let mut back = vec![0u8; hello.len()];
        timeout(GUARD, tunnel.read_exact(&mut back)).await.expect("relayed").unwrap();
        assert!(back == hello, "the ClientHello went through unchanged");
        tunnel.shutdown().await.unwrap();
        let mut rest = Vec::new();
        timeout(GUARD, tunnel.read_to_end(&mut rest)).await.expect("closed").unwrap();
        let end = fx.audit_end(&id).await.expect("the end record");
        assert_eq!(end["first_bytes"], "no_sni", "{end}");
        assert_eq!(end["bytes_from_client"], hello.len() as u64, "{end}");
        let blocks: Vec<_> = fx.audit_records().into_iter().filter(|r| r["outcome"] == "block").collect();
        assert!(blocks.is_empty(), "nothing blocked: {blocks:?}");
        drop(douane);
    }

    async fn an_unnamed_tunnel_refused_is_a_block_record_the_report_and_inventory_show(engine: Engine) {
        let port = upstream(Upstream::Echo).await;
        let (fx, douane) = start(engine, port, "unnamed = \"block\"").await;
        let (mut tunnel, id) = open(&douane, port).await;
        tunnel.write_all(&client_hello(&fx, "127.0.0.2")).await.unwrap();
        let mut got = Vec::new();
        timeout(GUARD, tunnel.read_to_end(&mut got)).await.expect("closed in time").unwrap();
        assert_eq!(got, [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49], "a TLS access_denied alert");
        let end = fx.audit_end(&id).await.expect("the CONNECT's end record");
        assert_eq!(end["first_bytes"], "no_sni", "{end}");
        assert_eq!((&end["bytes_from_client"], &end["bytes_to_client"]), (&0.into(), &0.into()), "{end}");
        let records = fx.audit_records();
        let block = records
            .iter()
            .find(|r| r["outcome"] == "block")
            .unwrap_or_else(|| panic!("a block record: {records:?}"));
        assert_eq!(block["reason"], "tunnel_unnamed", "{block}");
        assert_eq!(block["first_bytes"], "no_sni", "{block}");
        assert_eq!(block["tunnel"], id.as_str(), "linked to its CONNECT: {block}");
        assert_eq!(block["host"], "fr.test", "{block}");
        assert_ne!(block["request_id"], id.as_str(), "a request of its own: {block}");
        let block_id = block["request_id"].as_str().unwrap().to_owned();
        assert!(fx.audit_end(&block_id).await.is_some(), "the block has its end record");
        drop(douane);
        let (ok, text) = fx.audit_verify();
        assert!(ok, "{text}");
        let report = douane_cli(&fx, &["audit", "report"]);
        assert!(report.contains("Tunnel sans nom vérifiable"), "{report}");
        let inventory = douane_cli(&fx, &["audit", "inventory", "--lang", "en"]);
        assert!(inventory.contains("fr.test"), "{inventory}");
        assert!(inventory.contains("blocked 1"), "{inventory}");
    }
}

/// Runs the douane CLI on the fixture's audit directory; its standard output.
fn douane_cli(fx: &Fixture, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(args)
        .arg(fx.path("audit"))
        .output()
        .expect("run douane");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
