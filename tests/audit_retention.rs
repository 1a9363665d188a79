//! Retention inside `run`: a douane whose `[audit]` sets `retention_allowed_days` and
//! `retention_blocks_days` prunes the rotated files on its own (at start, then every
//! `prune_interval_s`), allowed requests and blocks each after their own period, and the
//! log still verifies, against the checkpoint signed before the prune too.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::client;
use common::proxy::{Engine, Fixture};
use common::upstream;
use douane::audit::{AuditConfig, AuditEvent, AuditWriter};
use douane::policy::{Decision, Outcome};

fn decision(outcome: Outcome) -> Decision {
    common::decisions::located_in_us(outcome)
}

fn event<'a>(d: &'a Decision, host: &'a str) -> AuditEvent<'a> {
    AuditEvent {
        request_id: "old",
        listener: "forward",
        client: "127.0.0.1".parse().expect("ip"),
        method: Some("GET"),
        scheme: "https",
        host,
        port: 443,
        path: Some("/"),
        query: None,
        upstream_via: None,
        decision: d,
    }
}

fn douane(args: &[&str], fx: &Fixture) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(args)
        .current_dir(fx.dir.path())
        .output()
        .expect("run douane");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn douane_prunes_old_records_by_itself_and_the_log_still_verifies() {
    let fx = Fixture::new();
    let port = upstream::start(&["127.0.0.2", "127.0.0.3"], None).await;
    fx.write_enforcing(Engine::Direct, port, Vec::new());
    let config = std::fs::read_to_string(fx.path("douane.toml")).unwrap();
    let config = config.replace(
        "path = \"audit/douane-audit.jsonl\"",
        "path = \"audit/douane-audit.jsonl\"\nretention_allowed_days = 180\nretention_blocks_days = 365\nprune_interval_s = 1",
    );
    std::fs::write(fx.path("douane.toml"), config).unwrap();

    // The log of 200 days ago (ten allowed requests, ten blocks), then one record of today:
    // the old file is a rotated one.
    let (block, allow) = (decision(Outcome::Block), decision(Outcome::Allow));
    let cfg = AuditConfig {
        path: fx.path("audit/douane-audit.jsonl"),
        record_allowed: true,
        rotate_size_bytes: 4096, // files by size: the old records are in rotated files
        ..AuditConfig::default()
    };
    let mut w = AuditWriter::open(&cfg).expect("open");
    let then = time::OffsetDateTime::now_utc() - time::Duration::days(200);
    for i in 0..20 {
        let host = format!("h{i}.example");
        let d = if i % 2 == 0 { &block } else { &allow };
        w.append_dated(&event(d, &host), then).expect("append");
    }
    w.append(&event(&block, "today.example")).expect("append");
    w.checkpoint().expect("checkpoint");
    let files = w.files().expect("files");
    drop(w);
    assert!(files.len() >= 3, "{files:?}");
    let rotated = &files[..files.len() - 1];
    let before = fx.path("before.checkpoint");
    std::fs::copy(fx.path("audit/douane-audit.tlog/checkpoint"), &before).expect("copy");

    let mut d = fx.start().await;
    // Pruned at start, without anyone running `douane audit prune`.
    let started = Instant::now();
    let old_text = || -> String {
        rotated
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("rotated file"))
            .collect()
    };
    let text = loop {
        let text = old_text();
        // The allowed records of the rotated files (not the newest one) are all pruned.
        let unpruned_allowed = text
            .lines()
            .filter(|l| l.contains("\"outcome\":\"allow\"") && !l.contains("\"pruned\""))
            .count();
        if unpruned_allowed == 0 {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nothing pruned: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        !text.contains("h1.example"),
        "allowed, 200 days > 180: {text}"
    );
    assert!(
        text.contains("h0.example"),
        "a block, 200 days < 365: kept: {text}"
    );
    let allowed_left = text.matches("\"outcome\":\"allow\"").count();
    assert_eq!(
        text.matches("\"event\":\"pruned\"").count(),
        allowed_left,
        "every allowed record of the rotated files pruned, no block: {text}"
    );
    assert!(allowed_left >= 4, "{text}");

    // Still serving and recording, then stopped (final checkpoint).
    let reply = client::forward(d.forward, "GET", &format!("http://us.test:{port}/"), &[]).await;
    assert_eq!(reply.status, 451, "{}", reply.text());
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(10)).await.is_some());

    // The chain and the tree: against the checkpoint signed before the prune, and the last.
    for cp in [
        before.to_string_lossy().into_owned(),
        "audit/douane-audit.tlog/checkpoint".into(),
    ] {
        let args = ["audit", "verify", "audit", "--checkpoint", &cp, "--key"];
        let (ok, out) = douane(
            &[&args[..], &["audit/douane-audit.tlog/key.pub"]].concat(),
            &fx,
        );
        assert!(ok, "{cp}: {out}");
    }
}
