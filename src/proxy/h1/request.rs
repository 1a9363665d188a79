//! The request side of the direct path: the facts a proxy needs from a request head, read
//! in one pass, and the head the upstream gets — rewritten as on hyper's path.

use super::message::{parse_content_length, push_header, tokens, Kind, MAX_HEADERS};
use crate::proxy::exchange::{names_framing, Refusal};
use crate::proxy::forwarding::{forwardable_host, Forwarding};
use crate::proxy::headers::{request_rule, Leg, Rule};
use crate::proxy::reverse::CompiledRoute;

/// Names a `Connection` header may list for removal; a longer list goes to hyper.
const MAX_NAMED: usize = 8;

/// The request facts the direct path needs, read in one pass over the headers.
pub(super) struct RequestShape<'b> {
    pub(super) host: &'b [u8],
    /// How many `Host` headers.
    pub(super) hosts: u8,
    /// Whether the request carries `Via` (it went through a proxy already).
    pub(super) via: bool,
    pub(super) content_length: u64,
    pub(super) close: bool,
    pub(super) forwarded_for: Option<&'b [u8]>,
    pub(super) named: [&'b [u8]; MAX_NAMED],
    pub(super) named_len: usize,
    /// What each header is, by position: classified once.
    pub(super) classes: [Kind; MAX_HEADERS],
    /// The `Accept` value, for the block page's language of choice.
    pub(super) accept: Option<&'b [u8]>,
}

/// Why the direct path does not take a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NotDirect {
    /// hyper's path takes it (before any decision): an upgrade, `Expect`, a chunked body,
    /// a long `Connection` list, an odd head.
    Hyper,
    /// Refused on the spot: its framing is ambiguous, or it has two `Host`s.
    Refuse(Refusal),
}

impl<'b> RequestShape<'b> {
    /// The facts of a request head. Refused: framing headers named in `Connection` (the
    /// hop-by-hop rule would drop them while the body is still sent: smuggling), both
    /// framings or several lengths, two `Host`s. For hyper: an upgrade, `Expect`, a transfer
    /// coding alone, an invalid `Content-Length`, a `Connection` list too long.
    pub(super) fn read(headers: &[httparse::Header<'b>]) -> Result<RequestShape<'b>, NotDirect> {
        let mut shape = RequestShape {
            host: b"",
            hosts: 0,
            via: false,
            content_length: 0,
            close: false,
            forwarded_for: None,
            named: [b""; MAX_NAMED],
            named_len: 0,
            classes: [Kind::Other; MAX_HEADERS],
            accept: None,
        };
        let (mut lengths, mut codings, mut hyper, mut framing_named) = (0, 0, false, false);
        for (h, class) in headers.iter().zip(shape.classes.iter_mut()) {
            *class = Kind::of(h.name);
            match *class {
                Kind::Host => {
                    shape.hosts = shape.hosts.saturating_add(1);
                    shape.host = h.value;
                }
                Kind::Via => shape.via = true,
                Kind::ContentLength => {
                    lengths += 1;
                    match parse_content_length(h.value) {
                        Some(n) => shape.content_length = n,
                        None => hyper = true, // hyper answers 400
                    }
                }
                Kind::TransferEncoding => codings += 1,
                Kind::Upgrade | Kind::Expect => hyper = true,
                Kind::Connection => {
                    for token in tokens(h.value) {
                        if token.eq_ignore_ascii_case(b"close") {
                            shape.close = true;
                        } else if names_framing(token) {
                            framing_named = true;
                        } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        } else if let Some(slot) = shape.named.get_mut(shape.named_len) {
                            *slot = token;
                            shape.named_len += 1;
                        } else {
                            hyper = true;
                        }
                    }
                }
                Kind::XForwardedFor if shape.forwarded_for.is_none() => {
                    shape.forwarded_for = Some(h.value);
                }
                Kind::Other if shape.accept.is_none() && h.name.eq_ignore_ascii_case("accept") => {
                    shape.accept = Some(h.value);
                }
                _ => {}
            }
        }
        if framing_named {
            Err(NotDirect::Refuse(Refusal::FramingNamedInConnection))
        } else if (codings > 0 && lengths > 0) || lengths > 1 {
            Err(NotDirect::Refuse(Refusal::AmbiguousFraming))
        } else if shape.hosts > 1 {
            Err(NotDirect::Refuse(Refusal::DuplicateHost))
        } else if hyper || codings > 0 {
            Err(NotDirect::Hyper)
        } else {
            Ok(shape)
        }
    }

    pub(super) fn names(&self, name: &str) -> bool {
        self.named[..self.named_len]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// The request line of the upstream request.
pub(super) struct RequestLine<'a> {
    pub(super) method: &'a str,
    pub(super) base_path: &'a str,
    pub(super) target: &'a str,
}

/// The request head as the upstream gets it — the rules of hyper's path ([`request_rule`]):
/// hop-by-hop headers out, `Host` the upstream's, `X-Forwarded-*` and `Forwarded` (RFC 7239) set, the
/// client's own forwarding headers kept only from a trusted peer.
pub(super) fn write_request_head(
    out: &mut Vec<u8>,
    line: RequestLine<'_>,
    headers: &[httparse::Header<'_>],
    shape: &RequestShape<'_>,
    route: &CompiledRoute,
    fwd: &Forwarding,
) {
    out.extend_from_slice(line.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(line.base_path.as_bytes());
    out.extend_from_slice(line.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(route.host_header.as_bytes());
    out.extend_from_slice(b"\r\n");
    let leg = Leg::Reverse {
        trusted: fwd.trusted,
    };
    for (h, class) in headers.iter().zip(shape.classes) {
        if request_rule(class, leg, shape.names(h.name)) == Rule::Pass {
            push_header(out, h.name.as_bytes(), h.value);
        }
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    fwd.write_for(shape.forwarded_for, out);
    out.extend_from_slice(b"\r\nx-forwarded-proto: ");
    out.extend_from_slice(fwd.proto().as_bytes());
    if forwardable_host(shape.host) {
        out.extend_from_slice(b"\r\nx-forwarded-host: ");
        out.extend_from_slice(shape.host);
    }
    out.extend_from_slice(b"\r\nforwarded: ");
    fwd.write_forwarded(Some(shape.host), out);
    out.extend_from_slice(b"\r\n\r\n");
}

/// A forward request's head as the destination gets it — as on hyper's path: origin-form,
/// `Host` from the absolute target, the rules of [`request_rule`] (hop-by-hop headers out, an
/// untrusted client's `X-Forwarded-Host` out), this hop's `Via`.
pub(super) fn write_forward_head(
    out: &mut Vec<u8>,
    method: &str,
    origin: &str,
    authority: &str,
    headers: &[httparse::Header<'_>],
    shape: &RequestShape<'_>,
    (leg, via): (Leg, &[u8]),
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(origin.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (h, class) in headers.iter().zip(shape.classes) {
        if request_rule(class, leg, shape.names(h.name)) == Rule::Pass {
            push_header(out, h.name.as_bytes(), h.value);
        }
    }
    push_header(out, b"via", via);
    out.extend_from_slice(b"\r\n");
}

/// Methods a proxy may send again when a reused connection turned out closed (RFC 9110
/// §9.2.2).
pub(super) fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
    )
}
