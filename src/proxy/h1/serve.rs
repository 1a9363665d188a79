//! One client connection on the direct path: read a request head, route and decide it, send
//! it over a pooled upstream socket, pass the response through, and again — in one task,
//! with three reused buffers and one reused timer. A request the path does not take is
//! handed to hyper, with the connection, before anything of it went upstream.

use std::future::Future;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Sleep;

use super::message::{head_end, ChunkedScanner, Framing, MAX_HEADERS};
use super::plan::{plan_forward, plan_reverse, Rewrite, Site};
use super::request::{
    idempotent, write_forward_head, write_request_head, NotDirect, RequestLine, RequestShape,
};
use super::response::{write_whole_response, ResponseShape};
use super::rewind::Rewind;
use super::wire::{SendError, Wire};
use crate::policy::decide::HttpFacts;
use crate::policy::{Decision, Outcome};
use crate::proxy::body::ProxyBody;
use crate::proxy::buffers;
use crate::proxy::context::{Arrival, Proxy, RequestFacts};
use crate::proxy::exchange::{Life, Refusal, RequestEnd};
use crate::proxy::forward::{block_response, upstream_failed};
use crate::proxy::headers::Leg;
use crate::proxy::readiness::AwaitReadable;
use crate::proxy::respond;
use crate::proxy::upstream::{Slot, UpstreamError};

/// Initial size of a TLS connection's client read buffer, and what it is cut back to when
/// the connection goes idle. A plain connection holds none when idle: it waits for the
/// socket's readiness, then reads into a buffer lent from `proxy::buffers`, as the upstream
/// and output buffers of every exchange are.
const IDLE_READ_BUFFER: usize = 2 * 1024;

/// Room made in the client read buffer before a read that must go on (a long head, a body).
const READ_BUFFER: usize = 16 * 1024;

/// Whether the start of a head that is not all here yet is already invalid (a head read in
/// one piece, the common case, never comes here).
fn malformed_so_far(buf: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    match httparse::Request::new(&mut headers).parse(buf) {
        Ok(_) | Err(httparse::Error::TooManyHeaders) => false,
        Err(_) => true,
    }
}

/// The first byte of a TLS record carrying a handshake (a ClientHello).
pub const TLS_HANDSHAKE: u8 = 0x16;

/// A client spoke TLS to a forward proxy port (it took the proxy for the origin, or was
/// configured with `https://` for the proxy): closed at once, with a line that says so.
pub fn tls_on_proxy_port(proxy: &Proxy, listener: &str, peer: SocketAddr) {
    let refusal = Refusal::TlsOnProxyPort;
    proxy.metrics.refusal(refusal.kind());
    tracing::warn!(
        listener,
        %peer,
        refusal = refusal.kind(),
        "a TLS ClientHello came to a plain proxy port: closed (is the client configured with https:// for the proxy?)"
    );
}

/// How a connection left the direct path.
pub enum Served<S> {
    /// Closed, or to be closed: nothing more to do.
    Closed,
    /// A request the direct path does not take: hyper serves the connection from here, the
    /// bytes already read put back in front.
    HandOver(Rewind<S>),
    /// A whole `CONNECT` head at the start of the bytes read (forward listener only):
    /// `connect::serve_connect` takes it.
    Connect(Rewind<S>),
}

/// The limits the direct path applies.
#[derive(Debug, Clone, Copy)]
pub struct DirectLimits {
    pub header_read_timeout: Duration,
    pub response_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// A write to the client that makes no progress this long closes the connection.
    pub client_send_timeout: Duration,
}

/// What the client connection does after an exchange.
enum Next {
    /// The request took this many bytes of the buffer; read the next one.
    KeepAlive(usize),
    Close,
    HandOver,
}

/// Serves a connection (a reverse route's or the forward proxy's) on the direct path until it
/// closes or a request needs hyper.
pub async fn serve<S>(
    mut client: S,
    proxy: &Proxy,
    site: Site<'_>,
    limits: DirectLimits,
    mut shutdown: watch::Receiver<bool>,
) -> Served<S>
where
    S: AsyncRead + AsyncWrite + AwaitReadable + Unpin,
{
    let mut buf: Vec<u8> = idle_buffer::<S>();
    let mut io = Exchange {
        proxy,
        site,
        limits,
        up_buf: Vec::new(),
        out: Vec::new(),
        timer: Box::pin(tokio::time::sleep(limits.header_read_timeout)),
    };
    loop {
        // A whole head, within the header read timeout (which also bounds an idle
        // keep-alive, as on hyper's path).
        io.timer
            .as_mut()
            .reset(tokio::time::Instant::now() + limits.header_read_timeout);
        if S::WAITS && buf.capacity() == 0 {
            // Idle without a buffer until the client sends something.
            tokio::select! {
                biased;
                ready = client.readable() => if ready.is_err() { return Served::Closed },
                _ = &mut io.timer => return Served::Closed,
                _ = shutdown.changed() => return Served::Closed,
            }
            buf = buffers::lend();
        }
        let mut scanned = 0;
        let head_len = loop {
            if let Some(n) = head_end(&buf, scanned) {
                break n;
            }
            if let (Site::Forward(conn), Some(&TLS_HANDSHAKE)) = (site, buf.first()) {
                tls_on_proxy_port(proxy, &conn.listener, conn.peer);
                return Served::Closed;
            }
            if !buf.is_empty() && malformed_so_far(&buf) {
                return Served::HandOver(Rewind::new(buf, client)); // hyper answers 400 at once
            }
            scanned = buf.len();
            if buf.len() >= limits.max_header_bytes {
                return Served::HandOver(Rewind::new(buf, client)); // hyper answers 431
            }
            if !buf.is_empty() && buf.capacity() - buf.len() < 1024 {
                buf.reserve(READ_BUFFER);
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
        if matches!(site, Site::Forward(_)) && buf.starts_with(b"CONNECT ") {
            return Served::Connect(Rewind::new(buf, client));
        }
        // Boxed: the exchange's state (~3 KB) would size the connection's task, an idle
        // keep-alive's too. One allocation per request, recycled by the allocator.
        let exchange = Box::pin(io.exchange(&mut client, &buf, head_len, &shutdown));
        match exchange.await {
            Next::KeepAlive(used) => {
                buf.drain(..used);
                if buf.is_empty() {
                    if S::WAITS {
                        buffers::give_back(std::mem::take(&mut buf));
                    } else if buf.capacity() > IDLE_READ_BUFFER {
                        buf = Vec::with_capacity(IDLE_READ_BUFFER);
                    }
                }
                io.give_back();
            }
            Next::Close => {
                let _ = client.shutdown().await;
                return Served::Closed;
            }
            Next::HandOver => return Served::HandOver(Rewind::new(buf, client)),
        }
    }
}

/// A new connection's read buffer: none for a socket (lent once it is readable), a small one
/// for a stream that cannot wait without one.
fn idle_buffer<S: AwaitReadable>() -> Vec<u8> {
    if S::WAITS {
        Vec::new()
    } else {
        Vec::with_capacity(IDLE_READ_BUFFER)
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

/// Writes `bytes` to the client and flushes. The common write completes at once and costs
/// no timer; one that waits is bounded by `timeout` (the reused `timer`, re-armed).
async fn send_within<S>(
    client: &mut S,
    bytes: &[u8],
    timer: &mut Pin<Box<Sleep>>,
    timeout: Duration,
) -> std::io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    let mut write = std::pin::pin!(async {
        client.write_all(bytes).await?;
        client.flush().await
    });
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(write.as_mut().poll(cx))).await;
    if let std::task::Poll::Ready(done) = first {
        return done;
    }
    timer.as_mut().reset(tokio::time::Instant::now() + timeout);
    tokio::select! {
        biased;
        done = &mut write => done,
        _ = timer.as_mut() => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client stopped reading",
        )),
    }
}

/// How a response body went through.
enum Relayed {
    /// To its end; `clean` when nothing followed it.
    Whole { received: u64, clean: bool },
    /// Cut short, by either side.
    Cut { received: u64 },
}

impl Drop for Exchange<'_> {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl Exchange<'_> {
    /// The lent buffers go back between exchanges.
    fn give_back(&mut self) {
        buffers::give_back_two(
            std::mem::take(&mut self.up_buf),
            std::mem::take(&mut self.out),
        );
    }

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
        if self.out.capacity() == 0 {
            (self.out, self.up_buf) = buffers::lend_two();
        }
        let mut host_buf = [0u8; 256];
        let proxy = self.proxy;
        // Parsed, planned and its upstream head written in one stretch without an await:
        // the header slots (MAX_HEADERS of them, 4 KiB) then live on the stack of one poll,
        // not in the future every keep-alive connection holds while it waits.
        let parsed = 'parse: {
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
            let shape = match RequestShape::read(req.headers) {
                Ok(shape) => shape,
                Err(NotDirect::Hyper) => return Next::HandOver,
                Err(NotDirect::Refuse(refusal)) => break 'parse Err((refusal, method)),
            };
            let Ok(body_len) = usize::try_from(shape.content_length) else {
                return Next::HandOver;
            };
            // Only a body that is all here already: streaming one is hyper's job.
            if buf.len() - head_len < body_len {
                return Next::HandOver;
            }
            let plan = match self.site {
                Site::Reverse(conn) => plan_reverse(proxy, conn, target, &shape, &mut host_buf),
                Site::Forward(conn) => plan_forward(proxy, conn, target, &shape),
            };
            let Some(plan) = plan else {
                return Next::HandOver;
            };
            // What goes upstream if the decision lets it: a block's answer replaces it.
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
                Rewrite::Forward {
                    authority,
                    origin,
                    trusted,
                } => write_forward_head(
                    &mut self.out,
                    method,
                    origin,
                    authority,
                    req.headers,
                    &shape,
                    (Leg::Forward { trusted: *trusted }, proxy.via.as_bytes()),
                ),
            }
            self.out
                .extend_from_slice(&buf[head_len..head_len + body_len]);
            Ok((method, target, shape, body_len, plan))
        };
        let (method, target, shape, body_len, plan) = match parsed {
            Ok(parsed) => parsed,
            // Where this request ends is in doubt, so where the next one starts is too: the
            // connection closes after the refusal.
            Err((refusal, method)) => return self.refuse(client, refusal, method, started).await,
        };
        // From here the request is decided once, here, and answered here whatever the
        // decision: it is never handed to hyper again.
        let life = Life::new();
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
        let request_id = proxy.next_request_id();
        let requested_host = std::str::from_utf8(shape.host).ok();
        let facts = RequestFacts {
            request_id: &request_id,
            listener: plan.listener,
            route: plan.route,
            client: plan.client,
            method: Some(method),
            scheme: if plan.tls_name.is_some() {
                "https"
            } else {
                "http"
            },
            destination: &plan.destination,
            path: Some(plan.path),
            query: target.split_once('?').map(|(_, q)| q),
            requested_host,
            sni: match self.site {
                Site::Reverse(conn) => conn.sni.as_deref(),
                Site::Forward(_) => None,
            },
            started,
            life: &life,
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
        let sni = match self.site {
            Site::Reverse(conn) => conn.sni.as_deref(),
            Site::Forward(_) => None,
        };
        let end = |status: u16, upstream: Option<SocketAddr>, received: Option<u64>| RequestEnd {
            status,
            upstream,
            sent: upstream.map(|_| body_len as u64), // nothing went out to no upstream
            received,
            duration: started.elapsed(),
            sni,
            tunnel: None,
        };

        // The audit gate, then the block: nothing has gone upstream.
        let stop = match proxy.record(&facts, &decision).await {
            Err(refusal) => Some(respond::audit_refusal(&refusal, &request_id).1),
            Ok(()) if decision.outcome.lets_through() => None,
            Ok(()) => {
                let accept = shape.accept.and_then(|a| HeaderValue::from_bytes(a).ok());
                let json = respond::wants_json(accept.as_ref());
                Some(block_response(proxy, &facts, &decision, json))
            }
        };
        if let Some(response) = stop {
            let status = response.status().as_u16();
            let close = shape.close || draining();
            let next = self.answer(client, response, close, after).await;
            proxy.finish(&facts, &decision, &end(status, None, None));
            return next;
        }

        let via = match plan.rewrite {
            Rewrite::Forward { .. } => Some(proxy.via.as_bytes()),
            Rewrite::Reverse { .. } => None,
        };

        let (mut upstream, slot, addr, head) = match self
            .send(
                &decision,
                plan.destination.port,
                plan.tls_name,
                idempotent(method),
            )
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
        // The response head as the client gets it.
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
        let close = close || response.framing == Framing::UntilClose;
        let relayed = self
            .relay_body(client, &mut upstream, head, response.framing)
            .await;
        let (next, received) = match relayed {
            Relayed::Whole { received, clean } => {
                if clean && !response.close {
                    upstream.put_back(&proxy.connector, addr, plan.tls_name, slot);
                }
                (after(close), received)
            }
            Relayed::Cut { received } => {
                self.out.clear();
                (Next::Close, received)
            }
        };
        if decision.outcome != Outcome::Allow {
            // Exposed (monitor mode, exemption): its bytes are counted, as on hyper's path.
            proxy
                .metrics
                .observe_bytes(&decision, body_len as u64, received);
        }
        proxy.finish(
            &facts,
            &decision,
            &end(response.status, Some(addr), Some(received)),
        );
        if !self.out.is_empty() {
            let timeout = self.limits.client_send_timeout;
            let written = send_within(client, &self.out, &mut self.timer, timeout)
                .await
                .is_ok();
            self.out.clear();
            if !written {
                return Next::Close;
            }
        }
        next
    }

    /// Answers a request refused before any decision, and closes the connection.
    async fn refuse<S>(
        &mut self,
        client: &mut S,
        refusal: Refusal,
        method: &str,
        started: Instant,
    ) -> Next
    where
        S: AsyncWrite + Unpin,
    {
        let request_id = self.proxy.next_request_id();
        let (listener, peer) = match self.site {
            Site::Reverse(conn) => (&*conn.listener, conn.peer),
            Site::Forward(conn) => (&*conn.listener, conn.peer),
        };
        let arrival = Arrival {
            request_id: &request_id,
            listener,
            client: peer.ip(),
            method,
            host: None,
            started,
            life: &Life::new(),
        };
        let response = self.proxy.refused(&arrival, refusal);
        self.answer(client, response, true, |_| Next::Close).await
    }

    /// Sends `self.out` to the first checked address that takes it, over a pooled socket
    /// when there is one, and reads the final response head into `self.up_buf`. A reused
    /// socket that answers nothing is replaced once, for a request that can be repeated.
    async fn send(
        &mut self,
        decision: &Decision,
        port: u16,
        tls_name: Option<&Arc<str>>,
        repeatable: bool,
    ) -> Result<(Wire, Slot, SocketAddr, usize), UpstreamError> {
        let connector = &self.proxy.connector;
        let pooled = decision.connect.iter().find_map(|ip| {
            let addr = SocketAddr::new(*ip, port);
            Wire::take(connector, addr, tls_name).map(|(s, slot)| (s, slot, addr))
        });
        if let Some((mut stream, slot, addr)) = pooled {
            match self.round_trip(&mut stream, true).await {
                Ok(head) => return Ok((stream, slot, addr, head)),
                Err(SendError::Stale) if repeatable => {}
                Err(e) => return Err(e.into()),
            }
        }
        let started = Instant::now();
        let (mut stream, addr, slot) =
            // Boxed: a new connection (a TLS handshake's state among it) is the rare case, and
            // unboxed it would size the future every keep-alive connection holds.
            Box::pin(Wire::connect(connector, &decision.connect, port, tls_name)).await?;
        self.proxy.metrics.observe_connect(started.elapsed());
        let head = self.round_trip(&mut stream, false).await?;
        Ok((stream, slot, addr, head))
    }

    /// Writes the request, reads up to the end of the final response head into
    /// `self.up_buf` within the response timeout.
    async fn round_trip(&mut self, upstream: &mut Wire, reused: bool) -> Result<usize, SendError> {
        upstream.send_request(&self.out, reused).await?;
        // Let the other connections' requests go out before reading this answer: the
        // upstream then finds several in one wake-up, as behind an event loop that writes a
        // whole batch (nginx). Measured: 0.96 → 0.99 of nginx's throughput, better in 7 of 8
        // interleaved rounds; no change at one connection.
        tokio::task::yield_now().await;
        self.timer
            .as_mut()
            .reset(tokio::time::Instant::now() + self.limits.response_timeout);
        self.up_buf.clear();
        let max = self.limits.max_header_bytes.max(64 * 1024);
        tokio::select! {
            biased;
            head = upstream.read_head(&mut self.up_buf, max, reused) => head,
            _ = &mut self.timer => Err(SendError::Failed(UpstreamError::ResponseTimeout)),
        }
    }

    /// Sends `self.out` (the response head) with the body bytes read so far, then the rest
    /// of the body as it comes, counting the body bytes; the last piece is left in
    /// `self.out` for the caller to write once the request is finished. `clean` when the
    /// body ended exactly where its framing said, so the upstream socket can serve again.
    async fn relay_body<S>(
        &mut self,
        client: &mut S,
        upstream: &mut Wire,
        head: usize,
        framing: Framing,
    ) -> Relayed
    where
        S: AsyncWrite + Unpin,
    {
        let mut left = match framing {
            Framing::Length(n) => n,
            _ => u64::MAX,
        };
        let mut chunks = ChunkedScanner::default();
        let mut start = head;
        // Body bytes as the client decodes them (chunk data, without its framing).
        let mut received = 0u64;
        let mut head_left = self.out.len();
        let decoded = |received: u64, chunks: &ChunkedScanner| match framing {
            Framing::Chunked => chunks.data_len(),
            _ => received,
        };
        loop {
            let bytes = &self.up_buf[start..];
            let (take, done) = match framing {
                Framing::Length(_) => {
                    let take = bytes.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    left -= take as u64;
                    (take, left == 0)
                }
                Framing::Chunked => match chunks.feed(bytes) {
                    Ok(take) => (take, chunks.is_done()),
                    Err(_) => {
                        return Relayed::Cut {
                            received: decoded(received, &chunks),
                        }
                    }
                },
                Framing::UntilClose => (bytes.len(), false),
            };
            self.out.extend_from_slice(&bytes[..take]);
            let extra = take < bytes.len();
            if done {
                // The last piece stays in `self.out`: the exit is taken before the client
                // sees the end of its response.
                received += (self.out.len() - head_left) as u64;
                return Relayed::Whole {
                    received: decoded(received, &chunks),
                    clean: !extra,
                };
            }
            if !self.out.is_empty() {
                let timeout = self.limits.client_send_timeout;
                if send_within(client, &self.out, &mut self.timer, timeout)
                    .await
                    .is_err()
                {
                    return Relayed::Cut {
                        received: decoded(received, &chunks),
                    };
                }
                received += (self.out.len() - head_left) as u64;
                head_left = 0;
                self.out.clear();
            }
            self.up_buf.clear();
            start = 0;
            match upstream.read_buf(&mut self.up_buf).await {
                Ok(0) if framing == Framing::UntilClose => {
                    return Relayed::Whole {
                        received,
                        clean: false,
                    }
                }
                // Cut short: the client must see it cut.
                Ok(0) | Err(_) => {
                    return Relayed::Cut {
                        received: decoded(received, &chunks),
                    }
                }
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
        let timeout = self.limits.client_send_timeout;
        if send_within(client, &self.out, &mut self.timer, timeout)
            .await
            .is_err()
        {
            return Next::Close;
        }
        after(close)
    }
}
