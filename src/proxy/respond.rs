//! The only place where outcomes and errors become HTTP responses: the proxy's own error
//! statuses (the 451/403 block page itself is `crate::block_page`, called from
//! `forward::block_response`). Untrusted clients learn what was decided, never douane's internals.

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Response, StatusCode};

use super::body::ProxyBody;
use crate::policy::Violation;

/// The response header that carries the request id, the same as in the audit record.
pub const REQUEST_ID: &str = "douane-request-id";

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

/// Whether the client prefers JSON: the block page's own negotiation.
pub use crate::block_page::wants_json;

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
}
