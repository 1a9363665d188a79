//! One client connection on the direct path: read a request head, route and decide it, send
//! it over a pooled upstream socket, pass the response through, and again — in one task,
//! with three reused buffers and one reused timer. A request the path does not take is
//! handed to hyper, with the connection, before anything of it went upstream.

use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Response;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Sleep;

use super::message::{
    ends_chunked, head_end, parse_content_length, push_decimal, tokens, ChunkedScanner, Framing,
    Known,
};
use super::rewind::Rewind;
use crate::config::UpstreamScheme;
use crate::policy::decide::HttpFacts;
use crate::policy::{Decision, Outcome};
use crate::proxy::body::ProxyBody;
use crate::proxy::context::{Proxy, RequestFacts};
use crate::proxy::forward::upstream_failed;
use crate::proxy::respond;
use crate::proxy::reverse::{ipv4_text, CompiledRoute, ReverseConnection};
use crate::proxy::upstream::UpstreamError;
use crate::resolve::{Destination, Scheme};

/// Header slots parsed per message; a message with more goes to hyper (which answers 431).
const MAX_HEADERS: usize = 128;
/// Initial size of the client and upstream read buffers.
const READ_BUFFER: usize = 16 * 1024;
/// Names a `Connection` header may list for removal; a longer list goes to hyper.
const MAX_NAMED: usize = 8;

/// How a connection left the direct path.
pub enum Served<S> {
    /// Closed, or to be closed: nothing more to do.
    Closed,
    /// A request the direct path does not take: hyper serves the connection from here, the
    /// bytes already read put back in front.
    HandOver(Rewind<S>),
}

/// The listener a connection came to.
#[derive(Clone, Copy)]
pub enum Site<'a> {
    Reverse(&'a ReverseConnection),
    Forward(&'a ForwardConnection),
}

/// What a forward-proxy connection knows about itself.
pub struct ForwardConnection {
    pub listener: Arc<str>,
    pub peer: SocketAddr,
}

/// Where a request goes, who asks, and how its head is rewritten.
struct Plan<'a> {
    destination: Cow<'a, Destination>,
    listener: &'a str,
    route: Option<&'a str>,
    client: IpAddr,
    /// The path that rules match (no query).
    path: &'a str,
    rewrite: Rewrite<'a>,
}

enum Rewrite<'a> {
    /// A reverse route: the upstream's `Host`, forwarding headers.
    Reverse {
        route: &'a CompiledRoute,
        fwd: Forwarding,
    },
    /// A forward proxy request: origin-form target, `Host` from the absolute target, `Via`.
    Forward { authority: &'a str, origin: &'a str },
}

/// A reverse request's plan: its route (by `Host` and path), when that route goes to a
/// plain-HTTP upstream and the TLS name (if any) agrees with `Host`.
fn plan_reverse<'a>(
    proxy: &Proxy,
    conn: &'a ReverseConnection,
    target: &'a str,
    shape: &RequestShape<'a>,
    host_buf: &mut [u8; 256],
) -> Option<Plan<'a>> {
    if !target.starts_with('/') || shape.hosts != 1 {
        return None; // absolute-form, or no single Host: hyper's
    }
    let host = normalized_host(shape.host, host_buf)?;
    if conn.sni.as_deref().is_some_and(|sni| sni != host) {
        return None; // 421 from hyper
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let route = conn.routes.find(host, path)?; // else 404 from hyper
    if route.scheme != UpstreamScheme::Http {
        return None;
    }
    let peer = conn.peer.ip();
    Some(Plan {
        destination: Cow::Borrowed(&route.destination),
        listener: &conn.listener,
        route: Some(&route.name),
        client: proxy.client_address(peer, shape.forwarded_for),
        path,
        rewrite: Rewrite::Reverse {
            route,
            fwd: Forwarding {
                peer,
                trusted: proxy.is_trusted(peer),
                tls: conn.tls,
            },
        },
    })
}

/// A forward request's plan: an `http://` absolute-form target without userinfo, and no
/// `Via` yet (loop detection is hyper's path's, as are CONNECT and `https://`).
fn plan_forward<'a>(
    _proxy: &Proxy,
    conn: &'a ForwardConnection,
    target: &'a str,
    shape: &RequestShape<'a>,
) -> Option<Plan<'a>> {
    if shape.via || shape.hosts > 1 {
        return None;
    }
    let scheme = target.get(..7)?;
    if !scheme.eq_ignore_ascii_case("http://") {
        return None;
    }
    let rest = &target[7..];
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, origin) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') || !origin.starts_with('/') {
        return None;
    }
    let destination = Destination::with_default_port(authority, Scheme::Http).ok()?;
    let path = origin.split_once('?').map_or(origin, |(p, _)| p);
    Some(Plan {
        destination: Cow::Owned(destination),
        listener: &conn.listener,
        route: None,
        client: conn.peer.ip(),
        path,
        rewrite: Rewrite::Forward { authority, origin },
    })
}

/// The limits the direct path applies.
#[derive(Debug, Clone, Copy)]
pub struct DirectLimits {
    pub header_read_timeout: Duration,
    pub response_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

/// What the client connection does after an exchange.
enum Next {
    /// The request took this many bytes of the buffer; read the next one.
    KeepAlive(usize),
    Close,
    HandOver,
}

/// Serves a reverse connection on the direct path until it closes or a request needs hyper.
pub async fn serve<S>(
    mut client: S,
    proxy: &Proxy,
    site: Site<'_>,
    limits: DirectLimits,
    mut shutdown: watch::Receiver<bool>,
) -> Served<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUFFER);
    let mut io = Exchange {
        proxy,
        site,
        limits,
        up_buf: Vec::with_capacity(READ_BUFFER),
        out: Vec::with_capacity(1024),
        timer: Box::pin(tokio::time::sleep(limits.header_read_timeout)),
    };
    loop {
        // A whole head, within the header read timeout (which also bounds an idle
        // keep-alive, as on hyper's path).
        io.timer
            .as_mut()
            .reset(tokio::time::Instant::now() + limits.header_read_timeout);
        let mut scanned = 0;
        let head_len = loop {
            if let Some(n) = head_end(&buf, scanned) {
                break n;
            }
            scanned = buf.len();
            if buf.len() >= limits.max_header_bytes {
                return Served::HandOver(Rewind::new(buf, client)); // hyper answers 431
            }
            tokio::select! {
                biased;
                read = client.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return Served::Closed,
                    Ok(_) => {}
                },
                _ = &mut io.timer => return Served::Closed,
                _ = shutdown.changed(), if buf.is_empty() => return Served::Closed,
            }
        };
        match io.exchange(&mut client, &buf, head_len, &shutdown).await {
            Next::KeepAlive(used) => {
                buf.drain(..used);
            }
            Next::Close => {
                let _ = client.shutdown().await;
                return Served::Closed;
            }
            Next::HandOver => return Served::HandOver(Rewind::new(buf, client)),
        }
    }
}

/// What one connection's exchanges share.
struct Exchange<'a> {
    proxy: &'a Proxy,
    site: Site<'a>,
    limits: DirectLimits,
    /// Upstream bytes: a response head and what came with it.
    up_buf: Vec<u8>,
    /// What is written next, to either side.
    out: Vec<u8>,
    timer: Pin<Box<Sleep>>,
}

/// The request facts the direct path needs, read in one pass over the headers.
struct RequestShape<'b> {
    host: &'b [u8],
    /// How many `Host` headers.
    hosts: u8,
    /// Whether the request carries `Via` (it went through a proxy already).
    via: bool,
    content_length: u64,
    close: bool,
    forwarded_for: Option<&'b [u8]>,
    named: [&'b [u8]; MAX_NAMED],
    named_len: usize,
    /// What each header is, by position: classified once.
    classes: [Known; MAX_HEADERS],
}

impl<'b> RequestShape<'b> {
    /// `None` when the request needs hyper: an upgrade, `Expect`, a transfer coding, an odd
    /// `Content-Length`, a `Connection` list too long.
    fn read(headers: &[httparse::Header<'b>]) -> Option<RequestShape<'b>> {
        let mut shape = RequestShape {
            host: b"",
            hosts: 0,
            via: false,
            content_length: 0,
            close: false,
            forwarded_for: None,
            named: [b""; MAX_NAMED],
            named_len: 0,
            classes: [Known::Other; MAX_HEADERS],
        };
        let mut lengths = 0;
        for (h, class) in headers.iter().zip(shape.classes.iter_mut()) {
            *class = Known::of(h.name);
            match *class {
                Known::Host => {
                    shape.hosts = shape.hosts.saturating_add(1);
                    shape.host = h.value;
                }
                Known::Via => shape.via = true,
                Known::ContentLength => {
                    lengths += 1;
                    shape.content_length = parse_content_length(h.value)?;
                }
                Known::TransferEncoding | Known::Upgrade | Known::Expect => return None,
                Known::Connection => {
                    for token in tokens(h.value) {
                        if token.eq_ignore_ascii_case(b"close") {
                            shape.close = true;
                        } else if !token.eq_ignore_ascii_case(b"keep-alive") {
                            *shape.named.get_mut(shape.named_len)? = token;
                            shape.named_len += 1;
                        }
                    }
                }
                Known::XForwardedFor if shape.forwarded_for.is_none() => {
                    shape.forwarded_for = Some(h.value);
                }
                _ => {}
            }
        }
        (lengths <= 1).then_some(shape)
    }

    fn names(&self, name: &str) -> bool {
        self.named[..self.named_len]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// Where an upstream exchange stands when it fails, to know whether it may be tried again.
enum SendError {
    /// Nothing came back on a reused connection: it may have been closed while idle.
    Stale,
    Failed(UpstreamError),
}

impl Exchange<'_> {
    async fn exchange<S>(
        &mut self,
        client: &mut S,
        buf: &[u8],
        head_len: usize,
        shutdown: &watch::Receiver<bool>,
    ) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let started = Instant::now();
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        match req.parse_with_uninit_headers(&buf[..head_len], &mut slots) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return Next::HandOver, // hyper answers what is malformed
        }
        let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
            return Next::HandOver; // HTTP/1.0 keep-alive rules are hyper's
        };
        if req.headers.len() > self.limits.max_headers {
            return Next::HandOver;
        }
        let Some(shape) = RequestShape::read(req.headers) else {
            return Next::HandOver;
        };
        let Ok(body_len) = usize::try_from(shape.content_length) else {
            return Next::HandOver;
        };
        // Only a body that is all here already: streaming one is hyper's job.
        if buf.len() - head_len < body_len {
            return Next::HandOver;
        }
        let mut host_buf = [0u8; 256];
        let proxy = self.proxy;
        let plan = match self.site {
            Site::Reverse(conn) => plan_reverse(proxy, conn, target, &shape, &mut host_buf),
            Site::Forward(conn) => plan_forward(proxy, conn, target, &shape),
        };
        let Some(plan) = plan else {
            return Next::HandOver;
        };
        let decision = proxy
            .check(
                plan.client,
                &plan.destination,
                Some(HttpFacts {
                    method,
                    path: plan.path,
                }),
            )
            .await;
        // Blocks, exposed requests (counted byte by byte) and failures take hyper's path.
        if decision.outcome != Outcome::Allow {
            return Next::HandOver;
        }
        let request_id = proxy.next_request_id();
        let facts = RequestFacts {
            request_id: &request_id,
            listener: plan.listener,
            route: plan.route,
            client: plan.client,
            method: Some(method),
            scheme: "http",
            destination: &plan.destination,
            path: Some(plan.path),
            started,
        };
        let used = head_len + body_len;
        // Douane stopping: this is the connection's last answer (read when it is written).
        let draining = || *shutdown.borrow();
        let after = |close: bool| {
            if close {
                Next::Close
            } else {
                Next::KeepAlive(used)
            }
        };

        self.out.clear();
        match &plan.rewrite {
            Rewrite::Reverse { route, fwd } => write_request_head(
                &mut self.out,
                RequestLine {
                    method,
                    base_path: &route.base_path,
                    target,
                },
                req.headers,
                &shape,
                route,
                fwd,
            ),
            Rewrite::Forward { authority, origin } => write_forward_head(
                &mut self.out,
                method,
                origin,
                authority,
                req.headers,
                &shape,
                proxy.via.as_bytes(),
            ),
        }
        self.out
            .extend_from_slice(&buf[head_len..head_len + body_len]);
        let via = match plan.rewrite {
            Rewrite::Forward { .. } => Some(proxy.via.as_bytes()),
            Rewrite::Reverse { .. } => None,
        };

        let (mut upstream, addr, head) = match self
            .send(&decision, plan.destination.port, idempotent(method))
            .await
        {
            Ok(sent) => sent,
            Err(e) => {
                let response = upstream_failed(proxy, &facts, &decision, &e).await;
                let close = shape.close || draining();
                return self.answer(client, response, close, after).await;
            }
        };
        let close = shape.close || draining();
        // The response head as the client gets it, written aside until the request is finished.
        self.out.clear();
        let shaped = ResponseShape::rewrite(
            &self.up_buf[..head],
            method == "HEAD",
            close,
            via,
            &mut self.out,
        );
        let response = match shaped {
            Some(r) => r,
            None => {
                let e = UpstreamError::Broken("malformed response head".into());
                let response = upstream_failed(proxy, &facts, &decision, &e).await;
                return self.answer(client, response, close, after).await;
            }
        };
        if let Err(refusal) = proxy.finish(&facts, &decision, response.status).await {
            let response = respond::error(
                http::StatusCode::SERVICE_UNAVAILABLE,
                &request_id,
                &refusal.to_string(),
            );
            return self.answer(client, response, close, after).await;
        }
        let close = close || response.framing == Framing::UntilClose;
        let relayed = self
            .relay_body(client, &mut upstream, head, response.framing)
            .await;
        match relayed {
            Ok(clean) => {
                if clean && !response.close {
                    proxy.connector.put_back_tcp(addr, upstream);
                }
                after(close)
            }
            Err(()) => Next::Close,
        }
    }

    /// Sends `self.out` to the first checked address that takes it, over a pooled socket
    /// when there is one, and reads the final response head into `self.up_buf`. A reused
    /// socket that answers nothing is replaced once, for a request that can be repeated.
    async fn send(
        &mut self,
        decision: &Decision,
        port: u16,
        repeatable: bool,
    ) -> Result<(TcpStream, SocketAddr, usize), UpstreamError> {
        let connector = &self.proxy.connector;
        let pooled = decision.connect.iter().find_map(|ip| {
            let addr = SocketAddr::new(*ip, port);
            connector.take_tcp(addr).map(|s| (s, addr))
        });
        if let Some((mut stream, addr)) = pooled {
            match self.round_trip(&mut stream, true).await {
                Ok(head) => return Ok((stream, addr, head)),
                Err(SendError::Stale) if repeatable => {}
                Err(SendError::Stale) => {
                    return Err(UpstreamError::Broken(
                        "the connection closed before answering".into(),
                    ))
                }
                Err(SendError::Failed(e)) => return Err(e),
            }
        }
        let started = Instant::now();
        let (mut stream, addr) = connector.connect_tcp(&decision.connect, port).await?;
        self.proxy.metrics.observe_connect(started.elapsed());
        match self.round_trip(&mut stream, false).await {
            Ok(head) => Ok((stream, addr, head)),
            Err(SendError::Stale) => Err(UpstreamError::Broken(
                "the connection closed before answering".into(),
            )),
            Err(SendError::Failed(e)) => Err(e),
        }
    }

    /// Writes the request, reads up to the end of the final response head; 1xx
    /// informational heads on the way are dropped (the client sent no `Expect`).
    async fn round_trip(
        &mut self,
        upstream: &mut TcpStream,
        reused: bool,
    ) -> Result<usize, SendError> {
        let stale = |e: std::io::Error| {
            if reused {
                SendError::Stale
            } else {
                SendError::Failed(UpstreamError::Broken(e.to_string()))
            }
        };
        upstream.write_all(&self.out).await.map_err(stale)?;
        self.timer
            .as_mut()
            .reset(tokio::time::Instant::now() + self.limits.response_timeout);
        self.up_buf.clear();
        let mut scanned = 0;
        loop {
            if let Some(end) = head_end(&self.up_buf, scanned) {
                if is_informational(&self.up_buf) {
                    self.up_buf.drain(..end);
                    scanned = 0;
                    continue;
                }
                return Ok(end);
            }
            scanned = self.up_buf.len();
            if self.up_buf.len() >= self.limits.max_header_bytes.max(64 * 1024) {
                return Err(SendError::Failed(UpstreamError::Broken(
                    "response head too large".into(),
                )));
            }
            tokio::select! {
                biased;
                read = upstream.read_buf(&mut self.up_buf) => match read {
                    Ok(0) if reused && self.up_buf.is_empty() => return Err(SendError::Stale),
                    Ok(0) => {
                        return Err(SendError::Failed(UpstreamError::Broken(
                            "closed before a whole response head".into(),
                        )))
                    }
                    Ok(_) => {}
                    Err(e) if self.up_buf.is_empty() => return Err(stale(e)),
                    Err(e) => return Err(SendError::Failed(UpstreamError::Broken(e.to_string()))),
                },
                _ = &mut self.timer => return Err(SendError::Failed(UpstreamError::ResponseTimeout)),
            }
        }
    }

    /// Sends `self.out` (the response head) with the body bytes read so far, then the rest
    /// of the body as it comes. `Ok(true)` when the body ended exactly where its framing
    /// said, so the upstream socket can serve again.
    async fn relay_body<S>(
        &mut self,
        client: &mut S,
        upstream: &mut TcpStream,
        head: usize,
        framing: Framing,
    ) -> Result<bool, ()>
    where
        S: AsyncWrite + Unpin,
    {
        let mut left = match framing {
            Framing::Length(n) => n,
            _ => u64::MAX,
        };
        let mut chunks = ChunkedScanner::default();
        let mut start = head;
        loop {
            let bytes = &self.up_buf[start..];
            let (take, done) = match framing {
                Framing::Length(_) => {
                    let take = bytes.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    left -= take as u64;
                    (take, left == 0)
                }
                Framing::Chunked => {
                    let take = chunks.feed(bytes).map_err(|_| ())?;
                    (take, chunks.is_done())
                }
                Framing::UntilClose => (bytes.len(), false),
            };
            self.out.extend_from_slice(&bytes[..take]);
            let extra = take < bytes.len();
            if !self.out.is_empty() {
                client.write_all(&self.out).await.map_err(|_| ())?;
                client.flush().await.map_err(|_| ())?;
                self.out.clear();
            }
            if done {
                return Ok(!extra);
            }
            self.up_buf.clear();
            start = 0;
            match upstream.read_buf(&mut self.up_buf).await {
                Ok(0) if framing == Framing::UntilClose => return Ok(false),
                Ok(0) | Err(_) => return Err(()), // cut short: the client must see it cut
                Ok(_) => {}
            }
        }
    }

    /// Writes one of douane's own responses (a failure, a refusal), whole.
    async fn answer<S>(
        &mut self,
        client: &mut S,
        response: Response<ProxyBody>,
        close: bool,
        after: impl Fn(bool) -> Next,
    ) -> Next
    where
        S: AsyncWrite + Unpin,
    {
        self.out.clear();
        write_whole_response(&mut self.out, response, close);
        if client.write_all(&self.out).await.is_err() || client.flush().await.is_err() {
            return Next::Close;
        }
        after(close)
    }
}

/// Whether the head at the start of `buf` is a 1xx other than 101 (which the direct path
/// never asks for, so it is treated as a final, and failing, answer).
fn is_informational(buf: &[u8]) -> bool {
    buf.len() > 12 && buf.starts_with(b"HTTP/1.") && buf[9] == b'1' && &buf[9..12] != b"101"
}

/// The request line of the upstream request.
struct RequestLine<'a> {
    method: &'a str,
    base_path: &'a str,
    target: &'a str,
}

/// Who the client is, for the forwarding headers.
#[derive(Clone, Copy)]
struct Forwarding {
    peer: IpAddr,
    trusted: bool,
    tls: bool,
}

/// The request head as the upstream gets it — the same rewrite as hyper's path: hop-by-hop
/// headers out, `Host` the upstream's, `X-Forwarded-*` and `Forwarded` (RFC 7239) set, the
/// client's own forwarding headers kept only from a trusted peer.
fn write_request_head(
    out: &mut Vec<u8>,
    line: RequestLine<'_>,
    headers: &[httparse::Header<'_>],
    shape: &RequestShape<'_>,
    route: &CompiledRoute,
    fwd: &Forwarding,
) {
    out.extend_from_slice(line.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(line.base_path.as_bytes());
    out.extend_from_slice(line.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(route.host_header.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (h, class) in headers.iter().zip(shape.classes) {
        let pass = match class {
            Known::Other | Known::Accept | Known::ContentLength => {
                shape.named_len == 0 || !shape.names(h.name)
            }
            Known::Forwarded => fwd.trusted,
            _ => false,
        };
        if pass {
            push_header(out, h.name.as_bytes(), h.value);
        }
    }
    let mut ip_buf = [0u8; 15];
    let v6_text;
    let peer: &str = match fwd.peer {
        IpAddr::V4(v4) => ipv4_text(v4, &mut ip_buf),
        v6 => {
            v6_text = v6.to_string();
            &v6_text
        }
    };
    out.extend_from_slice(b"x-forwarded-for: ");
    if let (true, Some(prior)) = (fwd.trusted, shape.forwarded_for) {
        out.extend_from_slice(prior);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(peer.as_bytes());
    let proto: &[u8] = if fwd.tls { b"https" } else { b"http" };
    out.extend_from_slice(b"\r\nx-forwarded-proto: ");
    out.extend_from_slice(proto);
    let host = shape.host;
    let host_ok = !host.is_empty() && host.iter().all(|b| b.is_ascii_graphic() && *b != b'"');
    if host_ok {
        out.extend_from_slice(b"\r\nx-forwarded-host: ");
        out.extend_from_slice(host);
    }
    out.extend_from_slice(b"\r\nforwarded: for=");
    if fwd.peer.is_ipv6() {
        out.extend_from_slice(b"\"[");
        out.extend_from_slice(peer.as_bytes());
        out.extend_from_slice(b"]\"");
    } else {
        out.extend_from_slice(peer.as_bytes());
    }
    out.extend_from_slice(b";proto=");
    out.extend_from_slice(proto);
    if host_ok {
        out.extend_from_slice(b";host=\"");
        out.extend_from_slice(host);
        out.push(b'"');
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// A forward request's head as the destination gets it — as on hyper's path: origin-form,
/// `Host` from the absolute target, hop-by-hop headers out, this hop's `Via`.
fn write_forward_head(
    out: &mut Vec<u8>,
    method: &str,
    origin: &str,
    authority: &str,
    headers: &[httparse::Header<'_>],
    shape: &RequestShape<'_>,
    via: &[u8],
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(origin.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (h, class) in headers.iter().zip(shape.classes) {
        let pass = match class {
            Known::Other
            | Known::Accept
            | Known::ContentLength
            | Known::XForwardedFor
            | Known::XForwardedProto
            | Known::XForwardedHost
            | Known::Forwarded => shape.named_len == 0 || !shape.names(h.name),
            _ => false,
        };
        if pass {
            push_header(out, h.name.as_bytes(), h.value);
        }
    }
    push_header(out, b"via", via);
    out.extend_from_slice(b"\r\n");
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The final response head, read once.
struct ResponseShape {
    status: u16,
    framing: Framing,
    /// The upstream will not take another request on this connection.
    close: bool,
}

impl ResponseShape {
    /// Reads the final response head and writes it as the client gets it into `out`:
    /// hop-by-hop headers out (and those that `Connection` names), the transfer coding kept
    /// when the chunks pass through, `Connection: close` when it is the client connection's
    /// last response (`close`, or a body that only the end of the connection delimits).
    /// `None` for a head that is not a valid HTTP/1.x final response.
    fn rewrite(
        head: &[u8],
        to_head_request: bool,
        close: bool,
        via: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> Option<ResponseShape> {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, head, &mut slots)
        {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return None,
        }
        let status = resp.code?;
        if (100..200).contains(&status) {
            return None; // 101 without having asked for an upgrade
        }
        let mut upstream_close = resp.version != Some(1);
        let mut named = false;
        let (mut length, mut chunked) = (None, None);
        let mut classes = [Known::Other; MAX_HEADERS];
        for (h, class) in resp.headers.iter().zip(classes.iter_mut()) {
            *class = Known::of(h.name);
            match *class {
                Known::ContentLength => {
                    let n = parse_content_length(h.value)?;
                    if length.is_some_and(|l| l != n) {
                        return None; // conflicting lengths: a smuggling attempt or a bug
                    }
                    length = Some(n);
                }
                Known::TransferEncoding => chunked = Some(ends_chunked(h.value)),
                Known::Connection => {
                    for t in tokens(h.value) {
                        if t.eq_ignore_ascii_case(b"close") {
                            upstream_close = true;
                        } else if !t.eq_ignore_ascii_case(b"keep-alive") {
                            named = true;
                        }
                    }
                }
                _ => {}
            }
        }
        let framing = if to_head_request || status == 204 || status == 304 {
            Framing::Length(0)
        } else {
            match (chunked, length) {
                (Some(true), _) => Framing::Chunked,
                (Some(false), _) | (None, None) => Framing::UntilClose,
                (None, Some(n)) => Framing::Length(n),
            }
        };
        let named_by_connection = |name: &str| {
            resp.headers
                .iter()
                .filter(|h| Known::of(h.name) == Known::Connection)
                .flat_map(|h| tokens(h.value))
                .any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
        };
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, u64::from(status));
        out.push(b' ');
        out.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
        out.extend_from_slice(b"\r\n");
        for (h, class) in resp.headers.iter().zip(classes) {
            let pass = match class {
                Known::TransferEncoding => framing == Framing::Chunked,
                Known::ContentLength => chunked.is_none(),
                Known::Connection | Known::HopByHop | Known::Upgrade => false,
                _ => !(named && named_by_connection(h.name)),
            };
            if pass {
                push_header(out, h.name.as_bytes(), h.value);
            }
        }
        if let Some(via) = via {
            push_header(out, b"via", via);
        }
        if close || framing == Framing::UntilClose {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Some(ResponseShape {
            status,
            framing,
            close: upstream_close || framing == Framing::UntilClose,
        })
    }
}

/// One of douane's own responses as bytes, with its length.
fn write_whole_response(out: &mut Vec<u8>, response: Response<ProxyBody>, close: bool) {
    let (parts, mut body) = response.into_parts();
    let bytes = match &mut body {
        ProxyBody::Full(b) => b.take().unwrap_or_default(),
        _ => bytes::Bytes::new(),
    };
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(parts.status.as_u16()));
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        push_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"content-length: ");
    push_decimal(out, bytes.len() as u64);
    if close {
        out.extend_from_slice(b"\r\nconnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&bytes);
}

/// The host of a `Host` value, without port or trailing dot, lowercase, in `buf`; `None`
/// when it is not plain ASCII or too long (hyper's path then decides what it is).
fn normalized_host<'b>(value: &[u8], buf: &'b mut [u8; 256]) -> Option<&'b str> {
    let host = match value.iter().rposition(|b| *b == b':') {
        Some(i) if value[i + 1..].iter().all(u8::is_ascii_digit) => {
            let h = &value[..i];
            // `[::1]:8443` keeps its brackets; a bare IPv6 address has no port to strip.
            let bracketed = h.first() == Some(&b'[');
            if (bracketed && h.last() != Some(&b']')) || (!bracketed && h.contains(&b':')) {
                value
            } else {
                h
            }
        }
        _ => value,
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty() || host.len() > buf.len() || !host.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    let out = &mut buf[..host.len()];
    out.copy_from_slice(host);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

/// Methods a proxy may send again when a reused connection turned out closed (RFC 9110
/// §9.2.2).
fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalised_like_hypers_path() {
        let mut buf = [0u8; 256];
        let mut norm = |v: &str| normalized_host(v.as_bytes(), &mut buf).map(str::to_owned);
        assert_eq!(norm("App.Example.:8443").as_deref(), Some("app.example"));
        assert_eq!(norm("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(norm("[::1]:8443").as_deref(), Some("[::1]"));
        assert_eq!(norm("[::1]").as_deref(), Some("[::1]"));
        assert_eq!(norm("").as_deref(), None);
        assert_eq!(norm("a b").as_deref(), None);
    }

    fn shape(head: &[u8], to_head: bool) -> Option<(u16, Framing, bool)> {
        ResponseShape::rewrite(head, to_head, false, None, &mut Vec::new())
            .map(|r| (r.status, r.framing, r.close))
    }

    #[test]
    fn response_framing() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n";
        assert_eq!(shape(ok, false), Some((200, Framing::Length(2), false)));
        assert_eq!(shape(ok, true), Some((200, Framing::Length(0), false)));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n";
        assert_eq!(shape(chunked, false), Some((200, Framing::Chunked, false)));
        let until_close = b"HTTP/1.1 200 OK\r\nx: y\r\n\r\n";
        assert_eq!(
            shape(until_close, false),
            Some((200, Framing::UntilClose, true))
        );
        let old = b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n";
        assert_eq!(shape(old, false), Some((200, Framing::Length(1), true)));
        let closing = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        assert_eq!(shape(closing, false), Some((204, Framing::Length(0), true)));
        let conflicting = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n";
        assert_eq!(shape(conflicting, false), None);
        assert_eq!(shape(b"HTTP/1.1 101 Switching\r\n\r\n", false), None);
        assert_eq!(shape(b"garbage\r\n\r\n", false), None);
    }

    #[test]
    fn response_head_loses_hop_by_hop_headers() {
        let head = b"HTTP/1.1 200 Fine\r\nConnection: keep-alive, x-hop\r\nx-hop: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\nX-Kept: yes\r\n\r\n";
        let mut out = Vec::new();
        ResponseShape::rewrite(head, false, true, None, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 Fine\r\nContent-Length: 2\r\nX-Kept: yes\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn informational_heads() {
        assert!(is_informational(b"HTTP/1.1 103 Early Hints\r\n\r\n"));
        assert!(is_informational(b"HTTP/1.1 100 Continue\r\n\r\n"));
        assert!(!is_informational(b"HTTP/1.1 101 Switching\r\n\r\n"));
        assert!(!is_informational(b"HTTP/1.1 200 OK\r\n\r\n"));
    }
}
