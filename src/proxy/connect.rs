//! A CONNECT's life between its decision and its end, one sequence for both engines: the
//! audit gate, the block (or, with `[local_ca]`, the HTTPS block page inside a `200`), the
//! connection to a checked address ([`open`]); then, once the `200` is written in the
//! engine's own codec (the direct path, `h1::connect`; hyper's, `forward`), the tunnel
//! runs, and the CONNECT finishes when it closes ([`Running::close`]): its end record
//! carries the tunnel's bytes each way, the time to the close and what its first bytes were.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use http::Response;
use tokio::net::TcpStream;

use super::body::ProxyBody;
use super::context::{Proxy, RequestFacts};
use super::exchange::{Life, RequestEnd, TunnelClose};
use super::forward::{decided_gate, ended, upstream_failed};
use super::respond;
use super::tunnel::{Opened, TunnelEnd};
use super::upstream::Slot;
use crate::policy::{Decision, Outcome};
use crate::resolve::Destination;

/// What the open sequence of a decided CONNECT came to.
pub enum Opening {
    /// Connected to a checked address: answer `200`, run the tunnel, then [`Running::close`].
    Tunnel {
        upstream: TcpStream,
        addr: SocketAddr,
        /// The connector's count of open tunnels: held while the tunnel runs.
        slot: Slot,
    },
    /// Refused by the policy with `[local_ca]`: recorded and finished as a block; answer
    /// `200` and serve the block page inside (`intercept::blocked_tunnel`).
    Intercept,
    /// Stopped here (a block, a 503 for an unwritten record, a failed upstream): send this
    /// response and close; the request is finished with its status.
    Answer(Response<ProxyBody>),
}

/// The facts of a CONNECT for its log line and audit record; `authority` is the request
/// target as the client sent it.
pub fn facts<'a>(
    request_id: &'a str,
    listener: &'a str,
    client: IpAddr,
    destination: &'a Destination,
    authority: &'a str,
    (started, life): (Instant, &'a Life),
) -> RequestFacts<'a> {
    RequestFacts {
        request_id,
        listener,
        route: None,
        client,
        method: Some("CONNECT"),
        scheme: "https",
        destination,
        path: None,
        query: None,
        requested_host: Some(authority),
        sni: None,
        started,
        life,
    }
}

/// Whether a CONNECT so decided gets the HTTPS block page: refused by the policy (not a
/// failed resolution) and `[local_ca]` configured.
pub fn intercepts(proxy: &Proxy, decision: &Decision) -> bool {
    proxy.minter.is_some()
        && !decision.outcome.lets_through()
        && decision.outcome != Outcome::Failed
}

/// The audit gate, the block and the connection of a decided CONNECT: nothing goes
/// upstream before its record is written, and only a checked address is dialled.
pub async fn open(
    proxy: &Proxy,
    facts: &RequestFacts<'_>,
    decision: &Decision,
    wants_json: bool,
) -> Opening {
    if intercepts(proxy, decision) {
        let status = match proxy.record(facts, decision).await {
            Err(refusal) => {
                let response = respond::audit_refusal(&refusal, facts.request_id).1;
                proxy.finish(facts, decision, &ended(facts, 503, None));
                return Opening::Answer(response);
            }
            Ok(()) => decision.block_status(),
        };
        proxy.finish(facts, decision, &ended(facts, status, None));
        return Opening::Intercept;
    }
    if let Some(response) = decided_gate(proxy, facts, decision, wants_json).await {
        return Opening::Answer(response);
    }
    let started = Instant::now();
    let connected = proxy
        .connector
        .connect_tcp(&decision.connect, facts.destination.port)
        .await;
    match connected {
        Ok((upstream, addr, slot)) => {
            proxy.metrics.observe_connect(started.elapsed());
            Opening::Tunnel {
                upstream,
                addr,
                slot,
            }
        }
        Err(e) => Opening::Answer(upstream_failed(proxy, facts, decision, &e).await),
    }
}

/// The tunnel of a CONNECT connected to `upstream`, as its first bytes' judge sees it.
pub fn opened<'a>(
    facts: &RequestFacts<'a>,
    decision: &'a Decision,
    upstream: SocketAddr,
) -> Opened<'a> {
    Opened {
        request_id: facts.request_id,
        listener: facts.listener,
        client: facts.client,
        destination: facts.destination,
        upstream,
        decision,
    }
}

/// A running tunnel's end, written whichever way it ends: by [`Running::close`] when the
/// tunnel closes, or on drop when douane's stop cuts it — past the drain deadline the
/// connection's task is dropped where it waits, and the end record is then marked `cut`,
/// its bytes unknown (the relay that counted them is dropped with it).
pub struct Running<'a> {
    proxy: &'a Proxy,
    facts: &'a RequestFacts<'a>,
    decision: &'a Decision,
    upstream: SocketAddr,
    answered: Duration,
}

impl<'a> Running<'a> {
    /// The `200` is on its way: from here the CONNECT ends with its tunnel.
    pub fn new(
        proxy: &'a Proxy,
        facts: &'a RequestFacts<'a>,
        decision: &'a Decision,
        upstream: SocketAddr,
        answered: Duration,
    ) -> Running<'a> {
        Running {
            proxy,
            facts,
            decision,
            upstream,
            answered,
        }
    }

    /// The tunnel closed (or never opened: a client gone before its upgrade, a refusal
    /// from inside, an error): the CONNECT's single exit, with the bytes each way as the
    /// metrics counted them.
    pub fn close(self, end: TunnelEnd) {
        std::mem::ManuallyDrop::new(self).finish(Some(end));
    }

    /// The end record: status 200 (what the client got), the connected address, the
    /// duration to the close, `answered` the time to the `200`; the bytes when known
    /// (`None`: cut by douane's stop).
    fn finish(&self, end: Option<TunnelEnd>) {
        let request_end = RequestEnd {
            status: 200,
            upstream: Some(self.upstream),
            sent: end.as_ref().map(|e| e.sent),
            received: end.as_ref().map(|e| e.received),
            duration: self.facts.started.elapsed(),
            tunnel: Some(TunnelClose {
                answered: self.answered,
                first_bytes: end.as_ref().and_then(|e| e.first_bytes),
                cut: end.is_none(),
            }),
            ..RequestEnd::default()
        };
        self.proxy.finish(self.facts, self.decision, &request_end);
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.finish(None);
    }
}
