//! `douane audit report`: a summary of a verified log for auditors (the DPO, the CNIL, the
//! chambre régionale des comptes), in French by default or in English: requests by reason
//! (in words), by destination location and operator jurisdiction (country names), by
//! operator, by host, by rule, by client network; the top blocked destinations; exposure by
//! jurisdiction day by day; the exemptions used, with their justification, ticket and
//! expiry where the policy gives them; the periods in monitor mode; the policy versions.
//! Text, CSV, JSON or printable HTML ([`render`]'s job, in `report/render.rs`).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::record::StoredRecord;
use super::verify::{replay, VerifyError, VerifySummary};
pub use crate::country_names::Lang;
use crate::policy::Exemption;

pub(crate) mod render;
pub use render::{render, render_lang};

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
    pub(crate) fn add(&mut self, outcome: &str) {
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

/// One exemption rule used by one client, with what the policy says of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExemptionUse {
    pub rule: String,
    pub client: String,
    pub uses: u64,
    pub first_seen: String,
    pub last_seen: String,
    /// From the policy (`--config`), when it still has the rule.
    pub justification: Option<String>,
    pub ticket: Option<String>,
    /// The last day the exemption applies (YYYY-MM-DD).
    pub expires: Option<String>,
}

/// One operator (by name, from the registry or a `[[network]]` label) and its jurisdiction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorRow {
    pub operator: String,
    pub jurisdiction: Option<String>,
    pub counts: Counts,
}

/// A run of consecutive records decided in monitor mode: nothing was blocked then, what
/// would have been is counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitorPeriod {
    pub policy: String,
    pub from: String,
    pub to: String,
    pub records: u64,
    pub would_block: u64,
}

/// Exposed requests (blocked, let through in monitor mode, or exempted) of one day, by
/// the operator jurisdiction of the addresses that did not comply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExposureDay {
    pub day: String,
    pub by_jurisdiction: BTreeMap<String, u64>,
}

/// What the report knows beyond the log: its language and the policy's exemptions.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    pub lang: Lang,
    /// The policy's exemptions (`Policy::exemptions()`), to show their justification.
    pub exemptions: Vec<Exemption>,
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
    /// By reason code (`operator_not_allowed`, …); the renderers put it in words.
    pub by_reason: Vec<Row>,
    pub by_operator: Vec<OperatorRow>,
    pub by_host: Vec<Row>,
    /// The hosts with the most blocks and would-blocks, at most [`TOP_BLOCKED`].
    pub top_blocked: Vec<Row>,
    pub by_rule: Vec<Row>,
    /// /24 for IPv4, /48 for IPv6, the pseudonym as is.
    pub by_client_network: Vec<Row>,
    pub exemptions: Vec<ExemptionUse>,
    pub monitor_periods: Vec<MonitorPeriod>,
    pub exposure_by_day: Vec<ExposureDay>,
    pub policy_versions: Vec<PolicySeen>,
}

/// How many destinations "top blocked" lists.
pub const TOP_BLOCKED: usize = 10;

/// Verifies `paths`, then renders the report of the records in `[from, to)`, in English
/// (the library's historical form; `douane audit report` is French by default and goes
/// through [`report_with`]).
pub fn report(
    paths: &[PathBuf],
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    format: ReportFormat,
) -> Result<String, ReportError> {
    let options = ReportOptions {
        lang: Lang::En,
        exemptions: Vec::new(),
    };
    report_with(paths, from, to, format, &options)
}

/// [`report`] in the language of `options`, with the policy's exemptions.
pub fn report_with(
    paths: &[PathBuf],
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    format: ReportFormat,
    options: &ReportOptions,
) -> Result<String, ReportError> {
    let mut r = build_report(paths, from, to)?;
    r.attach_exemptions(&options.exemptions);
    Ok(render_lang(&r, format, options.lang))
}

impl Report {
    /// Fills each exemption used with its justification, ticket and expiry from the policy.
    pub fn attach_exemptions(&mut self, policy: &[Exemption]) {
        for used in &mut self.exemptions {
            if let Some(e) = policy.iter().find(|e| *e.id == *used.rule) {
                used.justification = e.justification.as_deref().map(str::to_owned);
                used.ticket = e.ticket.as_deref().map(str::to_owned);
                used.expires = Some(e.expires.to_string());
            }
        }
    }
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
        // A request counts once, by its gate record: restarts and end records are not
        // requests.
        if !r.is_request() {
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
    reason: HashMap<String, Counts>,
    operators: HashMap<(String, Option<String>), Counts>,
    client: HashMap<String, Counts>,
    monitor: Vec<MonitorPeriod>,
    in_monitor: bool,
    exposure: BTreeMap<String, BTreeMap<String, u64>>,
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
        let reason = r.reason.as_deref().unwrap_or(UNKNOWN);
        self.reason
            .entry(reason.to_owned())
            .or_default()
            .add(outcome);
        let mut operators: Vec<(&str, Option<&str>)> = r
            .ips
            .iter()
            .map(|i| {
                (
                    i.operator.as_deref().unwrap_or(UNKNOWN),
                    i.jurisdiction.as_deref(),
                )
            })
            .collect();
        operators.sort_unstable();
        operators.dedup();
        for (op, j) in operators {
            self.operators
                .entry((op.to_owned(), j.map(str::to_owned)))
                .or_default()
                .add(outcome);
        }
        self.add_monitor(r, outcome);
        if matches!(outcome, "block" | "would-block" | "exempt") {
            let bad: Vec<_> = r.ips.iter().filter(|i| i.violation.is_some()).collect();
            let considered = if bad.is_empty() {
                r.ips.iter().collect()
            } else {
                bad
            };
            let mut js: Vec<&str> = considered
                .iter()
                .map(|i| i.jurisdiction.as_deref().unwrap_or(UNKNOWN))
                .collect();
            js.sort_unstable();
            js.dedup();
            let day = self
                .exposure
                .entry(r.ts.get(..10).unwrap_or(&r.ts).to_owned())
                .or_default();
            for j in js {
                *day.entry(j.to_owned()).or_default() += 1;
            }
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

    /// Monitor-mode records extend the open period; an enforce record closes it.
    fn add_monitor(&mut self, r: &StoredRecord, outcome: &str) {
        if r.mode.as_deref() != Some("monitor") {
            self.in_monitor = false;
            return;
        }
        let policy = r.policy.as_deref().unwrap_or(UNKNOWN);
        let open = self.in_monitor && self.monitor.last().is_some_and(|p| p.policy == policy);
        if !open {
            self.monitor.push(MonitorPeriod {
                policy: policy.to_owned(),
                from: r.ts.clone(),
                to: r.ts.clone(),
                records: 0,
                would_block: 0,
            });
        }
        self.in_monitor = true;
        if let Some(p) = self.monitor.last_mut() {
            p.to = r.ts.clone();
            p.records += 1;
            p.would_block += u64::from(outcome == "would-block");
        }
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
        let by_host = rows(self.host);
        let mut top_blocked: Vec<Row> = by_host
            .iter()
            .filter(|r| r.counts.block + r.counts.would_block > 0)
            .cloned()
            .collect();
        top_blocked.sort_by(|a, b| {
            (b.counts.block + b.counts.would_block)
                .cmp(&(a.counts.block + a.counts.would_block))
                .then_with(|| a.key.cmp(&b.key))
        });
        top_blocked.truncate(TOP_BLOCKED);
        let mut by_operator: Vec<OperatorRow> = self
            .operators
            .into_iter()
            .map(|((operator, jurisdiction), counts)| OperatorRow {
                operator,
                jurisdiction,
                counts,
            })
            .collect();
        by_operator.sort_by(|a, b| {
            b.counts
                .total()
                .cmp(&a.counts.total())
                .then_with(|| a.operator.cmp(&b.operator))
        });
        Report {
            chain,
            from,
            to,
            totals: self.totals,
            by_location: rows(self.location),
            by_operator_jurisdiction: rows(self.operator),
            by_reason: rows(self.reason),
            by_operator,
            by_host,
            top_blocked,
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
                        justification: None,
                        ticket: None,
                        expires: None,
                    },
                )
                .collect(),
            monitor_periods: self.monitor,
            exposure_by_day: self
                .exposure
                .into_iter()
                .map(|(day, by_jurisdiction)| ExposureDay {
                    day,
                    by_jurisdiction,
                })
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

#[cfg(test)]
mod tests;
