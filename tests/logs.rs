//! Logs for people and for machines: no colour codes when stderr is not a terminal, JSON
//! lines with stable field names.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::proxy::{policy, standard_overrides, ConfigSpec, Fixture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_have_stable_names() {
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[443], ""));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;
    let logs = douane.logs();
    let line = logs
        .iter()
        .find(|l| l.contains("forward proxy listening"))
        .expect("listening line");
    let v: serde_json::Value = serde_json::from_str(line).expect("json");
    for key in ["timestamp", "level", "target", "message", "address"] {
        assert!(v.get(key).is_some(), "{key} in {line}");
    }
    assert!(
        v.get("span").is_none() && v.get("spans").is_none(),
        "{line}"
    );
    assert!(
        logs.iter().all(|l| !l.contains('\u{1b}')),
        "no escape codes"
    );
}

#[test]
fn human_logs_to_a_pipe_have_no_colour_codes() {
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[443], ""));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        ..ConfigSpec::default()
    });
    let config = fx.path("douane.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("format = \"json\"", "format = \"human\""),
    )
    .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(["run", "--config"])
        .arg(&config)
        .current_dir(fx.dir.path())
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let done = line.contains("admin listening");
            seen.push(line);
            if done {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.iter().any(|l| l.contains("admin listening")),
        "{seen:?}"
    );
    assert!(
        seen.iter().all(|l| !l.contains('\u{1b}')),
        "escape codes in {seen:?}"
    );
    assert!(
        seen.iter().any(|l| l.contains(" INFO ")),
        "human format: {seen:?}"
    );
}
