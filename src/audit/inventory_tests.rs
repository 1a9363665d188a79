//! Tests of the SaaS inventory, from a real log written by the real writer.

use std::sync::Arc;

use super::*;
use crate::audit::record::tests::{block_decision, event};
use crate::audit::writer::tests::config_in;
use crate::audit::AuditWriter;
use crate::policy::decision::{Mode, Outcome, Reason};

fn sample() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config_in(dir.path());
    config.record_allowed = true;
    let mut w = AuditWriter::open(&config).expect("open");
    let block = block_decision();
    let mut allow = block_decision();
    allow.outcome = Outcome::Allow;
    allow.reason = Reason::Compliant;
    let mut would = block_decision();
    would.outcome = Outcome::WouldBlock;
    would.mode = Mode::Monitor;
    let mut exempt = block_decision();
    exempt.outcome = Outcome::Exempt;
    exempt.reason = Reason::Exemption;
    exempt.rule = Some(Arc::from("exemption-messagerie"));
    for (d, host) in [
        (&block, "login.microsoftonline.com"),
        (&block, "aadcdn.microsoftonline.com"),
        (&exempt, "outlook.office365.com"),
        (&would, "www.impots.gouv.fr"),
        (&allow, "static.impots.gouv.fr"),
        (&allow, "bbc.co.uk"),
        (&allow, "news.bbc.co.uk"),
        (&allow, "203.0.113.10"),
    ] {
        w.append(&event(d, host, Some("/"))).expect("append");
    }
    let files = w.files().expect("files");
    (dir, files)
}

#[test]
fn registrable_domains_follow_the_public_suffix_list() {
    assert_eq!(registrable_domain("www.impots.gouv.fr"), "impots.gouv.fr");
    assert_eq!(registrable_domain("a.b.example.co.uk"), "example.co.uk");
    assert_eq!(
        registrable_domain("Login.MicrosoftOnline.com."),
        "microsoftonline.com"
    );
    assert_eq!(registrable_domain("[2001:db8::1]"), "2001:db8::1");
    assert_eq!(registrable_domain("203.0.113.10"), "203.0.113.10");
    assert_eq!(registrable_domain("crm.example"), "crm.example");
}

#[test]
fn services_are_grouped_with_operator_law_and_outcomes() {
    let (_dir, files) = sample();
    let inv = build_inventory(&files, None, None).expect("inventory");
    let get = |d: &str| inv.services.iter().find(|s| s.domain == d).expect(d);
    let ms = get("microsoftonline.com");
    assert_eq!(ms.counts.block, 2);
    assert_eq!(
        ms.hosts,
        ["aadcdn.microsoftonline.com", "login.microsoftonline.com"]
    );
    assert_eq!(ms.operators[0].operator.as_deref(), Some("Amazon"));
    assert_eq!(ms.operators[0].jurisdiction.as_deref(), Some("US"));
    assert_eq!(ms.locations, ["FR"]);
    let impots = get("impots.gouv.fr");
    assert_eq!((impots.counts.would_block, impots.counts.allow), (1, 1));
    assert_eq!(get("office365.com").counts.exempt, 1);
    assert_eq!(get("bbc.co.uk").counts.allow, 2);
    assert_eq!(get("203.0.113.10").counts.total(), 1);
    assert_eq!(inv.services.len(), 5);
    assert_eq!(inv.totals.total(), 8);

    let fr = render_inventory(&inv, ReportFormat::Text, Lang::Fr);
    assert!(fr.contains("inventaire des services en ligne"), "{fr}");
    assert!(fr.contains("opérateurs : Amazon — États-Unis (US)"), "{fr}");
    assert!(
        fr.contains("requêtes : 2 (autorisées 1, bloquées 0, observation 1, dérogation 0)"),
        "{fr}"
    );
    let en = render_inventory(&inv, ReportFormat::Text, Lang::En);
    assert!(
        en.contains("operators: Amazon — United States (US)"),
        "{en}"
    );
    let csv = render_inventory(&inv, ReportFormat::Csv, Lang::En);
    assert!(
        csv.contains("\nmicrosoftonline.com,Amazon — United States (US),US,FR,2,0,2,0,0,0,"),
        "{csv}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&render_inventory(&inv, ReportFormat::Json, Lang::Fr)).expect("json");
    // Ties (two requests each) in domain order.
    assert_eq!(json["services"][0]["domain"], "bbc.co.uk");
    assert_eq!(json["services"][2]["domain"], "microsoftonline.com");
    let html = render_inventory(&inv, ReportFormat::Html, Lang::Fr);
    assert!(html.contains("<html lang=\"fr\">") && html.contains("@media print"));
    if let Some(dir) = std::env::var_os("DOUANE_SAMPLE_DIR") {
        std::fs::write(PathBuf::from(dir).join("inventory-fr.html"), &html).expect("write");
    }
}

#[test]
fn without_allowed_records_the_inventory_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = AuditWriter::open(&config_in(dir.path())).expect("open");
    w.append(&event(&block_decision(), "crm.example", None))
        .expect("append");
    let files = w.files().expect("files");
    let text = inventory(&files, None, None, ReportFormat::Text, Lang::Fr).expect("inv");
    assert!(text.contains("record_allowed = true"), "{text}");
}
