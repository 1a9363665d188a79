//! `douane registry gaps --audit`: the real proxy serves (and refuses) traffic to addresses
//! of an ASN that the registry does not know, writes its audit log, and the command lists
//! that ASN by request count — and no longer once the registry learns it.

mod common;

use std::process::Command;

use common::client;
use common::proxy::{policy, standard_overrides, ConfigSpec, Fixture};
use common::upstream;

/// The fixture's registry without "Yankee Cloud" (AS64501, us.test's 127.0.0.3).
const WITHOUT_YANKEE: &str = r#"
[[operator]]
name = "Hexagone Cloud"
jurisdiction = "FR"
asns = [64500]
source = "test"

[[operator]]
name = "Dragon Cloud"
jurisdiction = "CN"
asns = [64502]
source = "test"
"#;

fn gaps(fx: &Fixture) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(["registry", "gaps", "--config"])
        .arg(fx.path("douane.toml"))
        .arg("--audit")
        .arg(fx.path("audit"))
        .current_dir(fx.dir.path())
        .output()
        .expect("run douane");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unknown_asns_of_the_traffic_by_request_count() {
    let fx = Fixture::new();
    let port = upstream::start(&["127.0.0.2", "127.0.0.3", "127.0.0.4"], None).await;
    fx.write_policy(&policy("all", "enforce", &[port], ""));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        ..ConfigSpec::default()
    });
    std::fs::write(fx.path("operators.toml"), WITHOUT_YANKEE).unwrap();
    let douane = fx.start().await;
    // Three requests to the unknown operator's address (US location: refused, recorded),
    // one to a known CN operator (refused, attributed).
    for _ in 0..3 {
        let url = format!("http://us.test:{port}/");
        let reply = client::forward(douane.forward, "GET", &url, &[]).await;
        assert_eq!(reply.status, 451, "{}", reply.text());
    }
    let url = format!("http://cn.test:{port}/");
    let reply = client::forward(douane.forward, "GET", &url, &[]).await;
    assert_eq!(reply.status, 451, "{}", reply.text());
    drop(douane);

    let (code, text) = gaps(&fx);
    assert_eq!(code, 0, "{text}");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("AS64501 "))
        .unwrap_or_else(|| panic!("no AS64501 row: {text}"));
    let fields: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&fields[1..3], ["3", "1"], "3 requests, 1 address: {text}");
    assert!(row.contains("YANKEE") && row.contains("us.test"), "{text}");
    assert!(
        !text.contains("AS64502"),
        "a known operator is no gap: {text}"
    );
    assert!(
        text.contains("1 ASNs in the traffic without a registry entry; 0 of 4 requests"),
        "{text}"
    );
    assert!(text.contains("record_allowed"), "{text}");

    // Once the registry knows AS64501, the same log shows no gap.
    let with = format!(
        "{WITHOUT_YANKEE}\n[[operator]]\nname = \"Yankee Cloud\"\njurisdiction = \"US\"\nasns = [64501]\nsource = \"test\"\n"
    );
    std::fs::write(fx.path("operators.toml"), with).unwrap();
    let (code, text) = gaps(&fx);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("AS64501"), "{text}");
    assert!(text.contains("0 ASNs in the traffic"), "{text}");
}
