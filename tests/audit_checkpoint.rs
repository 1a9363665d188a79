//! The signed transparency log end to end, on real files: the whole tamper catalogue caught
//! against a checkpoint (edit, insert, delete, swap, cut tail, newest and oldest rotated file
//! removed, the log rebuilt, rebuilt with a new key); proof bundles checked offline and a
//! tampered one refused; consistency across rotation and restart; the `douane audit`
//! commands on the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use douane::audit::merkle::verify_consistency;
use douane::audit::note::{Checkpoint, VerifierKey};
use douane::audit::proof::{self, CheckpointError, LogOnDisk};
use douane::audit::tlog::read_verifier;
use douane::audit::{AuditConfig, AuditEvent, AuditLog, AuditWriter, VerifyError};
use douane::policy::{Decision, Outcome, Reason};

fn decision() -> Decision {
    common::decisions::located_in_us(Outcome::Block)
}

fn event<'a>(d: &'a Decision, host: &'a str) -> AuditEvent<'a> {
    AuditEvent {
        request_id: "req",
        listener: "forward",
        client: "127.0.0.1".parse().expect("ip"),
        method: Some("POST"),
        scheme: "https",
        host,
        port: 443,
        path: Some("/mail?user=1"),
        query: None,
        upstream_via: None,
        decision: d,
    }
}

fn config(dir: &Path) -> AuditConfig {
    AuditConfig {
        path: dir.join("douane-audit.jsonl"),
        rotate_size_bytes: 4096,
        origin: Some("test.example/douane-audit".into()),
        ..AuditConfig::default()
    }
}

/// Appends `n` records (hosts `h<start+i>.example`) and signs a checkpoint.
fn write(cfg: &AuditConfig, start: usize, n: usize) -> Vec<PathBuf> {
    let d = decision();
    let mut w = AuditWriter::open(cfg).expect("open");
    for i in start..start + n {
        let host = format!("h{i}.example");
        w.append(&event(&d, &host)).expect("append");
    }
    w.checkpoint().expect("checkpoint");
    w.files().expect("files")
}

struct Log {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    files: Vec<PathBuf>,
    checkpoint: PathBuf,
    key: VerifierKey,
}

fn log_of(n: usize) -> Log {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let files = write(&config(&path), 0, n);
    assert!(files.len() >= 3, "several rotated files: {files:?}");
    let key =
        read_verifier(&path.join("douane-audit.tlog/key.pub").to_string_lossy()).expect("pub");
    Log {
        checkpoint: path.join("douane-audit.tlog/checkpoint"),
        dir: path,
        files,
        _dir: dir,
        key,
    }
}

fn verify(log: &Log) -> Result<proof::CheckpointSummary, CheckpointError> {
    proof::verify_against(std::slice::from_ref(&log.dir), &log.checkpoint, &log.key)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn put(path: &Path, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).expect("write");
}

#[test]
fn an_intact_log_verifies_against_its_checkpoint() {
    let log = log_of(40);
    let s = verify(&log).expect("intact");
    assert_eq!((s.checkpoint.size, s.beyond, s.chain.records), (40, 0, 40));
    let cp_text = std::fs::read_to_string(&log.checkpoint).expect("checkpoint");
    assert!(
        cp_text.starts_with("test.example/douane-audit\n40\n"),
        "{cp_text}"
    );
    assert!(
        cp_text.contains("\n\n\u{2014} test.example/douane-audit "),
        "{cp_text}"
    );
    // The key is private to douane.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(log.dir.join("douane-audit.tlog/key"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn an_edited_record_is_named() {
    let log = log_of(40);
    let f = &log.files[1];
    let mut ls = lines(f);
    ls[2] = ls[2].replacen(".example", ".exampla", 1);
    put(f, &ls);
    let err = verify(&log).expect_err("edited");
    assert!(
        matches!(&err, CheckpointError::Chain(VerifyError::HashMismatch { file, line: 3, .. }) if file == f),
        "{err}"
    );
}

#[test]
fn inserted_deleted_and_swapped_records_are_named() {
    let log = log_of(40);
    let f = &log.files[1];
    let orig = lines(f);

    let mut ls = orig.clone();
    ls.insert(3, orig[1].clone());
    put(f, &ls);
    let err = verify(&log).expect_err("inserted");
    assert!(matches!(&err, CheckpointError::Chain(_)), "{err}");
    assert!(
        err.to_string().contains(&format!("{}:4", f.display())),
        "{err}"
    );

    let mut ls = orig.clone();
    ls.remove(2);
    put(f, &ls);
    let err = verify(&log).expect_err("deleted");
    assert!(
        matches!(
            &err,
            CheckpointError::Chain(VerifyError::Gap { line: 3, .. })
        ),
        "{err}"
    );

    let mut ls = orig.clone();
    ls.swap(1, 2);
    put(f, &ls);
    let err = verify(&log).expect_err("swapped");
    assert!(
        matches!(
            &err,
            CheckpointError::Chain(VerifyError::Swapped { line: 2, .. })
        ),
        "{err}"
    );
}

#[test]
fn a_cut_tail_and_a_removed_newest_file_are_found() {
    let log = log_of(40);
    let newest = log.files.last().expect("newest");
    let ls = lines(newest);
    put(newest, &ls[..ls.len() - 3]);
    let err = verify(&log).expect_err("cut");
    assert!(
        matches!(
            &err,
            CheckpointError::CutTail {
                size: 40,
                have: 37,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("seq 37..39 were cut"), "{err}");

    std::fs::remove_file(newest).expect("rm");
    let err = verify(&log).expect_err("newest removed");
    assert!(
        matches!(&err, CheckpointError::CutTail { size: 40, .. }),
        "{err}"
    );
}

#[test]
fn a_removed_oldest_file_is_found() {
    let log = log_of(40);
    std::fs::remove_file(&log.files[0]).expect("rm");
    let err = verify(&log).expect_err("oldest removed");
    assert!(
        matches!(&err, CheckpointError::MissingStart { .. }),
        "{err}"
    );
}

#[test]
fn a_rebuilt_log_is_found_and_a_rebuilt_log_with_a_new_key_too() {
    let log = log_of(40);
    // Another log of 40 records, chained and hashed as douane would (its own key).
    let forged_dir = tempfile::tempdir().expect("tempdir");
    let d = decision();
    let mut w = AuditWriter::open(&config(forged_dir.path())).expect("open");
    for i in 0..40 {
        let host = format!("h{i}.example");
        let mut e = event(&d, &host);
        e.path = Some("/mail?user=2"); // the rewritten history
        w.append(&e).expect("append");
    }
    w.checkpoint().expect("checkpoint");
    let forged = w.files().expect("files");
    for f in &log.files {
        std::fs::remove_file(f).expect("rm");
    }
    for f in &forged {
        std::fs::copy(f, log.dir.join(f.file_name().expect("name"))).expect("copy");
    }
    // The chain alone says OK: that is the gap the checkpoint closes.
    douane::audit::verify_files(std::slice::from_ref(&log.dir))
        .expect("a recomputed chain verifies");
    let err = verify(&log).expect_err("rebuilt");
    assert!(
        matches!(&err, CheckpointError::RootMismatch { size: 40, .. }),
        "{err}"
    );
    // The forger also replaces the checkpoint and the public key beside the log: the
    // auditor's copy of the key refuses it.
    std::fs::copy(
        forged_dir.path().join("douane-audit.tlog/checkpoint"),
        &log.checkpoint,
    )
    .expect("copy");
    std::fs::copy(
        forged_dir.path().join("douane-audit.tlog/key.pub"),
        log.dir.join("douane-audit.tlog/key.pub"),
    )
    .expect("copy");
    let err = verify(&log).expect_err("new key");
    assert!(matches!(&err, CheckpointError::Checkpoint { .. }), "{err}");
    assert!(err.to_string().contains("no signature by key"), "{err}");
}

#[test]
fn proofs_verify_offline_and_a_tampered_proof_is_refused() {
    let log = log_of(40);
    let disk = LogOnDisk::open(&log.dir.join("douane-audit.jsonl"), None).expect("open");
    let cp_text = std::fs::read_to_string(&log.checkpoint).expect("cp");
    for seq in [0, 17, 39] {
        let b = proof::prove(&disk, seq, &cp_text, &log.key).expect("prove");
        let cp = proof::verify_proof(&b, &log.key).expect("verifies");
        assert_eq!(cp.size, 40);
        assert!(
            b.record.contains(&format!("\"seq\":{seq},")),
            "{}",
            b.record
        );
    }
    let b = proof::prove(&disk, 17, &cp_text, &log.key).expect("prove");
    let mut edited = b.clone();
    edited.record = edited.record.replacen("h17.example", "h71.example", 1);
    assert!(proof::verify_proof(&edited, &log.key).is_err());
    let mut moved = b.clone();
    moved.index = 18;
    assert!(proof::verify_proof(&moved, &log.key).is_err());
    let mut bad_path = b.clone();
    bad_path.inclusion.swap(0, 1);
    assert!(proof::verify_proof(&bad_path, &log.key).is_err());
    let mut bad_cp = b.clone();
    bad_cp.checkpoint = bad_cp.checkpoint.replacen("\n40\n", "\n41\n", 1);
    assert!(proof::verify_proof(&bad_cp, &log.key).is_err());
    assert!(
        proof::prove(&disk, 40, &cp_text, &log.key).is_err(),
        "beyond the checkpoint"
    );
}

#[test]
fn consistency_across_rotation_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    write(&cfg, 0, 25);
    let key = read_verifier(
        &dir.path()
            .join("douane-audit.tlog/key.pub")
            .to_string_lossy(),
    )
    .expect("pub");
    let first_text =
        std::fs::read_to_string(dir.path().join("douane-audit.tlog/checkpoint")).expect("cp");
    let (first, _) = Checkpoint::open(&first_text, &key).expect("first");
    // A restart: the same key, the tree continued from its cache.
    write(&cfg, 25, 30);
    // A restart after losing the cache: the tree is rebuilt from the log.
    std::fs::remove_file(dir.path().join("douane-audit.tlog/tree")).expect("rm tree");
    write(&cfg, 55, 5);
    let second_text =
        std::fs::read_to_string(dir.path().join("douane-audit.tlog/checkpoint")).expect("cp");
    let (second, _) = Checkpoint::open(&second_text, &key).expect("second");
    assert_eq!((first.size, second.size), (25, 60));
    let disk = LogOnDisk::open(&cfg.path, None).expect("open");
    let p = disk.tree.consistency_proof(25, 60).expect("proof");
    assert!(verify_consistency(25, 60, &first.root, &second.root, &p));
    proof::check_consistency(&first, &second, &p).expect("extends");
    let s = proof::verify_against(
        &[dir.path().to_path_buf()],
        &dir.path().join("douane-audit.tlog/checkpoint"),
        &key,
    )
    .expect("verifies");
    assert_eq!(s.chain.records, 60);
    // And the old checkpoint still verifies the longer log (its first 25 records).
    let old = dir.path().join("old.checkpoint");
    std::fs::write(&old, &first_text).expect("write");
    let s = proof::verify_against(&[dir.path().to_path_buf()], &old, &key).expect("old");
    assert_eq!(s.beyond, 35);
}

#[tokio::test]
async fn the_async_log_signs_at_shutdown_and_serves_proofs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = AuditConfig {
        checkpoint_interval_ms: 60_000,
        rotate_size_bytes: 1 << 20, // a rotation would sign
        ..config(dir.path())
    };
    let (log, writer) = AuditLog::start(&cfg).expect("start");
    let d = decision();
    for i in 0..12 {
        let host = format!("h{i}.example");
        log.record(&event(&d, &host)).await.expect("record");
    }
    // The start signed the empty tree; no other checkpoint before the interval.
    let early = log.checkpoint().expect("signed at start");
    assert!(early.contains("\n0\n"), "{early}");
    let p = log.consistency_proof(5, 12).await.expect("proof");
    assert!(!p.is_empty());
    assert!(log.consistency_proof(5, 13).await.is_err());
    let key = log.verifier().expect("key").clone();
    drop(log);
    writer.await.expect("writer");
    let text =
        std::fs::read_to_string(dir.path().join("douane-audit.tlog/checkpoint")).expect("cp");
    let (cp, _) = Checkpoint::open(&text, &key).expect("signed at shutdown");
    assert_eq!(cp.size, 12);
}

fn douane(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(args)
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

#[test]
fn the_audit_commands() {
    let log = log_of(30);
    let base = log.dir.join("douane-audit.jsonl");
    let base = base.to_str().expect("utf-8");
    let dir = log.dir.to_str().expect("utf-8");
    let cp = log.checkpoint.to_str().expect("utf-8");

    let (ok, key) = douane(&["audit", "key", "--log", base]);
    assert!(ok, "{key}");
    assert_eq!(key.trim(), log.key.encode());
    let pubkey = log.dir.join("auditor.pub");
    std::fs::write(&pubkey, &key).expect("write");
    let pubkey = pubkey.to_str().expect("utf-8");

    let (ok, out) = douane(&["audit", "verify", dir, "--checkpoint", cp, "--key", pubkey]);
    assert!(ok, "{out}");
    assert!(out.contains("checkpoint OK"), "{out}");

    let bundle = log.dir.join("proof-12.json");
    let (ok, out) = douane(&[
        "audit",
        "prove",
        "12",
        "--log",
        base,
        "-o",
        bundle.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = douane(&[
        "audit",
        "verify-proof",
        bundle.to_str().expect("utf-8"),
        "--key",
        pubkey,
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("proof OK: seq 12"), "{out}");
    let text = std::fs::read_to_string(&bundle).expect("bundle");
    std::fs::write(&bundle, text.replacen("h12.example", "h21.example", 1)).expect("tamper");
    let (ok, out) = douane(&[
        "audit",
        "verify-proof",
        bundle.to_str().expect("utf-8"),
        "--key",
        pubkey,
    ]);
    assert!(!ok && out.contains("proof REFUSED"), "{out}");

    let newest = log.files.last().expect("newest");
    let ls = lines(newest);
    put(newest, &ls[..ls.len() - 1]);
    let (ok, out) = douane(&["audit", "verify", dir, "--checkpoint", cp, "--key", pubkey]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("audit log BROKEN") && out.contains("were cut"),
        "{out}"
    );
}

#[test]
fn pruning_keeps_the_chain_the_tree_old_checkpoints_and_proofs() {
    use douane::audit::prune::{prune, Retention};
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let block = decision();
    let mut allow = decision();
    allow.outcome = Outcome::Allow;
    allow.reason = Reason::Compliant;
    let mut w = AuditWriter::open(&cfg).expect("open");
    for i in 0..40 {
        let host = format!("h{i}.example");
        let d = if i % 2 == 0 { &block } else { &allow };
        w.append(&event(d, &host)).expect("append");
    }
    w.checkpoint().expect("checkpoint");
    let files = w.files().expect("files");
    drop(w);
    assert!(files.len() >= 3, "{files:?}");
    let key = read_verifier(
        &dir.path()
            .join("douane-audit.tlog/key.pub")
            .to_string_lossy(),
    )
    .expect("pub");
    let cp = dir.path().join("douane-audit.tlog/checkpoint");
    let cp_text = std::fs::read_to_string(&cp).expect("cp");
    let logdir = [dir.path().to_path_buf()];

    // Allowed requests kept one day, blocks forever; two days later.
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    let one_day = Some(time::Duration::days(1));
    let s = prune(
        &cfg.path,
        Retention {
            allowed: one_day,
            blocks: None,
        },
        later,
    )
    .expect("prune");
    let newest_allowed = lines(files.last().expect("newest"))
        .iter()
        .filter(|l| l.contains("\"outcome\":\"allow\""))
        .count() as u64;
    assert_eq!(s.pruned, 20 - newest_allowed, "{s:?}");
    let text = std::fs::read_to_string(&files[0]).expect("read");
    assert!(text.contains("\"event\":\"pruned\""), "{text}");
    assert!(!text.contains("h1.example"), "the content is gone: {text}");
    assert!(text.contains("h0.example"), "blocks are kept: {text}");
    douane::audit::verify_files(&logdir).expect("the chain still verifies");
    let v = proof::verify_against(&logdir, &cp, &key).expect("the old checkpoint still verifies");
    assert_eq!(v.checkpoint.size, 40);
    // A proof of a kept record, made after the prune against the old checkpoint.
    let disk = LogOnDisk::open(&cfg.path, None).expect("open");
    let b = proof::prove(&disk, 2, &cp_text, &key).expect("prove");
    proof::verify_proof(&b, &key).expect("verifies");

    // Then the blocks too: the same checkpoint still verifies.
    prune(
        &cfg.path,
        Retention {
            allowed: one_day,
            blocks: one_day,
        },
        later,
    )
    .expect("prune blocks");
    proof::verify_against(&logdir, &cp, &key).expect("verifies after pruning everything old");

    // A stub whose leaf is forged is caught by the checkpoint.
    let mut ls = lines(&files[0]);
    let forged_leaf = base64_of(&[7u8; 32]);
    let i = ls
        .iter()
        .position(|l| l.contains("\"event\":\"pruned\""))
        .expect("stub");
    let start = ls[i].find("\"leaf\":\"").expect("leaf") + 8;
    ls[i].replace_range(start..start + 44, &forged_leaf);
    put(&files[0], &ls);
    douane::audit::verify_files(&logdir).expect("the chain alone cannot tell");
    let err = proof::verify_against(&logdir, &cp, &key).expect_err("forged leaf");
    assert!(matches!(err, CheckpointError::RootMismatch { .. }), "{err}");
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
