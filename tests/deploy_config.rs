//! The configurations shipped in `deploy/` pass `douane check` as written, once installed:
//! each file is laid out as the README's install steps say (its absolute paths mapped under a
//! temp dir, nothing else changed), with the shipped policies, registry and databases, a
//! certificate and an admin token.

use std::path::Path;
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Installs `config` (a file of deploy/) under a temp root and runs `douane check` on it.
fn check_installed(config: &str) -> (i32, String) {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let text = std::fs::read_to_string(Path::new(REPO).join(config)).unwrap();
    let mapped = text
        .replace("\"/etc/douane", &format!("\"{}/etc/douane", r.display()))
        .replace("\"/var/", &format!("\"{}/var/", r.display()));
    for dir in [
        "etc/douane/policies",
        "etc/douane/tls",
        "var/lib/douane",
        "var/log/douane",
    ] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    std::fs::write(r.join("etc/douane/douane.toml"), mapped).unwrap();
    for policy in ["00-default.toml", "10-rules.toml"] {
        std::fs::copy(
            Path::new(REPO).join("policies").join(policy),
            r.join("etc/douane/policies").join(policy),
        )
        .unwrap();
    }
    std::fs::copy(
        Path::new(REPO).join("policies/operators.toml"),
        r.join("etc/douane/operators.toml"),
    )
    .unwrap();
    for db in ["country.mmdb", "asn.mmdb"] {
        std::fs::copy(
            Path::new(REPO).join("data").join(db),
            r.join("var/lib/douane").join(db),
        )
        .unwrap();
    }
    std::fs::write(r.join("etc/douane/admin-token"), "a-long-random-token\n").unwrap();
    let certs = Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(["certs", "dev", "--name", "crm.mairie.example", "--cert"])
        .arg(r.join("etc/douane/tls/proxy.pem"))
        .arg("--key")
        .arg(r.join("etc/douane/tls/proxy-key.pem"))
        .output()
        .unwrap();
    assert!(certs.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_douane"))
        .arg("check")
        .arg("--config")
        .arg(r.join("etc/douane/douane.toml"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn production_config_passes_check() {
    let (code, out) = check_installed("deploy/etc/douane.toml");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 errors"), "{out}");
}

#[test]
fn production_config_uses_the_alert_threshold() {
    // One age threshold: `check` warns past the same 30 days as DouaneDatabaseStale.
    let config = std::fs::read_to_string(Path::new(REPO).join("deploy/etc/douane.toml")).unwrap();
    let alerts =
        std::fs::read_to_string(Path::new(REPO).join("deploy/prometheus/alerts.yml")).unwrap();
    assert!(config.contains("max_age_days = 30"));
    assert!(alerts.contains("douane_database_build_timestamp_seconds > 30 * 86400"));
}

#[test]
fn a_broken_install_fails_check() {
    // The same procedure notices a mistake: the test is not blind.
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("douane.toml");
    let text = std::fs::read_to_string(Path::new(REPO).join("deploy/etc/douane.toml")).unwrap();
    // Its paths mapped under the empty temp root: nothing installed there.
    let mapped = text
        .replace("\"/etc/douane", &format!("\"{}/etc/douane", root.path().display()))
        .replace("\"/var/", &format!("\"{}/var/", root.path().display()));
    std::fs::write(&config, mapped).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_douane"))
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
}
