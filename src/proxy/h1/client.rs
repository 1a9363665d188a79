//! HTTP/2 streams sent upstream over the direct path's HTTP/1.1 sockets: a stream that
//! carries no body (a `GET` or a `HEAD`, most of what browsers send) goes to a plain or an
//! `https` upstream that speaks HTTP/1.1 without hyper's client — no connection task and no
//! channel per request, the same pools as the direct path ([`Wire`]). Its response comes
//! back as a hyper response whose body ([`UpstreamBody`]) reads the socket, decodes the
//! framing, and gives the socket back to its pool once the body ended exactly on its
//! boundary. Any other stream keeps hyper's client.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, COOKIE};
use http::{request, Method, Response, StatusCode, Version};

use super::message::{
    push_header, BadLength, ChunkedScanner, Framing, Kind, ResponseFraming, MAX_HEADERS,
};
use super::wire::{SendError, Wire};
use crate::policy::Decision;
use crate::proxy::context::Proxy;
use crate::proxy::upstream::{Connector, Slot, UpstreamError};

/// The largest response head read (as the direct path's).
const MAX_HEAD: usize = 64 * 1024;
/// What one read of the response body asks for.
const READ: usize = 16 * 1024;

/// Whether a request of hyper's path goes upstream here: an HTTP/2 stream with no body,
/// `GET` or `HEAD`, to an upstream not known to choose h2.
pub fn takes_stream<B: http_body::Body>(
    proxy: &Proxy,
    request: &http::Request<B>,
    tls_name: Option<&str>,
    port: u16,
) -> bool {
    request.version() == Version::HTTP_2
        && request.body().is_end_stream()
        && (request.method() == Method::GET || request.method() == Method::HEAD)
        && !tls_name.is_some_and(|name| proxy.connector.chose_h2(name, port))
}

/// Sends the request `head` (its headers as the upstream gets them) to the first checked
/// address that takes it — over a pooled socket when there is one, a new one when that
/// one turns out closed — and reads the final response head.
pub async fn send_stream(
    proxy: &Arc<Proxy>,
    decision: &Decision,
    port: u16,
    tls_name: Option<&Arc<str>>,
    head: &request::Parts,
) -> Result<(Response<UpstreamBody>, SocketAddr), UpstreamError> {
    let out = request_head(head);
    let to_head = head.method == Method::HEAD;
    let connector = &proxy.connector;
    let pooled = decision.connect.iter().find_map(|ip| {
        let addr = SocketAddr::new(*ip, port);
        Wire::take(connector, addr, tls_name).map(|(w, slot)| (w, slot, addr))
    });
    if let Some((mut wire, slot, addr)) = pooled {
        match round_trip(connector, &mut wire, &out, true).await {
            Ok(read) => return respond(connector, wire, slot, addr, tls_name, read, to_head),
            // GET and HEAD can be sent again: on a new connection.
            Err(SendError::Stale) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let started = Instant::now();
    // Boxed: a new connection (a TLS handshake) is the rare case on a stream, and its
    // future would otherwise size every stream's.
    let (mut wire, addr, slot) =
        Box::pin(Wire::connect(connector, &decision.connect, port, tls_name)).await?;
    proxy.metrics.observe_connect(started.elapsed());
    let read = round_trip(connector, &mut wire, &out, false).await?;
    respond(connector, wire, slot, addr, tls_name, read, to_head)
}

/// The HTTP/1.1 request head of `head`. The cookie crumbs an HTTP/2 client may send as
/// several fields are joined into one (RFC 9113, 8.2.3).
fn request_head(head: &request::Parts) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    let target = head.uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &head.headers {
        if name != COOKIE {
            push_header(&mut out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    let mut cookies = head.headers.get_all(COOKIE).iter();
    if let Some(first) = cookies.next() {
        out.extend_from_slice(b"cookie: ");
        out.extend_from_slice(first.as_bytes());
        for crumb in cookies {
            out.extend_from_slice(b"; ");
            out.extend_from_slice(crumb.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A final response head as read, and the bytes read after it (the body's first).
struct HeadRead {
    head: Bytes,
    rest: BytesMut,
}

/// Writes the request and reads up to the end of the final response head, within the
/// upstream response timeout.
async fn round_trip(
    connector: &Connector,
    wire: &mut Wire,
    out: &[u8],
    reused: bool,
) -> Result<HeadRead, SendError> {
    wire.send_request(out, reused).await?;
    let mut rest = BytesMut::with_capacity(4096);
    let read = wire.read_head(&mut rest, MAX_HEAD, reused);
    let len = tokio::time::timeout(connector.settings().response_timeout, read)
        .await
        .map_err(|_| SendError::Failed(UpstreamError::ResponseTimeout))??;
    // Frozen: the response's header values are slices of it, not copies.
    let head = rest.split_to(len).freeze();
    Ok(HeadRead { head, rest })
}

/// The response whose head `read` holds, its body to come from `wire` (after `read.rest`).
fn respond(
    connector: &Arc<Connector>,
    wire: Wire,
    slot: Slot,
    addr: SocketAddr,
    tls_name: Option<&Arc<str>>,
    read: HeadRead,
    to_head: bool,
) -> Result<(Response<UpstreamBody>, SocketAddr), UpstreamError> {
    let HeadRead { head: raw, rest } = read;
    let broken = |why: &str| UpstreamError::Broken(format!("bad response head: {why}"));
    let (head, shape) = {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(&raw) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(broken("incomplete")),
            Err(e) => return Err(broken(&e.to_string())),
        };
        let code = parsed.code.unwrap_or(0);
        if code == 101 {
            return Err(broken("101 to a request without upgrade"));
        }
        let status = StatusCode::from_u16(code).map_err(|_| broken("status"))?;
        let mut facts = ResponseFraming::default();
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = Version::HTTP_11;
        let map = response.headers_mut();
        map.reserve(parsed.headers.len());
        for h in parsed.headers.iter() {
            facts.note(Kind::of(h.name), h.value).map_err(|e| match e {
                BadLength::Invalid => broken("length"),
                BadLength::Conflicting => broken("two lengths"),
            })?;
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| broken("name"))?;
            let value = HeaderValue::from_maybe_shared(raw.slice_ref(h.value))
                .map_err(|_| broken("value"))?;
            map.append(name, value);
        }
        let framing = facts.framing(to_head, code);
        if facts.has_transfer_coding() {
            // The length, if any, is not the body's: the chunks say it.
            map.remove(http::header::CONTENT_LENGTH);
        }
        let close = parsed.version != Some(1) || facts.close;
        let reusable = !close && framing != Framing::UntilClose;
        (response, (framing, reusable))
    };
    let (framing, reusable) = shape;
    let body = UpstreamBody {
        wire: Some((wire, slot)),
        buf: rest,
        framing,
        left: match framing {
            Framing::Length(n) => n,
            _ => 0,
        },
        chunks: ChunkedScanner::default(),
        ready: VecDeque::new(),
        home: Home {
            connector: connector.clone(),
            addr,
            tls_name: tls_name.cloned(),
        },
        reusable,
        ended: false,
    };
    Ok((head.map(|()| body), addr))
}

/// Where a socket goes back once its response body ended cleanly.
struct Home {
    connector: Arc<Connector>,
    addr: SocketAddr,
    tls_name: Option<Arc<str>>,
}

/// A response body read from an upstream HTTP/1.1 socket and decoded (chunk framing out).
pub struct UpstreamBody {
    /// The socket, with its place under the per-address cap, until the body ends.
    wire: Option<(Wire, Slot)>,
    /// Bytes read and not decoded yet.
    buf: BytesMut,
    framing: Framing,
    /// `Framing::Length`: the bytes still to come.
    left: u64,
    chunks: ChunkedScanner,
    /// Decoded data not handed out yet (a read can hold several chunks).
    ready: VecDeque<Bytes>,
    home: Home,
    /// The upstream keeps the connection open after this response.
    reusable: bool,
    ended: bool,
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("framing", &self.framing)
            .field("ended", &self.ended)
            .finish()
    }
}

/// Why an upstream response body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyCut {
    #[error("the upstream closed before the end of the body")]
    Closed,
    #[error("malformed chunked body from the upstream")]
    Chunks,
    #[error("reading the upstream body failed: {0}")]
    Io(#[from] std::io::Error),
}

impl UpstreamBody {
    /// The body ended: its socket goes home if it ended exactly on its boundary.
    fn end(&mut self) {
        self.ended = true;
        if let Some((wire, slot)) = self.wire.take() {
            if self.reusable && self.buf.is_empty() {
                let home = &self.home;
                wire.put_back(&home.connector, home.addr, home.tls_name.as_ref(), slot);
            }
        }
    }

    /// The body stops short, or at a close that delimits it: the socket is closed, never
    /// pooled.
    fn stop(&mut self) {
        self.ended = true;
        self.wire = None;
    }

    /// Decodes what `buf` holds; `Some` data when there is some to hand out.
    fn decode(&mut self) -> Result<Option<Bytes>, BodyCut> {
        if let Some(data) = self.ready.pop_front() {
            return Ok(Some(data));
        }
        match self.framing {
            Framing::Length(_) => {
                let take = self
                    .buf
                    .len()
                    .min(usize::try_from(self.left).unwrap_or(usize::MAX));
                self.left -= take as u64;
                let data = self.buf.split_to(take).freeze();
                if self.left == 0 {
                    self.end();
                }
                Ok((!data.is_empty()).then_some(data))
            }
            Framing::UntilClose => Ok((!self.buf.is_empty()).then(|| self.buf.split().freeze())),
            Framing::Chunked => {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let mut spans = Vec::new();
                let used = self
                    .chunks
                    .feed_spans(&self.buf, |span| spans.push(span))
                    .map_err(|_| BodyCut::Chunks)?;
                let piece = self.buf.split_to(used).freeze();
                self.ready
                    .extend(spans.into_iter().map(|span| piece.slice(span)));
                if self.chunks.is_done() {
                    self.end();
                }
                Ok(self.ready.pop_front())
            }
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyCut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BodyCut>>> {
        let this = self.get_mut();
        loop {
            match this.decode() {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(http_body::Frame::data(data)))),
                Ok(None) if this.ended => return Poll::Ready(None),
                Ok(None) => {}
                Err(e) => {
                    this.stop();
                    return Poll::Ready(Some(Err(e)));
                }
            }
            let Some((wire, _)) = this.wire.as_mut() else {
                return Poll::Ready(None);
            };
            this.buf.reserve(READ);
            match tokio_util::io::poll_read_buf(Pin::new(wire), cx, &mut this.buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    this.stop();
                    if this.framing == Framing::UntilClose {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(BodyCut::Closed)));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    this.stop();
                    return Poll::Ready(Some(Err(BodyCut::Io(e))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || (self.framing == Framing::Length(0))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.framing {
            Framing::Length(_) => http_body::SizeHint::with_exact(self.left),
            _ => http_body::SizeHint::default(),
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // A body with nothing to read (a HEAD, a 204) may be dropped without being polled.
        if !self.ended && self.framing == Framing::Length(0) {
            self.end();
        }
    }
}
