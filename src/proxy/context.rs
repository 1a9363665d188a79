//! What every request of every listener shares: the state snapshot, the resolver, the
//! upstream connector, the audit log and the metrics; and the two steps that every request
//! goes through whatever its listener: `check()` (resolve once, decide) and `finish()` (the
//! single exit that writes the log line, the metrics and the audit record from the same data).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http::HeaderValue;
use ipnet::IpNet;

use http::Response;

use super::body::ProxyBody;
use super::exchange::{Life, Refusal, RequestEnd};
use super::respond;
use super::upstream::Connector;
use crate::audit::{AuditDetails, AuditEnd, AuditEvent, AuditLog, ExemptionFacts, OnFailure};
use crate::metrics::Metrics;
use crate::policy::decide::{decide, HttpFacts, Request, Resolution};
use crate::policy::{Decision, Outcome, Reason};
use crate::resolve::{Destination, Host, Resolver};
use crate::state::State;

/// The request facts that the log line, the metrics and the audit record are made of.
#[derive(Debug, Clone)]
pub struct RequestFacts<'a> {
    pub request_id: &'a str,
    pub listener: &'a str,
    pub route: Option<&'a str>,
    pub client: IpAddr,
    pub method: Option<&'a str>,
    pub scheme: &'a str,
    pub destination: &'a Destination,
    /// Without the query string: what policy path rules see.
    pub path: Option<&'a str>,
    /// The query string (without `?`), for the audit record (`path_mode = "as_is"`).
    pub query: Option<&'a str>,
    /// The host the client asked for (`Host`, or the request target's authority).
    pub requested_host: Option<&'a str>,
    /// The TLS server name of the client connection, when there is one at the gate.
    pub sni: Option<&'a str>,
    pub started: Instant,
    /// Marked by `finish`.
    pub life: &'a Life,
}

/// What is known of a request before it is routed or decided: enough for the log line of
/// a refusal.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub request_id: &'a str,
    pub listener: &'a str,
    pub client: IpAddr,
    pub method: &'a str,
    /// The host the client asked for, as it sent it.
    pub host: Option<&'a str>,
    pub started: Instant,
    /// Marked by `refused`.
    pub life: &'a Life,
}

/// An address as log text, without `Option` wrappers: `-` when there is none.
fn text_of(addr: Option<SocketAddr>, buf: &mut [u8; 48]) -> &str {
    use std::io::Write;
    let Some(addr) = addr else { return "-" };
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    if write!(cursor, "{addr}").is_err() {
        return "-";
    }
    let len = cursor.position() as usize;
    std::str::from_utf8(&buf[..len]).unwrap_or("-")
}

/// What links a request decided inside a CONNECT tunnel to that CONNECT, for its record.
#[derive(Debug, Clone, Copy)]
pub struct Inside<'a> {
    /// The CONNECT's request id.
    pub tunnel: &'a str,
    /// Why the tunnel's first bytes named nothing that could be checked, when they did not.
    pub first_bytes: Option<&'a str>,
}

/// Why a request that needed an audit record was refused.
#[derive(Debug, thiserror::Error)]
#[error("the audit record could not be written: {0}")]
pub struct AuditRefusal(pub String);

pub struct Proxy {
    pub state: Arc<ArcSwap<State>>,
    pub resolver: Arc<Resolver>,
    pub connector: Arc<Connector>,
    pub audit: Option<AuditLog>,
    pub metrics: Arc<Metrics>,
    /// Every address douane listens on: never a destination.
    pub own_addresses: Vec<SocketAddr>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Where `Link: <…>; rel="blocked-by"` points.
    pub blocked_by: Option<String>,
    /// `[block_page] contact`, shown on the block page.
    pub contact: Option<String>,
    /// This instance's `Via` token: a request that already carries it is a loop.
    pub via_token: String,
    pub via: HeaderValue,
    /// A request body that sends nothing this long fails the request (408).
    pub request_body_timeout: std::time::Duration,
    /// `[pac]`: the PAC file, served on the forward listener too.
    pub pac: Option<crate::pac::PacConfig>,
    /// `[local_ca]`: mints the certificates of the HTTPS block page.
    pub minter: Option<Arc<crate::mint::Minter>>,
    /// `[tunnel]`: what is checked inside CONNECT tunnels.
    pub tunnel: crate::proxy::tunnel::TunnelConfig,
    ids: RequestIds,
}

impl Proxy {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        state: Arc<ArcSwap<State>>,
        resolver: Arc<Resolver>,
        connector: Arc<Connector>,
        audit: Option<AuditLog>,
        metrics: Arc<Metrics>,
        own_addresses: Vec<SocketAddr>,
        trusted_proxies: Vec<IpNet>,
        blocked_by: Option<String>,
    ) -> Proxy {
        let ids = RequestIds::new();
        // The random half of the ids: two chained instances have different tokens.
        let via_token = format!("douane-{:08x}", ids.prefix >> 32);
        let via = HeaderValue::from_str(&format!("1.1 {via_token}"))
            .unwrap_or_else(|_| HeaderValue::from_static("1.1 douane"));
        Proxy {
            state,
            resolver,
            connector,
            audit,
            metrics,
            own_addresses,
            trusted_proxies,
            blocked_by,
            contact: None,
            via_token,
            via,
            request_body_timeout: std::time::Duration::from_secs(30),
            pac: None,
            minter: None,
            tunnel: crate::proxy::tunnel::TunnelConfig::default(),
            ids,
        }
    }

    pub fn next_request_id(&self) -> RequestId {
        self.ids.next()
    }

    /// Resolves the destination once and decides, against one snapshot of the state.
    pub async fn check(
        &self,
        client: IpAddr,
        destination: &Destination,
        http: Option<HttpFacts<'_>>,
    ) -> Decision {
        let resolved;
        let resolution = match &destination.host {
            Host::Ip(_) => Resolution::Addresses(&[]),
            Host::Name(_) => {
                let started = Instant::now();
                let result = self.resolver.resolve(&destination.host).await;
                self.metrics
                    .observe_dns(started.elapsed(), result.as_ref().err().copied());
                match result {
                    Ok(r) => {
                        resolved = r;
                        Resolution::Addresses(&resolved.addresses)
                    }
                    Err(failure) => Resolution::Failed(failure),
                }
            }
        };
        let request = Request {
            client,
            destination,
            http,
        };
        let today = time::OffsetDateTime::now_utc().date();
        // Resolution does not depend on the state: the snapshot is taken once the addresses
        // are known, and the whole decision is made against it without awaiting anything.
        let snapshot = self.state.load();
        let mut decision = decide(&snapshot, &request, resolution, today);
        self.refuse_own_addresses(&mut decision, destination.port);
        decision
    }

    /// Whatever the policy says, douane never connects to one of its own listeners: its admin
    /// port through the proxy is the classic SSRF. A connection to the unspecified address
    /// (`0.0.0.0`, `::`) lands on this host, whatever address the listener is bound to.
    fn refuse_own_addresses(&self, decision: &mut Decision, port: u16) {
        let targets_self = decision.ips.iter().any(|v| {
            let ip = v.class.ip.to_canonical();
            self.own_addresses.iter().any(|own| {
                own.port() == port
                    && (own.ip() == ip
                        || ip.is_unspecified()
                        || (own.ip().is_unspecified() && ip.is_loopback()))
            })
        });
        if targets_self {
            decision.outcome = Outcome::Block;
            decision.reason = Reason::OwnListener;
            decision.rule = None;
            decision.connect.clear();
        }
    }

    /// The audit gate of a decided request, passed before anything of it goes out (upstream
    /// or, for a block, the 451): the record is written when the audit config wants one. A
    /// write that fails refuses the request (503) when the audit config says so.
    pub async fn record(
        &self,
        facts: &RequestFacts<'_>,
        decision: &Decision,
    ) -> Result<(), AuditRefusal> {
        self.record_inside(facts, decision, None).await
    }

    /// [`Proxy::record`] for a request decided inside a CONNECT tunnel (a name its first
    /// bytes carry, or first bytes that name nothing): the record links to the CONNECT.
    pub async fn record_inside(
        &self,
        facts: &RequestFacts<'_>,
        decision: &Decision,
        inside: Option<Inside<'_>>,
    ) -> Result<(), AuditRefusal> {
        let Some(audit) = &self.audit else {
            return Ok(());
        };
        if !audit.config().needs_record(decision.outcome) {
            return Ok(()); // an allowed request, and allowed requests are not recorded
        }
        let event = AuditEvent {
            request_id: facts.request_id,
            listener: facts.listener,
            client: facts.client,
            method: facts.method,
            scheme: facts.scheme,
            host: &facts.destination.host.to_string(),
            port: facts.destination.port,
            path: facts.path,
            query: facts.query,
            upstream_via: self.connector.settings().parent_proxy.as_deref(),
            decision,
        };
        let exemption = self.exemption_texts(decision);
        let details = AuditDetails {
            route: facts.route,
            requested_host: facts.requested_host,
            sni: facts.sni,
            exemption: exemption.as_ref().map(|e| ExemptionFacts {
                id: &e.id,
                justification: e.justification.as_deref(),
                ticket: e.ticket.as_deref(),
                expires: e.expires.as_deref(),
            }),
            ranges_version: decision.provenance.published.as_ref().map(|p| &*p.version),
            tunnel: inside.map(|i| i.tunnel),
            first_bytes: inside.and_then(|i| i.first_bytes),
            ..AuditDetails::default()
        };
        match audit.record_with(&event, &details).await {
            Ok(()) => Ok(()),
            Err(e) if audit.on_failure() == OnFailure::Block => Err(AuditRefusal(e.to_string())),
            Err(e) => {
                tracing::warn!(error = %e, "audit record lost (on_failure = \"continue\")");
                Ok(())
            }
        }
    }

    /// The block page's facts for `decision`, with this proxy's `[block_page]` contact and
    /// link: what the 451 page shows, on plain HTTP and inside an intercepted tunnel alike.
    pub fn block_facts<'a>(
        &'a self,
        decision: &'a Decision,
        host: &'a str,
        request_id: &'a str,
    ) -> crate::block_page::BlockFacts<'a> {
        crate::block_page::BlockFacts {
            decision,
            host,
            request_id,
            contact: self.contact.as_deref(),
            policy_link: self.blocked_by.as_deref(),
        }
    }

    /// The exemption that let `decision` through, as the policy that decided states it
    /// (none when the policy was reloaded since: its texts may differ).
    fn exemption_texts(&self, decision: &Decision) -> Option<Exemption> {
        if decision.outcome != Outcome::Exempt {
            return None;
        }
        let id = decision.rule.as_deref()?;
        let state = self.state.load();
        if state.policy.version != decision.provenance.policy_version {
            return Some(Exemption {
                id: id.into(),
                justification: None,
                ticket: None,
                expires: None,
            });
        }
        let rule = state.policy.rules.iter().find(|r| &*r.id == id)?;
        Some(Exemption {
            id: id.into(),
            justification: rule.justification.clone(),
            ticket: rule.ticket.clone(),
            expires: rule.expires.map(|d| d.to_string()),
        })
    }

    /// The single exit of every decided request, once the status actually written is
    /// known: the log line, the metrics and the end audit record (linked to the gate
    /// record by the request id), from the same facts.
    pub fn finish(&self, facts: &RequestFacts<'_>, decision: &Decision, end: &RequestEnd<'_>) {
        if !facts.life.finish() {
            debug_assert!(false, "finish called twice for {}", facts.request_id);
            tracing::error!(request_id = facts.request_id, "finish called twice");
            return;
        }
        if let Some(audit) = &self.audit {
            audit.record_end(&AuditEnd {
                request_id: facts.request_id,
                outcome: decision.outcome,
                status: end.status,
                connected: end.upstream,
                bytes_from_client: end.sent,
                bytes_to_client: end.received,
                duration_us: u64::try_from(end.duration.as_micros()).unwrap_or(u64::MAX),
                // Known at the gate, it is in the gate record already.
                sni: end.sni.filter(|s| facts.sni != Some(*s)),
                first_bytes: end.tunnel.and_then(|t| t.first_bytes),
                cut: end.tunnel.is_some_and(|t| t.cut),
            });
        }
        // A tunnel's latency is the wait for its `200`, not its whole life.
        let latency = end.tunnel.map_or(end.duration, |t| t.answered);
        self.metrics
            .observe_request(facts.listener, facts.route, decision, latency);
        let mut addr = [0u8; 48];
        tracing::info!(
            request_id = facts.request_id,
            listener = facts.listener,
            route = facts.route.unwrap_or("-"),
            client = %facts.client,
            method = facts.method.unwrap_or("CONNECT"),
            destination = %facts.destination,
            upstream = text_of(end.upstream, &mut addr),
            outcome = decision.outcome.as_str(),
            reason = decision.reason.as_str(),
            rule = decision.rule.as_deref().unwrap_or(crate::metrics::DEFAULT_RULE),
            status = end.status,
            sent = end.sent,
            received = end.received,
            elapsed_ms = end.duration.as_secs_f64() * 1000.0,
            "request decided"
        );
    }

    /// The single exit of a request refused before a decision (or failed by its client):
    /// its log line and the refusal metric; returns the response the client gets.
    pub fn refused(&self, arrival: &Arrival<'_>, refusal: Refusal) -> Response<ProxyBody> {
        let status = refusal.status();
        arrival.life.finish();
        self.metrics.refusal(refusal.kind());
        tracing::info!(
            request_id = arrival.request_id,
            listener = arrival.listener,
            client = %arrival.client,
            method = arrival.method,
            host = arrival.host.unwrap_or("-"),
            refusal = refusal.kind(),
            status = status.as_u16(),
            elapsed_ms = arrival.started.elapsed().as_secs_f64() * 1000.0,
            "request refused"
        );
        respond::refusal(refusal, arrival.request_id)
    }

    /// The client as policy rules see it: the TCP peer, or the last untrusted hop of
    /// `X-Forwarded-For` when the peer is a trusted proxy.
    pub fn client_address(&self, peer: IpAddr, forwarded_for: Option<&[u8]>) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let Some(list) = forwarded_for.and_then(|v| std::str::from_utf8(v).ok()) else {
            return peer;
        };
        // Walk from the nearest hop outwards, skipping hops we trust.
        let mut client = peer;
        for hop in list.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.is_trusted(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// Whether an outcome needs an audit record.
    pub fn records(&self, outcome: Outcome) -> bool {
        match &self.audit {
            None => false,
            Some(audit) => audit.config().needs_record(outcome),
        }
    }
}

/// An exemption's texts, owned: taken from the state snapshot for one record.
struct Exemption {
    id: Box<str>,
    justification: Option<Arc<str>>,
    ticket: Option<Arc<str>>,
    expires: Option<String>,
}

/// Request ids: a per-process random prefix and a counter, 16 hex digits, unique and cheap.
struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        RequestIds {
            prefix: h.finish() & 0xffff_ffff_0000_0000,
            counter: AtomicU64::new(1),
        }
    }

    fn next(&self) -> RequestId {
        let n = self.prefix | (self.counter.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff);
        // By hand: `format!` cost as much as the whole policy decision.
        let mut digits = [0u8; 16];
        for (i, digit) in digits.iter_mut().enumerate() {
            *digit = b"0123456789abcdef"[((n >> (60 - 4 * i)) & 0xf) as usize];
        }
        RequestId(digits)
    }
}

/// A request id: 16 lowercase hex digits, kept inline (no allocation); reads as a `&str`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId([u8; 16]);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("0000000000000000")
    }
}

impl std::ops::Deref for RequestId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_hex() {
        let ids = RequestIds::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(
            u64::from_str_radix(&b, 16).unwrap() - u64::from_str_radix(&a, 16).unwrap(),
            1
        );
    }
}
