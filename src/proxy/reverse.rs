//! Reverse listeners: TLS termination (certificate by SNI, ALPN h2 and http/1.1) and routes
//! from a host and path prefix to an upstream URL. The upstream is decided like any other
//! destination, per request, so path and method rules apply; the connection goes to a
//! checked address, with SNI and certificate verification against the upstream's name.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::body::{Exit, HeadEnd, ProxyBody, Tally};
use super::context::{Arrival, Proxy, RequestFacts};
use super::exchange::{admit, Life, Refusal};
use super::forward::{ended, gate, gate_has_work, send_to_checked, upstream_failed};
use super::forwarding::{
    forwardable_host, Forwarding, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO,
};
use super::h1;
use super::headers::{self, Leg};
use super::upstream::UpstreamError;
use crate::config::{Route, UpstreamScheme};
use crate::policy::decide::HttpFacts;
use crate::policy::Decision;
use crate::resolve::{Destination, DestinationError, Host};

/// One route, ready for the hot path.
#[derive(Debug)]
pub struct CompiledRoute {
    pub name: Arc<str>,
    pub path_prefix: String,
    pub destination: Destination,
    pub scheme: UpstreamScheme,
    /// SNI and certificate name for an https upstream.
    pub tls_name: Option<Arc<str>>,
    /// The `Host` header the upstream gets.
    pub host_header: HeaderValue,
    pub base_path: String,
}

/// The routes of one reverse listener, by host, longest path prefix first.
#[derive(Debug, Default)]
pub struct RouteTable {
    /// Fx-hashed: a fixed table that requests only read (a client's `Host` cannot make it
    /// degrade).
    by_host: rustc_hash::FxHashMap<String, Vec<CompiledRoute>>,
}

impl RouteTable {
    pub fn new(routes: &[&Route]) -> Result<RouteTable, DestinationError> {
        let mut by_host: rustc_hash::FxHashMap<String, Vec<CompiledRoute>> = Default::default();
        for route in routes {
            let up = &route.upstream;
            let destination = Destination {
                host: Host::parse(&up.host)?,
                port: up.port,
            };
            let default_port = match up.scheme {
                UpstreamScheme::Https => 443,
                UpstreamScheme::Http => 80,
            };
            let host_text = destination.host.to_string();
            let authority = if up.port == default_port {
                host_text.clone()
            } else {
                format!("{host_text}:{}", up.port)
            };
            let compiled = CompiledRoute {
                name: route.name.as_str().into(),
                path_prefix: route.path_prefix.clone(),
                scheme: up.scheme,
                tls_name: (up.scheme == UpstreamScheme::Https)
                    .then(|| host_text.trim_matches(['[', ']']).into()),
                host_header: HeaderValue::from_str(&authority)
                    .unwrap_or_else(|_| HeaderValue::from_static("localhost")),
                base_path: up.base_path.clone(),
                destination,
            };
            by_host
                .entry(route.host.clone())
                .or_default()
                .push(compiled);
        }
        for routes in by_host.values_mut() {
            routes.sort_by_key(|r| std::cmp::Reverse(r.path_prefix.len()));
        }
        Ok(RouteTable { by_host })
    }

    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.by_host.keys().map(String::as_str)
    }

    /// The route for a host and path: the longest prefix that ends on a segment boundary.
    pub fn find(&self, host: &str, path: &str) -> Option<&CompiledRoute> {
        self.by_host.get(host)?.iter().find(|r| {
            path.starts_with(&r.path_prefix)
                && (r.path_prefix.ends_with('/')
                    || path.len() == r.path_prefix.len()
                    || path.as_bytes()[r.path_prefix.len()] == b'/')
        })
    }
}

/// What a reverse connection knows about itself.
pub struct ReverseConnection {
    pub listener: Arc<str>,
    pub routes: Arc<RouteTable>,
    pub peer: SocketAddr,
    /// The SNI name of the TLS handshake, lowercase; `None` for plain HTTP or no SNI.
    pub sni: Option<Arc<str>>,
    pub tls: bool,
    /// The listener's `direct_http1`: HTTP/2 streams may go upstream over the direct
    /// path's sockets (`h1::send_stream`).
    pub direct_upstream: bool,
}

/// The host a request is for: `:authority` (HTTP/2, absolute-form) or `Host`, without
/// port or trailing dots, lowercase.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    let raw = match req.uri().authority() {
        Some(a) => a.host(),
        None => req.headers().get(header::HOST)?.to_str().ok()?,
    };
    let host = std::str::from_utf8(headers::host_of(raw.as_bytes())).ok()?;
    Some(host.to_ascii_lowercase())
}

/// The host a request asked for, as it sent it: the authority, or `Host`.
fn asked_host<B>(req: &Request<B>) -> Option<&str> {
    match req.uri().authority() {
        Some(a) => Some(a.as_str()),
        None => req.headers().get(header::HOST)?.to_str().ok(),
    }
}

/// The request target the upstream gets: the route's base path before the asked path and
/// query, or, with no base path, the asked ones as they are (shared, not copied). An
/// absolute-form target with a query and no path (`http://host?q`) holds `?q`, whose path
/// is `/`: that one is written out, as with a base path.
fn upstream_target(base_path: &str, asked: &PathAndQuery) -> Option<Uri> {
    if base_path.is_empty() && asked.as_str().starts_with('/') {
        let mut parts = http::uri::Parts::default();
        parts.path_and_query = Some(asked.clone());
        return Uri::from_parts(parts).ok();
    }
    let target = match asked.query() {
        Some(q) => format!("{base_path}{}?{q}", asked.path()),
        None => format!("{base_path}{}", asked.path()),
    };
    Uri::try_from(target).ok()
}

/// Handles one request of a reverse connection.
#[allow(clippy::manual_async_fn)] // on purpose: see the comment inside
pub fn handle(
    proxy: Arc<Proxy>,
    conn: Arc<ReverseConnection>,
    mut req: Request<Incoming>,
) -> impl Future<Output = Result<Response<ProxyBody>, hyper::Error>> + Send {
    // An async block, not an `async fn`: an `async fn`'s future holds its arguments twice
    // (as captured, and as moved into its body), and this one is boxed per HTTP/2 stream.
    async move {
        let started = Instant::now();
        let life = Life::new();
        let request_id = proxy.next_request_id();
        let client = proxy.client_address(
            conn.peer.ip(),
            req.headers().get(&X_FORWARDED_FOR).map(|v| v.as_bytes()),
        );
        let arrival = Arrival {
            request_id: &request_id,
            listener: &conn.listener,
            client,
            method: req.method().as_str(),
            host: asked_host(&req),
            started,
            life: &life,
        };
        if let Err(refusal) = admit(&req) {
            return Ok(proxy.refused(&arrival, refusal));
        }
        let Some(host) = request_host(&req) else {
            return Ok(proxy.refused(&arrival, Refusal::NoHost));
        };
        if conn.sni.as_deref().is_some_and(|sni| sni != host) {
            return Ok(proxy.refused(&arrival, Refusal::MisdirectedRequest));
        }
        // A handle on the request's own path and query bytes (a clone is a reference count):
        // they outlive the rewrite of the request's URI below without a copy.
        let asked_target = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let (path, query) = (asked_target.path(), asked_target.query());
        let Some(route) = conn.routes.find(&host, path) else {
            return Ok(proxy.refused(&arrival, Refusal::NoRoute));
        };
        let Some(target) = upstream_target(&route.base_path, &asked_target) else {
            return Ok(proxy.refused(&arrival, Refusal::BadTarget));
        };
        let method = req.method().clone();
        let asked = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .or_else(|| req.headers().get(header::HOST).cloned());
        let decision = proxy
            .check(
                client,
                &route.destination,
                Some(HttpFacts {
                    method: method.as_str(),
                    path,
                }),
            )
            .await;
        let facts = RequestFacts {
            request_id: &request_id,
            listener: &conn.listener,
            route: Some(&route.name),
            client,
            method: Some(method.as_str()),
            scheme: route.scheme.as_str(),
            destination: &route.destination,
            path: Some(path),
            query,
            requested_host: asked.as_ref().and_then(|h| h.to_str().ok()),
            sni: conn.sni.as_deref(),
            started,
            life: &life,
        };
        // The gate's future is built only when it has work: an allowed request that needs no
        // record (most of them) skips it, and this future (one allocation per HTTP/2 stream)
        // does not carry its room. The same for the other rare branches below: boxed.
        if gate_has_work(&proxy, &decision) {
            if let Some(response) = Box::pin(gate(&proxy, &facts, &decision, &req)).await {
                return Ok(response);
            }
        }

        // The request as the upstream gets it. Only a WebSocket upgrade crosses (after the
        // decision, on HTTP/1.1): any other token (`h2c` above all) is dropped with `Upgrade`.
        let upgrade =
            headers::wants_websocket(req.headers()) && req.version() == http::Version::HTTP_11;
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        *req.uri_mut() = target;
        let forwarding = Forwarding {
            peer: conn.peer.ip(),
            trusted: proxy.is_trusted(conn.peer.ip()),
            tls: conn.tls,
        };
        let headers = req.headers_mut();
        let leg = Leg::Reverse {
            trusted: forwarding.trusted,
        };
        headers::rewrite_request(headers, leg, upgrade);
        headers.insert(header::HOST, route.host_header.clone());
        let routed_host;
        let host_value = match &asked {
            Some(asked) => Some(asked),
            None => {
                routed_host = HeaderValue::from_str(&host).ok();
                routed_host.as_ref()
            }
        };
        set_forwarded(headers, &forwarding, host_value);

        let response = send(&proxy, &conn, &decision, route, req).await;
        let (mut response, addr) = match response {
            Ok(r) => r,
            Err(e) => return Ok(Box::pin(upstream_failed(&proxy, &facts, &decision, &e)).await),
        };
        let status = response.status();
        let upgraded = status == StatusCode::SWITCHING_PROTOCOLS;
        if upgraded && !upgrade {
            // A 101 to a request that asked for no upgrade douane lets through: never relayed.
            let e =
                super::upstream::UpstreamError::Broken("101 to a request without upgrade".into());
            return Ok(Box::pin(upstream_failed(&proxy, &facts, &decision, &e)).await);
        }
        let mut end = ended(&facts, status.as_u16(), Some(addr));
        end.requested_host = asked.as_ref().and_then(|h| h.to_str().ok());
        end.sni = conn.sni.as_deref();
        headers::rewrite_response(response.headers_mut(), upgraded && upgrade);
        if !upgraded {
            let head = HeadEnd {
                request_id,
                listener: conn.listener.clone(),
                scheme: route.scheme.as_str(),
                route: Some(route.name.clone()),
                end,
                sni: conn.sni.clone(),
            };
            let exit = Exit::new(&proxy, &facts, decision, head);
            response.body_mut().finish_at_end(exit);
            return Ok(response);
        }
        // The tunnel counts its own bytes.
        proxy.finish(&facts, &decision, &end);
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let metrics = proxy.metrics.clone();
            tokio::spawn(async move {
                let (Ok(client), Ok(upstream)) = (client_upgrade.await, upstream_upgrade.await)
                else {
                    tracing::debug!("websocket upgrade did not complete");
                    return;
                };
                super::tunnel(
                    TokioIo::new(client),
                    TokioIo::new(upstream),
                    &metrics,
                    &decision,
                )
                .await;
            });
        }
        Ok(response)
    }
}

/// Sends the request upstream: an HTTP/2 stream with no body over the direct path's
/// sockets (`h1::send_stream`: no hyper client task nor channel per request), any other
/// request over hyper's client.
fn send<'a>(
    proxy: &'a Arc<Proxy>,
    conn: &ReverseConnection,
    decision: &'a Decision,
    route: &'a CompiledRoute,
    req: Request<Incoming>,
) -> impl Future<Output = Result<(Response<ProxyBody>, SocketAddr), UpstreamError>> + Send + 'a {
    let port = route.destination.port;
    let stream =
        conn.direct_upstream && h1::takes_stream(proxy, &req, route.tls_name.as_deref(), port);
    // An async block, as `handle`: the request is held once, not twice.
    async move {
        if stream {
            let (head, _) = req.into_parts();
            let (response, addr) =
                h1::send_stream(proxy, decision, port, route.tls_name.as_ref(), &head).await?;
            return Ok((
                response.map(|body| ProxyBody::Direct(Box::new(body), Tally::bodiless())),
                addr,
            ));
        }
        // Boxed: hyper's client exchange is the larger future, and the rarer one here.
        Box::pin(send_to_checked(
            proxy,
            decision,
            port,
            route.tls_name.clone(),
            req,
        ))
        .await
    }
}

/// The forwarding headers ([`Forwarding`]): `X-Forwarded-For`, `-Proto` and `-Host` set,
/// this hop's `Forwarded` appended to a trusted peer's (an untrusted peer's are dropped).
fn set_forwarded(headers: &mut http::HeaderMap, fwd: &Forwarding, host: Option<&HeaderValue>) {
    let mut value = Vec::with_capacity(96);
    let prior = headers.get(&X_FORWARDED_FOR).map(HeaderValue::as_bytes);
    fwd.write_for(prior, &mut value);
    if let Ok(v) = HeaderValue::from_bytes(&value) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(fwd.proto()));
    // The client's own `X-Forwarded-Host` never passes: douane sets it from the host the
    // request was routed by, or leaves it out.
    match host.filter(|h| forwardable_host(h.as_bytes())) {
        Some(v) => headers.insert(X_FORWARDED_HOST, v.clone()),
        None => headers.remove(X_FORWARDED_HOST),
    };
    let host = host.map(HeaderValue::as_bytes);
    if !fwd.trusted {
        headers.remove(header::FORWARDED);
    }
    value.clear();
    fwd.write_forwarded(host, &mut value);
    if let Ok(v) = HeaderValue::from_bytes(&value) {
        headers.append(header::FORWARDED, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamUrl;

    fn route(name: &str, host: &str, prefix: &str) -> Route {
        Route {
            name: name.into(),
            listener: "tls".into(),
            host: host.into(),
            path_prefix: prefix.into(),
            upstream: UpstreamUrl {
                scheme: UpstreamScheme::Https,
                host: "upstream.example".into(),
                port: 8443,
                base_path: String::new(),
            },
        }
    }

    #[test]
    fn upstream_target_keeps_the_asked_path_and_query_after_the_base_path() {
        let asked = PathAndQuery::from_static("/api/v1?q=a%20b&x");
        assert_eq!(upstream_target("", &asked).unwrap(), "/api/v1?q=a%20b&x");
        assert_eq!(
            upstream_target("/base", &asked).unwrap(),
            "/base/api/v1?q=a%20b&x"
        );
        let no_query = PathAndQuery::from_static("/");
        assert_eq!(upstream_target("/base", &no_query).unwrap(), "/base/");
        assert_eq!(upstream_target("", &no_query).unwrap(), "/");
        let no_path = "http://a.localhost?q=1".parse::<Uri>().unwrap();
        let no_path = no_path.path_and_query().unwrap();
        // Compared as the bytes a codec writes (a `Uri` compares equal to `/?q=1` either way).
        let written = |t: Uri| t.path_and_query().map(|p| p.as_str().to_owned());
        assert_eq!(
            written(upstream_target("", no_path).unwrap()).unwrap(),
            "/?q=1"
        );
        assert_eq!(
            written(upstream_target("/base", no_path).unwrap()).unwrap(),
            "/base/?q=1"
        );
    }

    #[test]
    fn longest_prefix_on_a_segment_boundary() {
        let routes = [
            route("root", "a.localhost", "/"),
            route("api", "a.localhost", "/api"),
        ];
        let refs: Vec<&Route> = routes.iter().collect();
        let table = RouteTable::new(&refs).unwrap();
        assert_eq!(&*table.find("a.localhost", "/api/x").unwrap().name, "api");
        assert_eq!(&*table.find("a.localhost", "/api").unwrap().name, "api");
        assert_eq!(&*table.find("a.localhost", "/apix").unwrap().name, "root");
        assert!(table.find("b.localhost", "/").is_none());
        let r = table.find("a.localhost", "/").unwrap();
        assert_eq!(r.host_header, "upstream.example:8443");
        assert_eq!(r.tls_name.as_deref(), Some("upstream.example"));
    }
}
