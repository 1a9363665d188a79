//! `douane audit inventory`: the SaaS a collectivité actually uses, from a verified log —
//! the first question of a monitor-mode rollout: *which services, who runs them, under
//! which law?* Destinations are grouped by registrable domain (the public suffix list,
//! compiled in: `login.microsoftonline.com` and `outlook.office365.com` are two services,
//! `a.crm.example` and `b.crm.example` one), each with its operators, their jurisdictions,
//! the locations seen, and the requests by outcome.
//!
//! Only what the log holds is counted: allowed requests appear only when the audit log
//! records them (`[audit] record_allowed = true`); the README weighs that choice.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::record::StoredRecord;
use super::report::render::{chain_line, clean, country_label, csv, html, short_ts, REPORT_CSS};
use super::report::{Counts, Lang, ReportError, ReportFormat};
use super::verify::{replay, VerifySummary};

/// At most this many host names are listed under one service.
pub const MAX_HOSTS: usize = 20;

/// One operator of a service and the law it is under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ServiceOperator {
    pub operator: Option<String>,
    pub jurisdiction: Option<String>,
}

/// One service: the destinations under one registrable domain.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    /// The registrable domain (`example.co.uk`), or the address for an IP literal.
    pub domain: String,
    /// Host names seen, at most [`MAX_HOSTS`]; `hosts_total` counts them all.
    pub hosts: Vec<String>,
    pub hosts_total: usize,
    pub operators: Vec<ServiceOperator>,
    /// Location country codes of the addresses seen.
    pub locations: Vec<String>,
    pub counts: Counts,
    pub first_seen: String,
    pub last_seen: String,
}

/// The inventory, also its JSON form.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    pub chain: VerifySummary,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Most requests first.
    pub services: Vec<Service>,
    pub totals: Counts,
}

/// The registrable domain of a host by the public suffix list: `www.impots.gouv.fr` →
/// `impots.gouv.fr` (`gouv.fr` is a public suffix), `a.b.example.co.uk` → `example.co.uk`.
/// An IP literal is its own.
pub fn registrable_domain(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        return bare.to_owned();
    }
    match psl::domain_str(&host) {
        Some(d) => d.to_owned(),
        None => host,
    }
}

#[derive(Default)]
struct Acc {
    hosts: BTreeSet<String>,
    operators: BTreeSet<ServiceOperator>,
    locations: BTreeSet<String>,
    counts: Counts,
    first_seen: String,
    last_seen: String,
}

/// Verifies `paths` and gathers the services of the request records in `[from, to)`.
pub fn build_inventory(
    paths: &[PathBuf],
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> Result<Inventory, ReportError> {
    let fmt = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(ReportError::EmptyPeriod {
                from: fmt(f),
                to: fmt(t),
            });
        }
    }
    let mut services: BTreeMap<String, Acc> = BTreeMap::new();
    let mut totals = Counts::default();
    let chain = replay(paths, &mut |r: &StoredRecord| {
        if !r.is_request() {
            return;
        }
        let ts = OffsetDateTime::parse(&r.ts, &Rfc3339).ok();
        let inside = match ts {
            Some(ts) => from.is_none_or(|f| ts >= f) && to.is_none_or(|t| ts < t),
            None => from.is_none() && to.is_none(),
        };
        if !inside {
            return;
        }
        let Some(host) = r.host.as_deref() else {
            return;
        };
        let outcome = r.outcome.as_deref().unwrap_or("failed");
        totals.add(outcome);
        let acc = services.entry(registrable_domain(host)).or_default();
        if acc.first_seen.is_empty() {
            acc.first_seen = r.ts.clone();
        }
        acc.last_seen = r.ts.clone();
        acc.counts.add(outcome);
        if acc.hosts.len() < 4 * MAX_HOSTS || acc.hosts.contains(host) {
            acc.hosts.insert(host.to_ascii_lowercase());
        }
        for ip in &r.ips {
            acc.operators.insert(ServiceOperator {
                operator: ip.operator.clone(),
                jurisdiction: ip.jurisdiction.clone(),
            });
            if let Some(l) = &ip.location {
                acc.locations.insert(l.clone());
            }
        }
    })?;
    let mut services: Vec<Service> = services
        .into_iter()
        .map(|(domain, a)| Service {
            domain,
            hosts_total: a.hosts.len(),
            hosts: a.hosts.into_iter().take(MAX_HOSTS).collect(),
            operators: a.operators.into_iter().collect(),
            locations: a.locations.into_iter().collect(),
            counts: a.counts,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
        })
        .collect();
    services.sort_by(|a, b| {
        b.counts
            .total()
            .cmp(&a.counts.total())
            .then_with(|| a.domain.cmp(&b.domain))
    });
    Ok(Inventory {
        chain,
        from: from.map(fmt),
        to: to.map(fmt),
        services,
        totals,
    })
}

/// Verifies `paths`, then renders the inventory of `[from, to)`.
pub fn inventory(
    paths: &[PathBuf],
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    format: ReportFormat,
    lang: Lang,
) -> Result<String, ReportError> {
    Ok(render_inventory(
        &build_inventory(paths, from, to)?,
        format,
        lang,
    ))
}

fn operator_text(o: &ServiceOperator, lang: Lang) -> String {
    let who = o.operator.clone().unwrap_or_else(|| {
        lang.pick("opérateur inconnu", "unknown operator")
            .to_owned()
    });
    match &o.jurisdiction {
        Some(j) => format!("{who} — {}", country_label(j, lang)),
        None => format!("{who} — {}", lang.pick("droit inconnu", "unknown law")),
    }
}

fn operators_text(s: &Service, lang: Lang) -> String {
    s.operators
        .iter()
        .map(|o| operator_text(o, lang))
        .collect::<Vec<_>>()
        .join("; ")
}

fn locations_text(s: &Service, lang: Lang) -> String {
    if s.locations.is_empty() {
        return lang.pick("inconnue", "unknown").to_owned();
    }
    s.locations
        .iter()
        .map(|l| country_label(l, lang))
        .collect::<Vec<_>>()
        .join(", ")
}

fn hosts_text(s: &Service, lang: Lang) -> String {
    let mut t = s.hosts.join(", ");
    if s.hosts_total > s.hosts.len() {
        let _ = write!(
            t,
            " {} {}",
            lang.pick("… et d’autres, en tout", "… and more, in all"),
            s.hosts_total
        );
    }
    t
}

fn no_allowed_warning(inv: &Inventory, lang: Lang) -> Option<&'static str> {
    (inv.totals.allow == 0 && inv.totals.total() > 0).then(|| {
        lang.pick(
            "Aucune requête autorisée dans le journal : sans `[audit] record_allowed = true`, l’inventaire ne montre que les destinations bloquées, en observation ou par dérogation.",
            "No allowed request in the log: without `[audit] record_allowed = true`, the inventory shows only the destinations that were blocked, would have been, or were exempted.",
        )
    })
}

/// Renders the inventory in `lang` (JSON is the same in both).
pub fn render_inventory(inv: &Inventory, format: ReportFormat, lang: Lang) -> String {
    match format {
        ReportFormat::Json => serde_json::to_string_pretty(inv).unwrap_or_default() + "\n",
        ReportFormat::Text => render_text(inv, lang),
        ReportFormat::Csv => render_csv(inv, lang),
        ReportFormat::Html => render_html(inv, lang),
    }
}

fn period(inv: &Inventory, lang: Lang) -> String {
    let from = inv.from.as_deref().or(inv.chain.first_ts.as_deref());
    let to = inv.to.as_deref().or(inv.chain.last_ts.as_deref());
    format!(
        "{} .. {}",
        from.map_or_else(|| lang.pick("(début)", "(start)").to_owned(), short_ts),
        to.map_or_else(|| lang.pick("(fin)", "(end)").to_owned(), short_ts)
    )
}

fn render_text(inv: &Inventory, lang: Lang) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}",
        lang.pick(
            "douane — inventaire des services en ligne (SaaS)",
            "douane — SaaS inventory"
        )
    );
    let _ = writeln!(
        o,
        "{} {}",
        lang.pick("période :", "period:"),
        period(inv, lang)
    );
    let _ = writeln!(
        o,
        "{} {}",
        lang.pick("services :", "services:"),
        inv.services.len()
    );
    if let Some(w) = no_allowed_warning(inv, lang) {
        let _ = writeln!(o, "{} {w}", lang.pick("attention :", "warning:"));
    }
    let [allow, block, would, exempt] = labels(lang);
    for s in &inv.services {
        let c = &s.counts;
        let _ = writeln!(o, "\n{}", clean(&s.domain));
        let _ = writeln!(
            o,
            "  {} {}",
            lang.pick("opérateurs :", "operators:"),
            clean(&operators_text(s, lang))
        );
        let _ = writeln!(
            o,
            "  {} {}",
            lang.pick("localisations :", "locations:"),
            locations_text(s, lang)
        );
        let _ = writeln!(
            o,
            "  {} {} ({allow} {}, {block} {}, {would} {}, {exempt} {})",
            lang.pick("requêtes :", "requests:"),
            c.total(),
            c.allow,
            c.block,
            c.would_block,
            c.exempt
        );
        let _ = writeln!(
            o,
            "  {} {}",
            lang.pick("noms :", "hosts:"),
            clean(&hosts_text(s, lang))
        );
        let _ = writeln!(
            o,
            "  {} {} .. {}",
            lang.pick("vu :", "seen:"),
            short_ts(&s.first_seen),
            short_ts(&s.last_seen)
        );
    }
    o
}

fn labels(lang: Lang) -> [&'static str; 4] {
    match lang {
        Lang::Fr => ["autorisées", "bloquées", "observation", "dérogation"],
        Lang::En => ["allowed", "blocked", "would-block", "exempt"],
    }
}

fn render_csv(inv: &Inventory, lang: Lang) -> String {
    let mut o = String::from("domain,operators,jurisdictions,locations,total,allow,block,would_block,exempt,failed,hosts,first_seen,last_seen\n");
    for s in &inv.services {
        let c = &s.counts;
        let js: BTreeSet<&str> = s
            .operators
            .iter()
            .filter_map(|o| o.jurisdiction.as_deref())
            .collect();
        let _ = writeln!(
            o,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv(&s.domain),
            csv(&operators_text(s, lang)),
            csv(&js.into_iter().collect::<Vec<_>>().join(" ")),
            csv(&s.locations.join(" ")),
            c.total(),
            c.allow,
            c.block,
            c.would_block,
            c.exempt,
            c.failed,
            csv(&s.hosts.join(" ")),
            csv(&s.first_seen),
            csv(&s.last_seen)
        );
    }
    o
}

fn render_html(inv: &Inventory, lang: Lang) -> String {
    let mut o = String::new();
    let title = lang.pick(
        "douane — inventaire des services en ligne (SaaS)",
        "douane — SaaS inventory",
    );
    let _ = write!(o, "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\n<style>{REPORT_CSS}</style></head><body><main>\n<h1>{title}</h1>\n");
    let _ = writeln!(
        o,
        "<p>{} {} — {} {}</p>",
        lang.pick("Période :", "Period:"),
        html(&period(inv, lang)),
        inv.services.len(),
        lang.pick("services", "services")
    );
    let _ = writeln!(
        o,
        "<div class=meta>{}</div>",
        html(&chain_line(&inv.chain, lang))
    );
    if let Some(w) = no_allowed_warning(inv, lang) {
        let _ = writeln!(o, "<p><strong>{}</strong></p>", html(w));
    }
    let [allow, block, would, exempt] = labels(lang);
    let _ = writeln!(
        o,
        "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th class=n>total</th><th class=n>{allow}</th><th class=n>{block}</th><th class=n>{would}</th><th class=n>{exempt}</th><th>{}</th></tr></thead>",
        lang.pick("service (domaine)", "service (domain)"),
        lang.pick("opérateur — droit applicable", "operator — law it is under"),
        lang.pick("localisation", "location"),
        lang.pick("noms vus", "hosts seen"),
    );
    for s in &inv.services {
        let c = &s.counts;
        let _ = writeln!(
            o,
            "<tr><td><b>{}</b></td><td class=op>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td><code>{}</code></td></tr>",
            html(&s.domain),
            s.operators.iter().map(|op| html(&operator_text(op, lang))).collect::<Vec<_>>().join("<br>"),
            html(&locations_text(s, lang)),
            c.total(), c.allow, c.block, c.would_block, c.exempt,
            html(&hosts_text(s, lang))
        );
    }
    o.push_str("</table>\n</main></body></html>\n");
    o
}

#[cfg(test)]
#[path = "inventory_tests.rs"]
mod tests;
