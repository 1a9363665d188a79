//! Tests of the DPO's report.
use std::sync::Arc;

use super::*;
use crate::audit::record::tests::{block_decision, event};
use crate::audit::writer::tests::config_in;
use crate::audit::AuditWriter;
use crate::policy::decision::{Mode, Outcome, Provenance, Reason};
use crate::policy::Exemption;

fn sample() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = AuditWriter::open(&config_in(dir.path())).expect("open");
    let block = block_decision();
    let mut exempt = block_decision();
    exempt.outcome = Outcome::Exempt;
    exempt.reason = Reason::Exemption;
    exempt.rule = Some(Arc::from("exemption-messagerie"));
    let mut would = block_decision();
    would.outcome = Outcome::WouldBlock;
    would.mode = Mode::Monitor;
    would.provenance = Arc::new(Provenance {
        policy_version: Arc::from("2026-04-01"),
        ..(*block.provenance).clone()
    });
    w.append(&event(&block, "crm.example", Some("/")))
        .expect("append");
    w.append(&event(&block, "crm.example", Some("/")))
        .expect("append");
    let mut e = event(&exempt, "<script>alert(1)</script>", None);
    e.client = "2001:db8:1:2::5".parse().expect("ip");
    w.append(&e).expect("append");
    w.append(&event(&would, "=cmd|' /C calc'!A0", None))
        .expect("append");
    let files = w.files().expect("files");
    (dir, files)
}

#[test]
fn text_report_counts_by_every_axis() {
    let (_dir, files) = sample();
    let r = build_report(&files, None, None).expect("report");
    assert_eq!(
        (r.totals.block, r.totals.exempt, r.totals.would_block),
        (2, 1, 1)
    );
    let row =
        |rows: &[Row], key: &str| rows.iter().find(|r| r.key == key).map(|r| r.counts.clone());
    assert_eq!(
        row(&r.by_operator_jurisdiction, "US").map(|c| c.total()),
        Some(4)
    );
    assert_eq!(row(&r.by_location, "FR").map(|c| c.block), Some(2));
    assert_eq!(row(&r.by_host, "crm.example").map(|c| c.block), Some(2));
    assert_eq!(
        row(&r.by_rule, "exemption-messagerie").map(|c| c.exempt),
        Some(1)
    );
    assert_eq!(
        row(&r.by_client_network, "192.0.2.0/24").map(|c| c.total()),
        Some(3)
    );
    assert_eq!(
        row(&r.by_client_network, "2001:db8:1::/48").map(|c| c.exempt),
        Some(1)
    );
    assert_eq!(r.exemptions.len(), 1);
    assert_eq!(
        (
            r.exemptions[0].rule.as_str(),
            r.exemptions[0].client.as_str()
        ),
        ("exemption-messagerie", "2001:db8:1:2::5")
    );
    let versions: Vec<_> = r
        .policy_versions
        .iter()
        .map(|p| (p.version.as_str(), p.records))
        .collect();
    assert_eq!(versions, [("2026-03-01", 3), ("2026-04-01", 1)]);

    let text = render_lang(&r, ReportFormat::Text, Lang::En);
    assert!(
        text.contains("audit chain OK: 1 file(s), 4 record(s)"),
        "{text}"
    );
    assert!(
        text.contains("requests: 4 (block 2, would-block 1, exempt 1, allow 0, failed 0)"),
        "{text}"
    );
    assert!(
        text.contains("exemption-messagerie by 2001:db8:1:2::5: 1 use(s)"),
        "{text}"
    );
}

#[test]
fn html_csv_and_json_escape_what_clients_sent() {
    let (_dir, files) = sample();
    let html = report(&files, None, None, ReportFormat::Html).expect("html");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let csv = report(&files, None, None, ReportFormat::Csv).expect("csv");
    assert!(csv.contains("host,'=cmd|' /C calc'!A0,"), "{csv}");
    assert!(csv.lines().all(|l| !l.starts_with('=')));
    let json = report(&files, None, None, ReportFormat::Json).expect("json");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["totals"]["block"], 2);
    assert_eq!(v["chain"]["records"], 4);
}

#[test]
fn the_period_filters_records() {
    let (_dir, files) = sample();
    let far = OffsetDateTime::now_utc() + time::Duration::days(365);
    let r = build_report(&files, Some(far), None).expect("report");
    assert_eq!(r.totals.total(), 0);
    let r = build_report(&files, None, Some(far)).expect("report");
    assert_eq!(r.totals.total(), 4);
    assert!(matches!(
        build_report(&files, Some(far), Some(far)),
        Err(ReportError::EmptyPeriod { .. })
    ));
}

#[test]
fn no_report_from_a_log_that_does_not_verify() {
    let (_dir, files) = sample();
    let text = std::fs::read_to_string(&files[0]).expect("read");
    std::fs::write(&files[0], text.replacen("crm.example", "crm.exbmple", 1)).expect("write");
    let err = report(&files, None, None, ReportFormat::Text).expect_err("tampered");
    assert!(err.to_string().contains("does not verify"), "{err}");
}

#[test]
fn formats_parse() {
    assert_eq!("csv".parse::<ReportFormat>(), Ok(ReportFormat::Csv));
    assert!("pdf".parse::<ReportFormat>().is_err());
}

#[test]
fn french_by_default_with_words_names_and_monitor_periods() {
    let (_dir, files) = sample();
    let mut r = build_report(&files, None, None).expect("report");
    r.attach_exemptions(&[Exemption {
        id: Arc::from("exemption-messagerie"),
        expires: time::macros::date!(2027 - 06 - 30),
        justification: Some(Arc::from("marché en cours, sortie prévue T2 2027")),
        ticket: Some(Arc::from("DSI-1234")),
        origin: crate::policy::Origin {
            path: "p.toml".into(),
            line: 1,
            column: 1,
        },
    }]);
    let text = render_lang(&r, ReportFormat::Text, Lang::Fr);
    assert!(text.contains("douane — rapport d’audit"), "{text}");
    assert!(
        text.contains("requêtes : 4 (bloquées 2, bloquées en observation 1"),
        "{text}"
    );
    assert!(
        text.contains("Opérateur soumis à un droit non autorisé"),
        "{text}"
    );
    assert!(text.contains("Amazon — États-Unis (US)"), "{text}");
    assert!(text.contains("justification : marché en cours, sortie prévue T2 2027 ; ticket : DSI-1234 ; expire le 2027-06-30"), "{text}");
    assert!(text.contains("Périodes en mode observation"), "{text}");
    assert_eq!(r.monitor_periods.len(), 1);
    assert_eq!(
        (
            r.monitor_periods[0].records,
            r.monitor_periods[0].would_block
        ),
        (1, 1)
    );
    assert_eq!(r.top_blocked[0].key, "crm.example");
    let day = &r.exposure_by_day[0];
    assert_eq!(day.by_jurisdiction.get("US"), Some(&4));
    let en = render_lang(&r, ReportFormat::Text, Lang::En);
    assert!(
        en.contains("Operator under a law that is not allowed"),
        "{en}"
    );
    assert!(en.contains("Amazon — United States (US)"), "{en}");
    let html = render_lang(&r, ReportFormat::Html, Lang::Fr);
    assert!(html.contains("<html lang=\"fr\">") && html.contains("@media print"));
    assert!(html.contains("class=monitor"), "monitor period marked");
    assert!(html.contains("DSI-1234"));
    let csv = render_lang(&r, ReportFormat::Csv, Lang::En);
    assert!(
        csv.contains("exemption,exemption-messagerie,2001:db8:1:2::5,,,1,,,1,"),
        "{csv}"
    );
    assert!(csv.contains(",DSI-1234,2027-06-30"), "{csv}");
    if let Some(dir) = std::env::var_os("DOUANE_SAMPLE_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::write(dir.join("report-fr.html"), &html).expect("write");
        std::fs::write(
            dir.join("report-en.html"),
            render_lang(&r, ReportFormat::Html, Lang::En),
        )
        .expect("write");
        std::fs::write(dir.join("report-fr.txt"), &text).expect("write");
    }
}
