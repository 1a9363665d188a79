//! A witness against real douane replicas: two replicas' checkpoints pulled from their admin
//! listeners (bearer token), checked, cosigned and kept; a replica whose log is rebuilt
//! (same key, same size, another root) is a fork, one rebuilt smaller a shrinking log: both
//! fail the round, are logged and counted in the witness's metrics, which survive the
//! witness's restarts (`<state>/counters.json`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::client;
use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Fixture};
use common::upstream;
use douane::audit::note::{Checkpoint, SignedNote};
use douane::audit::tlog::read_verifier;

const TOKEN: &str = "witness-s3cret";

fn replica(origin: &str, port: u16) -> Fixture {
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[port], ""));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        admin_token: Some(TOKEN),
        ..ConfigSpec::default()
    });
    let config = std::fs::read_to_string(fx.path("douane.toml")).expect("config");
    let config = config.replacen(
        "path = \"audit/douane-audit.jsonl\"\n",
        &format!("path = \"audit/douane-audit.jsonl\"\norigin = \"{origin}\"\ncheckpoint_interval_ms = 100\n"),
        1,
    );
    std::fs::write(fx.path("douane.toml"), config).expect("config");
    fx
}

/// `n` blocked requests, each recorded by two lines (its gate and its end record).
async fn blocks(d: &Douane, port: u16, n: usize) {
    for i in 0..n {
        let url = format!("http://us.test:{port}/r{i}");
        let reply = client::forward(d.forward, "GET", &url, &[]).await;
        assert_eq!(reply.status, 451, "{}", reply.text());
    }
}

/// Waits until the replica serves a checkpoint of `size` records.
async fn checkpoint_of(d: &Douane, size: u64) -> String {
    let started = Instant::now();
    loop {
        let (status, body) = d.admin_get("/audit/checkpoint");
        if status == 200 && body.lines().nth(1) == Some(size.to_string().as_str()) {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no checkpoint of {size}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn witness(state: &Path, replicas: &[(&Douane, &Fixture)], token: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_douane"));
    cmd.args([
        "audit",
        "witness",
        "--once",
        "--name",
        "cert.example/witness",
    ])
    .arg("--state")
    .arg(state)
    .env_remove("DOUANE_ADMIN_TOKEN");
    if let Some(t) = token {
        cmd.args(["--token", t]);
    }
    for (d, fx) in replicas {
        cmd.arg("--replica")
            .arg(format!("http://{}", d.admin))
            .arg("--log-key")
            .arg(fx.path("audit/douane-audit.tlog/key.pub"));
    }
    let out = cmd.output().expect("run the witness");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn kept(state: &Path, origin: &str) -> (Checkpoint, SignedNote) {
    let name = origin.replace('/', "_");
    let text = std::fs::read_to_string(state.join(format!("logs/{name}.checkpoint")))
        .expect("kept checkpoint");
    let note = SignedNote::parse(&text).expect("note");
    let w = read_verifier(&state.join("witness.pub").to_string_lossy()).expect("witness key");
    note.verify_cosignature(&w)
        .expect("cosigned by the witness");
    (Checkpoint::parse_body(&note.body).expect("body"), note)
}

fn metric(state: &Path, name: &str, replica: &Douane) -> u64 {
    let text = std::fs::read_to_string(state.join("witness.prom")).expect("metrics");
    let prefix = format!("{name}{{replica=\"http://{}\"}} ", replica.admin);
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{prefix} not in {text}"))
}

/// Stops a replica, removes its log (keeping its key), starts it again.
async fn rebuild(mut d: Douane, fx: &Fixture) -> Douane {
    d.signal("TERM");
    assert!(d.wait_exit(Duration::from_secs(10)).await.is_some());
    for entry in std::fs::read_dir(fx.path("audit")).expect("audit dir") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "jsonl") {
            std::fs::remove_file(&p).expect("rm");
        }
    }
    for f in ["tree", "checkpoint"] {
        std::fs::remove_file(fx.path(&format!("audit/douane-audit.tlog/{f}"))).expect("rm");
    }
    fx.start().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_cosigns_two_replicas_and_catches_a_fork_and_a_shrinking_log() {
    let port = upstream::start(&["127.0.0.2", "127.0.0.3"], None).await;
    let (fa, fb) = (
        replica("a.test/douane-audit", port),
        replica("b.test/douane-audit", port),
    );
    let (a, b) = (fa.start().await, fb.start().await);
    blocks(&a, port, 3).await;
    blocks(&b, port, 4).await;
    checkpoint_of(&a, 6).await;
    checkpoint_of(&b, 8).await;
    let state = tempfile::tempdir().expect("tempdir");
    let state = state.path();

    // Without the bearer token the replicas refuse: nothing is cosigned.
    let (ok, out) = witness(state, &[(&a, &fa), (&b, &fb)], None);
    assert!(ok, "a refused pull is a failure, not an alarm: {out}");
    assert!(out.contains("401"), "{out}");
    assert_eq!(metric(state, "douane_witness_failures_total", &a), 1);

    let (ok, out) = witness(state, &[(&a, &fa), (&b, &fb)], Some(TOKEN));
    assert!(ok, "{out}");
    assert_eq!(kept(state, "a.test/douane-audit").0.size, 6);
    assert_eq!(kept(state, "b.test/douane-audit").0.size, 8);
    assert_eq!(metric(state, "douane_witness_cosigned_total", &b), 1);

    // A grows: the witness checks the consistency proof and cosigns the new checkpoint.
    blocks(&a, port, 2).await;
    checkpoint_of(&a, 10).await;
    let (ok, out) = witness(state, &[(&a, &fa), (&b, &fb)], Some(TOKEN));
    assert!(ok, "{out}");
    assert!(out.contains("Extended { from: 6, to: 10 }"), "{out}");
    // Each `--once` run is a new witness process: its counters carry on from the state.
    assert_eq!(metric(state, "douane_witness_cosigned_total", &a), 2);
    assert_eq!(
        metric(state, "douane_witness_failures_total", &a),
        1,
        "the refused pull of the first run is still counted"
    );
    let (cp_a, note_a) = kept(state, "a.test/douane-audit");
    assert_eq!(cp_a.size, 10);
    let a_key =
        read_verifier(&fa.path("audit/douane-audit.tlog/key.pub").to_string_lossy()).expect("key");
    note_a
        .verify(&a_key)
        .expect("the log's own signature is kept too");

    // B's log is rebuilt with the same key and as many records: a fork.
    let b = rebuild(b, &fb).await;
    blocks(&b, port, 4).await;
    checkpoint_of(&b, 8).await;
    let (ok, out) = witness(state, &[(&a, &fa), (&b, &fb)], Some(TOKEN));
    assert!(!ok, "a fork fails the round: {out}");
    assert!(
        out.contains("FORK") && out.contains("different roots"),
        "{out}"
    );
    assert_eq!(metric(state, "douane_witness_forks_total", &b), 1);
    assert_eq!(metric(state, "douane_witness_forks_total", &a), 0);
    assert_eq!(
        kept(state, "b.test/douane-audit").0.size,
        8,
        "the fork is not cosigned"
    );

    // Rebuilt smaller: the log shrank.
    let b = rebuild(b, &fb).await;
    blocks(&b, port, 1).await;
    checkpoint_of(&b, 2).await;
    let (ok, out) = witness(state, &[(&a, &fa), (&b, &fb)], Some(TOKEN));
    assert!(!ok, "{out}");
    assert!(
        out.contains("SHRANK") && out.contains("had 8 records, now 2"),
        "{out}"
    );
    assert_eq!(metric(state, "douane_witness_shrinks_total", &b), 1);
}
