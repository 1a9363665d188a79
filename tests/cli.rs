//! The real `douane` binary, as a policy author and an auditor use it: `check`, `test`,
//! `explain`, `geodb`, `audit verify`, on the shipped data and on generated fixtures.

#[path = "common/mmdb.rs"]
mod mmdb;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use douane::geo::Schema;

fn douane(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(args)
        .current_dir(dir)
        .env_remove("DOUANE_CONFIG")
        .output()
        .expect("run douane")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A setup in a temp dir: generated databases placing public test addresses (no traffic is
/// ever sent to them: `explain --resolve` and `[[test]]` only decide), a tiny registry, and
/// the policy files given.
fn fixture(policies: &[(&str, &str)], schema: Schema) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir(p.join("policies")).unwrap();
    mmdb::write_country_db(
        &p.join("country.mmdb"),
        &[
            ("1.1.1.0/24", "FR"),
            ("2.2.2.0/24", "US"),
            ("3.3.3.0/24", "DE"),
        ],
        schema,
    );
    mmdb::write_asn_db(
        &p.join("asn.mmdb"),
        &[
            ("1.1.1.0/24", 64501, "Hébergeur Français SAS"),
            ("2.2.2.0/24", 64502, "Hyperscaler Inc."),
            ("3.3.3.0/24", 64502, "Hyperscaler Inc."),
        ],
    );
    std::fs::write(
        p.join("policies/operators.toml"),
        r#"
[[operator]]
name = "Hébergeur Français"
jurisdiction = "FR"
asns = [64501]
source = "test fixture"

[[operator]]
name = "Hyperscaler"
jurisdiction = "US"
asns = [64502]
source = "test fixture"
"#,
    )
    .unwrap();
    for (name, body) in policies {
        std::fs::write(p.join("policies").join(name), body).unwrap();
    }
    std::fs::write(
        p.join("douane.toml"),
        "[geo]\ncountry = \"country.mmdb\"\nasn = \"asn.mmdb\"\nmax_age_days = 3650\n",
    )
    .unwrap();
    dir
}

const POLICY: &str = r#"
[policy]
name = "test"
allowed_locations = ["EU"]
allowed_operators = ["EU"]

[[rule]]
id = "crm-pin"
hosts = ["crm.example"]
ip_selection = "pin"

[[test]]
url = "https://hoster.example/"
resolve = ["1.1.1.1"]
expect = "allow"

[[test]]
url = "https://cloud.example/"
resolve = ["3.3.3.3"]
expect = "block"
expect_reason = "operator_not_allowed"
"#;

#[test]
fn shipped_default_tests_pass() {
    let out = douane(&repo(), &["test"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.lines().last().unwrap().ends_with(" passed, 0 failed"),
        "{t}"
    );
}

#[test]
fn shipped_default_check_is_clean() {
    let out = douane(&repo(), &["check"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("0 errors"), "{t}");
}

#[test]
fn shipped_data_aws_paris_is_french_located_but_us_operated_and_blocked() {
    let out = douane(
        &repo(),
        &[
            "explain",
            "https://crm.example/",
            "--resolve",
            "15.236.0.1",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["outcome"], "block");
    assert_eq!(d["reason"], "operator_not_allowed");
    assert_eq!(d["ips"][0]["location"], "FR");
    assert_eq!(d["ips"][0]["jurisdiction"], "US");
    assert_eq!(d["ips"][0]["operator"], "Amazon");
    assert_eq!(d["ips"][0]["asn"], 16509);

    let out = douane(
        &repo(),
        &["explain", "https://crm.example/", "--resolve", "51.75.0.1"],
    );
    let t = text(&out);
    assert!(t.contains("decision  ALLOW"), "{t}");
    assert!(
        t.contains("operated by OVHcloud under FR jurisdiction"),
        "{t}"
    );
}

#[test]
fn explain_traces_every_address_in_both_schemas() {
    for schema in [Schema::GeoIp2, Schema::CountryCode] {
        let dir = fixture(&[("policy.toml", POLICY)], schema);
        let out = douane(
            dir.path(),
            &[
                "explain",
                "https://crm.example/x",
                "--resolve",
                "2.2.2.2",
                "--resolve",
                "1.1.1.1",
            ],
        );
        let t = text(&out);
        assert!(out.status.success(), "{t}");
        assert!(
            t.contains("decision  ALLOW"),
            "pin keeps the compliant address: {t}"
        );
        assert!(t.contains("rule      crm-pin"), "{t}");
        assert!(
            t.contains("connect   1.1.1.1\n"),
            "only the checked compliant address: {t}"
        );
        assert!(t.contains("located in US (database)"), "{t}");
        assert!(
            t.contains("operated by Hyperscaler under US jurisdiction (registry)"),
            "{t}"
        );
        assert!(
            t.contains("operated by Hébergeur Français under FR jurisdiction"),
            "{t}"
        );
    }
}

#[test]
fn test_command_reports_failures_and_exits_non_zero() {
    let failing = r#"
[[test]]
description = "wrongly expected"
url = "https://cloud.example/"
resolve = ["2.2.2.2"]
expect = "allow"
"#;
    let dir = fixture(&[("a.toml", POLICY), ("b.toml", failing)], Schema::GeoIp2);
    let out = douane(dir.path(), &["test"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("FAIL  https://cloud.example/ (policies/b.toml:2:1)"),
        "{t}"
    );
    assert!(t.contains("got      block"), "{t}");
    assert_eq!(t.lines().last().unwrap(), "2 passed, 1 failed", "{t}");
}

#[test]
fn check_lists_every_error_with_its_position() {
    let broken = r#"
[policy]
name = "broken"
allowed_locations = ["EU", "UK"]
allowed_operators = ["EU"]

[[network]]
cidr = "10.0.0.0/33"
label = "x"

[[rule]]
id = "a"
hosts = ["x.example"]
"#;
    let dup = "[[rule]]\nid = \"a\"\nhosts = [\"y.example\"]\n";
    let unknown_key = "[[rule]]\nid = \"c\"\ncolour = \"blue\"\n";
    let dir = fixture(&[("a.toml", broken), ("b.toml", dup)], Schema::GeoIp2);
    let out = douane(dir.path(), &["check"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let errors: Vec<&str> = t.lines().filter(|l| l.starts_with("error: ")).collect();
    assert!(errors.len() >= 3, "every error at once: {t}");
    assert!(
        t.contains("policies/a.toml:4:"),
        "the unknown country code is located: {t}"
    );
    assert!(
        t.contains("policies/a.toml:8:"),
        "the bad CIDR is located: {t}"
    );
    assert!(
        t.contains("policies/b.toml:2:"),
        "the duplicate id is located: {t}"
    );

    // A file that does not even parse is reported with the semantic errors of the others.
    std::fs::write(dir.path().join("policies/c.toml"), unknown_key).unwrap();
    let out = douane(dir.path(), &["check"]);
    let t = text(&out);
    assert!(
        t.contains("policies/c.toml:3:1: unknown field `colour`"),
        "{t}"
    );
    assert!(t.contains("policies/a.toml:4:"), "{t}");

    // `run` refuses to start on the same files, before binding anything, with exit code 3.
    let out = douane(dir.path(), &["run"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

#[test]
fn check_warns_of_an_exemption_about_to_expire() {
    let soon = (time::OffsetDateTime::now_utc().date() + time::Duration::days(10)).to_string();
    let policy = format!(
        "{POLICY}\n[[rule]]\nid = \"ex\"\nhosts = [\"old.example\"]\naction = \"allow\"\njustification = \"contract\"\nexpires = {soon}\n"
    );
    let dir = fixture(&[("policy.toml", &policy)], Schema::GeoIp2);
    let out = douane(dir.path(), &["check"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(&format!("exemption `ex` expires on {soon} (in 10 days)")),
        "{t}"
    );
}

#[test]
fn config_errors_name_file_line_and_column() {
    let dir = fixture(&[("policy.toml", POLICY)], Schema::GeoIp2);
    std::fs::write(
        dir.path().join("douane.toml"),
        "[geo]\ncountry = \"country.mmdb\"\n\n[forward]\nlisten = \"127.0.0.1:3128\"\nlisen = 1\n",
    )
    .unwrap();
    let out = douane(dir.path(), &["run"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("douane.toml:6:1: unknown field `lisen`"), "{t}");
}

#[test]
fn geodb_import_then_info() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("asn.csv");
    std::fs::write(
        &csv,
        "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n2001:db8::,2001:db8::ffff,64500,Test\n",
    )
    .unwrap();
    let out_db = dir.path().join("asn.mmdb");
    let out = douane(
        dir.path(),
        &[
            "geodb",
            "import",
            "--kind",
            "asn",
            "--build-date",
            "2026-01-02",
            "-o",
            "asn.mmdb",
            "asn.csv",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(out_db.exists());
    let out = douane(dir.path(), &["geodb", "info", "asn.mmdb"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("built          2026-01-02"), "{t}");
    assert!(t.contains("kind           asn"), "{t}");

    let out = douane(dir.path(), &["geodb", "info", "asn.csv"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn unknown_command_and_bad_url_are_readable_errors() {
    let out = douane(&repo(), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = douane(
        &repo(),
        &["explain", "https://exa mple/", "--resolve", "1.1.1.1"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).starts_with("douane: "), "{}", text(&out));
}
