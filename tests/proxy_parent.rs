//! A parent proxy (a departmental proxy douane sits behind): douane decides on the address
//! it resolved itself, then goes out through the parent with CONNECT to that checked
//! address, never a name; the audit record names the parent hop.

mod common;

use std::sync::{Arc, Mutex};

use common::client;
use common::proxy::{policy, standard_overrides, ConfigSpec, Fixture};
use common::upstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A minimal CONNECT-only parent proxy that remembers the targets it was asked for.
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
                let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                log.lock().unwrap().push(target.clone());
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
    async fn allowed_traffic_goes_through_the_parent_to_the_checked_address(engine: Engine) {
        let fx = Fixture::new();
        let port = upstream::start(&["127.0.0.2", "127.0.0.3"], None).await;
        let (parent, seen) = start_parent().await;
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
        assert_eq!(*seen.lock().unwrap(), vec![format!("127.0.0.2:{port}")]);

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
