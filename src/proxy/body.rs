//! The one body type the proxy sends: nothing, a small buffer, or a stream passed through
//! from the other side. An enum rather than a boxed trait object, so that passing a body
//! through costs no allocation.

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

use super::upstream::{Connector, PoolKey, Sender};
use crate::metrics::Metrics;
use crate::policy::{Decision, Outcome};

#[derive(Debug)]
pub enum ProxyBody {
    Empty,
    Full(Option<Bytes>),
    /// A request body passed through, its bytes counted when the request is exposed, and
    /// failed when it sends nothing for too long.
    Stream(Incoming, Option<Arc<ExposureTally>>, Stall),
    /// An upstream response body: once it has been read to the end, its connection goes
    /// back to the pool.
    Upstream(Incoming, Option<PoolReturn>, Option<Arc<ExposureTally>>),
}

/// Why a body douane passes through failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
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

/// The bytes of an exposed request (let through in monitor mode or by an exemption), sent
/// and received through its bodies; recorded in the exposure metrics once both bodies are
/// gone. Requests that were simply allowed carry none: they cost nothing to count.
pub struct ExposureTally {
    metrics: Arc<Metrics>,
    decision: Decision,
    sent: AtomicU64,
    received: AtomicU64,
}

impl std::fmt::Debug for ExposureTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExposureTally")
            .field("sent", &self.sent)
            .field("received", &self.received)
            .finish()
    }
}

impl ExposureTally {
    /// A tally for a decision that may carry exposure, `None` otherwise.
    pub fn for_decision(metrics: &Arc<Metrics>, decision: &Decision) -> Option<Arc<Self>> {
        matches!(decision.outcome, Outcome::WouldBlock | Outcome::Exempt).then(|| {
            Arc::new(ExposureTally {
                metrics: metrics.clone(),
                decision: decision.clone(),
                sent: AtomicU64::new(0),
                received: AtomicU64::new(0),
            })
        })
    }
}

impl Drop for ExposureTally {
    fn drop(&mut self) {
        self.metrics.observe_bytes(
            &self.decision,
            *self.sent.get_mut(),
            *self.received.get_mut(),
        );
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

    /// A request body on its way upstream, counted as sent when `tally` is given, failed
    /// after `stall` without a frame.
    pub fn request(body: Incoming, tally: Option<Arc<ExposureTally>>, stall: Duration) -> Self {
        ProxyBody::Stream(body, tally, Stall::new(stall))
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
            ProxyBody::Stream(inner, tally, stall) => {
                let polled = Pin::new(inner).poll_frame(cx);
                if polled.is_pending() {
                    if stall.expired(cx) {
                        return Poll::Ready(Some(Err(BodyError::Stalled(stall.timeout))));
                    }
                    return Poll::Pending;
                }
                stall.armed = false;
                if let (Some(tally), Poll::Ready(Some(Ok(frame)))) = (tally, &polled) {
                    if let Some(data) = frame.data_ref() {
                        tally
                            .sent
                            .fetch_add(data.remaining() as u64, Ordering::Relaxed);
                    }
                }
                polled.map(|f| f.map(|r| r.map_err(BodyError::Hyper)))
            }
            ProxyBody::Upstream(inner, ret, tally) => {
                let polled = Pin::new(inner).poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let (Some(tally), Some(data)) = (tally, frame.data_ref()) {
                            tally
                                .received
                                .fetch_add(data.remaining() as u64, Ordering::Relaxed);
                        }
                    }
                    Poll::Ready(None) => {
                        if let Some(ret) = ret.take() {
                            ret.give_back();
                        }
                    }
                    _ => {}
                }
                polled.map(|f| f.map(|r| r.map_err(BodyError::Hyper)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Full(bytes) => bytes.is_none(),
            ProxyBody::Stream(inner, ..) | ProxyBody::Upstream(inner, ..) => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ProxyBody::Stream(inner, ..) | ProxyBody::Upstream(inner, ..) => inner.size_hint(),
        }
    }
}
