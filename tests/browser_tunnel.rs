//! Real headless Chromium through the forward proxy (Debian's `chromium`; an NSS database
//! made with `certutil` from `libnss3-tools`): a blocked `https://` name shows the 451 page
//! (read back with `--dump-dom`), served over TLS with a certificate minted by the local
//! CA; an allowed `https://` name is not intercepted (its page is the upstream's, and a
//! browser that trusts only the local CA refuses its certificate); and a browser pointed at
//! douane's own `/proxy.pac` on the forward listener goes through douane. Without chromium
//! or certutil the tests skip, and fail under `CI`.

mod common;

use std::path::Path;
use std::process::Command;

use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Fixture};
use common::tools::{in_ci, on_path};
use common::upstream;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// chromium and certutil, or `None` (a skip; a failure under CI).
fn tools() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let found = (on_path("chromium"), on_path("certutil"));
    match found {
        (Some(c), Some(n)) => Some((c, n)),
        _ => {
            assert!(
                !in_ci(),
                "CI is set and chromium or certutil (libnss3-tools) is missing: {found:?}"
            );
            None
        }
    }
}

/// Writes the local CA (`local-ca.pem`, `local-ca-key.pem`).
fn local_ca(fx: &Fixture) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Mairie browser-test local CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(fx.path("local-ca.pem"), cert.pem()).unwrap();
    std::fs::write(fx.path("local-ca-key.pem"), key.serialize_pem()).unwrap();
}

/// A browser home whose NSS database trusts the CA files given (PEM).
fn browser_home(certutil: &Path, root: &Path, name: &str, cas: &[&Path]) -> std::path::PathBuf {
    let home = root.join(name);
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db_arg = format!("sql:{}", db.display());
    let made = Command::new(certutil)
        .args(["-N", "--empty-password", "-d", &db_arg])
        .status()
        .unwrap();
    assert!(made.success(), "certutil -N");
    for (i, ca) in cas.iter().enumerate() {
        let nick = format!("ca-{i}");
        let added = Command::new(certutil)
            .args(["-A", "-t", "C,,", "-n", &nick, "-d", &db_arg, "-i"])
            .arg(ca)
            .status()
            .unwrap();
        assert!(added.success(), "certutil -A {}", ca.display());
    }
    home
}

/// The DOM chromium shows for `url` with these proxy arguments.
fn dump_dom(chromium: &Path, home: &Path, proxy_args: &[String], url: &str) -> String {
    let out = Command::new(chromium)
        .env("HOME", home)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--virtual-time-budget=5000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            home.join("profile").display()
        ))
        .args(proxy_args)
        .args(["--dump-dom", url])
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// douane with `[local_ca]`, a `[pac]` naming its own forward port, and a TLS upstream
/// (the test CA's leaf) on .2 (FR, allowed) and .3 (US, blocked).
async fn start() -> (Fixture, Douane, u16) {
    let fx = Fixture::new();
    local_ca(&fx);
    let leaf = fx.ca.leaf(common::proxy::UPSTREAM_NAMES);
    let port = upstream::start(
        &["127.0.0.2", "127.0.0.3"],
        Some(fx.ca.server_config(&leaf)),
    )
    .await;
    fx.write_policy(&policy("all", "enforce", &[port], ""));
    let forward = common::proxy::free_port();
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        extra: format!(
            "[local_ca]\ncert = \"local-ca.pem\"\nkey = \"local-ca-key.pem\"\n\n[pac]\nproxies = [\"127.0.0.1:{forward}\"]\n"
        ),
        ..ConfigSpec::default()
    });
    // The PAC file names douane's forward port: fixed before it starts.
    let config = std::fs::read_to_string(fx.path("douane.toml")).unwrap();
    let config = config.replacen(
        "[forward]\nlisten = \"127.0.0.1:0\"",
        &format!("[forward]\nlisten = \"127.0.0.1:{forward}\""),
        1,
    );
    std::fs::write(fx.path("douane.toml"), config).unwrap();
    let douane = fx.start().await;
    assert_eq!(douane.forward.port(), forward);
    (fx, douane, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_sees_the_block_page_for_a_blocked_https_name_and_the_upstream_for_an_allowed_one()
{
    let Some((chromium, certutil)) = tools() else {
        return;
    };
    let (fx, douane, port) = start().await;
    let browsers = tempfile::tempdir().unwrap();
    let both = browser_home(
        &certutil,
        browsers.path(),
        "both",
        &[&fx.path("local-ca.pem"), &fx.path("ca.pem")],
    );
    let proxy = vec![format!("--proxy-server=http://{}", douane.forward)];

    let blocked = tokio::task::block_in_place(|| {
        dump_dom(
            &chromium,
            &both,
            &proxy,
            &format!("https://us.test:{port}/crm"),
        )
    });
    assert!(
        blocked.contains("451") || blocked.contains("bloqu"),
        "not the block page: {blocked}"
    );
    assert!(
        blocked.contains("us.test"),
        "the page names the host: {blocked}"
    );
    let records = fx.audit_records();
    // The browser may open more than one tunnel (a preconnect): the page shows one of theirs.
    let ids: Vec<&str> = records
        .iter()
        .filter(|r| r["host"] == "us.test")
        .filter_map(|r| r["request_id"].as_str())
        .collect();
    assert!(!ids.is_empty(), "the blocked tunnel's record");
    assert!(
        ids.iter().any(|id| blocked.contains(id)),
        "the page shows a record's request id {ids:?}"
    );

    let allowed = tokio::task::block_in_place(|| {
        dump_dom(
            &chromium,
            &both,
            &proxy,
            &format!("https://fr.test:{port}/page"),
        )
    });
    assert!(
        allowed.contains("\"server\":\"127.0.0.2\""),
        "not the upstream's page: {allowed}"
    );

    // Trusting only the local CA, the allowed name's certificate (the upstream's own) fails.
    let local_only = browser_home(
        &certutil,
        browsers.path(),
        "local",
        &[&fx.path("local-ca.pem")],
    );
    let refused = tokio::task::block_in_place(|| {
        dump_dom(
            &chromium,
            &local_only,
            &proxy,
            &format!("https://fr.test:{port}/page"),
        )
    });
    assert!(
        !refused.contains("\"server\":\"127.0.0.2\""),
        "an allowed tunnel was intercepted: {refused}"
    );
    drop(douane);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_with_douanes_pac_file_goes_through_douane() {
    let Some((chromium, certutil)) = tools() else {
        return;
    };
    let (fx, douane, port) = start().await;
    let browsers = tempfile::tempdir().unwrap();
    let home = browser_home(
        &certutil,
        browsers.path(),
        "pac",
        &[&fx.path("local-ca.pem")],
    );
    let pac = vec![format!(
        "--proxy-pac-url=http://{}/proxy.pac",
        douane.forward
    )];
    let page = tokio::task::block_in_place(|| {
        dump_dom(
            &chromium,
            &home,
            &pac,
            &format!("https://us.test:{port}/crm"),
        )
    });
    assert!(
        page.contains("us.test") && (page.contains("451") || page.contains("bloqu")),
        "{page}"
    );
    assert!(
        douane.log_count("\"destination\":\"us.test:") >= 1,
        "the browser did not go through douane"
    );
}
