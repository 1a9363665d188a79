//! What both HTTP engines (hyper's and the direct path, `h1`) share about one request's
//! life: the typed refusals made before a decision ([`Refusal`]), the framing and header
//! rules they are made by (one set of rules, for a `HeaderMap` and for raw header lines),
//! and the value the single exit receives once the status actually written is known
//! ([`RequestEnd`]). See `LIFECYCLE.md` beside this file for the whole picture.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::header::{self, HeaderMap};

use super::headers::listed;

/// A request refused before (or instead of) a decision, or a client error during its
/// exchange. Each kind is a bounded metric label ([`Refusal::KINDS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A head hyper could not parse, or too large (hyper answered 400 or 431).
    MalformedHead,
    /// No `Host` (nor authority) to route on.
    NoHost,
    /// More than one `Host` header (RFC 9112 §3.2).
    DuplicateHost,
    /// `Connection` names `Content-Length` or `Transfer-Encoding`: removing them as
    /// hop-by-hop would change where the body ends (request smuggling).
    FramingNamedInConnection,
    /// Framing that two parsers could read two ways: `Transfer-Encoding` with
    /// `Content-Length`, conflicting lengths, a coding other than a final `chunked`.
    AmbiguousFraming,
    /// The TLS server name and `Host` disagree.
    MisdirectedRequest,
    /// No route for this host and path.
    NoRoute,
    /// A request target douane cannot forward.
    BadTarget,
    /// The request already went through this proxy.
    Loop,
    /// The request body broke its own framing (a malformed chunk, cut short).
    MalformedBody,
    /// The request body sent nothing for `[limits] request_body_timeout_ms`.
    BodyTimeout,
    /// A forward listener spoken to in TLS (a client that took the proxy for the origin).
    TlsOnProxyPort,
}

impl Refusal {
    /// Every value of [`Refusal::kind`], so the metric has its series from the start.
    pub const KINDS: [&'static str; 12] = [
        "malformed_head",
        "no_host",
        "duplicate_host",
        "framing_named_in_connection",
        "ambiguous_framing",
        "misdirected_request",
        "no_route",
        "bad_target",
        "loop",
        "malformed_body",
        "request_body_timeout",
        "tls_on_proxy_port",
    ];

    /// A stable metric label, one of [`Refusal::KINDS`].
    pub fn kind(self) -> &'static str {
        match self {
            Refusal::MalformedHead => "malformed_head",
            Refusal::NoHost => "no_host",
            Refusal::DuplicateHost => "duplicate_host",
            Refusal::FramingNamedInConnection => "framing_named_in_connection",
            Refusal::AmbiguousFraming => "ambiguous_framing",
            Refusal::MisdirectedRequest => "misdirected_request",
            Refusal::NoRoute => "no_route",
            Refusal::BadTarget => "bad_target",
            Refusal::Loop => "loop",
            Refusal::MalformedBody => "malformed_body",
            Refusal::BodyTimeout => "request_body_timeout",
            Refusal::TlsOnProxyPort => "tls_on_proxy_port",
        }
    }

    /// The status the client gets.
    pub fn status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Refusal::MisdirectedRequest => S::MISDIRECTED_REQUEST,
            Refusal::NoRoute => S::NOT_FOUND,
            Refusal::Loop => S::LOOP_DETECTED,
            Refusal::BodyTimeout => S::REQUEST_TIMEOUT,
            _ => S::BAD_REQUEST,
        }
    }

    /// The short text of the response body (no internals).
    pub fn message(self) -> &'static str {
        match self {
            Refusal::MalformedHead => "malformed request head",
            Refusal::NoHost => "no Host",
            Refusal::DuplicateHost => "more than one Host header",
            Refusal::FramingNamedInConnection => {
                "Connection names a header that frames the message"
            }
            Refusal::AmbiguousFraming => "ambiguous message framing",
            Refusal::MisdirectedRequest => "the TLS server name and the Host header disagree",
            Refusal::NoRoute => "no route for this host and path",
            Refusal::BadTarget => "bad request target",
            Refusal::Loop => "this request already went through this proxy",
            Refusal::MalformedBody => "malformed request body",
            Refusal::BodyTimeout => "the request body did not come in time",
            Refusal::TlsOnProxyPort => "this is a proxy port: TLS is not spoken here",
        }
    }
}

/// Whether one `Connection` token names a header that frames a message.
pub fn names_framing(token: &[u8]) -> bool {
    token.eq_ignore_ascii_case(b"content-length")
        || token.eq_ignore_ascii_case(b"transfer-encoding")
}

/// The head checks both engines make before anything else, on hyper's parsed head: one
/// `Host` at most, framing headers not named in `Connection`, and not both framings.
pub fn admit_head(headers: &HeaderMap) -> Result<(), Refusal> {
    let mut hosts = headers.get_all(header::HOST).iter();
    if hosts.next().is_some() && hosts.next().is_some() {
        return Err(Refusal::DuplicateHost);
    }
    if listed(&headers.get_all(header::CONNECTION)).any(names_framing) {
        return Err(Refusal::FramingNamedInConnection);
    }
    if headers.contains_key(header::TRANSFER_ENCODING)
        && headers.contains_key(header::CONTENT_LENGTH)
    {
        return Err(Refusal::AmbiguousFraming);
    }
    Ok(())
}

/// [`admit_head`] on a request hyper parsed, and what hyper hid from its head: a request
/// the framing watch marked (`Transfer-Encoding` with `Content-Length`, two lengths —
/// hyper keeps one) is refused as the direct path refuses it.
pub fn admit<B>(req: &http::Request<B>) -> Result<(), Refusal> {
    admit_head(req.headers())?;
    if req
        .extensions()
        .get::<super::h1::AmbiguousFraming>()
        .is_some()
    {
        return Err(Refusal::AmbiguousFraming);
    }
    Ok(())
}

/// One request's life, on the stack of whichever engine serves it: marked when `finish` runs,
/// loud when dropped unmarked — a path that forgot its exit, or a request abandoned
/// half-way (its client gone while douane waited, the drain deadline), shows in the log.
#[derive(Debug)]
pub struct Life {
    finished: AtomicBool,
}

impl Life {
    pub fn new() -> Life {
        Life {
            finished: AtomicBool::new(false),
        }
    }

    /// Marks the exit; `false` when it had already been taken (a second `finish`).
    pub fn finish(&self) -> bool {
        !self.finished.swap(true, Ordering::Relaxed)
    }

    /// Hands the exit over to a life that goes on elsewhere (a response body that finishes
    /// the request when it is done): this one is marked, the one returned is not.
    pub fn hand_over(&self) -> Life {
        let first = self.finish();
        debug_assert!(first, "a life handed over after its exit");
        Life {
            finished: AtomicBool::new(!first),
        }
    }
}

impl Default for Life {
    fn default() -> Self {
        Life::new()
    }
}

impl Drop for Life {
    fn drop(&mut self) {
        if !*self.finished.get_mut() {
            tracing::warn!("request ended without finish (abandoned, or an exit forgotten)");
        }
    }
}

/// How one request ended, as the single exit (`Proxy::finish`) receives it: what the
/// client was actually sent, where the request actually went, and what it asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestEnd<'a> {
    /// The status actually written to the client (a 503 that replaced a 451 when the audit
    /// record could not be written; `0` when the client went away before any status).
    pub status: u16,
    /// The upstream address the request was sent to (one the decision checked).
    pub upstream: Option<SocketAddr>,
    /// Body bytes sent client → upstream, and upstream → client, where the engine counts
    /// them (the direct path and tunnels always; hyper's path for exposed requests through
    /// the exposure tally, `None` here).
    pub sent: Option<u64>,
    pub received: Option<u64>,
    /// From the first byte of the request to this exit.
    pub duration: Duration,
    /// The TLS server name of the client connection.
    pub sni: Option<&'a str>,
    /// A CONNECT that ran its tunnel: finished at the tunnel's close (`duration` runs to
    /// it, `sent`/`received` are the tunnel's bytes).
    pub tunnel: Option<TunnelClose>,
}

/// The part of a CONNECT's end that its tunnel adds ([`RequestEnd::tunnel`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct TunnelClose {
    /// From the request head read to the `200`: what the request latency histogram
    /// observes (the tunnel's own life is `RequestEnd::duration`).
    pub answered: Duration,
    /// Why the tunnel's first bytes named nothing that could be checked (`no_sni`, `ech`,
    /// `other_protocol`, `bad_name`, …), when they did not.
    pub first_bytes: Option<&'static str>,
    /// Cut by douane's stop (the drain deadline passed with the tunnel open): the bytes
    /// each way are not known.
    pub cut: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn head(lines: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in lines {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn framing_named_in_connection_is_refused_whatever_its_case_and_place() {
        for connection in [
            "content-length",
            "close, Content-Length",
            "keep-alive,TRANSFER-ENCODING",
            " x , content-length ",
        ] {
            let h = head(&[("connection", connection), ("content-length", "5")]);
            assert_eq!(
                admit_head(&h),
                Err(Refusal::FramingNamedInConnection),
                "{connection}"
            );
        }
        let ok = head(&[("connection", "close, x-hop"), ("content-length", "5")]);
        assert_eq!(admit_head(&ok), Ok(()));
    }

    #[test]
    fn two_hosts_and_two_framings_are_refused() {
        let h = head(&[("host", "a"), ("host", "b")]);
        assert_eq!(admit_head(&h), Err(Refusal::DuplicateHost));
        let h = head(&[("transfer-encoding", "chunked"), ("content-length", "3")]);
        assert_eq!(admit_head(&h), Err(Refusal::AmbiguousFraming));
    }

    #[test]
    fn a_life_is_finished_once() {
        let life = Life::new();
        assert!(life.finish());
        assert!(!life.finish());
    }

    #[test]
    fn every_kind_is_listed() {
        use Refusal::*;
        let all = [
            MalformedHead,
            NoHost,
            DuplicateHost,
            FramingNamedInConnection,
            AmbiguousFraming,
            MisdirectedRequest,
            NoRoute,
            BadTarget,
            Loop,
            MalformedBody,
            BodyTimeout,
            TlsOnProxyPort,
        ];
        let kinds: Vec<_> = all.iter().map(|r| r.kind()).collect();
        assert_eq!(kinds, Refusal::KINDS);
    }
}
