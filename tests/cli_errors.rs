//! The mistakes a new operator makes, as the real binary answers them: `douane run` exits 3
//! for every invalid setup, naming the `douane.toml` line and the fix, without the OS error
//! twice; `check` words config and policy mistakes so that they say what to write.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::proxy::{policy, Fixture};

const HEAD: &str = r#"[policy]
dir = "policies"
operators = "operators.toml"

[geo]
country = "country.mmdb"
asn = "asn.mmdb"
"#;

fn setup(config: &str) -> Fixture {
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[443], ""));
    std::fs::write(fx.path("douane.toml"), config).unwrap();
    fx
}

/// `douane ARGS` in `dir`; a `run` that does not exit within 20 s is killed (and fails).
fn douane(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(args)
        .current_dir(dir)
        .env_remove("DOUANE_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn douane");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn said(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `douane run`: exit 3 and a message holding every one of `parts`, no OS error number.
fn run_refuses(fx: &Fixture, parts: &[&str]) -> String {
    let out = douane(fx.dir.path(), &["run", "-c", "douane.toml"]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    for part in parts {
        assert!(text.contains(part), "no `{part}` in:\n{text}");
    }
    assert!(!text.contains("os error"), "the OS error is worded: {text}");
    text
}

#[test]
fn a_port_in_use_names_the_listen_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let fx = setup(&format!(
        "{HEAD}\n[forward]\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    run_refuses(
        &fx,
        &[
            "douane.toml:10:10: listener `forward` cannot listen on 127.0.0.1:",
            "the port is already in use",
            "change `listen`",
        ],
    );
}

#[test]
fn a_missing_certificate_suggests_douane_certs_dev() {
    let fx = setup(&format!(
        "{HEAD}\n[[reverse]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntls = [{{ cert = \"certs/site.pem\", key = \"certs/site-key.pem\" }}]\n"
    ));
    run_refuses(
        &fx,
        &[
            "douane.toml:12:17: listener `web`:",
            "certs/site.pem: the file does not exist",
            "douane certs dev --cert",
            "generate_if_missing = true",
        ],
    );
    // `check` says the same, located.
    let out = douane(fx.dir.path(), &["check", "-c", "douane.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("douane.toml:12:17:"), "{}", said(&out));
}

#[test]
fn a_garbage_certificate_or_key_is_named() {
    let fx = setup(&format!(
        "{HEAD}\n[[reverse]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntls = [{{ cert = \"certs/garbage.pem\", key = \"certs/reverse-key.pem\" }}]\n"
    ));
    std::fs::write(fx.path("certs/garbage.pem"), "this is not a certificate\n").unwrap();
    run_refuses(
        &fx,
        &[
            "douane.toml:12:17: listener `web`:",
            "garbage.pem: no PEM certificate in the file",
            "-----BEGIN CERTIFICATE-----",
        ],
    );
    let fx = setup(&format!(
        "{HEAD}\n[[reverse]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntls = [{{ cert = \"certs/reverse.pem\", key = \"certs/garbage-key.pem\" }}]\n"
    ));
    std::fs::write(fx.path("certs/garbage-key.pem"), "garbage\n").unwrap();
    run_refuses(&fx, &["listener `web`:", "no usable PEM private key"]);
}

#[test]
fn a_missing_upstream_ca_file_or_admin_token_is_an_invalid_setup() {
    let fx = setup(&format!(
        "{HEAD}\n[forward]\nlisten = \"127.0.0.1:0\"\n\n[upstream]\nca_file = \"certs/nope-ca.pem\"\n"
    ));
    run_refuses(
        &fx,
        &[
            "douane.toml: [upstream]",
            "nope-ca.pem: the file does not exist",
        ],
    );
    let fx = setup(&format!(
        "{HEAD}\n[forward]\nlisten = \"127.0.0.1:0\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin-tokn\"\n"
    ));
    run_refuses(
        &fx,
        &["[admin] token_file", "admin-tokn: the file does not exist"],
    );
}

#[test]
fn a_config_with_no_listener_refuses_to_run() {
    let fx = setup(HEAD);
    run_refuses(&fx, &["no listener", "[forward]"]);
    // An [admin] alone serves no traffic either.
    let fx = setup(&format!("{HEAD}\n[admin]\nlisten = \"127.0.0.1:0\"\n"));
    run_refuses(&fx, &["no listener"]);
    // `check` warns (a config for `test` and `explain` needs none).
    let out = douane(fx.dir.path(), &["check", "-c", "douane.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(said(&out).contains("warning:") && said(&out).contains("no listener"));
}

#[test]
fn config_mistakes_say_what_to_write() {
    let fx = setup(&format!(
        "{HEAD}max_age_days = -1\n\n[forward]\nlisten = \"127.0.0.1:0\"\n"
    ));
    let out = douane(fx.dir.path(), &["check", "-c", "douane.toml"]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "douane.toml:8:16: `max_age_days` takes a whole number from 0 to 4294967295, not -1"
        ),
        "{text}"
    );
    assert!(!text.contains("expected u32"), "{text}");
    // serde stops at its first type error (syntax errors are all listed at once).
    let fx = setup(&format!("{HEAD}\n[forward]\nlisten = \"localhost:3128\"\n"));
    let run = douane(fx.dir.path(), &["run", "-c", "douane.toml"]);
    assert_eq!(run.status.code(), Some(3), "{}", said(&run));
    let text = said(&run);
    assert!(
        text.contains(
            "douane.toml:10:10: `listen` = \"localhost:3128\" is not an IP address and port"
        ),
        "{text}"
    );
    assert!(text.contains("resolves no name"), "{text}");
    assert!(text.contains("127.0.0.1:PORT"), "{text}");
}

#[test]
fn every_syntax_error_of_the_file_at_once() {
    let fx = setup(
        "[policy\ndir = \"policies\"\n[geo]\ncountry = = \"x\"\n[forward]\nlisten = [\"a\",\n",
    );
    let out = douane(fx.dir.path(), &["check", "-c", "douane.toml"]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for at in ["douane.toml:1:", "douane.toml:4:", "douane.toml:6:"] {
        assert!(text.contains(at), "no error at {at}:\n{text}");
    }
    let run = douane(fx.dir.path(), &["run", "-c", "douane.toml"]);
    assert_eq!(run.status.code(), Some(3), "{}", said(&run));
}

#[test]
fn parent_proxy_urls() {
    let fx = setup(&format!(
        "{HEAD}\n[forward]\nlisten = \"127.0.0.1:0\"\n\n[upstream]\nparent_proxy = \"https://proxy.example:3128\"\n"
    ));
    let out = douane(fx.dir.path(), &["check", "-c", "douane.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        said(&out).contains(
            "douane.toml:13:16: `https://`: douane talks to a parent proxy in plain HTTP"
        ),
        "{}",
        said(&out)
    );
    // Credentials are accepted (and sent: tests/proxy_parent_auth.rs).
    let fx = setup(&format!(
        "{HEAD}\n[forward]\nlisten = \"127.0.0.1:0\"\n\n[upstream]\nparent_proxy = \"http://user:p%40ss@proxy.example:3128\"\n"
    ));
    let out = douane(fx.dir.path(), &["check", "-c", "douane.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
}

#[test]
fn country_codes_suggest_the_iso_one_and_groups_ignore_case() {
    let fx = setup(&format!("{HEAD}\n[forward]\nlisten = \"127.0.0.1:0\"\n"));
    fx.write_policy(&policy("all", "enforce", &[443], "").replace(
        "allowed_locations = [\"FR\"]",
        "allowed_locations = [\"eu\", \"UK\", \"EL\"]",
    ));
    let out = douane(fx.dir.path(), &["check", "-c", "douane.toml"]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "`UK` is not an assigned ISO 3166-1 alpha-2 country code; the United Kingdom is `GB`"
        ),
        "{text}"
    );
    assert!(text.contains("Greece is `GR`"), "{text}");
    assert!(!text.contains("`eu`"), "lowercase eu is EU: {text}");
    assert!(text.contains("2 errors"), "{text}");
}

#[test]
fn audit_verify_on_a_mistyped_path_is_not_a_broken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let out = douane(dir.path(), &["audit", "verify", "audit/douane-audti.jsonl"]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("audit/douane-audti.jsonl: no such file or directory"),
        "{text}"
    );
    assert!(!text.contains("BROKEN"), "{text}");
}
