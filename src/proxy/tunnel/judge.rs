//! Judging a tunnel's first bytes: a name other than the CONNECT's is decided (as a
//! request of its own, `inside`), first bytes that name nothing are judged by
//! `[tunnel] unnamed`, and what they were is kept for the CONNECT's end record.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::first::read_first;
use super::inside::{decide_name, record_unnamed, Named, ACCESS_DENIED_ALERT};
use super::{Opened, Unnamed};
use crate::proxy::context::Proxy;
use crate::proxy::readiness::AwaitReadable;
use crate::resolve::Host;

/// The host as names inside tunnels are written: lowercase, no brackets, no final dot.
fn bare(host: &str) -> &str {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.strip_suffix('.').unwrap_or(host)
}

/// How a tunnel's first bytes were judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    /// Forward them and relay; else refused, and answered to the client already: close
    /// both sides.
    pub pass: bool,
    /// Why they named nothing that could be checked, when they did not.
    pub first_bytes: Option<&'static str>,
}

impl Judged {
    const PASS: Judged = Judged {
        pass: true,
        first_bytes: None,
    };
    const REFUSED: Judged = Judged {
        pass: false,
        first_bytes: None,
    };
}

/// Reads and judges a tunnel's first bytes (kept in `buf`); on a refusal the client has been
/// answered (alert, block page) and nothing went upstream.
pub async fn judge<C>(
    proxy: &Proxy,
    opened: &Opened<'_>,
    client: &mut C,
    upstream: &TcpStream,
    buf: &mut Vec<u8>,
) -> Judged
where
    C: AsyncRead + AsyncWrite + AwaitReadable + Unpin,
{
    let config = &proxy.tunnel;
    if !config.check_names && config.unnamed == Unnamed::Allow {
        return Judged::PASS;
    }
    let wait = Duration::from_millis(config.first_bytes_timeout_ms);
    let first = match read_first(client, upstream, buf, wait).await {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!(request_id = opened.request_id, error = %e, "tunnel: reading the first bytes failed");
            return Judged::REFUSED;
        }
    };
    let tls = first.is_tls();
    match first.name() {
        Ok((name, kind)) if config.check_names => {
            // A name is compared as it is, with no copy per tunnel.
            let same = match &opened.destination.host {
                Host::Name(host) => bare(name).eq_ignore_ascii_case(bare(host)),
                Host::Ip(ip) => bare(name).eq_ignore_ascii_case(&ip.to_string()),
            };
            if !same {
                let name = name.to_owned();
                // Boxed, as `unnamed` below: the rare cases, each with a decision, an audit
                // record and maybe a block page, would size every tunnel's future.
                match Box::pin(decide_name(proxy, opened, client, buf, &name, kind, tls)).await {
                    Named::Passes => {}
                    Named::Refused => return Judged::REFUSED,
                    Named::BadName => {
                        return Box::pin(unnamed(proxy, opened, client, "bad_name", tls)).await
                    }
                }
            }
            if first.ech() {
                return Box::pin(unnamed(proxy, opened, client, "ech", tls)).await;
            }
            Judged::PASS
        }
        Ok(_) => Judged::PASS,
        Err(why) => Box::pin(unnamed(proxy, opened, client, why, tls)).await,
    }
}

/// A tunnel whose first bytes name nothing: in the log, judged by `[tunnel] unnamed`; the
/// CONNECT's end record says why (`first_bytes`), and a refusal is a request of its own,
/// recorded as a block (`tunnel_unnamed`) linked to the CONNECT.
async fn unnamed<C>(
    proxy: &Proxy,
    opened: &Opened<'_>,
    client: &mut C,
    why: &'static str,
    tls: bool,
) -> Judged
where
    C: AsyncWrite + Unpin,
{
    let refuse = proxy.tunnel.unnamed == Unnamed::Block;
    tracing::info!(
        request_id = opened.request_id,
        listener = opened.listener,
        client = %opened.client,
        destination = %opened.destination,
        first_bytes = why,
        outcome = if refuse { "block" } else { "allow" },
        "tunnel names nothing that can be checked"
    );
    let judged = Judged {
        pass: !refuse,
        first_bytes: Some(why),
    };
    if !refuse {
        return judged;
    }
    proxy.metrics.refusal("tunnel_unnamed");
    record_unnamed(proxy, opened, why, tls).await;
    if tls {
        let _ = client.write_all(&ACCESS_DENIED_ALERT).await;
    }
    let _ = client.shutdown().await;
    judged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_inside_are_compared_bare() {
        assert_eq!(bare("[::1]"), "::1");
        assert_eq!(bare("fr.test."), "fr.test");
        assert_eq!(bare("127.0.0.2"), "127.0.0.2");
    }
}
