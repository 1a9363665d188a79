//! CONNECT tunnels of the real binary on Linux: copied while short, spliced in the kernel
//! once long (douane then holds two pipes), the bytes a client sends right behind its CONNECT head
//! reach the destination first, megabytes cross intact both ways, and the byte counters
//! see them all.
#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Fixture};
use common::upstream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const GUARD: Duration = Duration::from_secs(20);

/// Pipes douane holds open right now.
fn pipes(douane: &Douane) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", douane.pid()))
        .expect("douane's fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("pipe:"))
        .count()
}

/// Reads one HTTP head byte by byte, so nothing behind it is consumed.
async fn head<R: AsyncRead + Unpin>(stream: &mut R) -> String {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read head");
        assert!(n > 0, "closed during a head: {raw:?}");
        raw.push(byte[0]);
    }
    String::from_utf8_lossy(&raw).into_owned()
}

/// The value of `douane_sent_bytes_total{outcome="allow"}` (or received), 0 when absent.
fn counter(douane: &Douane, family: &str) -> u64 {
    let (_, text) = douane.admin_get("/metrics");
    text.lines()
        .find(|l| l.starts_with(&format!("{family}{{outcome=\"allow\"}}")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_tunnel_is_spliced_carries_early_bytes_first_and_is_counted() {
    let fx = Fixture::new();
    let port = upstream::start(&["127.0.0.2"], None).await;
    fx.write_policy(&policy("all", "enforce", &[port], ""));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;
    let before = pipes(&douane);

    // CONNECT and, in the same write, the first bytes for the destination: an upgrade to
    // the upstream's raw echo. hyper reads them with the head; they must go upstream first.
    let authority = format!("fr.test:{port}");
    let early =
        "GET /echo HTTP/1.1\r\nHost: fr.test\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\n";
    let mut stream = TcpStream::connect(douane.forward).await.unwrap();
    let connect = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n{early}");
    stream.write_all(connect.as_bytes()).await.unwrap();
    let answer = timeout(GUARD, head(&mut stream))
        .await
        .expect("200 in time");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let switched = timeout(GUARD, head(&mut stream))
        .await
        .expect("the early bytes reached the upstream");
    assert!(switched.starts_with("HTTP/1.1 101"), "{switched}");

    // The 101 came back through the tunnel: it is running, and short so far: copied,
    // no pipe yet.
    assert_eq!(pipes(&douane), before, "a short tunnel holds no pipe");

    // Megabytes through the upstream's echo, written and read at once.
    let body: Vec<u8> = (0..5u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // The write side stays open until the pipes are counted: a closed one would let douane
    // finish the whole tunnel into the kernel's socket buffers (several megabytes on
    // loopback) before this task reads its first megabyte, and the pipes with it.
    let (mut r, mut w) = stream.split();
    let counted = tokio::sync::Notify::new();
    let send = async {
        w.write_all(&body).await.unwrap();
        counted.notified().await;
        w.shutdown().await.unwrap();
    };
    let mut echoed = Vec::new();
    let receive = async {
        // Once a megabyte came back, both directions have moved more than PROVEN_LONG and
        // the client has not closed: each is spliced, on its own pipe.
        let mut first = vec![0u8; 1 << 20];
        r.read_exact(&mut first).await?;
        let during = pipes(&douane);
        counted.notify_one();
        echoed.extend_from_slice(&first);
        r.read_to_end(&mut echoed).await.map(|_| during)
    };
    let ((), read) = timeout(GUARD, async { tokio::join!(send, receive) })
        .await
        .expect("the echo came back in time");
    let during = read.unwrap();
    assert!(
        during >= before + 2,
        "no splice pipe in a long tunnel: {before} before, {during} during"
    );
    assert_eq!(echoed.len(), body.len());
    assert!(echoed == body, "echoed bytes differ");
    drop(stream);

    // Both directions counted once the tunnel is closed (the pipes with it).
    let sent = (early.len() + body.len()) as u64;
    let received = (switched.len() + body.len()) as u64;
    let started = Instant::now();
    loop {
        let counts = (
            counter(&douane, "douane_sent_bytes_total"),
            counter(&douane, "douane_received_bytes_total"),
        );
        if counts == (sent, received) && pipes(&douane) == before {
            break;
        }
        assert!(
            started.elapsed() < GUARD,
            "counted {counts:?}, expected {:?}; pipes {} (before {before})",
            (sent, received),
            pipes(&douane)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
