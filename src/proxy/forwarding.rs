//! The forwarding headers of a reverse route, for both HTTP/1.1 engines (hyper's and the
//! direct path): `X-Forwarded-For` (the peer appended to a trusted peer's list, alone
//! otherwise), `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded` (RFC 7239). The
//! values are written into byte buffers by hand: this runs for every request, and `format!`
//! of addresses was a sixth of a request's instructions.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use bytes::BufMut;
use http::header::HeaderName;

// Header names as constants: a `&str` name is parsed again on every use.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Who forwards the request to us, and how it came.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding {
    pub peer: IpAddr,
    /// The peer is one of `[trust] forwarded_from`: its forwarding headers are kept.
    pub trusted: bool,
    pub tls: bool,
}

impl Forwarding {
    pub fn proto(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// The `X-Forwarded-For` value: `prior` (the request's own) first when the peer is
    /// trusted and `prior` is plain visible text, then the peer.
    pub fn write_for(&self, prior: Option<&[u8]>, out: &mut impl BufMut) {
        let prior = prior.filter(|p| p.iter().all(|b| *b == b'\t' || (0x20..0x7f).contains(b)));
        if let (true, Some(prior)) = (self.trusted, prior) {
            out.put_slice(prior);
            out.put_slice(b", ");
        }
        let mut buf = [0u8; 15];
        out.put_slice(peer_text(self.peer, &mut buf).as_bytes());
    }

    /// This hop's `Forwarded` element: `for`, `proto`, and `host` when it is
    /// [`forwardable_host`].
    pub fn write_forwarded(&self, host: Option<&[u8]>, out: &mut impl BufMut) {
        let mut buf = [0u8; 15];
        let peer = peer_text(self.peer, &mut buf);
        out.put_slice(b"for=");
        if self.peer.is_ipv6() {
            out.put_slice(b"\"[");
            out.put_slice(peer.as_bytes());
            out.put_slice(b"]\"");
        } else {
            out.put_slice(peer.as_bytes());
        }
        out.put_slice(b";proto=");
        out.put_slice(self.proto().as_bytes());
        if let Some(host) = host.filter(|h| forwardable_host(h)) {
            out.put_slice(b";host=\"");
            out.put_slice(host);
            out.put_u8(b'"');
        }
    }
}

/// Whether a `Host` value may go out as `X-Forwarded-Host` and quoted in `Forwarded`.
pub fn forwardable_host(host: &[u8]) -> bool {
    !host.is_empty() && host.iter().all(|b| b.is_ascii_graphic() && *b != b'"')
}

fn peer_text(peer: IpAddr, buf: &mut [u8; 15]) -> Cow<'_, str> {
    match peer {
        IpAddr::V4(v4) => Cow::Borrowed(ipv4_text(v4, buf)),
        v6 => Cow::Owned(v6.to_string()),
    }
}

/// Dotted-quad text of an IPv4 address, written into `buf`: the standard `Display` goes
/// through the formatting machinery, a thousand instructions on every request.
fn ipv4_text(ip: Ipv4Addr, buf: &mut [u8; 15]) -> &str {
    let mut len = 0;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            buf[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            buf[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            buf[len] = b'0' + (octet / 10) % 10;
            len += 1;
        }
        buf[len] = b'0' + octet % 10;
        len += 1;
    }
    std::str::from_utf8(&buf[..len]).unwrap_or("0.0.0.0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_text_matches_display() {
        let mut buf = [0u8; 15];
        for ip in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.200.9",
            "127.0.0.1",
            "1.22.100.7",
        ] {
            let ip: Ipv4Addr = ip.parse().unwrap();
            assert_eq!(ipv4_text(ip, &mut buf), ip.to_string());
        }
    }

    fn text(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_trusted_peers_list_is_kept_an_untrusted_ones_is_not() {
        let peer = "10.0.0.9".parse().unwrap();
        let trusted = Forwarding {
            peer,
            trusted: true,
            tls: true,
        };
        let untrusted = Forwarding {
            trusted: false,
            ..trusted
        };
        let prior = Some(&b"1.2.3.4"[..]);
        assert_eq!(text(|o| trusted.write_for(prior, o)), "1.2.3.4, 10.0.0.9");
        assert_eq!(text(|o| untrusted.write_for(prior, o)), "10.0.0.9");
        assert_eq!(text(|o| trusted.write_for(Some(b"\xff"), o)), "10.0.0.9");
    }

    #[test]
    fn forwarded_quotes_ipv6_and_a_safe_host_only() {
        let v6 = Forwarding {
            peer: "::1".parse().unwrap(),
            trusted: false,
            tls: false,
        };
        assert_eq!(
            text(|o| v6.write_forwarded(Some(b"app.localhost:443"), o)),
            "for=\"[::1]\";proto=http;host=\"app.localhost:443\""
        );
        assert_eq!(
            text(|o| v6.write_forwarded(Some(b"a\"b"), o)),
            "for=\"[::1]\";proto=http"
        );
    }
}
