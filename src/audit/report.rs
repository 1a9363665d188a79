//! `douane audit report`: a summary of a verified log for auditors: blocks and exposure by
//! destination location and operator jurisdiction, by host, by rule, by client network;
//! exemptions used and by whom; the policy versions in force over the period.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::record::StoredRecord;
use super::verify::{replay, VerifyError, VerifySummary};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    Csv,
    Json,
    Html,
}

impl FromStr for ReportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(ReportFormat::Text),
            "csv" => Ok(ReportFormat::Csv),
            "json" => Ok(ReportFormat::Json),
            "html" => Ok(ReportFormat::Html),
            other => Err(format!(
                "unknown report format `{other}`: give text, csv, json or html"
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The log does not verify: no report from a chain that cannot be trusted.
    #[error("the audit log does not verify, no report: {0}")]
    Verify(#[from] VerifyError),
    #[error("--from {from} is not before --to {to}: give a period that is not empty")]
    EmptyPeriod { from: String, to: String },
}

/// Records by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub block: u64,
    pub would_block: u64,
    pub exempt: u64,
    pub allow: u64,
    pub failed: u64,
}

impl Counts {
    fn add(&mut self, outcome: &str) {
        match outcome {
            "block" => self.block += 1,
            "would-block" => self.would_block += 1,
            "exempt" => self.exempt += 1,
            "allow" => self.allow += 1,
            _ => self.failed += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.block + self.would_block + self.exempt + self.allow + self.failed
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub key: String,
    pub counts: Counts,
}

/// One exemption rule used by one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExemptionUse {
    pub rule: String,
    pub client: String,
    pub uses: u64,
    pub first_seen: String,
    pub last_seen: String,
}

/// One policy version seen in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySeen {
    pub policy: String,
    pub version: String,
    pub records: u64,
    pub first_seen: String,
    pub last_seen: String,
}

/// The whole report, also its JSON form.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub chain: VerifySummary,
    pub from: Option<String>,
    pub to: Option<String>,
    pub totals: Counts,
    /// A request with addresses in two countries counts under both.
    pub by_location: Vec<Row>,
    pub by_operator_jurisdiction: Vec<Row>,
    pub by_host: Vec<Row>,
    pub by_rule: Vec<Row>,
    /// /24 for IPv4, /48 for IPv6, the pseudonym as is.
    pub by_client_network: Vec<Row>,
    pub exemptions: Vec<ExemptionUse>,
    pub policy_versions: Vec<PolicySeen>,
}

/// Verifies `paths`, then renders the report of the records in `[from, to)`.
pub fn report(
    paths: &[PathBuf],
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    format: ReportFormat,
) -> Result<String, ReportError> {
    Ok(render(&build_report(paths, from, to)?, format))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Verifies `paths` and aggregates the request records in `[from, to)`.
pub fn build_report(
    paths: &[PathBuf],
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> Result<Report, ReportError> {
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(ReportError::EmptyPeriod {
                from: rfc3339(f),
                to: rfc3339(t),
            });
        }
    }
    let mut acc = Acc::default();
    let chain = replay(paths, &mut |r| {
        if r.is_restart() {
            return;
        }
        let ts = OffsetDateTime::parse(&r.ts, &Rfc3339).ok();
        let inside = match ts {
            Some(ts) => from.is_none_or(|f| ts >= f) && to.is_none_or(|t| ts < t),
            None => from.is_none() && to.is_none(),
        };
        if inside {
            acc.add(r);
        }
    })?;
    Ok(acc.finish(chain, from.map(rfc3339), to.map(rfc3339)))
}

#[derive(Default)]
struct Acc {
    totals: Counts,
    location: HashMap<String, Counts>,
    operator: HashMap<String, Counts>,
    host: HashMap<String, Counts>,
    rule: HashMap<String, Counts>,
    client: HashMap<String, Counts>,
    exemptions: BTreeMap<(String, String), (u64, String, String)>,
    policies: BTreeMap<(String, String), (u64, String, String)>,
}

const UNKNOWN: &str = "unknown";

fn seen(
    map: &mut BTreeMap<(String, String), (u64, String, String)>,
    key: (String, String),
    ts: &str,
) {
    let e = map
        .entry(key)
        .or_insert_with(|| (0, ts.to_owned(), ts.to_owned()));
    e.0 += 1;
    e.2 = ts.to_owned();
}

impl Acc {
    fn add(&mut self, r: &StoredRecord) {
        let outcome = r.outcome.as_deref().unwrap_or("failed");
        self.totals.add(outcome);
        let mut locations: Vec<&str> = r
            .ips
            .iter()
            .map(|i| i.location.as_deref().unwrap_or(UNKNOWN))
            .collect();
        locations.sort_unstable();
        locations.dedup();
        for l in locations {
            self.location.entry(l.to_owned()).or_default().add(outcome);
        }
        let mut ops: Vec<&str> = r
            .ips
            .iter()
            .map(|i| i.jurisdiction.as_deref().unwrap_or(UNKNOWN))
            .collect();
        ops.sort_unstable();
        ops.dedup();
        for o in ops {
            self.operator.entry(o.to_owned()).or_default().add(outcome);
        }
        let host = r.host.as_deref().unwrap_or(UNKNOWN);
        self.host.entry(host.to_owned()).or_default().add(outcome);
        let rule = r.rule.as_deref().unwrap_or("(policy defaults)");
        self.rule.entry(rule.to_owned()).or_default().add(outcome);
        let client = r.client.as_deref().unwrap_or(UNKNOWN);
        self.client
            .entry(client_network(client))
            .or_default()
            .add(outcome);
        if outcome == "exempt" {
            seen(
                &mut self.exemptions,
                (rule.to_owned(), client.to_owned()),
                &r.ts,
            );
        }
        let policy = r.policy.as_deref().unwrap_or(UNKNOWN).to_owned();
        let version = r.policy_version.as_deref().unwrap_or(UNKNOWN).to_owned();
        seen(&mut self.policies, (policy, version), &r.ts);
    }

    fn finish(self, chain: VerifySummary, from: Option<String>, to: Option<String>) -> Report {
        let rows = |m: HashMap<String, Counts>| {
            let mut v: Vec<Row> = m
                .into_iter()
                .map(|(key, counts)| Row { key, counts })
                .collect();
            v.sort_by(|a, b| {
                b.counts
                    .total()
                    .cmp(&a.counts.total())
                    .then_with(|| a.key.cmp(&b.key))
            });
            v
        };
        let mut policy_versions: Vec<PolicySeen> = self
            .policies
            .into_iter()
            .map(
                |((policy, version), (records, first_seen, last_seen))| PolicySeen {
                    policy,
                    version,
                    records,
                    first_seen,
                    last_seen,
                },
            )
            .collect();
        policy_versions.sort_by(|a, b| a.first_seen.cmp(&b.first_seen));
        Report {
            chain,
            from,
            to,
            totals: self.totals,
            by_location: rows(self.location),
            by_operator_jurisdiction: rows(self.operator),
            by_host: rows(self.host),
            by_rule: rows(self.rule),
            by_client_network: rows(self.client),
            exemptions: self
                .exemptions
                .into_iter()
                .map(
                    |((rule, client), (uses, first_seen, last_seen))| ExemptionUse {
                        rule,
                        client,
                        uses,
                        first_seen,
                        last_seen,
                    },
                )
                .collect(),
            policy_versions,
        }
    }
}

/// `a.b.c.0/24`, `x:y:z::/48`, or a pseudonym as is.
fn client_network(client: &str) -> String {
    match client.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{net}/48")
        }
        Err(_) => client.to_owned(),
    }
}

/// Renders a report.
pub fn render(r: &Report, format: ReportFormat) -> String {
    match format {
        ReportFormat::Json => serde_json::to_string_pretty(r).unwrap_or_default() + "\n",
        ReportFormat::Text => render_text(r),
        ReportFormat::Csv => render_csv(r),
        ReportFormat::Html => render_html(r),
    }
}

const TABLES: [(&str, &str); 5] = [
    ("location", "Requests by destination location"),
    ("operator_jurisdiction", "Requests by operator jurisdiction"),
    ("host", "Requests by destination host"),
    ("rule", "Requests by rule"),
    ("client_network", "Requests by client network"),
];

fn tables(r: &Report) -> [(&'static str, &'static str, &[Row]); 5] {
    let rows = [
        &r.by_location,
        &r.by_operator_jurisdiction,
        &r.by_host,
        &r.by_rule,
        &r.by_client_network,
    ];
    let mut i = 0;
    rows.map(|rows| {
        let (id, title) = TABLES[i];
        i += 1;
        (id, title, rows.as_slice())
    })
}

/// Untrusted text for a terminal: control characters shown escaped, never interpreted.
fn clean(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn period(r: &Report) -> String {
    format!(
        "{} .. {}",
        r.from.as_deref().unwrap_or("(start)"),
        r.to.as_deref().unwrap_or("(end)")
    )
}

fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let t = &r.totals;
    let _ = writeln!(out, "douane audit report");
    let _ = writeln!(out, "{}", r.chain);
    let _ = writeln!(out, "report period: {}", period(r));
    let _ = writeln!(
        out,
        "requests: {} (block {}, would-block {}, exempt {}, allow {}, failed {})",
        t.total(),
        t.block,
        t.would_block,
        t.exempt,
        t.allow,
        t.failed
    );
    for (_, title, rows) in tables(r) {
        let _ = writeln!(out, "\n{title}");
        let width = rows
            .iter()
            .map(|row| clean(&row.key).chars().count())
            .max()
            .unwrap_or(0)
            .max(3);
        let _ = writeln!(
            out,
            "  {:<width$}  {:>7} {:>11} {:>7} {:>7} {:>7} {:>7}",
            "key", "block", "would-block", "exempt", "allow", "failed", "total"
        );
        for row in rows {
            let c = &row.counts;
            let _ = writeln!(
                out,
                "  {:<width$}  {:>7} {:>11} {:>7} {:>7} {:>7} {:>7}",
                clean(&row.key),
                c.block,
                c.would_block,
                c.exempt,
                c.allow,
                c.failed,
                c.total()
            );
        }
    }
    let _ = writeln!(out, "\nExemptions used");
    if r.exemptions.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for e in &r.exemptions {
        let _ = writeln!(
            out,
            "  {} by {}: {} use(s), {} .. {}",
            clean(&e.rule),
            clean(&e.client),
            e.uses,
            e.first_seen,
            e.last_seen
        );
    }
    let _ = writeln!(out, "\nPolicy versions in force");
    for p in &r.policy_versions {
        let _ = writeln!(
            out,
            "  {} {}: {} record(s), {} .. {}",
            clean(&p.policy),
            clean(&p.version),
            p.records,
            clean(&p.first_seen),
            clean(&p.last_seen)
        );
    }
    out
}

/// One CSV field: quoted when needed, and a leading `= + - @` neutralised so that a
/// spreadsheet does not run a host name sent by a client as a formula.
fn csv(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn render_csv(r: &Report) -> String {
    let mut out = String::from(
        "section,key,client,block,would_block,exempt,allow,failed,total,first_seen,last_seen\n",
    );
    for (id, _, rows) in tables(r) {
        for row in rows {
            let c = &row.counts;
            let _ = writeln!(
                out,
                "{id},{},,{},{},{},{},{},{},,",
                csv(&row.key),
                c.block,
                c.would_block,
                c.exempt,
                c.allow,
                c.failed,
                c.total()
            );
        }
    }
    for e in &r.exemptions {
        let _ = writeln!(
            out,
            "exemption,{},{},,,{},,,{},{},{}",
            csv(&e.rule),
            csv(&e.client),
            e.uses,
            e.uses,
            csv(&e.first_seen),
            csv(&e.last_seen)
        );
    }
    for p in &r.policy_versions {
        let key = format!("{} {}", p.policy, p.version);
        let _ = writeln!(
            out,
            "policy_version,{},,,,,,,{},{},{}",
            csv(&key),
            p.records,
            csv(&p.first_seen),
            csv(&p.last_seen)
        );
    }
    out
}

fn html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => {
                let _ = write!(o, "&#{};", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

fn render_html(r: &Report) -> String {
    let mut o = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>douane audit report</title>\n<style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #999;padding:2px 8px}td.n{text-align:right}</style></head><body>\n<h1>douane audit report</h1>\n");
    let _ = writeln!(o, "<pre>{}</pre>", html(&r.chain.to_string()));
    let t = &r.totals;
    let _ = writeln!(o, "<p>Report period: {}. Requests: {} (block {}, would-block {}, exempt {}, allow {}, failed {}).</p>", html(&period(r)), t.total(), t.block, t.would_block, t.exempt, t.allow, t.failed);
    for (_, title, rows) in tables(r) {
        let _ = writeln!(o, "<h2>{title}</h2>\n<table><tr><th>key</th><th>block</th><th>would-block</th><th>exempt</th><th>allow</th><th>failed</th><th>total</th></tr>");
        for row in rows {
            let c = &row.counts;
            let _ = writeln!(o, "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>", html(&row.key), c.block, c.would_block, c.exempt, c.allow, c.failed, c.total());
        }
        o.push_str("</table>\n");
    }
    o.push_str("<h2>Exemptions used</h2>\n<table><tr><th>rule</th><th>client</th><th>uses</th><th>first seen</th><th>last seen</th></tr>\n");
    for e in &r.exemptions {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
            html(&e.rule),
            html(&e.client),
            e.uses,
            html(&e.first_seen),
            html(&e.last_seen)
        );
    }
    o.push_str("</table>\n<h2>Policy versions in force</h2>\n<table><tr><th>policy</th><th>version</th><th>records</th><th>first seen</th><th>last seen</th></tr>\n");
    for p in &r.policy_versions {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
            html(&p.policy),
            html(&p.version),
            p.records,
            html(&p.first_seen),
            html(&p.last_seen)
        );
    }
    o.push_str("</table>\n</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::audit::record::tests::{block_decision, event};
    use crate::audit::writer::tests::config_in;
    use crate::audit::AuditWriter;
    use crate::policy::decision::{Mode, Outcome, Provenance, Reason};

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

        let text = render(&r, ReportFormat::Text);
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
}
