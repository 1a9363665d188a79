//! The response side of the direct path: the final head read once — status, framing,
//! whether the upstream connection can serve again — and written as the client gets it;
//! douane's own responses as bytes.

use std::mem::MaybeUninit;

use http::Response;

use super::message::{
    push_decimal, push_header, tokens, Framing, Kind, ResponseFraming, MAX_HEADERS,
};
use crate::proxy::body::ProxyBody;
use crate::proxy::headers::{response_rule, Rule};

/// The final response head, read once.
pub(super) struct ResponseShape {
    pub(super) status: u16,
    pub(super) framing: Framing,
    /// The upstream will not take another request on this connection.
    pub(super) close: bool,
}

impl ResponseShape {
    /// Reads the final response head and writes it as the client gets it into `out`:
    /// hop-by-hop headers out (and those that `Connection` names), the transfer coding kept
    /// when the chunks pass through, `Connection: close` when it is the client connection's
    /// last response (`close`, or a body that only the end of the connection delimits).
    /// `None` for a head that is not a valid HTTP/1.x final response.
    pub(super) fn rewrite(
        head: &[u8],
        to_head_request: bool,
        close: bool,
        via: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> Option<ResponseShape> {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, head, &mut slots)
        {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return None,
        }
        let status = resp.code?;
        if (100..200).contains(&status) {
            return None; // 101 without having asked for an upgrade
        }
        let mut facts = ResponseFraming::default();
        let mut classes = [Kind::Other; MAX_HEADERS];
        for (h, class) in resp.headers.iter().zip(classes.iter_mut()) {
            *class = Kind::of(h.name);
            facts.note(*class, h.value).ok()?;
        }
        let upstream_close = resp.version != Some(1) || facts.close;
        let named = facts.names_headers;
        let framing = facts.framing(to_head_request, status);
        let named_by_connection = |name: &str| {
            resp.headers
                .iter()
                .filter(|h| Kind::of(h.name) == Kind::Connection)
                .flat_map(|h| tokens(h.value))
                .any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
        };
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, u64::from(status));
        out.push(b' ');
        out.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
        out.extend_from_slice(b"\r\n");
        for (h, class) in resp.headers.iter().zip(classes) {
            let pass = match class {
                Kind::TransferEncoding => framing == Framing::Chunked,
                Kind::ContentLength => !facts.has_transfer_coding(),
                // The body passes as it came: its framing headers with it (above).
                _ => response_rule(class, named && named_by_connection(h.name)) == Rule::Pass,
            };
            if pass {
                push_header(out, h.name.as_bytes(), h.value);
            }
        }
        if let Some(via) = via {
            push_header(out, b"via", via);
        }
        if close || framing == Framing::UntilClose {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Some(ResponseShape {
            status,
            framing,
            close: upstream_close || framing == Framing::UntilClose,
        })
    }
}

/// One of douane's own responses as bytes, with its length.
pub(super) fn write_whole_response(out: &mut Vec<u8>, response: Response<ProxyBody>, close: bool) {
    let (parts, mut body) = response.into_parts();
    let bytes = match &mut body {
        ProxyBody::Full(b) => b.take().unwrap_or_default(),
        _ => bytes::Bytes::new(),
    };
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(parts.status.as_u16()));
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        push_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"content-length: ");
    push_decimal(out, bytes.len() as u64);
    if close {
        out.extend_from_slice(b"\r\nconnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&bytes);
}

/// Whether the head at the start of `buf` is a 1xx other than 101 (which the direct path
/// never asks for, so it is treated as a final, and failing, answer).
pub(super) fn is_informational(buf: &[u8]) -> bool {
    buf.len() > 12 && buf.starts_with(b"HTTP/1.") && buf[9] == b'1' && &buf[9..12] != b"101"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(head: &[u8], to_head: bool) -> Option<(u16, Framing, bool)> {
        ResponseShape::rewrite(head, to_head, false, None, &mut Vec::new())
            .map(|r| (r.status, r.framing, r.close))
    }

    #[test]
    fn response_framing() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n";
        assert_eq!(shape(ok, false), Some((200, Framing::Length(2), false)));
        assert_eq!(shape(ok, true), Some((200, Framing::Length(0), false)));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n";
        assert_eq!(shape(chunked, false), Some((200, Framing::Chunked, false)));
        let until_close = b"HTTP/1.1 200 OK\r\nx: y\r\n\r\n";
        assert_eq!(
            shape(until_close, false),
            Some((200, Framing::UntilClose, true))
        );
        let old = b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n";
        assert_eq!(shape(old, false), Some((200, Framing::Length(1), true)));
        let closing = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        assert_eq!(shape(closing, false), Some((204, Framing::Length(0), true)));
        let conflicting = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n";
        assert_eq!(shape(conflicting, false), None);
        assert_eq!(shape(b"HTTP/1.1 101 Switching\r\n\r\n", false), None);
        assert_eq!(shape(b"garbage\r\n\r\n", false), None);
    }

    #[test]
    fn response_head_loses_hop_by_hop_headers() {
        let head = b"HTTP/1.1 200 Fine\r\nConnection: keep-alive, x-hop\r\nx-hop: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\nX-Kept: yes\r\n\r\n";
        let mut out = Vec::new();
        ResponseShape::rewrite(head, false, true, None, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 Fine\r\nContent-Length: 2\r\nX-Kept: yes\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn informational_heads() {
        assert!(is_informational(b"HTTP/1.1 103 Early Hints\r\n\r\n"));
        assert!(is_informational(b"HTTP/1.1 100 Continue\r\n\r\n"));
        assert!(!is_informational(b"HTTP/1.1 101 Switching\r\n\r\n"));
        assert!(!is_informational(b"HTTP/1.1 200 OK\r\n\r\n"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let pieces: [&[u8]; 10] = [
            b"HTTP/1.1 ",
            b"200 OK",
            b"\r\n",
            b"content-length: ",
            b"transfer-encoding: chunked",
            b"connection: close, x",
            b"\xff\x00",
            b"1",
            b":",
            b"\n",
        ];
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut head = Vec::new();
            for _ in 0..(x % 12) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                head.extend_from_slice(pieces[(x % pieces.len() as u64) as usize]);
            }
            head.extend_from_slice(b"\r\n\r\n");
            let mut out = Vec::new();
            let _ = ResponseShape::rewrite(&head, x % 2 == 0, x % 3 == 0, None, &mut out);
            let _ = is_informational(&head);
        }
    }
}
