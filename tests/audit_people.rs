//! `douane audit report` and `douane audit inventory` as the DPO runs them: the real binary
//! on a log written by the real writer, in French (the default) and in English.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use douane::audit::{AuditConfig, AuditEvent, AuditWriter};
use douane::country::Country;
use douane::policy::{Decision, Mode, Outcome, Reason, Violation};

fn decision(outcome: Outcome, mode: Mode) -> Decision {
    let us = Country::parse("US").expect("US");
    let ie = Country::parse("IE").expect("IE");
    let reason = match outcome {
        Outcome::Allow => Reason::Compliant,
        Outcome::Exempt => Reason::Exemption,
        _ => Reason::OperatorNotAllowed,
    };
    let violation =
        (outcome != Outcome::Allow).then_some(Violation::OperatorNotAllowed { jurisdiction: us });
    let mut d = common::decisions::us_operated(outcome, ie, reason, violation);
    d.rule = (outcome == Outcome::Exempt).then(|| Arc::from("exemption-messagerie"));
    d.mode = mode;
    d
}

fn write_log(dir: &Path) -> Vec<PathBuf> {
    let config = AuditConfig {
        path: dir.join("douane-audit.jsonl"),
        record_allowed: true,
        ..AuditConfig::default()
    };
    let mut w = AuditWriter::open(&config).expect("open");
    let cases = [
        (Outcome::WouldBlock, Mode::Monitor, "outlook.office365.com"),
        (Outcome::Block, Mode::Enforce, "login.microsoftonline.com"),
        (Outcome::Block, Mode::Enforce, "login.microsoftonline.com"),
        (Outcome::Exempt, Mode::Enforce, "outlook.office365.com"),
        (Outcome::Allow, Mode::Enforce, "www.service-public.fr"),
    ];
    for (i, (outcome, mode, host)) in cases.into_iter().enumerate() {
        let d = decision(outcome, mode);
        let id = format!("req-{i}");
        w.append(&AuditEvent {
            request_id: &id,
            listener: "forward",
            client: "10.20.0.7".parse().expect("ip"),
            method: None,
            scheme: "https",
            host,
            port: 443,
            path: None,
            query: None,
            upstream_via: None,
            decision: &d,
        })
        .expect("append");
    }
    w.files().expect("files")
}

fn douane(args: &[&str], files: &[PathBuf]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(args)
        .args(files)
        .output()
        .expect("run douane");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_report_reads_in_french_then_in_english() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = write_log(dir.path());
    let fr = douane(&["audit", "report"], &files);
    assert!(
        fr.contains("chaîne d’audit vérifiée : 1 fichier(s), 5 enregistrement(s)"),
        "{fr}"
    );
    assert!(
        fr.contains("Opérateur soumis à un droit non autorisé"),
        "{fr}"
    );
    assert!(fr.contains("Microsoft — États-Unis (US)"), "{fr}");
    assert!(fr.contains("Irlande (IE)"), "{fr}");
    assert!(fr.contains("Périodes en mode observation"), "{fr}");
    assert!(
        fr.contains("collectivite : 1 requête(s), 1 auraient été bloquées"),
        "{fr}"
    );
    let en = douane(&["audit", "report", "--lang", "en"], &files);
    assert!(
        en.contains("Operator under a law that is not allowed"),
        "{en}"
    );
    assert!(en.contains("Microsoft — United States (US)"), "{en}");
    let html = douane(&["audit", "report", "--format", "html"], &files);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("lang=\"fr\""));
}

#[test]
fn the_inventory_lists_services_by_registrable_domain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = write_log(dir.path());
    let fr = douane(&["audit", "inventory"], &files);
    assert!(fr.contains("\nmicrosoftonline.com\n"), "{fr}");
    assert!(fr.contains("\noffice365.com\n"), "{fr}");
    assert!(fr.contains("\nservice-public.fr\n"), "{fr}");
    assert!(
        fr.contains("opérateurs : Microsoft — États-Unis (US)"),
        "{fr}"
    );
    assert!(
        fr.contains("requêtes : 2 (autorisées 0, bloquées 0, observation 1, dérogation 1)"),
        "{fr}"
    );
    let csv = douane(
        &["audit", "inventory", "--format", "csv", "--lang", "en"],
        &files,
    );
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("domain,operators,jurisdictions,locations,total,allow,block,would_block,exempt,failed,hosts,first_seen,last_seen")
    );
    assert!(csv.contains("\nmicrosoftonline.com,Microsoft — United States (US),US,IE,2,0,2,0,0,0,login.microsoftonline.com,"), "{csv}");
    let json = douane(&["audit", "inventory", "--format", "json"], &files);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["services"].as_array().map(Vec::len), Some(3));
}
