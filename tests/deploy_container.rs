//! deploy/Containerfile, read as a reviewer would (no container engine in CI; `.ci/run` also
//! lints it with hadolint): multi-stage, a non-root final user, pinned base images, a
//! HEALTHCHECK, every copied file present in the repository. And the image's probe script,
//! `douane-probe`, run for real against a running douane with an admin token.

mod common;

use std::path::Path;
use std::process::Command;

use common::proxy::{policy, ConfigSpec, Fixture};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The Containerfile's instructions, continuation lines joined, comments dropped.
fn instructions() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(REPO).join("deploy/Containerfile")).unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

#[test]
fn containerfile_is_multi_stage_non_root_and_pinned() {
    let all = instructions();
    let froms: Vec<&String> = all.iter().filter(|i| i.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "not multi-stage: {froms:?}");
    for from in &froms {
        let image = from.split_whitespace().nth(1).unwrap();
        assert!(image.contains(':'), "untagged base image: {from}");
        assert!(!image.ends_with(":latest"), "latest tag: {from}");
    }
    let last_from = all.iter().rposition(|i| i.starts_with("FROM ")).unwrap();
    let final_stage = &all[last_from..];
    assert!(
        final_stage
            .iter()
            .any(|i| i.starts_with("COPY --from=build")),
        "the final stage does not take the binary from the build stage"
    );
    let user = final_stage
        .iter()
        .rfind(|i| i.starts_with("USER "))
        .expect("no USER in the final stage");
    let uid = user[5..].split(':').next().unwrap().trim();
    assert!(uid != "0" && uid != "root", "runs as root: {user}");
    assert!(
        final_stage.iter().any(|i| i.starts_with("HEALTHCHECK ")
            && i.contains("douane-probe")
            && i.contains("/healthz")),
        "no HEALTHCHECK on /healthz"
    );
    assert!(final_stage
        .iter()
        .any(|i| i.starts_with("VOLUME ") && i.contains("/var/log/douane")));
    assert!(
        !all.iter().any(|i| i.starts_with("ADD ")),
        "ADD instead of COPY"
    );
}

#[test]
fn containerfile_copies_only_what_the_repository_has() {
    // Paths are relative to the build context, the repository root.
    let mut checked = 0;
    for copy in instructions().iter().filter(|i| i.starts_with("COPY ")) {
        if copy.contains("--from=") {
            continue;
        }
        let words: Vec<&str> = copy.split_whitespace().skip(1).collect();
        let (sources, _destination) = words.split_at(words.len() - 1);
        for source in sources {
            assert!(
                Path::new(REPO).join(source).exists(),
                "COPY {source}: not in the repository"
            );
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} sources checked");
    // The image's binary needs the shipped data and the policies it names.
    let config =
        std::fs::read_to_string(Path::new(REPO).join("deploy/container/douane.toml")).unwrap();
    assert!(config.contains("/var/lib/douane/country.mmdb"));
}

fn probe(admin_port: u16, token_file: &Path, path: &str) -> bool {
    Command::new("bash")
        .arg(Path::new(REPO).join("deploy/container/probe.sh"))
        .arg(path)
        .env("DOUANE_ADMIN_PORT", admin_port.to_string())
        .env("DOUANE_ADMIN_TOKEN_FILE", token_file)
        .status()
        .expect("run the probe")
        .success()
}

#[tokio::test]
async fn the_probe_script_asks_the_admin_listener_with_its_token() {
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[80, 443], ""));
    fx.write_config(&ConfigSpec {
        admin_token: Some("s3cret-token"),
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;
    let port = douane.admin.port();
    let token = fx.path("admin-token");
    assert!(probe(port, &token, "/healthz"), "healthz with the token");
    assert!(probe(port, &token, "/readyz"), "readyz with the token");
    assert!(
        !probe(port, &token, "/nothing-here"),
        "a 404 counts as healthy"
    );
    std::fs::write(fx.path("wrong-token"), "not-it\n").unwrap();
    assert!(
        !probe(port, &fx.path("wrong-token"), "/healthz"),
        "a 401 counts as healthy"
    );
    let closed = common::proxy::free_port();
    assert!(
        !probe(closed, &token, "/healthz"),
        "nothing listening counts as healthy"
    );
}
