//! Header surgery shared by the forward and reverse paths: hop-by-hop headers removed in
//! both directions (RFC 9110 §7.6.1), `Via` added, loops recognised.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one hop and never cross a proxy. `HTTP2-Settings` belongs to an
/// `h2c` upgrade (RFC 7540 §3.2.1), which never crosses douane.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    HeaderName::from_static("http2-settings"),
];

/// Removes hop-by-hop headers, including every header that `Connection` names. `Upgrade`
/// goes too, unless the caller is passing an upgrade through (`keep_upgrade`), in which
/// case `Connection: upgrade` is put back.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none of them: one pass over the few names present is cheaper than
    // a hashed removal of each of the ten.
    let present = headers
        .keys()
        .any(|name| HOP_BY_HOP.contains(name) || name == header::UPGRADE);
    if !present && !keep_upgrade {
        return;
    }
    // `Connection: keep-alive` (or close, upgrade) names no other header: nothing to collect.
    let names_others = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| {
            !t.eq_ignore_ascii_case("keep-alive")
                && !t.eq_ignore_ascii_case("close")
                && !t.eq_ignore_ascii_case("upgrade")
        });
    if names_others {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            if !(keep_upgrade && name == header::UPGRADE) {
                headers.remove(name);
            }
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
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
    let mut tokens = headers
        .get_all(header::UPGRADE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty());
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
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key(header::ACCEPT));
    }

    #[test]
    fn keeps_an_upgrade_when_asked() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
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
        strip_hop_by_hop(&mut h, false);
        assert!(h.is_empty(), "{h:?}");
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
