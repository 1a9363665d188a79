//! A tunnel's first bytes: read without being consumed (kept for the upstream) until
//! they can be told — a TLS ClientHello, a plain request — the upstream speaks first, or
//! the wait is over; and what name they carry, or why none.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

use crate::client_hello::{inspect, Inspection, MAX_CLIENT_HELLO};
use crate::proxy::readiness::AwaitReadable;

/// What the first bytes of a tunnel turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstBytes {
    /// What [`inspect`] made of them.
    Seen(Inspection),
    /// The upstream spoke before the client.
    ServerFirst,
    /// Nothing (or not enough) within the wait.
    Timeout,
    /// The client closed its side first.
    Closed,
}

impl FirstBytes {
    /// The name to decide, its kind (`sni` or `host`), and why there is none.
    pub(super) fn name(&self) -> Result<(&str, &'static str), &'static str> {
        match self {
            FirstBytes::Seen(Inspection::Tls(hello)) => match &hello.sni {
                Some(n) => Ok((n, "sni")),
                None => Err("no_sni"),
            },
            FirstBytes::Seen(Inspection::Http { host: Some(h) }) => Ok((h, "host")),
            FirstBytes::Seen(Inspection::Http { host: None }) => Err("no_host"),
            FirstBytes::Seen(Inspection::MalformedTls) => Err("malformed_tls"),
            FirstBytes::Seen(_) => Err("other_protocol"),
            FirstBytes::ServerFirst => Err("server_first"),
            FirstBytes::Timeout => Err("timeout"),
            FirstBytes::Closed => Err("closed"),
        }
    }

    pub(super) fn is_tls(&self) -> bool {
        matches!(
            self,
            FirstBytes::Seen(Inspection::Tls(_) | Inspection::MalformedTls)
        )
    }

    pub(super) fn ech(&self) -> bool {
        matches!(self, FirstBytes::Seen(Inspection::Tls(h)) if h.ech)
    }
}

/// Reads the client's first bytes into `buf` (which may hold some already) until they can
/// be told, the upstream speaks first, or `wait` is over. Nothing read is lost.
pub async fn read_first<C>(
    client: &mut C,
    upstream: &TcpStream,
    buf: &mut Vec<u8>,
    wait: Duration,
) -> std::io::Result<FirstBytes>
where
    C: AsyncRead + AwaitReadable + Unpin,
{
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    if C::WAITS && buf.is_empty() {
        // Nothing yet: wait without a buffer (most tunnels wait here a round trip; an idle
        // one, until the first-bytes timeout).
        tokio::select! {
            biased;
            ready = client.readable() => ready?,
            _ = upstream.readable() => return Ok(FirstBytes::ServerFirst),
            _ = &mut deadline => return Ok(FirstBytes::Timeout),
        }
    }
    loop {
        let seen = inspect(buf);
        if seen != Inspection::NeedMore {
            return Ok(FirstBytes::Seen(seen));
        }
        if buf.len() >= MAX_CLIENT_HELLO {
            return Ok(FirstBytes::Seen(Inspection::Other));
        }
        buf.reserve(4096);
        tokio::select! {
            biased;
            read = client.read_buf(buf) => {
                if read? == 0 {
                    return Ok(FirstBytes::Closed);
                }
            }
            _ = upstream.readable() => return Ok(FirstBytes::ServerFirst),
            _ = &mut deadline => return Ok(FirstBytes::Timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn why_a_tunnel_names_nothing() {
        assert_eq!(FirstBytes::Timeout.name(), Err("timeout"));
        assert_eq!(FirstBytes::ServerFirst.name(), Err("server_first"));
        let http = FirstBytes::Seen(Inspection::Http {
            host: Some("a.test".into()),
        });
        assert_eq!(http.name(), Ok(("a.test", "host")));
        assert!(!http.is_tls());
    }
}
