//! The audit log end to end: records written through the async `AuditLog` to real files,
//! verified, tampered with, verified again; a full disk; a restart continuing the chain.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use douane::audit::{
    report, verify_files, AuditConfig, AuditEvent, AuditLog, ReportFormat, SyncMode, VerifyError,
};
use douane::country::Country;
use douane::policy::{Decision, Outcome, Reason, Violation};

fn decision(outcome: Outcome) -> Decision {
    let us = Country::parse("US").expect("US");
    let (reason, violation) = if outcome == Outcome::Allow {
        (Reason::Compliant, None)
    } else {
        (
            Reason::LocationNotAllowed,
            Some(Violation::LocationNotAllowed { location: us }),
        )
    };
    let mut d = common::decisions::us_operated(outcome, us, reason, violation);
    // An organisation name that tries to end the JSON line: it must stay inside its string.
    d.ips[0].class.as_org = Some("MICROSOFT-CORP\n\"}{\"seq\":0".into());
    d
}

fn event<'a>(d: &'a Decision, id: &'a str, path: &'a str) -> AuditEvent<'a> {
    AuditEvent {
        request_id: id,
        listener: "forward",
        client: "127.0.0.1".parse().expect("ip"),
        method: Some("POST"),
        scheme: "https",
        host: "outlook.office365.com",
        port: 443,
        path: Some(path),
        query: None,
        upstream_via: Some("parent-proxy:3128"),
        decision: d,
    }
}

fn config(dir: &Path) -> AuditConfig {
    AuditConfig {
        path: dir.join("douane-audit.jsonl"),
        ..AuditConfig::default()
    }
}

/// Records `n` blocks from concurrent tasks, plus allowed requests that are not recorded.
async fn record_blocks(cfg: &AuditConfig, n: usize) -> Vec<PathBuf> {
    let (log, writer) = AuditLog::start(cfg).expect("start");
    let block = Arc::new(decision(Outcome::Block));
    let allow = Arc::new(decision(Outcome::Allow));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (log, block, allow) = (log.clone(), block.clone(), allow.clone());
        tasks.push(tokio::spawn(async move {
            let id = format!("req-{i}");
            let path = format!("/mail?i={i}\r\nX-Forged: 1");
            log.record(&event(&block, &id, &path))
                .await
                .expect("block recorded");
            log.record(&event(&allow, &id, &path))
                .await
                .expect("allow skipped");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let health = log.health();
    assert!(health.ok, "{health:?}");
    assert_eq!(
        (health.records_written, health.write_failures),
        (n as u64, 0)
    );
    let files = log.files().expect("files");
    drop(log);
    writer
        .await
        .expect("writer stops once every handle is dropped");
    files
}

#[tokio::test]
async fn records_verify_survive_a_restart_and_tampering_is_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    record_blocks(&cfg, 40).await;
    let files = record_blocks(&cfg, 10).await;
    assert_eq!(files.len(), 1, "the restart appends to the same file");

    let summary = verify_files(&files).expect("verifies");
    assert_eq!(
        (summary.records, summary.first_seq, summary.last_seq),
        (50, Some(0), Some(49))
    );
    let text = std::fs::read_to_string(&files[0]).expect("read");
    assert_eq!(
        text.lines().count(),
        50,
        "no allowed request, nothing broke a line"
    );
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("line")).expect("json");
    for key in [
        "ts",
        "seq",
        "request_id",
        "listener",
        "client",
        "method",
        "scheme",
        "host",
        "port",
        "path",
        "via",
        "outcome",
        "reason",
        "rule",
        "policy_version",
        "mode",
        "ips",
        "prev",
        "hash",
    ] {
        assert!(first.get(key).is_some(), "missing {key}: {first}");
    }
    assert_eq!(first["prev"], "0".repeat(64));
    assert_eq!(first["ips"][0]["jurisdiction"], "US");

    let out = report(&[dir.path().to_path_buf()], None, None, ReportFormat::Text).expect("report");
    assert!(out.contains("requests: 50 (block 50,"), "{out}");

    // Tamper: change one block into an allow.
    let tampered = text.replacen("\"outcome\":\"block\"", "\"outcome\":\"allow\"", 1);
    std::fs::write(&files[0], &tampered).expect("write");
    let err = verify_files(&files).expect_err("tampered");
    assert!(
        matches!(
            err,
            VerifyError::HashMismatch {
                seq: 0,
                line: 1,
                ..
            }
        ),
        "{err}"
    );

    // Restore, then delete a record in the middle.
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(20);
    std::fs::write(&files[0], lines.join("\n") + "\n").expect("write");
    let err = verify_files(&files).expect_err("deleted");
    assert_eq!(err.seq(), Some(21));
    assert!(
        err.to_string()
            .contains(":21: 1 record(s) missing: expected seq 20, found seq 21"),
        "{err}"
    );
}

#[tokio::test]
async fn every_record_sync_and_rotation_through_the_async_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = AuditConfig {
        sync: SyncMode::EveryRecord,
        rotate_size_bytes: 8192,
        ..config(dir.path())
    };
    let files = record_blocks(&cfg, 60).await;
    assert!(files.len() > 2, "{files:?}");
    for f in &files {
        let len = std::fs::metadata(f).expect("meta").len();
        assert!(
            len <= 8192,
            "{} is {len} bytes: batches must rotate too",
            f.display()
        );
    }
    let s = verify_files(&[dir.path().to_path_buf()]).expect("verifies across rotated files");
    assert_eq!((s.files, s.records), (files.len(), 60));

    // A middle file removed.
    std::fs::remove_file(&files[1]).expect("rm");
    let err = verify_files(&[dir.path().to_path_buf()]).expect_err("missing file");
    assert!(matches!(err, VerifyError::RotationGap { .. }), "{err}");
}

#[tokio::test]
async fn a_full_disk_fails_the_record_and_the_health() {
    let cfg = AuditConfig {
        path: "/dev/full".into(),
        ..AuditConfig::default()
    };
    let (log, writer) = AuditLog::start(&cfg).expect("start");
    let block = decision(Outcome::Block);
    let err = log
        .record(&event(&block, "r", "/"))
        .await
        .expect_err("disk full");
    assert!(err.to_string().contains("/dev/full"), "{err}");
    let h = log.health();
    assert!(!h.ok);
    assert_eq!(h.write_failures, 1);
    assert!(h.last_error.is_some_and(|e| e.contains("/dev/full")));
    // An allowed request needs no record: it does not touch the failing log.
    let allow = decision(Outcome::Allow);
    log.record(&event(&allow, "r", "/"))
        .await
        .expect("not recorded");
    assert_eq!(log.health().write_failures, 1);
    drop(log);
    writer.await.expect("writer");
}
