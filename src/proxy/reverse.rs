//! Reverse listeners: TLS termination (certificate by SNI, ALPN h2 and http/1.1) and routes
//! from a host and path prefix to an upstream URL. The upstream is decided like any other
//! destination, per request, so path and method rules apply; the connection goes to a
//! checked address, with SNI and certificate verification against the upstream's name.

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery};
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

/// The host a request asked for, as it sent it: the request target's authority (HTTP/2's
/// `:authority`, absolute-form) or else `Host`. Held without a copy (both clones are
/// reference counts on the received bytes): it outlives the rewrite of the request.
enum AskedHost {
    Authority(Authority),
    Header(HeaderValue),
}

impl AskedHost {
    fn of<B>(req: &Request<B>) -> Option<AskedHost> {
        match req.uri().authority() {
            Some(a) => Some(AskedHost::Authority(a.clone())),
            None => req
                .headers()
                .get(header::HOST)
                .cloned()
                .map(AskedHost::Header),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            AskedHost::Authority(a) => a.as_str().as_bytes(),
            AskedHost::Header(v) => v.as_bytes(),
        }
    }

    /// As text for the records: `None` for a `Host` that is not visible ASCII.
    fn as_str(&self) -> Option<&str> {
        match self {
            AskedHost::Authority(a) => Some(a.as_str()),
            AskedHost::Header(v) => v.to_str().ok(),
        }
    }

    /// The host routes are found by: without port or trailing dots, lowercase (copied only
    /// when it is not lowercase already).
    fn routed(&self) -> Option<Cow<'_, str>> {
        let raw = match self {
            AskedHost::Authority(a) => a.host(),
            AskedHost::Header(v) => v.to_str().ok()?,
        };
        let host = std::str::from_utf8(headers::host_of(raw.as_bytes())).ok()?;
        Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        })
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
        let asked = AskedHost::of(&req);
        let client = proxy.client_address(
            conn.peer.ip(),
            req.headers().get(&X_FORWARDED_FOR).map(|v| v.as_bytes()),
        );
        let arrival = Arrival {
            request_id: &request_id,
            listener: &conn.listener,
            client,
            method: req.method().as_str(),
            host: asked.as_ref().and_then(AskedHost::as_str),
            started,
            life: &life,
        };
        if let Err(refusal) = admit(&req) {
            return Ok(proxy.refused(&arrival, refusal));
        }
        let Some(host) = asked.as_ref().and_then(AskedHost::routed) else {
            return Ok(proxy.refused(&arrival, Refusal::NoHost));
        };
        if conn.sni.as_deref().is_some_and(|sni| sni != &*host) {
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
            requested_host: asked.as_ref().and_then(AskedHost::as_str),
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
        set_forwarded(headers, &forwarding, asked.as_ref());

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
/// The new values are written into one buffer and split off it: one allocation for all.
fn set_forwarded(headers: &mut http::HeaderMap, fwd: &Forwarding, host: Option<&AskedHost>) {
    let host = host.filter(|h| forwardable_host(h.as_bytes()));
    let prior = headers.get(&X_FORWARDED_FOR).map(HeaderValue::as_bytes);
    let host_len = host.map_or(0, |h| h.as_bytes().len());
    let mut buf = BytesMut::with_capacity(96 + prior.map_or(0, <[u8]>::len) + 2 * host_len);
    fwd.write_for(prior, &mut buf);
    if let Ok(v) = HeaderValue::from_maybe_shared(buf.split().freeze()) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(fwd.proto()));
    // The client's own `X-Forwarded-Host` never passes: douane sets it from the host the
    // request asked for, or leaves it out.
    let forwarded_host = match host {
        Some(AskedHost::Header(v)) => Some(v.clone()),
        Some(AskedHost::Authority(a)) => {
            buf.extend_from_slice(a.as_str().as_bytes());
            HeaderValue::from_maybe_shared(buf.split().freeze()).ok()
        }
        None => None,
    };
    match forwarded_host {
        Some(v) => headers.insert(X_FORWARDED_HOST, v),
        None => headers.remove(X_FORWARDED_HOST),
    };
    if !fwd.trusted {
        headers.remove(header::FORWARDED);
    }
    fwd.write_forwarded(host.map(AskedHost::as_bytes), &mut buf);
    if let Ok(v) = HeaderValue::from_maybe_shared(buf.freeze()) {
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

    fn forwarded_headers(req: Request<()>, trusted: bool) -> Vec<(String, String)> {
        let asked = AskedHost::of(&req);
        let mut headers = req.into_parts().0.headers;
        let fwd = Forwarding {
            peer: "10.0.0.9".parse().unwrap(),
            trusted,
            tls: true,
        };
        set_forwarded(&mut headers, &fwd, asked.as_ref());
        let mut seen: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        seen.sort();
        seen
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = expected
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn forwarding_headers_from_an_authority_and_from_host() {
        // HTTP/2: the host is the `:authority`, there is no `Host`.
        let h2 = Request::get("https://App.localhost:8443/x")
            .header("x-forwarded-host", "evil.example")
            .header("forwarded", "for=6.6.6.6")
            .header("x-forwarded-for", "6.6.6.6")
            .body(())
            .unwrap();
        assert_eq!(
            forwarded_headers(h2, false),
            pairs(&[
                (
                    "forwarded",
                    "for=10.0.0.9;proto=https;host=\"App.localhost:8443\""
                ),
                ("x-forwarded-for", "10.0.0.9"),
                ("x-forwarded-host", "App.localhost:8443"),
                ("x-forwarded-proto", "https"),
            ])
        );
        // HTTP/1.1 origin-form from a trusted peer: its lists are kept, this hop appended.
        let h1 = Request::get("/x")
            .header("host", "app.localhost")
            .header("forwarded", "for=1.2.3.4")
            .header("x-forwarded-for", "1.2.3.4")
            .body(())
            .unwrap();
        assert_eq!(
            forwarded_headers(h1, true),
            pairs(&[
                ("forwarded", "for=1.2.3.4"),
                (
                    "forwarded",
                    "for=10.0.0.9;proto=https;host=\"app.localhost\""
                ),
                ("host", "app.localhost"),
                ("x-forwarded-for", "1.2.3.4, 10.0.0.9"),
                ("x-forwarded-host", "app.localhost"),
                ("x-forwarded-proto", "https"),
            ])
        );
        // A host that cannot be quoted is left out of both.
        let odd = Request::get("/x")
            .header("host", "a\"b")
            .header("x-forwarded-host", "evil.example")
            .body(())
            .unwrap();
        assert_eq!(
            forwarded_headers(odd, false),
            pairs(&[
                ("forwarded", "for=10.0.0.9;proto=https"),
                ("host", "a\"b"),
                ("x-forwarded-for", "10.0.0.9"),
                ("x-forwarded-proto", "https"),
            ])
        );
    }

    #[test]
    fn the_routed_host_is_lowercase_without_port_or_trailing_dot() {
        let req = Request::get("https://App.Localhost.:8443/")
            .body(())
            .unwrap();
        let asked = AskedHost::of(&req).unwrap();
        assert_eq!(asked.routed().as_deref(), Some("app.localhost"));
        assert_eq!(asked.as_str(), Some("App.Localhost.:8443"));
        let req = Request::get("/")
            .header("host", "a.localhost")
            .body(())
            .unwrap();
        let asked = AskedHost::of(&req).unwrap();
        assert!(matches!(asked.routed(), Some(Cow::Borrowed("a.localhost"))));
    }
}
