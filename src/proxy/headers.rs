//! Header surgery shared by both codecs and both listeners: one table of header kinds and
//! the rules each direction applies to them (hop-by-hop headers out, RFC 9110 §7.6.1;
//! forwarding headers; upgrades), `Via` added, loops recognised.

use http::header::{self, GetAll, HeaderMap, HeaderName, HeaderValue};

/// What a header is to a proxy — one table for both codecs: hyper's `HeaderMap` and the
/// direct path's raw header lines are classified by the same names, and edited by the same
/// rules ([`request_rule`], [`response_rule`]). Everything else passes through untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Upgrade,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    Forwarded,
    Via,
    /// `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`, `Proxy-Authorization`, `TE`,
    /// `Trailer`, `HTTP2-Settings`: they describe one hop and never cross a proxy (RFC 9110 §7.6.1).
    HopByHop,
    #[default]
    Other,
}

impl Kind {
    /// Classifies a header name, case-insensitively; by length first, so most names cost
    /// one comparison.
    pub fn of(name: &str) -> Kind {
        let is = |s: &str| name.eq_ignore_ascii_case(s);
        match name.len() {
            2 if is("te") => Kind::HopByHop,
            3 if is("via") => Kind::Via,
            4 if is("host") => Kind::Host,
            6 if is("expect") => Kind::Expect,
            7 if is("upgrade") => Kind::Upgrade,
            7 if is("trailer") => Kind::HopByHop,
            9 if is("forwarded") => Kind::Forwarded,
            10 if is("connection") => Kind::Connection,
            10 if is("keep-alive") => Kind::HopByHop,
            14 if is("content-length") => Kind::ContentLength,
            14 if is("http2-settings") => Kind::HopByHop,
            15 if is("x-forwarded-for") => Kind::XForwardedFor,
            16 if is("x-forwarded-host") => Kind::XForwardedHost,
            16 if is("proxy-connection") => Kind::HopByHop,
            17 if is("transfer-encoding") => Kind::TransferEncoding,
            17 if is("x-forwarded-proto") => Kind::XForwardedProto,
            18 if is("proxy-authenticate") => Kind::HopByHop,
            19 if is("proxy-authorization") => Kind::HopByHop,
            _ => Kind::Other,
        }
    }
}

/// The leg a request takes through douane, as the header rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// A reverse route: douane writes the forwarding headers itself.
    Reverse { trusted: bool },
    /// The forward proxy (absolute-form): the client's forwarding headers pass, except an
    /// untrusted client's `X-Forwarded-Host`; this hop's `Via` is appended.
    Forward { trusted: bool },
}

/// What becomes of a header on its way to the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Goes on as it came.
    Pass,
    /// Never goes on.
    Drop,
    /// douane writes its own value in its place (`Host`, the `X-Forwarded-*` of a reverse
    /// route, an untrusted peer's `Forwarded`); the writer may read the client's first.
    Replace,
}

/// The rule of one client request header on its way upstream — the table both codecs
/// apply. `named`: the request's `Connection` lists it (hop-by-hop, RFC 9110 §7.6.1).
/// `Upgrade` goes: a WebSocket upgrade is put back after the decision by the codec; any
/// other (`h2c` above all) never crosses. `Transfer-Encoding` goes: the codec frames the
/// body. `X-Forwarded-Host` never passes from an untrusted client.
#[inline]
pub fn request_rule(kind: Kind, leg: Leg, named: bool) -> Rule {
    use Kind as K;
    let rule = match (kind, leg) {
        (K::Host, _) => Rule::Replace,
        (K::Connection | K::HopByHop | K::Upgrade | K::TransferEncoding, _) => Rule::Drop,
        (K::XForwardedFor | K::XForwardedProto | K::XForwardedHost, Leg::Reverse { .. }) => {
            Rule::Replace
        }
        (K::Forwarded, Leg::Reverse { trusted: false }) => Rule::Replace,
        (K::XForwardedHost, Leg::Forward { trusted: false }) => Rule::Drop,
        _ => Rule::Pass,
    };
    if named && rule == Rule::Pass {
        Rule::Drop
    } else {
        rule
    }
}

/// The rule of one upstream response header on its way to the client: hop-by-hop headers
/// and those its `Connection` names go (the codec frames the body and writes its own
/// `Connection`); everything else passes.
#[inline]
pub fn response_rule(kind: Kind, named: bool) -> Rule {
    match kind {
        Kind::Connection | Kind::HopByHop | Kind::Upgrade | Kind::TransferEncoding => Rule::Drop,
        _ if named => Rule::Drop,
        _ => Rule::Pass,
    }
}

/// Applies a rule table ([`request_rule`], [`response_rule`]) to a `HeaderMap` (hyper's
/// codec): what it drops is removed; what it replaces is left for the writer to
/// overwrite. `Upgrade` stays when the caller passes an upgrade through (`keep_upgrade`),
/// with `Connection: upgrade` put back.
fn apply(headers: &mut HeaderMap, rule: impl Fn(Kind, bool) -> Rule, keep_upgrade: bool) {
    // Most messages drop a handful of names (`Connection`, `Keep-Alive`): held on the stack,
    // and the tokens `Connection` names are read from its values where they are, so that a
    // message pays no allocation for its rewrite.
    let connection = headers.get_all(header::CONNECTION);
    let mut dropped = DropList::default();
    for name in headers.keys() {
        let is_named =
            listed(&connection).any(|n| n.eq_ignore_ascii_case(name.as_str().as_bytes()));
        let kind = Kind::of(name.as_str());
        if rule(kind, is_named) == Rule::Drop && !(keep_upgrade && kind == Kind::Upgrade) {
            dropped.push(name.clone());
        }
    }
    dropped.remove_from(headers);
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// The comma-separated tokens of a header value, trimmed, empty ones skipped (both
/// engines read lists with it).
pub fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// The tokens of every value of a list header (`Connection`, `Upgrade`), in order.
pub fn listed<'a>(values: &GetAll<'a, HeaderValue>) -> impl Iterator<Item = &'a [u8]> {
    values.iter().flat_map(|v| tokens(v.as_bytes()))
}

/// The names a rewrite removes: the first few in place, any further ones on the heap.
#[derive(Default)]
struct DropList {
    first: [Option<HeaderName>; 4],
    more: Vec<HeaderName>,
}

impl DropList {
    fn push(&mut self, name: HeaderName) {
        match self.first.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(name),
            None => self.more.push(name),
        }
    }

    fn remove_from(self, headers: &mut HeaderMap) {
        for name in self.first.into_iter().flatten().chain(self.more) {
            headers.remove(name);
        }
    }
}

/// A request hyper parsed, as it goes upstream on `leg` ([`request_rule`]).
pub fn rewrite_request(headers: &mut HeaderMap, leg: Leg, keep_upgrade: bool) {
    apply(
        headers,
        |kind, named| request_rule(kind, leg, named),
        keep_upgrade,
    );
}

/// A response hyper parsed, as it goes to the client ([`response_rule`]).
pub fn rewrite_response(headers: &mut HeaderMap, keep_upgrade: bool) {
    apply(headers, response_rule, keep_upgrade);
}

/// The host of a `Host` (or `:authority`) value: without its port (`[::1]:8443` keeps its
/// brackets; a bare IPv6 address has no port to strip) and without trailing dots. Case is
/// left to the caller.
pub fn host_of(value: &[u8]) -> &[u8] {
    let host = match value.iter().rposition(|b| *b == b':') {
        Some(i) if value[i + 1..].iter().all(u8::is_ascii_digit) => {
            let h = &value[..i];
            let bracketed = h.first() == Some(&b'[');
            if (bracketed && h.last() != Some(&b']')) || (!bracketed && h.contains(&b':')) {
                value
            } else {
                h
            }
        }
        _ => value,
    };
    let dots = host.iter().rev().take_while(|b| **b == b'.').count();
    &host[..host.len() - dots]
}

/// Whether a request asks for a WebSocket upgrade, the only one douane passes: `Upgrade`
/// names `websocket` and nothing else (an `h2c` upgrade would carry undecided HTTP/2
/// requests), and `Connection` names `upgrade`.
pub fn wants_websocket(headers: &HeaderMap) -> bool {
    let mut tokens = listed(&headers.get_all(header::UPGRADE));
    let only_websocket = tokens
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case(b"websocket"))
        && tokens.next().is_none();
    only_websocket && wants_upgrade(headers)
}

/// Whether a request asks for a protocol upgrade (of any kind).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Appends this hop to `Via`.
pub fn append_via(headers: &mut HeaderMap, via: &HeaderValue) {
    headers.append(header::VIA, via.clone());
}

/// Whether `Via` already names this instance: the request went round in a loop.
pub fn is_loop(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|hop| hop.split_whitespace().nth(1) == Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        rewrite_response(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key(header::ACCEPT));
    }

    #[test]
    fn drops_every_named_header_past_the_first_few_and_over_several_connection_lines() {
        let mut h = HeaderMap::new();
        h.append(
            header::CONNECTION,
            HeaderValue::from_static("x-a, X-B,,x-c"),
        );
        h.append(header::CONNECTION, HeaderValue::from_static(" x-d ,x-e"));
        for name in ["x-a", "x-b", "x-c", "x-d", "x-e", "x-kept"] {
            h.insert(name, HeaderValue::from_static("1"));
        }
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        rewrite_response(&mut h, false);
        let left: Vec<&str> = h.keys().map(|n| n.as_str()).collect();
        assert_eq!(left, ["x-kept"]);
    }

    #[test]
    fn keeps_an_upgrade_when_asked() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&h));
        rewrite_request(&mut h, Leg::Reverse { trusted: false }, true);
        assert_eq!(h.get(header::UPGRADE).unwrap(), "websocket");
        assert_eq!(h.get(header::CONNECTION).unwrap(), "upgrade");
    }

    #[test]
    fn only_a_websocket_upgrade_is_one() {
        let with = |upgrade: &'static str, connection: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::UPGRADE, HeaderValue::from_static(upgrade));
            h.insert(header::CONNECTION, HeaderValue::from_static(connection));
            h
        };
        assert!(wants_websocket(&with("WebSocket", "keep-alive, Upgrade")));
        assert!(!wants_websocket(&with("h2c", "Upgrade, HTTP2-Settings")));
        assert!(!wants_websocket(&with("websocket, h2c", "upgrade")));
        assert!(!wants_websocket(&with("websocket", "keep-alive")));
        let mut h = with("h2c", "Upgrade, HTTP2-Settings");
        h.insert(
            "http2-settings",
            HeaderValue::from_static("AAMAAABkAAQCAAAAAAIAAAAA"),
        );
        rewrite_request(&mut h, Leg::Forward { trusted: true }, false);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn x_forwarded_host_passes_only_from_a_trusted_forward_client() {
        let xfh = Kind::of("X-Forwarded-Host");
        for trusted in [false, true] {
            let reverse = request_rule(xfh, Leg::Reverse { trusted }, false);
            assert_eq!(reverse, Rule::Replace);
        }
        assert_eq!(
            request_rule(xfh, Leg::Forward { trusted: false }, false),
            Rule::Drop
        );
        assert_eq!(
            request_rule(xfh, Leg::Forward { trusted: true }, false),
            Rule::Pass
        );
        assert_eq!(
            request_rule(xfh, Leg::Forward { trusted: true }, true),
            Rule::Drop
        );
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        rewrite_request(&mut h, Leg::Forward { trusted: false }, false);
        assert_eq!(h.len(), 1, "{h:?}");
    }

    #[test]
    fn both_codecs_read_one_table() {
        // Every kind has a rule each way; the hop-by-hop ones go both ways.
        for name in [
            "TE",
            "Keep-Alive",
            "Proxy-Connection",
            "HTTP2-Settings",
            "Trailer",
            "Upgrade",
            "Connection",
            "Transfer-Encoding",
        ] {
            let kind = Kind::of(name);
            assert_eq!(response_rule(kind, false), Rule::Drop, "{name}");
            for leg in [
                Leg::Reverse { trusted: true },
                Leg::Forward { trusted: true },
            ] {
                assert_eq!(request_rule(kind, leg, false), Rule::Drop, "{name}");
            }
        }
        assert_eq!(
            request_rule(Kind::of("accept"), Leg::Forward { trusted: false }, true),
            Rule::Drop
        );
        assert_eq!(
            request_rule(Kind::of("accept"), Leg::Forward { trusted: false }, false),
            Rule::Pass
        );
    }

    #[test]
    fn hosts_lose_port_and_trailing_dots() {
        for (value, host) in [
            ("App.Example.:8443", "App.Example"),
            ("a.example..", "a.example"),
            ("127.0.0.1:80", "127.0.0.1"),
            ("[::1]:8443", "[::1]"),
            ("[::1]", "[::1]"),
            ("::1", "::1"),
            ("a:", "a"),
        ] {
            assert_eq!(host_of(value.as_bytes()), host.as_bytes(), "{value}");
        }
    }

    #[test]
    fn recognises_its_own_via() {
        let mut h = HeaderMap::new();
        h.append(
            header::VIA,
            HeaderValue::from_static("1.0 fred, 1.1 douane-0a0b0c0d"),
        );
        assert!(is_loop(&h, "douane-0a0b0c0d"));
        assert!(!is_loop(&h, "douane-ffffffff"));
    }
}
