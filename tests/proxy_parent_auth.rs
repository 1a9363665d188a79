//! A parent proxy that wants credentials: `parent_proxy = "http://user:password@host:port"`
//! sends them as `Proxy-Authorization: Basic …` on every CONNECT to the parent, and they
//! appear nowhere else (not in the audit record's parent hop).

mod common;

use std::sync::{Arc, Mutex};

use common::client;
use common::proxy::{policy, standard_overrides, ConfigSpec, Fixture};
use common::upstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// base64("alice:s@cret")
const EXPECTED: &str = "Proxy-Authorization: Basic YWxpY2U6c0BjcmV0\r\n";

/// A parent that answers 407 to a CONNECT without the expected credentials; it remembers
/// each head it was sent.
async fn start_parent() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                log.lock().unwrap().push(head.clone());
                if !head.contains(EXPECTED) {
                    let _ = client
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let Ok(mut upstream) = TcpStream::connect(&target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                let _ = client.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, seen)
}

on_both_engines! {
    async fn parent_proxy_credentials_are_sent_as_proxy_authorization(engine: Engine) {
        let fx = Fixture::new();
        let port = upstream::start(&["127.0.0.2"], None).await;
        let (parent, seen) = start_parent().await;
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
