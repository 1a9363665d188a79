//! The PAC file as a browser gets it: fetched from the running douane's admin listener
//! (without the admin token: browsers have none), then evaluated by a real PAC engine
//! (Debian's `python3-pacparser`) for own-network, intranet and outside URLs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use common::proxy::{policy, standard_overrides, ConfigSpec, Fixture};

const PAC: &str = r#"
[pac]
proxies = ["douane-1.mairie.example:3128", "douane-2.mairie.example:3128"]
intranet_suffixes = ["mairie.example", ".intra"]
direct_networks = ["192.168.0.0/16"]
"#;

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: wpad\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

/// Evaluates `pac` for each URL with pacparser; `None` when pacparser is not installed.
fn pacparser(pac: &str, urls: &[&str]) -> Option<Vec<String>> {
    let python = "/usr/bin/python3";
    let has = Command::new(python)
        .args(["-c", "import pacparser"])
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        // On CI a missing evaluator is a failed install, not a pass.
        assert!(
            !common::tools::in_ci(),
            "CI is set and python3-pacparser is not installed"
        );
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("proxy.pac");
    std::fs::write(&file, pac).expect("write pac");
    let script = r#"
import sys, pacparser
pacparser.init()
pacparser.parse_pac_file(sys.argv[1])
for url in sys.argv[2:]:
    host = url.split("/")[2].split(":")[0] if not url.split("/")[2].startswith("[") else url.split("/")[2][1:].split("]")[0]
    print(pacparser.find_proxy(url, host))
pacparser.cleanup()
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&file)
        .args(urls)
        .output()
        .expect("run pacparser");
    assert!(
        out.status.success(),
        "pacparser: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_get_a_pac_file_that_keeps_the_intranet_direct() {
    let fx = Fixture::new();
    let own = "[[network]]\ncidr = \"10.20.0.0/16\"\nlocation = \"FR\"\noperator = \"FR\"\nlabel = \"mairie\"\n";
    fx.write_policy(&policy("all", "enforce", &[443], own));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        admin_token: Some("s3cret-token"),
        extra: PAC.into(),
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;
    let answer = get(douane.admin, "/proxy.pac");
    let (head, pac) = answer.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/x-ns-proxy-autoconfig"),
        "{head}"
    );
    assert!(pac.contains("function FindProxyForURL"), "{pac}");
    let wpad = get(douane.admin, "/wpad.dat");
    assert!(wpad.ends_with(pac), "the same file at /wpad.dat");
    // The rest of the admin listener still wants the token.
    assert_eq!(douane.admin_get_as("/policy", None).0, 401);

    let urls = [
        "http://10.20.3.4/app",
        "http://192.168.1.10/",
        "https://intranet.mairie.example/",
        "http://mairie.example/",
        "http://wiki.intra/",
        "http://printer/",
        "https://outlook.office365.com/",
        "https://evilmairie.example/",
        "http://10.21.0.1/",
        "http://127.0.0.1:8080/",
    ];
    let Some(got) = pacparser(pac, &urls) else {
        eprintln!("SKIPPED: pacparser (Debian python3-pacparser) is not installed; the PAC file was only checked by its text");
        return;
    };
    let proxy = "PROXY douane-1.mairie.example:3128; PROXY douane-2.mairie.example:3128";
    let want = [
        "DIRECT", "DIRECT", "DIRECT", "DIRECT", "DIRECT", "DIRECT", proxy, proxy, proxy,
        // The test policy's own [[network]] 127.0.0.0/8.
        "DIRECT",
    ];
    for ((url, got), want) in urls.iter().zip(&got).zip(want) {
        assert_eq!(got, want, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_pac_table_is_a_config_error() {
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[443], ""));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        extra: "[pac]\nproxies = []\n".into(),
        ..ConfigSpec::default()
    });
    let out = Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(["check", "--config"])
        .arg(fx.path("douane.toml"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "douane check fails");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("douane.toml:") && said.contains("[pac] proxies is empty"),
        "{said}"
    );
}
