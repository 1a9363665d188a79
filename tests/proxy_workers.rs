//! `--workers N`: N threads, each with its own listening socket (`SO_REUSEPORT`) and its own
//! upstream pools. New connections are spread over the workers (and counted per worker in
//! `douane_worker_connections_total`), each worker reuses the upstream sockets it opened,
//! a drain stops every worker, and a port that a running douane holds still fails the start
//! of another one instead of being shared with it.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::proxy::{Engine, Fixture};
use common::raw::{self, RawUpstream};

/// The value of each `douane_worker_connections_total` series, by worker.
fn per_worker(metrics: &str) -> Vec<(String, f64)> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("douane_worker_connections_total{worker=\""))
        .filter_map(|l| {
            let (worker, value) = l.split_once("\"} ")?;
            Some((worker.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_spread_over_the_workers_and_each_keeps_its_upstream_sockets() {
    let up = RawUpstream::start().await;
    let fx = Fixture::new();
    fx.write_enforcing(Engine::Direct, up.port, vec![]);
    let mut douane = fx.start_workers(3).await;

    // One request per client connection, one after the other: a connection lands on any
    // worker, and each worker reuses the upstream socket it opened for its first one.
    const CLIENTS: usize = 60;
    let port = up.port;
    let request = format!(
        "GET http://fr.test:{port}/w HTTP/1.1\r\nHost: fr.test:{port}\r\nConnection: close\r\n\r\n"
    );
    for _ in 0..CLIENTS {
        let answer = raw::plain(douane.forward, request.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(
            raw::statuses(&answer),
            [200],
            "{}",
            String::from_utf8_lossy(&answer)
        );
        // The upstream socket is back in its worker's pool before the next client comes.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    let (_, metrics) = douane.admin_get("/metrics");
    let workers = per_worker(&metrics);
    let names: Vec<&str> = workers.iter().map(|(w, _)| w.as_str()).collect();
    // 3 workers, 60 connections hashed by the kernel: that one gets none is a 1-in-10^10 chance.
    assert_eq!(names, ["0", "1", "2"], "{metrics}");
    assert!(workers.iter().all(|(_, n)| *n > 0.0), "{workers:?}");
    let total: f64 = workers.iter().map(|(_, n)| n).sum();
    assert_eq!(total, CLIENTS as f64, "{workers:?}");
    // One upstream socket per worker, each reused by all of that worker's requests.
    assert_eq!(up.connections.load(Ordering::SeqCst), 3);
    assert_eq!(up.targets().len(), CLIENTS);

    // Asked to stop, every worker drains and the process exits cleanly.
    douane.signal("TERM");
    let status = douane.wait_exit(Duration::from_secs(15)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    for worker in ["0", "1", "2"] {
        let drained = douane.logs().iter().any(|l| {
            l.contains("\"message\":\"draining\"")
                && l.contains("\"listener\":\"forward\"")
                && l.contains(&format!("\"worker\":{worker}"))
        });
        assert!(
            drained,
            "worker {worker} did not drain:\n{}",
            douane.logs().join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_a_running_douane_holds_fails_the_next_start_with_its_workers_too() {
    let first = Fixture::new();
    first.write_enforcing(Engine::Direct, 9, vec![]);
    let running = first.start_workers(2).await;

    // A second instance, same user, same forward port: it must not join the first's
    // SO_REUSEPORT group and take half of its connections.
    let second = Fixture::new();
    second.write_enforcing(Engine::Direct, 9, vec![]);
    let config = std::fs::read_to_string(second.path("douane.toml")).unwrap();
    let taken = format!("listen = \"{}\"", running.forward);
    let config = config.replacen("listen = \"127.0.0.1:0\"", &taken, 1);
    assert!(config.contains(&taken));
    std::fs::write(second.path("douane.toml"), config).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(["run", "--workers", "2", "-c", "douane.toml"])
        .current_dir(second.dir.path())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .expect("the second douane exits")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("the port is already in use"), "{text}");

    // The first still answers on every one of its workers.
    let blocked = b"GET http://us.test:9/ HTTP/1.1\r\nHost: us.test:9\r\nConnection: close\r\n\r\n";
    for _ in 0..10 {
        let answer = raw::plain(running.forward, blocked, Duration::from_secs(5)).await;
        assert_eq!(raw::statuses(&answer), [451]);
    }
}
