//! A CONNECT-only parent proxy on loopback (the departmental proxy douane may sit behind):
//! it remembers each head it was sent and tunnels to the target; with `required`, a head
//! without that line is answered 407.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The heads the parent was sent, in order.
pub type Heads = Arc<Mutex<Vec<String>>>;

/// Starts the parent; returns its address and the heads it is sent.
pub async fn start(required: Option<&'static str>) -> (SocketAddr, Heads) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Heads::default();
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
                if required.is_some_and(|line| !head.contains(line)) {
                    let _ = client
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let Ok(mut upstream) = TcpStream::connect(target(&head)).await else {
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

/// The CONNECT target of each head the parent was sent.
pub fn targets(seen: &Heads) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|head| target(head).to_owned())
        .collect()
}

fn target(head: &str) -> &str {
    head.split_whitespace().nth(1).unwrap_or("")
}
