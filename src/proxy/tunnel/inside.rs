//! The requests decided inside a tunnel, each of its own (its id, its gate and end
//! records, linked to the CONNECT by `tunnel`): a name the first bytes carry that is not
//! the CONNECT's, decided on the tunnel's connected address; first bytes refused for
//! naming nothing (`tunnel_unnamed`); and the answer to a refused one from inside.

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::Opened;
use crate::client_hello::{inspect, Inspection};
use crate::policy::decide::{decide, Request, Resolution};
use crate::policy::{Decision, Outcome, Reason};
use crate::proxy::context::{Inside, Proxy, RequestFacts};
use crate::proxy::exchange::{Life, RequestEnd};
use crate::resolve::{Destination, Host};

/// A fatal TLS `access_denied` alert (plaintext, before any handshake).
pub const ACCESS_DENIED_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49];

/// The block of a tunnel refused for naming nothing: a request of its own (its own id),
/// on the CONNECT's destination and addresses, its gate record a block with the reason
/// `tunnel_unnamed`, the first bytes and the CONNECT's id. Its end says the status a
/// block gets; the client is answered a TLS alert (or a close) all the same.
pub(super) async fn record_unnamed(
    proxy: &Proxy,
    opened: &Opened<'_>,
    why: &'static str,
    tls: bool,
) {
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
pub(super) enum Named {
    Passes,
    /// Refused, the client answered.
    Refused,
    /// No host name at all: judged like first bytes that name nothing.
    BadName,
}

/// Decides `name` (another than the CONNECT's) on the tunnel's connected address: a
/// decided request of its own (log line, audit record with the name, linked to the
/// CONNECT). Refused, the client has been answered.
pub(super) async fn decide_name<C>(
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
    let page = crate::proxy::intercept::PageFor {
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
    facts: &crate::proxy::intercept::PageFor<'_>,
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
                crate::proxy::intercept::serve_block_page(
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
            crate::proxy::intercept::plain_block_page(proxy, facts, decision, client).await
        }
        _ if tls => {
            let _ = client.write_all(&ACCESS_DENIED_ALERT).await;
        }
        _ => {}
    }
    let _ = client.shutdown().await;
}
