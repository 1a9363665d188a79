//! The only place where outcomes and errors become HTTP responses: the 451 (or 403) block
//! page, in French and English, HTML or JSON by `Accept`; and the proxy's own error
//! statuses. Untrusted clients learn what was decided, never douane's internals.

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LINK};
use http::{Response, StatusCode};
use serde::Serialize;

use super::body::ProxyBody;
use crate::policy::{Decision, Note, Reason, Violation};

/// The response header that carries the request id, the same as in the audit record.
pub const REQUEST_ID: &str = "douane-request-id";

/// Texts of a reason, in French and English.
fn reason_text(reason: Reason) -> (&'static str, &'static str) {
    match reason {
        Reason::Compliant => ("destination conforme", "compliant destination"),
        Reason::Exemption => ("dérogation en vigueur", "exemption in force"),
        Reason::RuleBlock => (
            "destination interdite par une règle de la politique",
            "destination forbidden by a policy rule",
        ),
        Reason::LocationNotAllowed => (
            "la destination est située hors des juridictions autorisées",
            "the destination is located outside the allowed jurisdictions",
        ),
        Reason::OperatorNotAllowed => (
            "l'opérateur de la destination relève d'une juridiction non autorisée",
            "the destination's operator is under a jurisdiction that is not allowed",
        ),
        Reason::UnknownLocation => (
            "la localisation de la destination est inconnue",
            "the destination's location is unknown",
        ),
        Reason::UnknownOperator => (
            "l'opérateur de la destination est inconnu",
            "the destination's operator is unknown",
        ),
        Reason::SpecialAddress => (
            "adresse réservée ou interne (sécurité)",
            "reserved or internal address (security)",
        ),
        Reason::PortNotAllowed => ("port non autorisé", "port not allowed"),
        Reason::OwnListener => (
            "le proxy ne se contacte pas lui-même",
            "the proxy does not connect to itself",
        ),
        Reason::DnsNxDomain => ("nom de domaine inexistant", "no such domain name"),
        Reason::DnsServFail => ("le serveur DNS a échoué", "the DNS server failed"),
        Reason::DnsTimeout => (
            "le DNS n'a pas répondu à temps",
            "DNS did not answer in time",
        ),
        Reason::DnsNoAddresses => ("le nom n'a pas d'adresse", "the name has no address"),
        Reason::DnsRefused => ("le serveur DNS a refusé", "the DNS server refused"),
        Reason::DnsError => ("erreur DNS", "DNS error"),
        Reason::QualificationMissing => (
            "l'offre de la destination n'a pas la qualification exigée",
            "the destination's offer lacks the required qualification",
        ),
        Reason::NoAsn => (
            "la destination n'appartient à aucun système autonome connu",
            "the destination belongs to no known autonomous system",
        ),
    }
}

#[derive(Serialize)]
struct BlockBody<'a> {
    status: u16,
    request_id: &'a str,
    destination: &'a str,
    outcome: &'a str,
    reason: &'a str,
    rule: Option<&'a str>,
    policy: &'a str,
    policy_version: &'a str,
    location: Option<&'a str>,
    operator: Option<&'a str>,
    operator_jurisdiction: Option<&'a str>,
    message_fr: &'a str,
    message_en: &'a str,
    blocked_by: &'a str,
    #[serde(skip_serializing_if = "<[Note]>::is_empty")]
    notes: &'a [Note],
}

/// The block response for a decision that does not let the request through.
pub fn blocked(
    decision: &Decision,
    destination: &str,
    request_id: &str,
    wants_json: bool,
    blocked_by: &str,
) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(decision.block_status()).unwrap_or(StatusCode::FORBIDDEN);
    let (fr, en) = reason_text(decision.reason);
    // The first address that did not comply is the one the page talks about.
    let culprit = decision
        .ips
        .iter()
        .find(|v| v.violation.is_some())
        .or(decision.ips.first());
    let location = culprit
        .and_then(|v| v.class.location)
        .map(|c| c.to_string());
    let jurisdiction = culprit
        .and_then(|v| v.class.jurisdiction)
        .map(|c| c.to_string());
    let operator = culprit.and_then(|v| v.class.operator.as_deref());
    let body = BlockBody {
        status: status.as_u16(),
        request_id,
        destination,
        outcome: decision.outcome.as_str(),
        reason: decision.reason.as_str(),
        rule: decision.rule.as_deref(),
        policy: &decision.provenance.policy_name,
        policy_version: &decision.provenance.policy_version,
        location: location.as_deref(),
        operator,
        operator_jurisdiction: jurisdiction.as_deref(),
        message_fr: fr,
        message_en: en,
        blocked_by,
        notes: &decision.notes,
    };
    let (content_type, bytes) = if wants_json {
        let json = serde_json::to_vec(&body).unwrap_or_default();
        ("application/json", Bytes::from(json))
    } else {
        ("text/html; charset=utf-8", Bytes::from(html_page(&body)))
    };
    let mut response = Response::new(ProxyBody::full(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(link) = HeaderValue::from_str(&format!("<{blocked_by}>; rel=\"blocked-by\"")) {
        headers.insert(LINK, link);
    }
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, id);
    }
    response
}

fn html_page(b: &BlockBody<'_>) -> String {
    let e = |s: &str| escape_html(s);
    let unknown = "inconnue / unknown";
    let title = if b.status == 451 {
        "451 Indisponible pour raisons légales / Unavailable For Legal Reasons"
    } else {
        "403 Interdit / Forbidden"
    };
    format!(
        "<!doctype html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
<body>\n<h1>{title}</h1>\n\
<p lang=\"fr\">La requête vers <code>{dest}</code> a été bloquée par douane : {fr}.</p>\n\
<p lang=\"en\">The request to <code>{dest}</code> was blocked by douane: {en}.</p>\n\
<table>\n\
<tr><th>Règle / Rule</th><td>{rule}</td></tr>\n\
<tr><th>Motif / Reason</th><td><code>{reason}</code></td></tr>\n\
<tr><th>Localisation / Location</th><td>{location}</td></tr>\n\
<tr><th>Opérateur / Operator</th><td>{operator} ({jurisdiction})</td></tr>\n\
<tr><th>Politique / Policy</th><td>{policy} <code>{version}</code></td></tr>\n\
<tr><th>Identifiant / Request id</th><td><code>{id}</code></td></tr>\n\
</table>\n\
{notes}\
<p><a href=\"{link}\">Politique de résidence des données / Data-residency policy</a></p>\n\
</body></html>\n",
        dest = e(b.destination),
        fr = b.message_fr,
        en = b.message_en,
        rule = e(b.rule.unwrap_or("politique par défaut / policy defaults")),
        reason = b.reason,
        location = e(b.location.unwrap_or(unknown)),
        operator = e(b.operator.unwrap_or(unknown)),
        jurisdiction = e(b.operator_jurisdiction.unwrap_or("?")),
        policy = e(b.policy),
        version = e(b.policy_version.get(..12).unwrap_or(b.policy_version)),
        id = e(b.request_id),
        link = e(b.blocked_by),
        notes = b
            .notes
            .iter()
            .map(|n| match n {
                Note::ExemptionExpired { rule, expired } => format!(
                    "<p>La dérogation <code>{r}</code> a expiré le {expired} / The exemption <code>{r}</code> expired on {expired}.</p>\n",
                    r = e(rule)
                ),
            })
            .collect::<String>(),
    )
}

/// Escapes text for HTML content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Which side of the proxy an error came from: it decides the status and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSide {
    Client,
    Upstream,
    Internal,
}

/// An error of the proxy itself (not a policy decision), as a short plain-text response.
pub fn error(status: StatusCode, request_id: &str, message: &str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(format!(
        "{} {}\n{message}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, id);
    }
    response
}

/// The response to a request refused before a decision, or failed by its client.
pub fn refusal(refusal: crate::proxy::exchange::Refusal, request_id: &str) -> Response<ProxyBody> {
    error(refusal.status(), request_id, refusal.message())
}

/// The status, failing side and response of an upstream failure: 504 for a timeout, 503
/// when the per-address cap is reached (douane's side), else 502.
pub fn upstream_failure(
    error: &crate::proxy::upstream::UpstreamError,
    request_id: &str,
) -> (ErrorSide, Response<ProxyBody>) {
    if let crate::proxy::upstream::UpstreamError::PerAddressCap(_) = error {
        return (
            ErrorSide::Internal,
            self::error(
                StatusCode::SERVICE_UNAVAILABLE,
                request_id,
                "too many connections open to the destination: try again later",
            ),
        );
    }
    let status = if error.is_timeout() {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::BAD_GATEWAY
    };
    (
        ErrorSide::Upstream,
        self::error(status, request_id, "the destination did not answer"),
    )
}

/// The response when the audit record of a request could not be written (douane's side).
pub fn audit_refusal(
    refusal: &crate::proxy::context::AuditRefusal,
    request_id: &str,
) -> (ErrorSide, Response<ProxyBody>) {
    (
        ErrorSide::Internal,
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            request_id,
            &refusal.to_string(),
        ),
    )
}

/// Whether the client prefers JSON (`Accept: application/json` before any HTML type).
pub fn wants_json(accept: Option<&HeaderValue>) -> bool {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let json = accept.find("application/json");
    let html = accept.find("text/html");
    match (json, html) {
        (Some(j), Some(h)) => j < h,
        (Some(_), None) => true,
        _ => false,
    }
}

/// The violation of an address as short text, for logs.
pub fn violation_text(v: &Violation) -> String {
    match v {
        Violation::Special { range } => format!("special-purpose address ({range:?})"),
        Violation::LocationNotAllowed { location } => format!("located in {location}"),
        Violation::OperatorNotAllowed { jurisdiction } => {
            format!("operated under {jurisdiction} jurisdiction")
        }
        Violation::UnknownLocation => "unknown location".into(),
        Violation::UnknownOperator => "unknown operator".into(),
        Violation::QualificationMissing => "required qualification missing".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert!(wants_json(Some(&v("application/json"))));
        assert!(!wants_json(Some(&v("text/html,application/json"))));
        assert!(wants_json(Some(&v("application/json, text/html;q=0.5"))));
        assert!(!wants_json(Some(&v("*/*"))));
        assert!(!wants_json(None));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }
}
