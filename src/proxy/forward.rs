//! The forward listener: what browsers use through a PAC file, and `curl -x`.
//! `CONNECT host:port` opens a tunnel to a checked address, answered `200` only once that
//! connection is up; absolute-form requests (`GET http://host/path`) are decided one by one
//! and forwarded over pooled connections to checked addresses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{header, Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;

use super::body::{Exit, HeadEnd, PoolReturn, ProxyBody, Tally};
use super::connect::{self, Opening};
use super::context::{Arrival, Proxy, RequestFacts, RequestId};
use super::exchange::{admit, Life, Refusal, RequestEnd};
use super::headers::{self, Leg};
use super::respond;
use super::upstream::{PoolKey, UpstreamError};
use crate::policy::decide::HttpFacts;
use crate::policy::Decision;
use crate::resolve::{Destination, Scheme};

/// Handles one request of a forward-proxy connection. `client` is the client as policy
/// rules see it (the peer, or a trusted peer's `X-Forwarded-For`).
pub async fn handle(
    proxy: Arc<Proxy>,
    listener: Arc<str>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, hyper::Error> {
    let started = Instant::now();
    let life = Life::new();
    let request_id = proxy.next_request_id();
    let client = proxy.client_address(
        peer.ip(),
        req.headers()
            .get(super::forwarding::X_FORWARDED_FOR)
            .map(|v| v.as_bytes()),
    );
    let arrival = Arrival {
        request_id: &request_id,
        listener: &listener,
        client,
        method: req.method().as_str(),
        host: req.uri().authority().map(|a| a.as_str()),
        started,
        life: &life,
    };
    if let Err(refusal) = admit(&req) {
        return Ok(proxy.refused(&arrival, refusal));
    }
    if let Some(pac) = pac_request(&proxy, &req) {
        arrival.life.finish();
        return Ok(crate::pac::response(pac, &proxy.state.load()).map(ProxyBody::full));
    }
    if req.method() == Method::CONNECT {
        Ok(connect(&proxy, &listener, client, req, (request_id, started, &life)).await)
    } else {
        let trusted = proxy.is_trusted(peer.ip());
        let id = (request_id, started, &life);
        Ok(absolute_form(&proxy, &listener, (client, trusted), req, id).await)
    }
}

/// The `[pac]` config when `req` is a plain `GET /proxy.pac` or `GET /wpad.dat`
/// (origin-form: to douane itself, not through it).
fn pac_request<'p, B>(proxy: &'p Proxy, req: &Request<B>) -> Option<&'p crate::pac::PacConfig> {
    let pac = proxy.pac.as_ref()?;
    let wanted = matches!(*req.method(), Method::GET | Method::HEAD)
        && req.uri().authority().is_none()
        && crate::pac::is_pac_path(req.uri().path());
    wanted.then_some(pac)
}

async fn connect(
    proxy: &Arc<Proxy>,
    listener: &Arc<str>,
    client: std::net::IpAddr,
    req: Request<Incoming>,
    (request_id, started, life): (RequestId, Instant, &Life),
) -> Response<ProxyBody> {
    // Owned: the request itself moves on (intercepted, upgraded) while the facts live.
    let authority = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let destination = match Destination::parse_authority(&authority) {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(request_id = %request_id, error = %e, "bad CONNECT authority");
            let arrival = Arrival {
                request_id: &request_id,
                listener,
                client,
                method: "CONNECT",
                host: Some(&authority),
                started,
                life,
            };
            return proxy.refused(&arrival, Refusal::BadTarget);
        }
    };
    let decision = proxy.check(client, &destination, None).await;
    let facts = connect::facts(
        &request_id,
        listener,
        client,
        &destination,
        &authority,
        (started, life),
    );
    let wants_json = respond::wants_json(req.headers().get(header::ACCEPT));
    let (upstream, addr, slot) = match connect::open(proxy, &facts, &decision, wants_json).await {
        Opening::Tunnel {
            upstream,
            addr,
            slot,
        } => (upstream, addr, slot),
        Opening::Intercept => return intercepted(proxy, &facts, decision, req),
        Opening::Answer(response) => return response,
    };
    // The tunnel finishes the request when it closes, in its own task.
    let life = life.hand_over();
    let answered = started.elapsed();
    let proxy = proxy.clone();
    let listener = listener.clone();
    tokio::spawn(async move {
        let facts = connect::facts(
            &request_id,
            &listener,
            client,
            &destination,
            &authority,
            (started, &life),
        );
        let running = connect::Running::new(&proxy, &facts, &decision, addr, answered);
        let end = match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let opened = connect::opened(&facts, &decision, addr);
                super::connect_tunnel(upgraded, upstream, &proxy, &opened).await
            }
            Err(e) => {
                tracing::debug!(error = %e, "CONNECT upgrade failed");
                Default::default()
            }
        };
        drop(slot);
        running.close(end);
    });
    connected_response(&request_id)
}

/// `200` to a CONNECT, with the request id.
fn connected_response(request_id: &str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::Empty);
    if let Ok(id) = http::HeaderValue::from_str(request_id) {
        response.headers_mut().insert(respond::REQUEST_ID, id);
    }
    response
}

/// A blocked CONNECT with `[local_ca]`, recorded and finished as a block: answered `200`,
/// and the block page served inside (`intercept`). Nothing is connected upstream.
fn intercepted(
    proxy: &Arc<Proxy>,
    facts: &RequestFacts<'_>,
    decision: Decision,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let proxy = proxy.clone();
    let request_id = facts.request_id.to_owned();
    let destination = facts.destination.clone();
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let page = super::intercept::PageFor {
                    request_id: &request_id,
                    destination: &destination,
                };
                let client = hyper_util::rt::TokioIo::new(upgraded);
                super::intercept::blocked_tunnel(&proxy, &page, &decision, client, Vec::new())
                    .await;
            }
            Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
        }
    });
    connected_response(facts.request_id)
}

async fn absolute_form(
    proxy: &Arc<Proxy>,
    listener: &Arc<str>,
    (client, trusted): (std::net::IpAddr, bool),
    mut req: Request<Incoming>,
    (request_id, started, life): (RequestId, Instant, &Life),
) -> Response<ProxyBody> {
    let arrival = Arrival {
        request_id: &request_id,
        listener,
        client,
        method: req.method().as_str(),
        host: req.uri().authority().map(|a| a.as_str()),
        started,
        life,
    };
    if headers::is_loop(req.headers(), &proxy.via_token) {
        return proxy.refused(&arrival, Refusal::Loop);
    }
    let (scheme, destination) = match Destination::from_uri(req.uri()) {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(request_id = %request_id, error = %e, "not an absolute-form request");
            return proxy.refused(&arrival, Refusal::BadTarget);
        }
    };
    let Ok(origin) = Uri::try_from(
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
    ) else {
        return proxy.refused(&arrival, Refusal::BadTarget);
    };
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let requested_host = req.uri().authority().map(|a| a.as_str().to_owned());
    let method = req.method().clone();
    let decision = proxy
        .check(
            client,
            &destination,
            Some(HttpFacts {
                method: method.as_str(),
                path: &path,
            }),
        )
        .await;
    let facts = RequestFacts {
        request_id: &request_id,
        listener,
        route: None,
        client,
        method: Some(method.as_str()),
        scheme: scheme.as_str(),
        destination: &destination,
        path: Some(&path),
        query: query.as_deref(),
        requested_host: requested_host.as_deref(),
        sni: None,
        started,
        life,
    };
    if let Some(response) = gate(proxy, &facts, &decision, &req).await {
        return response;
    }

    // The request as it goes upstream: origin-form, no hop-by-hop headers, our Via.
    let host_header = req.uri().authority().map(|a| a.as_str().to_owned());
    *req.uri_mut() = origin;
    let headers = req.headers_mut();
    headers::rewrite_request(headers, Leg::Forward { trusted }, false);
    headers::append_via(headers, &proxy.via);
    if let Some(host) = host_header.and_then(|h| http::HeaderValue::from_str(&h).ok()) {
        headers.insert(header::HOST, host);
    }
    let tls_name: Option<Arc<str>> = match scheme {
        Scheme::Https => Some(destination.host.to_string().trim_matches(['[', ']']).into()),
        Scheme::Http => None,
    };
    match send_to_checked(proxy, &decision, destination.port, tls_name, req).await {
        Ok((mut response, addr)) => {
            let status = response.status().as_u16();
            let headers = response.headers_mut();
            headers::rewrite_response(headers, false);
            headers::append_via(headers, &proxy.via);
            let head = HeadEnd {
                request_id,
                listener: listener.clone(),
                scheme: scheme.as_str(),
                route: None,
                end: ended(&facts, status, Some(addr)),
                sni: None,
            };
            let exit = Exit::new(proxy, &facts, decision, head);
            response.body_mut().finish_at_end(exit);
            response
        }
        Err(e) => upstream_failed(proxy, &facts, &decision, &e).await,
    }
}

/// The end of a request on hyper's path as known at its response head (the bytes come
/// with the end of the response body, [`Exit`]).
pub fn ended<'a>(
    facts: &RequestFacts<'a>,
    status: u16,
    upstream: Option<SocketAddr>,
) -> RequestEnd<'a> {
    RequestEnd {
        status,
        upstream,
        sent: None,
        received: None,
        duration: facts.started.elapsed(),
        sni: None,
        tunnel: None,
    }
}

/// The response when the checked destination did not answer (502, 504), or when the client
/// broke its own request body on the way (400, the client's side); the request is finished
/// with that status, the cause in the log.
pub async fn upstream_failed(
    proxy: &Proxy,
    facts: &RequestFacts<'_>,
    decision: &Decision,
    error: &UpstreamError,
) -> Response<ProxyBody> {
    let response = if let Some(refusal) = error.client_refusal() {
        tracing::info!(request_id = facts.request_id, error = %error, "client broke its request");
        proxy.metrics.refusal(refusal.kind());
        respond::refusal(refusal, facts.request_id)
    } else {
        proxy.metrics.upstream_error(error.kind());
        tracing::warn!(
            request_id = facts.request_id,
            destination = %facts.destination,
            error = %error,
            "upstream failed"
        );
        respond::upstream_failure(error, facts.request_id).1
    };
    let status = response.status().as_u16();
    proxy.finish(facts, decision, &ended(facts, status, None));
    response
}

/// Sends `request` to the first checked address that takes it, over a pooled connection;
/// returns the response and the address it came from. Both bodies are counted (the
/// request's exit, given to the response body, reads the counts).
pub async fn send_to_checked(
    proxy: &Arc<Proxy>,
    decision: &Decision,
    port: u16,
    tls_name: Option<Arc<str>>,
    request: Request<Incoming>,
) -> Result<(Response<ProxyBody>, SocketAddr), UpstreamError> {
    let connector = &proxy.connector;
    let upgrade = headers::wants_upgrade(request.headers());
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stall = proxy.request_body_timeout;
    let request = request.map(|body| ProxyBody::request(body, sent.clone(), stall));
    let mut last = None;
    for ip in &decision.connect {
        let key = PoolKey {
            addr: SocketAddr::new(*ip, port),
            tls_name: tls_name.clone(),
        };
        let started = Instant::now();
        let sender = match connector.sender(&key, upgrade).await {
            Ok(s) => s,
            Err(e) => {
                last = Some(e);
                continue; // the next checked address
            }
        };
        proxy.metrics.observe_connect(started.elapsed());
        let (response, sender) = connector.send(&key, sender, request).await?;
        let addr = key.addr;
        let ret = PoolReturn {
            connector: connector.clone(),
            key,
            sender,
        };
        return Ok((
            response.map(|body| ProxyBody::Upstream(body, Some(ret), Tally::new(sent))),
            addr,
        ));
    }
    Err(last.unwrap_or_else(|| {
        UpstreamError::Connect(std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "no checked address",
        ))
    }))
}

/// The audit gate and the refusal of a decided request, before anything goes upstream:
/// `Some` response when the request stops here — 503 when its audit record could not be
/// written, else 451/403 for a block (502/504 when the name did not resolve) — finished
/// with the status it carries; `None` when it goes on.
pub async fn gate<B>(
    proxy: &Proxy,
    facts: &RequestFacts<'_>,
    decision: &Decision,
    req: &Request<B>,
) -> Option<Response<ProxyBody>> {
    let wants_json = respond::wants_json(req.headers().get(header::ACCEPT));
    decided_gate(proxy, facts, decision, wants_json).await
}

/// Whether the gate has anything to do for `decision`: a record to write, or a block to
/// answer. When it has not, [`gate`] lets the request on without awaiting anything, and a
/// caller may skip building its future.
pub fn gate_has_work(proxy: &Proxy, decision: &Decision) -> bool {
    !decision.outcome.lets_through() || proxy.records(decision.outcome)
}

/// [`gate`], told whether the client wants the block as JSON.
pub async fn decided_gate(
    proxy: &Proxy,
    facts: &RequestFacts<'_>,
    decision: &Decision,
    wants_json: bool,
) -> Option<Response<ProxyBody>> {
    let response = match proxy.record(facts, decision).await {
        Err(refusal) => respond::audit_refusal(&refusal, facts.request_id).1,
        Ok(()) if decision.outcome.lets_through() => return None,
        Ok(()) => block_response(proxy, facts, decision, wants_json),
    };
    proxy.finish(
        facts,
        decision,
        &ended(facts, response.status().as_u16(), None),
    );
    Some(response)
}

/// The response to a decision that does not let the request through: the block page, or
/// 502/504 when the name did not resolve.
pub fn block_response(
    proxy: &Proxy,
    facts: &RequestFacts<'_>,
    decision: &Decision,
    wants_json: bool,
) -> Response<ProxyBody> {
    let status = decision.block_status();
    if decision.outcome == crate::policy::Outcome::Failed {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        return respond::error(status, facts.request_id, decision.reason.as_str());
    }
    let host = facts.destination.to_string();
    let page = proxy.block_facts(decision, &host, facts.request_id);
    crate::block_page::response(&page, wants_json).map(ProxyBody::full)
}
