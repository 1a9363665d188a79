//! Inside a CONNECT tunnel, once it is answered `200`: the first bytes the client sends are
//! read and kept (a TLS ClientHello's server name, or a plain request's `Host`), and a name
//! other than the CONNECT's is decided too — host rules, exemption scopes — on the address
//! the tunnel is connected to, so an exemption for `*.outlook.com` carries no tunnel to
//! another name on the same addresses. A refused name closes the tunnel before the upstream
//! gets a byte of it: a TLS alert, the block page over plain HTTP, or the HTTPS block page
//! with `[local_ca]` (`super::intercept`). Allowed, the bytes read go upstream unchanged
//! and the tunnel is relayed.
//!
//! ```toml
//! [tunnel]
//! check_names = true            # decide the name inside a tunnel (default true)
//! first_bytes_timeout_ms = 1000 # the wait for the client's first bytes
//! unnamed = "allow"             # ECH, no ClientHello, another protocol: "allow" or "block"
//! ```

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::context::{Inside, Proxy, RequestFacts};
use super::exchange::{Life, RequestEnd};
use crate::client_hello::{inspect, Inspection, MAX_CLIENT_HELLO};
use crate::policy::decide::{decide, Request, Resolution};
use crate::policy::{Decision, Outcome, Reason};
use crate::resolve::{Destination, Host};

/// `[tunnel]` in `douane.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TunnelConfig {
    /// Decide the name a tunnel's first bytes carry when it is not the CONNECT's.
    pub check_names: bool,
    /// How long to wait for the client's first bytes; a server that speaks first (SMTP,
    /// SSH) ends the wait at once.
    pub first_bytes_timeout_ms: u64,
    /// A tunnel whose first bytes name nothing that can be checked: a ClientHello with
    /// Encrypted Client Hello (its outer name is still decided) or without a server name,
    /// no bytes in time, a server that speaks first, another protocol. `allow` (default:
    /// the CONNECT authority was decided already) or `block`.
    pub unnamed: Unnamed,
}

impl Default for TunnelConfig {
    fn default() -> Self {
        TunnelConfig {
            check_names: true,
            first_bytes_timeout_ms: 1000,
            unnamed: Unnamed::Allow,
        }
    }
}

/// What becomes of a tunnel whose first bytes name nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unnamed {
    #[default]
    Allow,
    Block,
}

/// The CONNECT a tunnel was opened for, as decided and connected.
#[derive(Debug, Clone, Copy)]
pub struct Opened<'a> {
    /// The CONNECT's request id (its log line and audit record).
    pub request_id: &'a str,
    pub listener: &'a str,
    pub client: IpAddr,
    pub destination: &'a Destination,
    /// The checked address the tunnel is connected to.
    pub upstream: SocketAddr,
    /// The CONNECT's decision.
    pub decision: &'a Decision,
}

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
    fn name(&self) -> Result<(&str, &'static str), &'static str> {
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

    fn is_tls(&self) -> bool {
        matches!(
            self,
            FirstBytes::Seen(Inspection::Tls(_) | Inspection::MalformedTls)
        )
    }

    fn ech(&self) -> bool {
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
    C: AsyncRead + Unpin,
{
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
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
    C: AsyncRead + AsyncWrite + Unpin,
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
            let connect_host = opened.destination.host.to_string();
            let same = bare(name).eq_ignore_ascii_case(bare(&connect_host));
            if !same {
                let name = name.to_owned();
                match decide_name(proxy, opened, client, buf, &name, kind, tls).await {
                    Named::Passes => {}
                    Named::Refused => return Judged::REFUSED,
                    Named::BadName => return unnamed(proxy, opened, client, "bad_name", tls).await,
                }
            }
            if first.ech() {
                return unnamed(proxy, opened, client, "ech", tls).await;
            }
            Judged::PASS
        }
        Ok(_) => Judged::PASS,
        Err(why) => unnamed(proxy, opened, client, why, tls).await,
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

/// The block of a tunnel refused for naming nothing: a request of its own (its own id),
/// on the CONNECT's destination and addresses, its gate record a block with the reason
/// `tunnel_unnamed`, the first bytes and the CONNECT's id. Its end says the status a
/// block gets; the client is answered a TLS alert (or a close) all the same.
async fn record_unnamed(proxy: &Proxy, opened: &Opened<'_>, why: &'static str, tls: bool) {
    let started = std::time::Instant::now();
    let life = Life::new();
    let request_id = proxy.next_request_id();
    let mut decision = opened.decision.clone();
    decision.outcome = Outcome::Block;
    decision.reason = Reason::TunnelUnnamed;
    decision.rule = None;
    decision.connect.clear();
    let facts = facts_inside(
        opened,
        &request_id,
        opened.destination,
        tls,
        (started, &life),
    );
    let inside = Inside {
        tunnel: opened.request_id,
        first_bytes: Some(why),
    };
    let recorded = proxy.record_inside(&facts, &decision, Some(inside)).await;
    let end = RequestEnd {
        status: if recorded.is_ok() {
            decision.block_status()
        } else {
            503
        },
        upstream: None,
        duration: started.elapsed(),
        ..RequestEnd::default()
    };
    proxy.finish(&facts, &decision, &end);
}

/// The facts of a request decided inside the tunnel `opened`, for `destination`.
fn facts_inside<'a>(
    opened: &Opened<'a>,
    request_id: &'a str,
    destination: &'a Destination,
    tls: bool,
    (started, life): (std::time::Instant, &'a Life),
) -> RequestFacts<'a> {
    RequestFacts {
        request_id,
        listener: opened.listener,
        route: None,
        client: opened.client,
        method: Some("CONNECT"),
        scheme: if tls { "https" } else { "http" },
        destination,
        path: None,
        query: None,
        requested_host: None,
        sni: None,
        started,
        life,
    }
}

/// What became of a name decided inside a tunnel.
enum Named {
    Passes,
    /// Refused, the client answered.
    Refused,
    /// No host name at all: judged like first bytes that name nothing.
    BadName,
}

/// A fatal TLS `access_denied` alert (plaintext, before any handshake).
pub const ACCESS_DENIED_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49];

/// Decides `name` (another than the CONNECT's) on the tunnel's connected address: a
/// decided request of its own (log line, audit record with the name, linked to the
/// CONNECT). Refused, the client has been answered.
async fn decide_name<C>(
    proxy: &Proxy,
    opened: &Opened<'_>,
    client: &mut C,
    buf: &[u8],
    name: &str,
    kind: &'static str,
    tls: bool,
) -> Named
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let started = std::time::Instant::now();
    let destination = match Host::parse(name) {
        Ok(host) => Destination {
            host,
            port: opened.destination.port,
        },
        Err(_) => return Named::BadName,
    };
    let life = Life::new();
    let request_id = proxy.next_request_id();
    let addresses = [opened.upstream.ip()];
    let decision = {
        let request = Request {
            client: opened.client,
            destination: &destination,
            http: None,
        };
        let today = time::OffsetDateTime::now_utc().date();
        decide(
            &proxy.state.load(),
            &request,
            Resolution::Addresses(&addresses),
            today,
        )
    };
    let connect_host = opened.destination.host.to_string();
    let facts = RequestFacts {
        requested_host: Some(if kind == "host" { name } else { &connect_host }),
        sni: (kind == "sni").then_some(name),
        ..facts_inside(opened, &request_id, &destination, tls, (started, &life))
    };
    let passes = decision.outcome.lets_through();
    let status = if passes { 200 } else { decision.block_status() };
    tracing::info!(
        request_id = &*request_id,
        tunnel = opened.request_id,
        connect = %opened.destination,
        name,
        kind,
        outcome = decision.outcome.as_str(),
        "tunnel: its first bytes name another host"
    );
    // The gate record (with the name); `finish` below writes the end record.
    let inside = Inside {
        tunnel: opened.request_id,
        first_bytes: None,
    };
    let recorded = proxy
        .record_inside(&facts, &decision, Some(inside))
        .await
        .is_ok();
    let end = RequestEnd {
        status,
        upstream: Some(opened.upstream),
        duration: started.elapsed(),
        requested_host: (kind == "host").then_some(name),
        sni: (kind == "sni").then_some(name),
        ..RequestEnd::default()
    };
    if passes && recorded {
        proxy.finish(&facts, &decision, &end);
        return Named::Passes;
    }
    let end = RequestEnd {
        status: if recorded { status } else { 503 },
        ..end
    };
    proxy.finish(&facts, &decision, &end);
    let page = super::intercept::PageFor {
        request_id: &request_id,
        destination: &destination,
    };
    refuse_inside(proxy, &page, &decision, client, buf, tls && recorded).await;
    Named::Refused
}

/// Answers a refused tunnel from inside: the HTTPS block page with `[local_ca]` (or a TLS
/// alert without), the block page over plain HTTP for a plain request.
pub async fn refuse_inside<C>(
    proxy: &Proxy,
    facts: &super::intercept::PageFor<'_>,
    decision: &Decision,
    client: &mut C,
    buf: &[u8],
    tls: bool,
) where
    C: AsyncRead + AsyncWrite + Unpin,
{
    match inspect(buf) {
        Inspection::Tls(hello) if tls => match &proxy.minter {
            Some(minter) => {
                let host = hello.sni.as_deref().unwrap_or("");
                let host = if host.is_empty() {
                    facts.destination.host.to_string()
                } else {
                    host.to_owned()
                };
                super::intercept::serve_block_page(
                    proxy,
                    minter,
                    facts,
                    decision,
                    &host,
                    client,
                    buf.to_vec(),
                )
                .await;
            }
            None => {
                let _ = client.write_all(&ACCESS_DENIED_ALERT).await;
            }
        },
        Inspection::Http { .. } => {
            super::intercept::plain_block_page(proxy, facts, decision, client).await
        }
        _ if tls => {
            let _ = client.write_all(&ACCESS_DENIED_ALERT).await;
        }
        _ => {}
    }
    let _ = client.shutdown().await;
}

/// How a CONNECT's tunnel ended: what it moved each way (its first bytes included), to
/// its close or to the error that ended it, and why its first bytes named nothing that
/// could be checked, when they did not. What the CONNECT's end record carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelEnd {
    pub sent: u64,
    pub received: u64,
    pub first_bytes: Option<&'static str>,
}

impl TunnelEnd {
    /// A tunnel refused from inside: nothing was relayed.
    pub fn refused(judged: Judged) -> TunnelEnd {
        TunnelEnd {
            first_bytes: judged.first_bytes,
            ..TunnelEnd::default()
        }
    }
}

/// What a tunnel moved, to its close or to the error that ended it.
#[derive(Debug, Default)]
pub struct Moved {
    /// Bytes from the client delivered upstream (its first bytes included).
    pub sent: u64,
    /// Bytes from the upstream delivered to the client.
    pub received: u64,
    /// The error that ended the tunnel, if one did.
    pub error: Option<std::io::Error>,
}

/// Forwards the judged first bytes, then relays the tunnel (spliced on Linux, short ones
/// copied first), counting what crosses each way.
pub async fn relay_tcp(mut client: TcpStream, first: &[u8], mut upstream: TcpStream) -> Moved {
    if !first.is_empty() {
        if let Err(e) = upstream.write_all(first).await {
            return Moved {
                error: Some(e),
                ..Moved::default()
            };
        }
    }
    // Both sockets have TCP_NODELAY already (the accept loop, the connector).
    #[cfg(target_os = "linux")]
    let mut moved = {
        let r = super::splice::relay_bidirectional(&mut client, &mut upstream).await;
        Moved {
            sent: r.there,
            received: r.back,
            error: r.error,
        }
    };
    #[cfg(not(target_os = "linux"))]
    let mut moved = super::copy_counted(&mut client, &mut upstream).await;
    moved.sent += first.len() as u64;
    moved
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

    #[test]
    fn the_defaults_check_names_and_let_unnamed_tunnels_pass() {
        let c: TunnelConfig = toml::from_str("").unwrap();
        assert_eq!(c, TunnelConfig::default());
        assert!(c.check_names);
        assert_eq!(c.unnamed, Unnamed::Allow);
        let c: TunnelConfig = toml::from_str("unnamed = \"block\"").unwrap();
        assert_eq!(c.unnamed, Unnamed::Block);
        assert!(toml::from_str::<TunnelConfig>("unnamed = \"maybe\"").is_err());
    }

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
