//! The one body type the proxy sends: nothing, a small buffer, or a stream passed through
//! from the other side. An enum rather than a boxed trait object, so that passing a body
//! through costs no allocation. On hyper's path the bodies also count a request's bytes
//! both ways, and its response body holds the request's exit ([`Exit`]): `finish` runs once
//! that body is done (relayed, or dropped when the client went away), with the bytes.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Sleep;

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::context::{Proxy, RequestFacts, RequestId};
use super::exchange::{Life, RequestEnd};
use super::h1::{BodyCut, UpstreamBody};
use super::upstream::{Connector, PoolKey, Sender};
use crate::policy::{Decision, Outcome};
use crate::resolve::Destination;

#[derive(Debug)]
pub enum ProxyBody {
    Empty,
    Full(Option<Bytes>),
    /// A request body passed through, its bytes counted, and failed when it sends nothing
    /// for too long.
    Stream(Incoming, Arc<AtomicU64>, Stall),
    /// An upstream response body: once it has been read to the end, its connection goes
    /// back to the pool; its bytes are counted, and its request finished when it is done.
    Upstream(Incoming, Option<PoolReturn>, Tally),
    /// An upstream response body read by douane from a direct-path socket (an HTTP/2
    /// stream's, `h1::client`): the socket goes home at its end; counted and finished as
    /// `Upstream`.
    Direct(Box<UpstreamBody>, Tally),
}

/// Why a body douane passes through failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    #[error(transparent)]
    Upstream(#[from] BodyCut),
    /// The client's request body sent nothing for this long.
    #[error("the request body sent nothing for {0:?}")]
    Stalled(Duration),
}

/// The deadline of a request body that waits: made the first time it waits (a body that
/// is all there costs no timer), pushed back by every frame.
#[derive(Debug)]
pub struct Stall {
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Stall {
    pub fn new(timeout: Duration) -> Stall {
        Stall {
            timeout,
            sleep: None,
            armed: false,
        }
    }

    /// `true` when the body has waited past its deadline.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.armed {
            sleep.as_mut().reset(deadline);
            self.armed = true;
        }
        sleep.as_mut().poll(cx).is_ready()
    }
}

/// A pooled connection waiting for its response body to end.
pub struct PoolReturn {
    pub connector: Arc<Connector>,
    pub key: PoolKey,
    pub sender: Sender,
}

impl std::fmt::Debug for PoolReturn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolReturn")
            .field("key", &self.key)
            .finish()
    }
}

impl PoolReturn {
    fn give_back(self) {
        self.connector.put_back(self.key, self.sender);
    }
}

/// The bytes of one request on hyper's path: its request body's (shared with that body,
/// which the upstream connection polls) and its response body's; and its exit.
#[derive(Debug)]
pub struct Tally {
    /// `None` for a request that had no body to send.
    sent: Option<Arc<AtomicU64>>,
    received: u64,
    exit: Option<Box<Exit>>,
}

impl Tally {
    pub fn new(sent: Arc<AtomicU64>) -> Tally {
        Tally {
            sent: Some(sent),
            received: 0,
            exit: None,
        }
    }

    /// The tally of a request that sent no body (an HTTP/2 `GET` on the direct path).
    pub fn bodiless() -> Tally {
        Tally {
            sent: None,
            received: 0,
            exit: None,
        }
    }

    /// Counts the bytes of the data frame an upstream body just gave, if it gave one.
    fn count<E>(&mut self, polled: &Poll<Option<Result<Frame<Bytes>, E>>>) {
        if let Poll::Ready(Some(Ok(frame))) = polled {
            if let Some(data) = frame.data_ref() {
                self.received += data.remaining() as u64;
            }
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        if let Some(exit) = self.exit.take() {
            let sent = self.sent.as_ref().map_or(0, |s| s.load(Ordering::Relaxed));
            exit.run(sent, self.received);
        }
    }
}

/// A request's exit, owned by its response body: what `Proxy::finish` needs, kept until
/// the body is done. Its [`Life`] is the request's (handed over by [`Life::hand_over`]).
pub struct Exit {
    proxy: Arc<Proxy>,
    request_id: RequestId,
    listener: Arc<str>,
    route: Option<Arc<str>>,
    client: std::net::IpAddr,
    method: Option<Cow<'static, str>>,
    scheme: &'static str,
    destination: Destination,
    started: std::time::Instant,
    decision: Decision,
    status: u16,
    upstream: Option<std::net::SocketAddr>,
    sni: Option<Arc<str>>,
    life: Life,
}

/// A request's method, owned: the common ones without an allocation.
fn owned_method(method: &str) -> Cow<'static, str> {
    const COMMON: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    match COMMON.iter().find(|m| **m == method) {
        Some(m) => Cow::Borrowed(m),
        None => Cow::Owned(method.to_owned()),
    }
}

impl std::fmt::Debug for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exit")
            .field("request_id", &self.request_id.as_str())
            .field("status", &self.status)
            .finish()
    }
}

/// What of a request's end is known at its response head.
pub struct HeadEnd<'a> {
    pub request_id: RequestId,
    /// The listener's name, shared with its connection (`facts.listener` is the same text).
    pub listener: Arc<str>,
    pub scheme: &'static str,
    pub route: Option<Arc<str>>,
    pub end: RequestEnd<'a>,
    pub sni: Option<Arc<str>>,
}

impl Exit {
    /// The exit of `facts`, to run when the response body is done; takes over its life
    /// and its decision.
    pub fn new(
        proxy: &Arc<Proxy>,
        facts: &RequestFacts<'_>,
        decision: Decision,
        head: HeadEnd<'_>,
    ) -> Exit {
        Exit {
            proxy: proxy.clone(),
            request_id: head.request_id,
            listener: head.listener,
            route: head.route,
            client: facts.client,
            method: facts.method.map(owned_method),
            scheme: head.scheme,
            destination: facts.destination.clone(),
            started: facts.started,
            decision,
            status: head.end.status,
            upstream: head.end.upstream,
            sni: head.sni,
            life: facts.life.hand_over(),
        }
    }

    /// `finish`, with the bytes both ways; an exposed request's bytes are counted as on the
    /// direct path.
    fn run(self, sent: u64, received: u64) {
        let facts = RequestFacts {
            request_id: &self.request_id,
            listener: &self.listener,
            route: self.route.as_deref(),
            client: self.client,
            method: self.method.as_deref(),
            scheme: self.scheme,
            destination: &self.destination,
            // Path, query and asked host are in the gate record when there is one: the end
            // (log line, metrics, end record) has no use for them, and they are not copied.
            path: None,
            query: None,
            requested_host: None,
            // The gate record had the connection's SNI: the end record need not repeat it.
            sni: self.sni.as_deref(),
            started: self.started,
            life: &self.life,
        };
        let end = RequestEnd {
            status: self.status,
            upstream: self.upstream,
            sent: Some(sent),
            received: Some(received),
            duration: self.started.elapsed(),
            sni: self.sni.as_deref(),
            tunnel: None,
        };
        if self.decision.outcome != Outcome::Allow {
            self.proxy
                .metrics
                .observe_bytes(&self.decision, sent, received);
        }
        self.proxy.finish(&facts, &self.decision, &end);
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // A body that hyper never polled to its end (e.g. empty) can still be complete.
        if let ProxyBody::Upstream(inner, ret, _) = self {
            if inner.is_end_stream() {
                if let Some(ret) = ret.take() {
                    ret.give_back();
                }
            }
        }
    }
}

impl ProxyBody {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        ProxyBody::Full(Some(bytes.into()))
    }

    /// A request body on its way upstream, its bytes counted in `sent`, failed after
    /// `stall` without a frame.
    pub fn request(body: Incoming, sent: Arc<AtomicU64>, stall: Duration) -> Self {
        ProxyBody::Stream(body, sent, Stall::new(stall))
    }

    /// Gives an upstream response body its request's exit, run once the body is done; any
    /// other body runs it now (nothing more will be sent).
    pub fn finish_at_end(&mut self, exit: Exit) {
        match self {
            ProxyBody::Upstream(_, _, tally) | ProxyBody::Direct(_, tally) => {
                tally.exit = Some(Box::new(exit))
            }
            _ => exit.run(0, 0),
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ProxyBody::Empty => Poll::Ready(None),
            ProxyBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Stream(inner, sent, stall) => {
                let polled = Pin::new(inner).poll_frame(cx);
                if polled.is_pending() {
                    if stall.expired(cx) {
                        return Poll::Ready(Some(Err(BodyError::Stalled(stall.timeout))));
                    }
                    return Poll::Pending;
                }
                stall.armed = false;
                if let Poll::Ready(Some(Ok(frame))) = &polled {
                    if let Some(data) = frame.data_ref() {
                        sent.fetch_add(data.remaining() as u64, Ordering::Relaxed);
                    }
                }
                polled.map(|f| f.map(|r| r.map_err(BodyError::Hyper)))
            }
            ProxyBody::Upstream(inner, ret, tally) => {
                let polled = Pin::new(inner).poll_frame(cx);
                tally.count(&polled);
                if let Poll::Ready(None) = polled {
                    if let Some(ret) = ret.take() {
                        ret.give_back();
                    }
                }
                polled.map(|f| f.map(|r| r.map_err(BodyError::Hyper)))
            }
            ProxyBody::Direct(inner, tally) => {
                let polled = Pin::new(&mut **inner).poll_frame(cx);
                tally.count(&polled);
                polled.map(|f| f.map(|r| r.map_err(BodyError::Upstream)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Full(bytes) => bytes.is_none(),
            ProxyBody::Stream(inner, ..) | ProxyBody::Upstream(inner, ..) => inner.is_end_stream(),
            ProxyBody::Direct(inner, _) => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ProxyBody::Stream(inner, ..) | ProxyBody::Upstream(inner, ..) => inner.size_hint(),
            ProxyBody::Direct(inner, _) => inner.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_methods_are_kept_without_a_copy() {
        assert!(matches!(owned_method("GET"), Cow::Borrowed("GET")));
        assert!(matches!(owned_method("OPTIONS"), Cow::Borrowed("OPTIONS")));
        // Methods are case-sensitive (RFC 9110, 9.1): `get` is another method.
        assert!(matches!(owned_method("get"), Cow::Owned(m) if m == "get"));
        assert!(matches!(owned_method("PROPFIND"), Cow::Owned(m) if m == "PROPFIND"));
    }
}
