//! The configurations shipped in `deploy/` pass `douane check` as written, once installed:
//! each file is laid out as the README's install steps say (its absolute paths mapped under a
//! temp dir, nothing else changed), with the shipped policies (or the ConfigMap's), registry
//! and databases, certificates and an admin token where the files name them. The systemd
//! host config (`deploy/etc/`), the image's (`deploy/container/`) and the Kubernetes
//! ConfigMap's (`deploy/k8s/configmap.yaml`).

use std::path::Path;
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Installs `config` (a file of deploy/) under a temp root and runs `douane check` on it.
fn check_installed(config: &str) -> (i32, String) {
    let text = std::fs::read_to_string(Path::new(REPO).join(config)).unwrap();
    check_text(&text, None)
}

/// Installs a douane.toml text (and `policies`, or the shipped ones) under a temp root and
/// runs `douane check` on it.
fn check_text(text: &str, policies: Option<Vec<(String, String)>>) -> (i32, String) {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let mapped = text
        .replace("\"/etc/douane", &format!("\"{}/etc/douane", r.display()))
        .replace("\"/var/", &format!("\"{}/var/", r.display()));
    for dir in [
        "etc/douane/policies",
        "etc/douane/tls",
        "etc/douane/keys",
        "var/lib/douane",
        "var/log/douane",
    ] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    std::fs::write(r.join("etc/douane/douane.toml"), mapped).unwrap();
    let policies = policies.unwrap_or_else(|| {
        ["00-default.toml", "10-rules.toml"]
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(Path::new(REPO).join("policies").join(p));
                (p.to_string(), text.unwrap())
            })
            .collect()
    });
    for (name, text) in policies {
        std::fs::write(r.join("etc/douane/policies").join(name), text).unwrap();
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
    for token in ["etc/douane/admin-token", "etc/douane/keys/admin-token"] {
        std::fs::write(r.join(token), "a-long-random-token\n").unwrap();
    }
    for (cert, key) in [
        ("etc/douane/tls/proxy.pem", "etc/douane/tls/proxy-key.pem"),
        ("etc/douane/keys/tls.crt", "etc/douane/keys/tls.key"),
    ] {
        let certs = Command::new(env!("CARGO_BIN_EXE_douane"))
            .args(["certs", "dev", "--name", "crm.mairie.example", "--cert"])
            .arg(r.join(cert))
            .arg("--key")
            .arg(r.join(key))
            .output()
            .unwrap();
        assert!(certs.status.success());
    }
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
fn container_config_passes_check() {
    let (code, out) = check_installed("deploy/container/douane.toml");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 errors"), "{out}");
}

/// The block scalars of a ConfigMap manifest: (key, text) for every `  key: |` entry whose
/// lines are indented by four spaces (the layout of deploy/k8s/configmap.yaml).
fn block_scalars(yaml: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in yaml.lines() {
        if let Some(body) = line.strip_prefix("    ") {
            if let Some((_, text)) = current.as_mut() {
                text.push_str(body);
                text.push('\n');
                continue;
            }
        } else if line.trim().is_empty() {
            if let Some((_, text)) = current.as_mut() {
                text.push('\n');
            }
            continue;
        }
        out.extend(current.take());
        if let Some(key) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(": |")) {
            current = Some((key.trim().to_string(), String::new()));
        }
    }
    out.extend(current);
    out
}

#[test]
fn kubernetes_configmap_config_and_policies_pass_check() {
    let yaml = std::fs::read_to_string(Path::new(REPO).join("deploy/k8s/configmap.yaml")).unwrap();
    let mut blocks = block_scalars(&yaml);
    let config = blocks
        .iter()
        .position(|(k, _)| k == "douane.toml")
        .map(|i| blocks.remove(i).1)
        .expect("douane.toml in the ConfigMap");
    assert!(config.contains("[admin]"), "{config}");
    let policies: Vec<_> = blocks
        .into_iter()
        .filter(|(k, _)| k.ends_with(".toml"))
        .collect();
    assert_eq!(policies.len(), 2, "{policies:?}");
    let (code, out) = check_text(&config, Some(policies));
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
    for other in ["deploy/container/douane.toml", "deploy/k8s/configmap.yaml"] {
        let text = std::fs::read_to_string(Path::new(REPO).join(other)).unwrap();
        assert!(text.contains("max_age_days = 30"), "{other}");
    }
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
        .replace(
            "\"/etc/douane",
            &format!("\"{}/etc/douane", root.path().display()),
        )
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
