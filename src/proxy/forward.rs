//! The forward listener: what browsers use through a PAC file, and `curl -x`.
//! `CONNECT host:port` opens a tunnel to a checked address, answered `200` only once that
//! connection is up; absolute-form requests (`GET http://host/path`) are decided one by one
//! and forwarded over pooled connections to checked addresses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{header, Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;

use super::body::{ExposureTally, PoolReturn, ProxyBody};
use super::context::{Proxy, RequestFacts, RequestId};
use super::headers;
use super::respond;
use super::upstream::PoolKey;
use crate::policy::decide::HttpFacts;
use crate::policy::Decision;
use crate::resolve::{Destination, Scheme};

/// Handles one request of a forward-proxy connection.
pub async fn handle(
    proxy: Arc<Proxy>,
    listener: Arc<str>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, hyper::Error> {
    let started = Instant::now();
    let request_id = proxy.next_request_id();
    if req.method() == Method::CONNECT {
        Ok(connect(&proxy, &listener, peer, req, request_id, started).await)
    } else {
        Ok(absolute_form(&proxy, &listener, peer, req, request_id, started).await)
    }
}

async fn connect(
    proxy: &Arc<Proxy>,
    listener: &str,
    peer: SocketAddr,
    req: Request<Incoming>,
    request_id: RequestId,
    started: Instant,
) -> Response<ProxyBody> {
    let authority = req.uri().authority().map(|a| a.as_str()).unwrap_or("");
    let destination = match Destination::parse_authority(authority) {
        Ok(d) => d,
        Err(e) => return respond::error(StatusCode::BAD_REQUEST, &request_id, &e.to_string()),
    };
    let client = peer.ip();
    let decision = proxy.check(client, &destination, None).await;
    let facts = RequestFacts {
        request_id: &request_id,
        listener,
        route: None,
        client,
        method: Some("CONNECT"),
        scheme: "https",
        destination: &destination,
        path: None,
        started,
    };
    if !decision.outcome.lets_through() {
        return refuse(proxy, &facts, &decision, &req).await;
    }
    let connected = proxy
        .connector
        .connect_tcp(&decision.connect, destination.port)
        .await;
    let (upstream, addr) = match connected {
        Ok(c) => c,
        Err(e) => return upstream_failed(proxy, &facts, &decision, &e).await,
    };
    if let Err(refusal) = proxy.finish(&facts, &decision, 200).await {
        return respond::error(
            StatusCode::SERVICE_UNAVAILABLE,
            &request_id,
            &refusal.to_string(),
        );
    }
    let metrics = proxy.metrics.clone();
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                super::connect_tunnel(upgraded, upstream, &metrics, &decision).await;
                tracing::debug!(%addr, "tunnel ended");
            }
            Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
        }
    });
    let mut response = Response::new(ProxyBody::Empty);
    if let Ok(id) = http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(respond::REQUEST_ID, id);
    }
    response
}

async fn absolute_form(
    proxy: &Arc<Proxy>,
    listener: &str,
    peer: SocketAddr,
    mut req: Request<Incoming>,
    request_id: RequestId,
    started: Instant,
) -> Response<ProxyBody> {
    if headers::is_loop(req.headers(), &proxy.via_token) {
        return respond::error(
            StatusCode::LOOP_DETECTED,
            &request_id,
            "this request already went through this proxy",
        );
    }
    let (scheme, destination) = match Destination::from_uri(req.uri()) {
        Ok(d) => d,
        Err(e) => {
            return respond::error(
                StatusCode::BAD_REQUEST,
                &request_id,
                &format!("a forward proxy takes CONNECT or absolute-form requests: {e}"),
            )
        }
    };
    let client = peer.ip();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let path = req.uri().path().to_owned();
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
        started,
    };
    if !decision.outcome.lets_through() {
        return refuse(proxy, &facts, &decision, &req).await;
    }

    // The request as it goes upstream: origin-form, no hop-by-hop headers, our Via.
    let host_header = req.uri().authority().map(|a| a.as_str().to_owned());
    *req.uri_mut() = match Uri::try_from(path_and_query) {
        Ok(uri) => uri,
        Err(_) => {
            return respond::error(StatusCode::BAD_REQUEST, &request_id, "bad request target")
        }
    };
    let headers = req.headers_mut();
    headers::strip_hop_by_hop(headers, false);
    headers::append_via(headers, &proxy.via);
    if let Some(host) = host_header.and_then(|h| http::HeaderValue::from_str(&h).ok()) {
        headers.insert(header::HOST, host);
    }
    let tls_name: Option<Arc<str>> = match scheme {
        Scheme::Https => Some(destination.host.to_string().trim_matches(['[', ']']).into()),
        Scheme::Http => None,
    };
    match send_to_checked(proxy, &decision, destination.port, tls_name, req).await {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let headers = response.headers_mut();
            headers::strip_hop_by_hop(headers, false);
            headers::append_via(headers, &proxy.via);
            if let Err(refusal) = proxy.finish(&facts, &decision, status).await {
                return respond::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &request_id,
                    &refusal.to_string(),
                );
            }
            response
        }
        Err(e) => upstream_failed(proxy, &facts, &decision, &e).await,
    }
}

/// The response when the checked destination did not answer: 504 for a timeout, else 502;
/// the request is still finished (log line, metrics, audit) with that status.
pub async fn upstream_failed(
    proxy: &Proxy,
    facts: &RequestFacts<'_>,
    decision: &Decision,
    error: &super::upstream::UpstreamError,
) -> Response<ProxyBody> {
    proxy.metrics.upstream_error(error.kind());
    let status = if error.is_timeout() {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::BAD_GATEWAY
    };
    tracing::debug!(request_id = facts.request_id, error = %error, "upstream failed");
    let _ = proxy.finish(facts, decision, status.as_u16()).await;
    respond::error(status, facts.request_id, "the destination did not answer")
}

/// Sends `request` to the first checked address that takes it, over a pooled connection.
/// The bodies of an exposed request (would-block, exempt) are counted for the metrics.
pub async fn send_to_checked(
    proxy: &Arc<Proxy>,
    decision: &Decision,
    port: u16,
    tls_name: Option<Arc<str>>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, super::upstream::UpstreamError> {
    let connector = &proxy.connector;
    let upgrade = headers::wants_upgrade(request.headers());
    let tally = ExposureTally::for_decision(&proxy.metrics, decision);
    let request = request.map(|body| ProxyBody::request(body, tally.clone()));
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
        let ret = PoolReturn {
            connector: connector.clone(),
            key,
            sender,
        };
        return Ok(response.map(|body| ProxyBody::Upstream(body, Some(ret), tally)));
    }
    Err(last.unwrap_or_else(|| {
        super::upstream::UpstreamError::Connect(std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "no checked address",
        ))
    }))
}

/// The response to a request that is not let through: the audit record first, then 451/403
/// (or 502/504 when the name did not resolve, 503 when the record could not be written).
pub async fn refuse<B>(
    proxy: &Proxy,
    facts: &RequestFacts<'_>,
    decision: &Decision,
    req: &Request<B>,
) -> Response<ProxyBody> {
    let status = decision.block_status();
    if let Err(refusal) = proxy.finish(facts, decision, status).await {
        return respond::error(
            StatusCode::SERVICE_UNAVAILABLE,
            facts.request_id,
            &refusal.to_string(),
        );
    }
    if decision.outcome == crate::policy::Outcome::Failed {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        return respond::error(status, facts.request_id, decision.reason.as_str());
    }
    respond::blocked(
        decision,
        &facts.destination.to_string(),
        facts.request_id,
        respond::wants_json(req.headers().get(header::ACCEPT)),
        &proxy.blocked_by,
    )
}
