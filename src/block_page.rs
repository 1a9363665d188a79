//! The block page a person sees, and its `application/problem+json` twin (RFC 9457) for API
//! clients: French first, then English; the reason in words; where the destination is and
//! whose law its operator is under ("exploité par Amazon, soumis au droit des États-Unis");
//! the rule, the request id, the configured contact and policy link. Self-contained HTML
//! (no external resource, no script), readable on a phone, printable.
//!
//! Pure: [`BlockFacts`] in, text out. The proxy's responder decides *when* to answer with
//! it; this module only says *what* the answer reads.

use std::fmt::Write as _;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_LANGUAGE, CONTENT_TYPE, LINK};
use http::{Response, StatusCode};
use serde::Serialize;

use crate::country_names::{in_country, law_of, name, Lang};
use crate::html::escape as esc;
use crate::policy::{Decision, IpVerdict, Note, Reason, Violation};

/// The response header that carries the request id (the same as in the audit record).
pub const REQUEST_ID: &str = "douane-request-id";

/// Everything the page says, gathered by the caller.
#[derive(Debug, Clone, Copy)]
pub struct BlockFacts<'a> {
    /// The decision, with the classification of every address it considered.
    pub decision: &'a Decision,
    /// The destination as the client asked for it (`crm.example` or `crm.example:8443`).
    pub host: &'a str,
    /// The request id, the same as in the log line and the audit record.
    pub request_id: &'a str,
    /// `[block_page] contact`: an e-mail address, a URL or a free text (a phone number).
    pub contact: Option<&'a str>,
    /// `[block_page] link`, only when the configuration sets one: never a default elsewhere.
    pub policy_link: Option<&'a str>,
}

/// The reason in words: a short title and a sentence, French then English.
pub fn reason_words(reason: Reason) -> [(&'static str, &'static str); 2] {
    match reason {
        Reason::Compliant => [("Destination conforme", "La destination respecte la politique."), ("Compliant destination", "The destination complies with the policy.")],
        Reason::Exemption => [("Dérogation en vigueur", "Une dérogation de la politique autorise cette destination."), ("Exemption in force", "An exemption of the policy allows this destination.")],
        Reason::RuleBlock => [("Destination interdite", "Une règle de la politique interdit explicitement cette destination."), ("Destination forbidden", "A rule of the policy explicitly forbids this destination.")],
        Reason::LocationNotAllowed => [("Hébergement hors des pays autorisés", "Le serveur de cette destination se trouve dans un pays où la politique ne permet pas d’envoyer des données."), ("Hosted outside the allowed countries", "The server of this destination is in a country where the policy does not allow data to be sent.")],
        Reason::OperatorNotAllowed => [("Opérateur soumis à un droit non autorisé", "L’entreprise qui exploite ce serveur relève d’un droit étranger que la politique n’autorise pas : ce droit peut l’obliger à livrer les données, où qu’elles soient stockées."), ("Operator under a law that is not allowed", "The company that runs this server is under a foreign law the policy does not allow: that law can compel it to hand over the data, wherever they are stored.")],
        Reason::UnknownLocation => [("Localisation inconnue", "On ne sait pas dans quel pays se trouve ce serveur, et la politique bloque ce qu’elle ne peut pas situer."), ("Unknown location", "It is not known in which country this server is, and the policy blocks what it cannot place.")],
        Reason::UnknownOperator => [("Opérateur inconnu", "On ne sait pas quelle entreprise exploite ce serveur, ni sous quel droit, et la politique bloque ce cas."), ("Unknown operator", "It is not known which company runs this server, nor under which law, and the policy blocks that case.")],
        Reason::SpecialAddress => [("Adresse interne ou réservée", "La destination désigne une adresse interne ou réservée : le proxy ne s’y connecte pas, par sécurité."), ("Internal or reserved address", "The destination is an internal or reserved address: the proxy does not connect to it, for security.")],
        Reason::PortNotAllowed => [("Port non autorisé", "Le port demandé n’est pas autorisé par la politique, par sécurité."), ("Port not allowed", "The requested port is not allowed by the policy, for security.")],
        Reason::OwnListener => [("Le proxy lui-même", "La destination est le proxy lui-même : il ne se contacte pas, par sécurité."), ("The proxy itself", "The destination is the proxy itself: it does not connect to itself, for security.")],
        Reason::DnsNxDomain => [("Nom de domaine inexistant", "Ce nom de domaine n’existe pas."), ("No such domain", "This domain name does not exist.")],
        Reason::DnsServFail => [("Échec du DNS", "Le serveur DNS n’a pas pu répondre pour ce nom."), ("DNS failure", "The DNS server could not answer for this name.")],
        Reason::DnsTimeout => [("DNS trop lent", "Le DNS n’a pas répondu à temps pour ce nom."), ("DNS timeout", "DNS did not answer in time for this name.")],
        Reason::DnsNoAddresses => [("Aucune adresse", "Ce nom n’a aucune adresse IP."), ("No address", "This name has no IP address.")],
        Reason::DnsRefused => [("DNS refusé", "Le serveur DNS a refusé de répondre pour ce nom."), ("DNS refused", "The DNS server refused to answer for this name.")],
        Reason::NoAsn => [("Réseau sans opérateur connu", "Aucun système autonome n’annonce cette adresse : on ne peut pas dire quelle entreprise l’exploite ni sous quel droit, et la politique bloque ce cas."), ("Network with no known operator", "No autonomous system announces this address: it cannot be said which company runs it nor under which law, and the policy blocks that case.")],
        Reason::QualificationMissing => [("Qualification requise absente", "La politique exige pour cette destination une qualification (SecNumCloud, HDS…) que son opérateur n’a pas, ou plus."), ("Required qualification missing", "The policy requires a qualification (SecNumCloud, HDS…) for this destination that its operator does not hold, or no longer holds.")],
        Reason::DnsError => [("Erreur DNS", "Le nom n’a pas pu être résolu."), ("DNS error", "The name could not be resolved.")],
        Reason::TunnelUnnamed => [("Tunnel sans nom vérifiable", "Les premiers octets de ce tunnel ne nomment aucune destination vérifiable (ECH, pas de nom de serveur, autre protocole) et la politique refuse ces tunnels."), ("Tunnel with no name to check", "The first bytes of this tunnel name no destination that can be checked (ECH, no server name, another protocol) and the policy refuses such tunnels.")],
    }
}

fn words(reason: Reason, lang: Lang) -> (&'static str, &'static str) {
    reason_words(reason)[match lang {
        Lang::Fr => 0,
        Lang::En => 1,
    }]
}

/// The addresses the page talks about: those that did not comply, else all of them.
fn culprits(d: &Decision) -> Vec<&IpVerdict> {
    let bad: Vec<&IpVerdict> = d.ips.iter().filter(|v| v.violation.is_some()).collect();
    if bad.is_empty() {
        d.ips.iter().collect()
    } else {
        bad
    }
}

/// "Le serveur se trouve en France ; il est exploité par Amazon, soumis au droit des
/// États-Unis." — one address in words.
pub fn where_and_who(v: &IpVerdict, lang: Lang) -> String {
    let c = &v.class;
    if let (Some(range), None) = (c.special, c.network.as_ref()) {
        return match lang {
            Lang::Fr => format!("L’adresse {} est réservée ({range:?}).", c.ip),
            Lang::En => format!("The address {} is reserved ({range:?}).", c.ip),
        };
    }
    let place = match (c.location, lang) {
        (Some(l), Lang::Fr) => format!("Le serveur ({}) se trouve {}", c.ip, in_country(l, lang)),
        (Some(l), Lang::En) => format!("The server ({}) is {}", c.ip, in_country(l, lang)),
        (None, Lang::Fr) => format!("On ne sait pas où se trouve le serveur ({})", c.ip),
        (None, Lang::En) => format!("It is not known where the server ({}) is", c.ip),
    };
    let op = c.operator.as_deref();
    let who = match (op, c.jurisdiction, lang) {
        (Some(op), Some(j), Lang::Fr) => format!(
            "il est exploité par {op}, soumis au droit {}",
            law_of(j, lang)
        ),
        (Some(op), Some(j), Lang::En) => format!(
            "it is operated by {op}, under the law of {}",
            law_of(j, lang)
        ),
        (None, Some(j), Lang::Fr) => {
            format!("son opérateur est soumis au droit {}", law_of(j, lang))
        }
        (None, Some(j), Lang::En) => {
            format!("its operator is under the law of {}", law_of(j, lang))
        }
        (Some(op), None, Lang::Fr) => format!("il est exploité par {op}, sous un droit inconnu"),
        (Some(op), None, Lang::En) => format!("it is operated by {op}, under an unknown law"),
        (None, None, Lang::Fr) => "son opérateur est inconnu".to_owned(),
        (None, None, Lang::En) => "its operator is unknown".to_owned(),
    };
    let sep = lang.pick(" ; ", "; ");
    format!("{place}{sep}{who}.")
}

fn status_of(d: &Decision) -> StatusCode {
    StatusCode::from_u16(d.block_status()).unwrap_or(StatusCode::FORBIDDEN)
}

/// A link only for `https:`, `http:` and `mailto:` targets: a configured text that is
/// anything else is shown, never followed.
fn safe_href(target: &str) -> Option<String> {
    let lower = target.trim().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:")
    {
        Some(esc(target.trim()))
    } else if !target.contains(char::is_whitespace) && target.contains('@') && !target.contains(':')
    {
        Some(esc(&format!("mailto:{}", target.trim())))
    } else {
        None
    }
}

fn linked(text: &str, extra_query: &str) -> String {
    match safe_href(text) {
        Some(href) if href.starts_with("mailto:") => {
            format!("<a href=\"{href}{}\">{}</a>", esc(extra_query), esc(text))
        }
        Some(href) => format!("<a href=\"{href}\">{}</a>", esc(text)),
        None => esc(text),
    }
}

fn rule_text(d: &Decision, lang: Lang) -> String {
    match &d.rule {
        Some(rule) => format!("<code>{}</code>", esc(rule)),
        None => esc(lang.pick("règles par défaut de la politique", "the policy's defaults")),
    }
}

fn section(f: &BlockFacts<'_>, lang: Lang, out: &mut String) {
    let d = f.decision;
    let (title, sentence) = words(d.reason, lang);
    let host = esc(f.host);
    let _ = write!(
        out,
        "<section lang=\"{lang}\">\n<h1>{}</h1>\n<p class=\"lead\">{}</p>\n<p class=\"reason\"><strong>{}</strong><br>{}</p>\n",
        lang.pick("Accès bloqué", "Access blocked"),
        match lang {
            Lang::Fr => format!("L’accès à <b class=\"host\">{host}</b> a été bloqué par la politique de résidence des données de votre organisation."),
            Lang::En => format!("Access to <b class=\"host\">{host}</b> was blocked by your organisation’s data-residency policy."),
        },
        esc(title),
        esc(sentence),
    );
    let shown = culprits(d);
    if !shown.is_empty() {
        out.push_str("<ul class=\"where\">\n");
        for v in shown.iter().take(3) {
            let _ = writeln!(out, "<li>{}</li>", esc(&where_and_who(v, lang)));
        }
        if shown.len() > 3 {
            let more = shown.len() - 3;
            let _ = writeln!(
                out,
                "<li>{}</li>",
                match lang {
                    Lang::Fr => format!("… et {more} autre(s) adresse(s)."),
                    Lang::En => format!("… and {more} more address(es)."),
                }
            );
        }
        out.push_str("</ul>\n");
    }
    for n in &d.notes {
        match n {
            Note::ExemptionExpired { rule, expired } => {
                let _ = writeln!(
                    out,
                    "<p class=\"note\">{}</p>",
                    match lang {
                        Lang::Fr => format!("La dérogation <code>{}</code> a expiré le {expired} et ne s’applique plus.", esc(rule)),
                        Lang::En => format!("The exemption <code>{}</code> expired on {expired} and no longer applies.", esc(rule)),
                    }
                );
            }
        }
    }
    let subject = format!(
        "?subject=douane%20{}",
        f.request_id
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "")
    );
    let _ = writeln!(
        out,
        "<p class=\"help\">{}</p>",
        match (f.contact, lang) {
            (Some(c), Lang::Fr) => format!("Si cet accès est nécessaire à votre travail, contactez {} en donnant l’identifiant de la requête ci-dessous.", linked(c, &subject)),
            (Some(c), Lang::En) => format!("If you need this access for your work, contact {} and give the request id below.", linked(c, &subject)),
            (None, Lang::Fr) => "Si cet accès est nécessaire à votre travail, adressez-vous à votre service informatique en donnant l’identifiant de la requête ci-dessous.".to_owned(),
            (None, Lang::En) => "If you need this access for your work, ask your IT department and give the request id below.".to_owned(),
        }
    );
    out.push_str("</section>\n");
}

/// The HTML page: French, then English, then the facts both share.
pub fn html(f: &BlockFacts<'_>) -> String {
    let d = f.decision;
    let status = status_of(d);
    let mut o = String::with_capacity(6 * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"fr\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"robots\" content=\"noindex\">\n<title>{} — Accès bloqué / Access blocked</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<p class=\"badge\"><span class=\"code\">{}</span> douane</p>\n",
        status.as_u16(),
        status.as_u16()
    );
    section(f, Lang::Fr, &mut o);
    o.push_str("<hr>\n");
    section(f, Lang::En, &mut o);
    let p = &d.provenance;
    let version = p.policy_version.get(..12).unwrap_or(&p.policy_version);
    let _ = write!(
        o,
        "<dl class=\"facts\">\n<dt>Destination</dt><dd><code>{}</code></dd>\n<dt>Motif / Reason</dt><dd>{} / {} <code>{}</code></dd>\n<dt>Règle / Rule</dt><dd>{}</dd>\n<dt>Politique / Policy</dt><dd>{} <code>{}</code></dd>\n<dt>Identifiant / Request id</dt><dd><code class=\"id\">{}</code></dd>\n",
        esc(f.host),
        esc(words(d.reason, Lang::Fr).0),
        esc(words(d.reason, Lang::En).0),
        d.reason.as_str(),
        rule_text(d, Lang::Fr),
        esc(&p.policy_name),
        esc(version),
        esc(f.request_id),
    );
    if let Some(c) = f.contact {
        let _ = writeln!(o, "<dt>Contact</dt><dd>{}</dd>", linked(c, ""));
    }
    if let Some(link) = f.policy_link {
        let _ = writeln!(
            o,
            "<dt>Politique complète / Full policy</dt><dd>{}</dd>",
            linked(link, "")
        );
    }
    o.push_str("</dl>\n</main>\n</body>\n</html>\n");
    o
}

const CSS: &str = "\
:root{color-scheme:light dark;--fg:#1b1b1b;--bg:#f6f6f4;--card:#fff;--muted:#5c5c5c;--accent:#b3261e;--line:#ddd}\
@media (prefers-color-scheme:dark){:root{--fg:#eee;--bg:#161616;--card:#222;--muted:#aaa;--accent:#ff8a80;--line:#444}}\
*{box-sizing:border-box}\
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"DejaVu Sans\",sans-serif}\
main{max-width:42rem;margin:0 auto;padding:1.25rem 1rem 2rem;background:var(--card);border-top:6px solid var(--accent);min-height:100vh}\
.badge{margin:0 0 .5rem;color:var(--muted);font-size:.85rem;letter-spacing:.04em;text-transform:uppercase}\
.badge .code{display:inline-block;background:var(--accent);color:#fff;border-radius:4px;padding:0 .4em;margin-right:.4em;font-weight:700}\
h1{font-size:1.6rem;line-height:1.2;margin:.2rem 0 .6rem}\
section[lang=en] h1{font-size:1.3rem}\
.lead{font-size:1.05rem}\
.host{overflow-wrap:anywhere}\
.reason{border-left:4px solid var(--accent);padding:.3rem .8rem;margin:1rem 0;background:rgba(179,38,30,.06)}\
.where{padding-left:1.2rem;color:var(--fg)}\
.note{color:var(--muted)}\
.help{font-size:.95rem}\
hr{border:0;border-top:1px solid var(--line);margin:1.5rem 0}\
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:1.5rem 0 0;padding-top:1rem;border-top:1px solid var(--line);font-size:.9rem}\
dl.facts dt{color:var(--muted)}\
dl.facts dd{margin:0;overflow-wrap:anywhere}\
code{font-family:ui-monospace,\"DejaVu Sans Mono\",monospace;font-size:.9em}\
code.id{font-size:1.05rem;font-weight:700;user-select:all}\
a{color:inherit;text-decoration-thickness:2px}\
@media (max-width:30rem){dl.facts{grid-template-columns:1fr}dl.facts dd{margin-bottom:.4rem}}\
@media print{main{border:0;min-height:0}body{background:#fff}}";

#[derive(Serialize)]
struct ProblemAddress<'a> {
    ip: String,
    location: Option<&'a str>,
    location_fr: Option<&'static str>,
    location_en: Option<&'static str>,
    operator: Option<&'a str>,
    operator_jurisdiction: Option<&'a str>,
    operator_jurisdiction_fr: Option<&'static str>,
    operator_jurisdiction_en: Option<&'static str>,
    violation: Option<&'a Violation>,
    text_fr: String,
    text_en: String,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
    request_id: &'a str,
    destination: &'a str,
    outcome: &'static str,
    reason: &'static str,
    reason_fr: &'static str,
    reason_en: &'static str,
    detail_fr: String,
    rule: Option<&'a str>,
    policy: &'a str,
    policy_version: &'a str,
    /// The first address that did not comply (else the first one): its facts at the top.
    location: Option<&'a str>,
    operator: Option<&'a str>,
    operator_jurisdiction: Option<&'a str>,
    addresses: Vec<ProblemAddress<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_link: Option<&'a str>,
    #[serde(skip_serializing_if = "<[Note]>::is_empty")]
    notes: &'a [Note],
}

/// The same facts as `application/problem+json` (RFC 9457); the extension members are
/// stable names.
pub fn problem_json(f: &BlockFacts<'_>) -> String {
    let d = f.decision;
    let status = status_of(d);
    let (fr_title, fr_sentence) = words(d.reason, Lang::Fr);
    let (en_title, en_sentence) = words(d.reason, Lang::En);
    let addresses = d
        .ips
        .iter()
        .map(|v| {
            let c = &v.class;
            ProblemAddress {
                ip: c.ip.to_string(),
                location: c.location.as_ref().map(|l| l.as_str()),
                location_fr: c.location.map(|l| name(l, Lang::Fr)),
                location_en: c.location.map(|l| name(l, Lang::En)),
                operator: c.operator.as_deref(),
                operator_jurisdiction: c.jurisdiction.as_ref().map(|j| j.as_str()),
                operator_jurisdiction_fr: c.jurisdiction.map(|j| name(j, Lang::Fr)),
                operator_jurisdiction_en: c.jurisdiction.map(|j| name(j, Lang::En)),
                violation: v.violation.as_ref(),
                text_fr: where_and_who(v, Lang::Fr),
                text_en: where_and_who(v, Lang::En),
            }
        })
        .collect();
    let culprit = culprits(d).first().map(|v| &v.class);
    let problem = Problem {
        location: culprit
            .and_then(|c| c.location.as_ref())
            .map(|l| l.as_str()),
        operator: culprit.and_then(|c| c.operator.as_deref()),
        operator_jurisdiction: culprit
            .and_then(|c| c.jurisdiction.as_ref())
            .map(|j| j.as_str()),
        kind: format!("tag:douane,2026:reason:{}", d.reason.as_str()),
        title: status.canonical_reason().unwrap_or("Blocked"),
        status: status.as_u16(),
        detail: format!(
            "Access to {} was blocked: {en_title}. {en_sentence}",
            f.host
        ),
        request_id: f.request_id,
        destination: f.host,
        outcome: d.outcome.as_str(),
        reason: d.reason.as_str(),
        reason_fr: fr_title,
        reason_en: en_title,
        detail_fr: format!(
            "L’accès à {} a été bloqué : {fr_title}. {fr_sentence}",
            f.host
        ),
        rule: d.rule.as_deref(),
        policy: &d.provenance.policy_name,
        policy_version: &d.provenance.policy_version,
        addresses,
        contact: f.contact,
        policy_link: f.policy_link,
        notes: &d.notes,
    };
    serde_json::to_string_pretty(&problem).unwrap_or_default() + "\n"
}

/// Whether the client asked for JSON (`application/problem+json` or `application/json`
/// before any HTML type).
pub fn wants_json(accept: Option<&HeaderValue>) -> bool {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let json = accept
        .find("application/problem+json")
        .or(accept.find("application/json"));
    let html = accept.find("text/html");
    match (json, html) {
        (Some(j), Some(h)) => j < h,
        (Some(_), None) => true,
        _ => false,
    }
}

/// The whole response: status (451, 403, 502 or 504), headers, body. The proxy maps the
/// body into its own type (`response.map(ProxyBody::full)`).
pub fn response(f: &BlockFacts<'_>, json: bool) -> Response<Bytes> {
    let (content_type, body) = if json {
        ("application/problem+json", problem_json(f))
    } else {
        ("text/html; charset=utf-8", html(f))
    };
    let mut r = Response::new(Bytes::from(body));
    *r.status_mut() = status_of(f.decision);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONTENT_LANGUAGE, HeaderValue::from_static("fr, en"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(link) = f.policy_link {
        if let Ok(v) = HeaderValue::from_str(&format!("<{link}>; rel=\"blocked-by\"")) {
            h.insert(LINK, v);
        }
    }
    if let Ok(id) = HeaderValue::from_str(f.request_id) {
        h.insert(REQUEST_ID, id);
    }
    r
}

#[cfg(test)]
#[path = "block_page_tests.rs"]
mod tests;
