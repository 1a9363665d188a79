//! A log written by an earlier douane (`tests/golden/audit/`, written at `fb7f3af` by
//! `write_golden_log` below: request records with hostile values, a cut line, the chain
//! restart after it, a signed checkpoint) still verifies, chain and checkpoint, with today's
//! reader; and today's writer writes the same bytes for the same records. What it guards:
//! the speed work on verify (fields borrowed from the line) and on append must change nothing
//! on disk, nor what an old log reads as.

mod common;

use std::path::{Path, PathBuf};

use douane::audit::proof;
use douane::audit::tlog::read_verifier;
use douane::audit::{verify_files, AuditConfig, AuditEvent, AuditWriter, VerifyError};
use douane::country::Country;
use douane::policy::{Decision, Outcome, Reason, Violation};
use time::macros::datetime;
use time::OffsetDateTime;

/// Relative to the package (the directory tests run in): the restart's detail, which names
/// the file it found cut, does not hold the path of the checkout that wrote it.
fn golden_dir() -> PathBuf {
    PathBuf::from("tests/golden/audit")
}

fn decision() -> Decision {
    let us = Country::parse("US").expect("US");
    let mut d = common::decisions::us_operated(
        Outcome::Block,
        us,
        Reason::LocationNotAllowed,
        Some(Violation::LocationNotAllowed { location: us }),
    );
    // Escapes in the body: a quote, a backslash, a newline, a non-ASCII name.
    d.ips[0].class.as_org = Some("MICROSOFT-CORP \"é\" \\ \n{\"seq\":0}".into());
    d
}

fn event<'a>(d: &'a Decision, host: &'a str) -> AuditEvent<'a> {
    AuditEvent {
        request_id: "req-golden",
        listener: "forward",
        client: "192.0.2.7".parse().expect("ip"),
        method: Some("GET"),
        scheme: "https",
        host,
        port: 443,
        path: Some("/a b/ü?q=\"1\""),
        query: None,
        upstream_via: None,
        decision: d,
    }
}

fn config(dir: &Path) -> AuditConfig {
    AuditConfig {
        path: dir.join("douane-audit.jsonl"),
        rotate_daily: false,
        origin: Some("golden.example/douane-audit".into()),
        ..AuditConfig::default()
    }
}

fn at(i: i64) -> OffsetDateTime {
    datetime!(2026-12-01 12:00:00 UTC) + time::Duration::seconds(i)
}

const HOSTS: [&str; 5] = [
    "a.example",
    "b.example",
    "crm.example.com",
    "xn--bcher-kva.example",
    "z.example",
];

/// Writes the golden log into `dir`: five records, a cut line, the restart and two more
/// records, a checkpoint. Run by `write_golden_log` (ignored) to make the fixture.
fn write_log(dir: &Path) {
    let d = decision();
    let cfg = config(dir);
    let mut w = AuditWriter::open(&cfg).expect("open");
    for (i, host) in HOSTS.iter().enumerate() {
        w.append_dated(&event(&d, host), at(i as i64))
            .expect("append");
    }
    let file = w.current_file().expect("a file").to_path_buf();
    drop(w);
    let mut text = std::fs::read(&file).expect("read");
    text.extend_from_slice(b"{\"ts\":\"2026-12-01T12:00:05Z\",\"seq\":5,\"requ");
    std::fs::write(&file, text).expect("cut");
    let mut w = AuditWriter::open(&cfg).expect("reopen");
    for (i, host) in HOSTS.iter().take(2).enumerate() {
        w.append_dated(&event(&d, host), at(10 + i as i64))
            .expect("append");
    }
    w.checkpoint().expect("checkpoint");
}

/// Regenerates the fixture (`cargo test --test audit_golden -- --ignored`): only when the
/// format changes on purpose, with a version the reader knows.
#[test]
#[ignore]
fn write_golden_log() {
    let dir = golden_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    write_log(&dir);
    // The private key and the tree cache are not part of the fixture.
    let tlog = dir.join("douane-audit.tlog");
    for f in ["key", "tree"] {
        let _ = std::fs::remove_file(tlog.join(f));
    }
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_golden_log_still_verifies_chain_and_checkpoint() {
    let dir = golden_dir();
    let sum = verify_files(std::slice::from_ref(&dir)).expect("the golden log verifies");
    assert_eq!(sum.records, 8, "{sum:?}");
    assert_eq!((sum.first_seq, sum.last_seq), (Some(0), Some(7)));
    assert_eq!(sum.first_ts.as_deref(), Some("2026-12-01T12:00:00Z"));
    assert_eq!(sum.last_ts.as_deref(), Some("2026-12-01T12:00:11Z"));
    assert_eq!(sum.restarts.len(), 1, "{sum:?}");
    assert_eq!(sum.restarts[0].seq, 5);
    assert!(
        sum.restarts[0]
            .detail
            .contains("its last line has no newline"),
        "{}",
        sum.restarts[0].detail
    );
    let key =
        read_verifier(&dir.join("douane-audit.tlog/key.pub").to_string_lossy()).expect("key.pub");
    let cp = proof::verify_against(
        std::slice::from_ref(&dir),
        &dir.join("douane-audit.tlog/checkpoint"),
        &key,
    )
    .expect("the golden log verifies against its checkpoint");
    assert_eq!(cp.checkpoint.size, 8);
    assert_eq!(cp.beyond, 0);
    assert_eq!(cp.chain.last_hash, sum.last_hash);
}

#[test]
fn an_altered_copy_of_the_golden_log_does_not_verify() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let files = log_files(&golden_dir());
    for f in &files {
        std::fs::copy(f, tmp.path().join(f.file_name().expect("name"))).expect("copy");
    }
    let first = tmp.path().join(files[0].file_name().expect("name"));
    let text = std::fs::read_to_string(&first).expect("read");
    std::fs::write(&first, text.replacen("b.example", "c.example", 1)).expect("write");
    match verify_files(&[tmp.path().to_path_buf()]) {
        Err(VerifyError::HashMismatch { seq, .. }) => assert_eq!(seq, 1),
        other => panic!("expected a hash mismatch at seq 1, got {other:?}"),
    }
}

/// Today's writer, given the same records at the same times, writes the golden bytes. The
/// restart's detail names its file (another directory here), so from the restart on, the
/// hashes differ and the lines are compared up to their chain fields.
#[test]
fn todays_writer_writes_the_golden_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_log(tmp.path());
    let golden = log_files(&golden_dir());
    let ours = log_files(tmp.path());
    // A file is named after the day it was opened (the records here are dated 2026-12-01,
    // the writer opens its first file on the day the test runs): the names are compared
    // without their date.
    let names = |v: &[PathBuf]| -> Vec<String> {
        v.iter()
            .map(|p| {
                let name = p.file_name().expect("name").to_string_lossy().into_owned();
                let parts: Vec<&str> = name.splitn(3, '.').collect();
                match parts.as_slice() {
                    [stem, date, rest] if date.len() == 10 => format!("{stem}.DATE.{rest}"),
                    _ => name,
                }
            })
            .collect()
    };
    assert_eq!(names(&ours), names(&golden));
    let read = |files: &[PathBuf]| -> Vec<String> {
        files
            .iter()
            .flat_map(|f| {
                let text = std::fs::read_to_string(f).expect("read");
                text.lines().map(str::to_owned).collect::<Vec<_>>()
            })
            .collect()
    };
    let (want, got) = (read(&golden), read(&ours));
    assert_eq!(want.len(), got.len());
    let restart = want
        .iter()
        .position(|l| l.contains("\"chain_restart\""))
        .expect("a restart in the golden log");
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        if i < restart {
            assert_eq!(g, w, "line {i}");
            continue;
        }
        let unchained = |l: &str| l.split(",\"prev\"").next().unwrap_or("").to_owned();
        let from_file = |l: &str| match l.find(" was left as found") {
            Some(at) => l[at..].to_owned(),
            None => l.to_owned(),
        };
        assert_eq!(
            from_file(&unchained(g)),
            from_file(&unchained(w)),
            "line {i}"
        );
    }
}
