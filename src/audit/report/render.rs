//! The report as text, CSV, JSON or printable HTML, in French or English: reasons in words,
//! countries by name, operators with their jurisdiction.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Counts, Lang, Report, ReportFormat, Row, UNKNOWN};
use crate::block_page::reason_words;
use crate::country::Country;
use crate::country_names::name;
use crate::policy::Reason;

/// Renders a report in English (as [`super::report`] does).
pub fn render(r: &Report, format: ReportFormat) -> String {
    render_lang(r, format, Lang::En)
}

/// Renders a report in `lang` (the JSON form is the same in both).
pub fn render_lang(r: &Report, format: ReportFormat, lang: Lang) -> String {
    match format {
        ReportFormat::Json => serde_json::to_string_pretty(r).unwrap_or_default() + "\n",
        ReportFormat::Text => render_text(r, lang),
        ReportFormat::Csv => render_csv(r, lang),
        ReportFormat::Html => render_html(r, lang),
    }
}

/// `2026-12-01T12:16:05.102007925Z` → `2026-12-01 12:16:05Z`: what a reader needs.
pub(crate) fn short_ts(ts: &str) -> String {
    match (ts.get(..10), ts.get(11..19)) {
        (Some(day), Some(time)) if ts.as_bytes().get(10) == Some(&b'T') => {
            format!("{day} {time}Z")
        }
        _ => ts.to_owned(),
    }
}

/// `US` → "États-Unis (US)"; `unknown` → "inconnue".
pub(crate) fn country_label(code: &str, lang: Lang) -> String {
    if code == UNKNOWN {
        return lang.pick("inconnu", "unknown").to_owned();
    }
    match Country::parse(code) {
        Ok(c) => format!("{} ({code})", name(c, lang)),
        Err(_) => code.to_owned(),
    }
}

/// `operator_not_allowed` → "Opérateur soumis à un droit non autorisé".
pub(crate) fn reason_label(code: &str, lang: Lang) -> String {
    match Reason::ALL.iter().find(|r| r.as_str() == code) {
        Some(r) => reason_words(*r)[usize::from(lang == Lang::En)].0.to_owned(),
        None => code.to_owned(),
    }
}

fn rule_label(key: &str, lang: Lang) -> String {
    if key == "(policy defaults)" {
        lang.pick("(règles par défaut)", "(policy defaults)")
            .to_owned()
    } else {
        key.to_owned()
    }
}

/// One table of the report: an id (CSV section), a title, rows of label and counts.
struct Table<'a> {
    id: &'static str,
    title: &'static str,
    rows: Labelled<'a>,
}

type Labelled<'a> = Vec<(String, &'a str, &'a Counts)>;

fn plain<'a>(rows: &'a [Row], f: &dyn Fn(&str) -> String) -> Labelled<'a> {
    rows.iter()
        .map(|row| (f(&row.key), row.key.as_str(), &row.counts))
        .collect()
}

fn tables(r: &Report, lang: Lang) -> Vec<Table<'_>> {
    let same = |k: &str| k.to_owned();
    vec![
        Table {
            id: "reason",
            title: lang.pick("Requêtes par motif", "Requests by reason"),
            rows: plain(&r.by_reason, &|k| reason_label(k, lang)),
        },
        Table {
            id: "operator_jurisdiction",
            title: lang.pick(
                "Requêtes par juridiction de l’opérateur",
                "Requests by operator jurisdiction",
            ),
            rows: plain(&r.by_operator_jurisdiction, &|k| country_label(k, lang)),
        },
        Table {
            id: "location",
            title: lang.pick(
                "Requêtes par localisation de la destination",
                "Requests by destination location",
            ),
            rows: plain(&r.by_location, &|k| country_label(k, lang)),
        },
        Table {
            id: "operator",
            title: lang.pick("Requêtes par opérateur", "Requests by operator"),
            rows: r
                .by_operator
                .iter()
                .map(|o| {
                    let who = if o.operator == UNKNOWN {
                        lang.pick("opérateur inconnu", "unknown operator")
                            .to_owned()
                    } else {
                        o.operator.clone()
                    };
                    let law = o.jurisdiction.as_deref().map_or_else(
                        || lang.pick("droit inconnu", "unknown law").to_owned(),
                        |j| country_label(j, lang),
                    );
                    (format!("{who} — {law}"), o.operator.as_str(), &o.counts)
                })
                .collect(),
        },
        Table {
            id: "top_blocked",
            title: lang.pick("Destinations les plus bloquées", "Top blocked destinations"),
            rows: plain(&r.top_blocked, &same),
        },
        Table {
            id: "host",
            title: lang.pick("Requêtes par destination", "Requests by destination host"),
            rows: plain(&r.by_host, &same),
        },
        Table {
            id: "rule",
            title: lang.pick("Requêtes par règle", "Requests by rule"),
            rows: plain(&r.by_rule, &|k| rule_label(k, lang)),
        },
        Table {
            id: "client_network",
            title: lang.pick("Requêtes par réseau client", "Requests by client network"),
            rows: plain(&r.by_client_network, &same),
        },
    ]
}

fn columns(lang: Lang) -> [&'static str; 6] {
    match lang {
        Lang::Fr => [
            "bloquées",
            "observation",
            "dérogation",
            "autorisées",
            "échecs",
            "total",
        ],
        Lang::En => ["block", "would-block", "exempt", "allow", "failed", "total"],
    }
}

/// Untrusted text for a terminal: control characters shown escaped, never interpreted.
pub(crate) fn clean(s: &str) -> String {
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

fn period(r: &Report, lang: Lang) -> String {
    format!(
        "{} .. {}",
        r.from.as_deref().unwrap_or(lang.pick("(début)", "(start)")),
        r.to.as_deref().unwrap_or(lang.pick("(fin)", "(end)"))
    )
}

/// The verification summary in words.
pub(crate) fn chain_line(c: &crate::audit::VerifySummary, lang: Lang) -> String {
    match lang {
        Lang::En => c.to_string(),
        Lang::Fr => {
            let mut s = match (c.first_seq, c.last_seq) {
                (Some(a), Some(b)) => format!(
                    "chaîne d’audit vérifiée : {} fichier(s), {} enregistrement(s), seq {a}..={b}\npériode du journal : {} .. {}\ndernière empreinte : {}",
                    c.files,
                    c.records,
                    c.first_ts.as_deref().unwrap_or("?"),
                    c.last_ts.as_deref().unwrap_or("?"),
                    c.last_hash.as_deref().unwrap_or("?")
                ),
                _ => format!("chaîne d’audit vérifiée : {} fichier(s), aucun enregistrement", c.files),
            };
            if c.starts_mid_chain {
                s.push_str("\nnote : la chaîne ne commence pas au début : les fichiers antérieurs n’ont pas été fournis ni vérifiés");
            }
            if !c.restarts.is_empty() {
                let _ = write!(
                    s,
                    "\nnote : {} redémarrage(s) de la chaîne après une fin corrompue",
                    c.restarts.len()
                );
            }
            s
        }
    }
}

fn totals_line(t: &Counts, lang: Lang) -> String {
    match lang {
        Lang::Fr => format!(
            "requêtes : {} (bloquées {}, bloquées en observation {}, dérogations {}, autorisées {}, échecs {})",
            t.total(), t.block, t.would_block, t.exempt, t.allow, t.failed
        ),
        Lang::En => format!(
            "requests: {} (block {}, would-block {}, exempt {}, allow {}, failed {})",
            t.total(), t.block, t.would_block, t.exempt, t.allow, t.failed
        ),
    }
}

/// The jurisdictions of the exposure table, most exposed first.
fn exposure_columns(r: &Report) -> Vec<String> {
    let mut sum: BTreeMap<&str, u64> = BTreeMap::new();
    for d in &r.exposure_by_day {
        for (j, n) in &d.by_jurisdiction {
            *sum.entry(j).or_default() += n;
        }
    }
    let mut v: Vec<(&str, u64)> = sum.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.into_iter().map(|(j, _)| j.to_owned()).collect()
}

fn render_text(r: &Report, lang: Lang) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        lang.pick("douane — rapport d’audit", "douane audit report")
    );
    let _ = writeln!(out, "{}", chain_line(&r.chain, lang));
    let _ = writeln!(
        out,
        "{} {}",
        lang.pick("période du rapport :", "report period:"),
        period(r, lang)
    );
    let _ = writeln!(out, "{}", totals_line(&r.totals, lang));
    let cols = columns(lang);
    for t in tables(r, lang) {
        let _ = writeln!(out, "\n{}", t.title);
        if t.rows.is_empty() {
            let _ = writeln!(out, "  {}", lang.pick("aucune", "none"));
            continue;
        }
        let width = t
            .rows
            .iter()
            .map(|(l, _, _)| clean(l).chars().count())
            .max()
            .unwrap_or(0)
            .max(3);
        let _ = writeln!(
            out,
            "  {:<width$}  {:>9} {:>11} {:>10} {:>10} {:>7} {:>7}",
            "", cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]
        );
        for (label, _, c) in &t.rows {
            let _ = writeln!(
                out,
                "  {:<width$}  {:>9} {:>11} {:>10} {:>10} {:>7} {:>7}",
                clean(label),
                c.block,
                c.would_block,
                c.exempt,
                c.allow,
                c.failed,
                c.total()
            );
        }
    }
    let _ = writeln!(out, "\n{}", lang.pick("Exposition par jour et par juridiction de l’opérateur (bloquées, observation, dérogations)", "Exposure by day and operator jurisdiction (blocked, would-block, exempt)"));
    let js = exposure_columns(r);
    if r.exposure_by_day.is_empty() {
        let _ = writeln!(out, "  {}", lang.pick("aucune", "none"));
    }
    for d in &r.exposure_by_day {
        let parts: Vec<String> = js
            .iter()
            .filter_map(|j| {
                d.by_jurisdiction
                    .get(j)
                    .map(|n| format!("{} {n}", country_label(j, lang)))
            })
            .collect();
        let _ = writeln!(out, "  {}  {}", d.day, parts.join(", "));
    }
    let _ = writeln!(
        out,
        "\n{}",
        lang.pick("Dérogations utilisées", "Exemptions used")
    );
    if r.exemptions.is_empty() {
        let _ = writeln!(out, "  {}", lang.pick("aucune", "none"));
    }
    for e in &r.exemptions {
        let _ = writeln!(
            out,
            "  {} {} {}{} {} {}, {} .. {}",
            clean(&e.rule),
            lang.pick("par", "by"),
            clean(&e.client),
            lang.pick(" :", ":"),
            e.uses,
            lang.pick("utilisation(s)", "use(s)"),
            e.first_seen,
            e.last_seen
        );
        let none = lang.pick("non renseigné", "not given");
        let _ = writeln!(
            out,
            "    {} {} ; {} {} ; {} {}",
            lang.pick("justification :", "justification:"),
            clean(e.justification.as_deref().unwrap_or(none)),
            lang.pick("ticket :", "ticket:"),
            clean(e.ticket.as_deref().unwrap_or(none)),
            lang.pick("expire le", "expires"),
            e.expires.as_deref().unwrap_or(none)
        );
    }
    let _ = writeln!(
        out,
        "\n{}",
        lang.pick(
            "Périodes en mode observation (rien n’est bloqué)",
            "Monitor-mode periods (nothing blocked)"
        )
    );
    if r.monitor_periods.is_empty() {
        let _ = writeln!(out, "  {}", lang.pick("aucune", "none"));
    }
    for p in &r.monitor_periods {
        let _ = writeln!(
            out,
            "  {} .. {}  {} : {} {}, {} {}",
            p.from,
            p.to,
            clean(&p.policy),
            p.records,
            lang.pick("requête(s)", "request(s)"),
            p.would_block,
            lang.pick("auraient été bloquées", "would have been blocked")
        );
    }
    let _ = writeln!(
        out,
        "\n{}",
        lang.pick(
            "Versions de politique en vigueur",
            "Policy versions in force"
        )
    );
    for p in &r.policy_versions {
        let _ = writeln!(
            out,
            "  {} {} : {} {}, {} .. {}",
            clean(&p.policy),
            clean(&p.version),
            p.records,
            lang.pick("enregistrement(s)", "record(s)"),
            clean(&p.first_seen),
            clean(&p.last_seen)
        );
    }
    out
}

/// One CSV field: quoted when needed, and a leading `= + - @` neutralised so that a
/// spreadsheet does not run a host name sent by a client as a formula.
pub(crate) fn csv(s: &str) -> String {
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

fn render_csv(r: &Report, lang: Lang) -> String {
    let mut out = String::from(
        "section,key,client,block,would_block,exempt,allow,failed,total,first_seen,last_seen,label,jurisdiction,justification,ticket,expires\n",
    );
    for t in tables(r, lang) {
        for (label, key, c) in &t.rows {
            let _ = writeln!(
                out,
                "{},{},,{},{},{},{},{},{},,,{},,,,",
                t.id,
                csv(key),
                c.block,
                c.would_block,
                c.exempt,
                c.allow,
                c.failed,
                c.total(),
                csv(label)
            );
        }
    }
    for d in &r.exposure_by_day {
        for (j, n) in &d.by_jurisdiction {
            let _ = writeln!(
                out,
                "exposure_day,{},,,,,,,{n},,,{},{},,,",
                csv(&d.day),
                csv(&country_label(j, lang)),
                csv(j)
            );
        }
    }
    for e in &r.exemptions {
        let _ = writeln!(
            out,
            "exemption,{},{},,,{},,,{},{},{},,,{},{},{}",
            csv(&e.rule),
            csv(&e.client),
            e.uses,
            e.uses,
            csv(&e.first_seen),
            csv(&e.last_seen),
            csv(e.justification.as_deref().unwrap_or("")),
            csv(e.ticket.as_deref().unwrap_or("")),
            csv(e.expires.as_deref().unwrap_or(""))
        );
    }
    for p in &r.monitor_periods {
        let _ = writeln!(
            out,
            "monitor_period,{},,,{},,,,{},{},{},,,,,",
            csv(&p.policy),
            p.would_block,
            p.records,
            csv(&p.from),
            csv(&p.to)
        );
    }
    for p in &r.policy_versions {
        let key = format!("{} {}", p.policy, p.version);
        let _ = writeln!(
            out,
            "policy_version,{},,,,,,,{},{},{},,,,,",
            csv(&key),
            p.records,
            csv(&p.first_seen),
            csv(&p.last_seen)
        );
    }
    out
}

pub(crate) use crate::html::escape as html;

/// The print-friendly stylesheet shared by the report and the inventory.
pub(crate) const REPORT_CSS: &str = "\
body{font:14px/1.45 system-ui,\"Segoe UI\",Roboto,\"DejaVu Sans\",sans-serif;color:#1b1b1b;margin:0;background:#f4f4f2}\
main{max-width:76rem;margin:0 auto;background:#fff;padding:1.5rem 2rem 3rem}\
h1{font-size:1.6rem;margin:0 0 .3rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;border-bottom:2px solid #1b1b1b;padding-bottom:.2rem}\
.meta{color:#555;white-space:pre-wrap;font:12px/1.4 ui-monospace,\"DejaVu Sans Mono\",monospace;background:#f4f4f2;padding:.5rem .7rem;border-radius:4px}\
.cards{display:flex;flex-wrap:wrap;gap:.6rem;margin:1rem 0}\
.card{flex:1 1 8rem;border:1px solid #ccc;border-radius:6px;padding:.5rem .8rem}.card b{display:block;font-size:1.5rem}\
.card.block b{color:#b3261e}.card.would b{color:#a15c00}.card.exempt b{color:#3b5bab}\
table{border-collapse:collapse;width:100%;margin:.3rem 0 1rem;font-size:13px}\
th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f0f0ee}\
td.op{min-width:12rem}td code{overflow-wrap:anywhere}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.monitor td{background:#fff4e0}.tag{display:inline-block;font-size:11px;border-radius:3px;padding:0 .35em;background:#a15c00;color:#fff}\
.bar{display:inline-block;height:.7em;background:#b3261e;vertical-align:middle;margin-right:.3em}\
.none{color:#777;font-style:italic}\
code{font:12px ui-monospace,\"DejaVu Sans Mono\",monospace}\
@page{size:A4;margin:14mm}\
@media print{body{background:#fff;font-size:11px}main{max-width:none;padding:0}h2{break-after:avoid}tr,.card{break-inside:avoid}thead{display:table-header-group}.meta{background:none;border:1px solid #ccc}}";

fn counts_cells(c: &Counts) -> String {
    format!(
        "<td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>",
        c.block, c.would_block, c.exempt, c.allow, c.failed, c.total()
    )
}

fn render_html(r: &Report, lang: Lang) -> String {
    let mut o = String::new();
    let title = lang.pick("douane — rapport d’audit", "douane — audit report");
    let _ = write!(o, "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\n<style>{REPORT_CSS}</style></head><body><main>\n<h1>{title}</h1>\n");
    let _ = writeln!(
        o,
        "<p>{} {}</p>",
        lang.pick("Période du rapport :", "Report period:"),
        html(&period(r, lang))
    );
    let _ = writeln!(
        o,
        "<div class=meta>{}</div>",
        html(&chain_line(&r.chain, lang))
    );
    let t = &r.totals;
    let cols = columns(lang);
    let _ = writeln!(
        o,
        "<div class=cards><div class=card><b>{}</b>{}</div><div class=\"card block\"><b>{}</b>{}</div><div class=\"card would\"><b>{}</b>{}</div><div class=\"card exempt\"><b>{}</b>{}</div><div class=card><b>{}</b>{}</div></div>",
        t.total(), lang.pick("requêtes", "requests"),
        t.block, lang.pick("bloquées", "blocked"),
        t.would_block, lang.pick("bloquées en observation", "would-block (monitor)"),
        t.exempt, lang.pick("dérogations", "exempted"),
        t.allow, lang.pick("autorisées", "allowed"),
    );
    let head = format!(
        "<thead><tr><th></th><th class=n>{}</th><th class=n>{}</th><th class=n>{}</th><th class=n>{}</th><th class=n>{}</th><th class=n>{}</th></tr></thead>",
        cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]
    );
    // Exposure over time first: it is the question the report answers.
    let _ = writeln!(
        o,
        "<h2>{}</h2>",
        lang.pick(
            "Exposition par jour et par juridiction de l’opérateur",
            "Exposure by day and operator jurisdiction"
        )
    );
    let _ = writeln!(o, "<p>{}</p>", lang.pick("Requêtes bloquées, laissées passer en mode observation ou par dérogation, vers des adresses non conformes. Un jour marqué « observation » compte des requêtes décidées en mode observation : elles n’ont pas été bloquées.", "Requests blocked, let through in monitor mode or by an exemption, to addresses that do not comply. A day marked “monitor” holds requests decided in monitor mode: they were not blocked."));
    let js = exposure_columns(r);
    if r.exposure_by_day.is_empty() {
        let _ = writeln!(
            o,
            "<p class=none>{}</p>",
            lang.pick("aucune exposition", "no exposure")
        );
    } else {
        let max = r
            .exposure_by_day
            .iter()
            .map(|d| d.by_jurisdiction.values().sum::<u64>())
            .max()
            .unwrap_or(1)
            .max(1);
        o.push_str("<table><thead><tr><th>");
        o.push_str(lang.pick("jour", "day"));
        o.push_str("</th>");
        for j in &js {
            let _ = write!(o, "<th class=n>{}</th>", html(&country_label(j, lang)));
        }
        let _ = writeln!(o, "<th>{}</th></tr></thead>", lang.pick("total", "total"));
        for d in &r.exposure_by_day {
            let sum: u64 = d.by_jurisdiction.values().sum();
            let in_monitor = r.monitor_periods.iter().any(|p| {
                p.from.get(..10).unwrap_or("") <= d.day.as_str()
                    && d.day.as_str() <= p.to.get(..10).unwrap_or("")
            });
            let _ = write!(
                o,
                "<tr{}><td>{}{}</td>",
                if in_monitor { " class=monitor" } else { "" },
                html(&d.day),
                if in_monitor {
                    format!(
                        " <span class=tag>{}</span>",
                        lang.pick("observation", "monitor")
                    )
                } else {
                    String::new()
                }
            );
            for j in &js {
                let _ = write!(
                    o,
                    "<td class=n>{}</td>",
                    d.by_jurisdiction.get(j).copied().unwrap_or(0)
                );
            }
            let _ = writeln!(
                o,
                "<td><span class=bar style=\"width:{}px\"></span>{sum}</td></tr>",
                sum * 160 / max
            );
        }
        o.push_str("</table>\n");
    }
    for table in tables(r, lang) {
        let _ = writeln!(o, "<h2>{}</h2>", table.title);
        if table.rows.is_empty() {
            let _ = writeln!(o, "<p class=none>{}</p>", lang.pick("aucune", "none"));
            continue;
        }
        let _ = writeln!(o, "<table>{head}");
        for (label, _, c) in &table.rows {
            let _ = writeln!(o, "<tr><td>{}</td>{}</tr>", html(label), counts_cells(c));
        }
        o.push_str("</table>\n");
    }
    let _ = writeln!(
        o,
        "<h2>{}</h2>",
        lang.pick("Dérogations utilisées", "Exemptions used")
    );
    if r.exemptions.is_empty() {
        let _ = writeln!(o, "<p class=none>{}</p>", lang.pick("aucune", "none"));
    } else {
        let _ = writeln!(
            o,
            "<table><thead><tr><th>{}</th><th>{}</th><th class=n>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>",
            lang.pick("règle", "rule"), lang.pick("client", "client"), lang.pick("utilisations", "uses"),
            lang.pick("période", "period"), lang.pick("justification", "justification"), lang.pick("ticket", "ticket"),
            lang.pick("expire le", "expires")
        );
        let none = format!(
            "<span class=none>{}</span>",
            lang.pick("non renseigné", "not given")
        );
        for e in &r.exemptions {
            let opt = |v: &Option<String>| v.as_deref().map_or_else(|| none.clone(), html);
            let _ = writeln!(
                o,
                "<tr><td><code>{}</code></td><td>{}</td><td class=n>{}</td><td>{} .. {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                html(&e.rule), html(&e.client), e.uses, html(&short_ts(&e.first_seen)), html(&short_ts(&e.last_seen)),
                opt(&e.justification), opt(&e.ticket), opt(&e.expires)
            );
        }
        o.push_str("</table>\n");
    }
    let _ = writeln!(
        o,
        "<h2>{}</h2>",
        lang.pick("Périodes en mode observation", "Monitor-mode periods")
    );
    let _ = writeln!(o, "<p>{}</p>", lang.pick("Pendant ces périodes, la politique n’a rien bloqué : elle a compté ce qu’elle aurait bloqué.", "During these periods the policy blocked nothing: it counted what it would have blocked."));
    if r.monitor_periods.is_empty() {
        let _ = writeln!(
            o,
            "<p class=none>{}</p>",
            lang.pick(
                "aucune : la politique a été appliquée sur toute la période",
                "none: the policy was enforced over the whole period"
            )
        );
    } else {
        let _ = writeln!(
            o,
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th class=n>{}</th><th class=n>{}</th></tr></thead>",
            lang.pick("du", "from"), lang.pick("au", "to"), lang.pick("politique", "policy"),
            lang.pick("requêtes", "requests"), lang.pick("auraient été bloquées", "would have been blocked")
        );
        for p in &r.monitor_periods {
            let _ = writeln!(
                o,
                "<tr class=monitor><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                html(&short_ts(&p.from)), html(&short_ts(&p.to)), html(&p.policy), p.records, p.would_block
            );
        }
        o.push_str("</table>\n");
    }
    let _ = writeln!(
        o,
        "<h2>{}</h2>",
        lang.pick(
            "Versions de politique en vigueur",
            "Policy versions in force"
        )
    );
    let _ = writeln!(
        o,
        "<table><thead><tr><th>{}</th><th>{}</th><th class=n>{}</th><th>{}</th><th>{}</th></tr></thead>",
        lang.pick("politique", "policy"), lang.pick("version", "version"), lang.pick("enregistrements", "records"),
        lang.pick("vue du", "first seen"), lang.pick("au", "last seen")
    );
    for p in &r.policy_versions {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td><code>{}</code></td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
            html(&p.policy),
            html(&p.version),
            p.records,
            html(&short_ts(&p.first_seen)),
            html(&short_ts(&p.last_seen))
        );
    }
    o.push_str("</table>\n</main></body></html>\n");
    o
}
