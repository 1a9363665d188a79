//! The one body type the proxy sends: nothing, a small buffer, or a stream passed through
//! from the other side. An enum rather than a boxed trait object, so that passing a body
//! through costs no allocation.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::upstream::{Connector, PoolKey, Sender};

#[derive(Debug)]
pub enum ProxyBody {
    Empty,
    Full(Option<Bytes>),
    Stream(Incoming),
    /// An upstream response body: once it has been read to the end, its connection goes
    /// back to the pool.
    Upstream(Incoming, Option<PoolReturn>),
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

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // A body that hyper never polled to its end (e.g. empty) can still be complete.
        if let ProxyBody::Upstream(inner, ret) = self {
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
}

impl From<Incoming> for ProxyBody {
    fn from(body: Incoming) -> Self {
        ProxyBody::Stream(body)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Empty => Poll::Ready(None),
            ProxyBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Stream(inner) => Pin::new(inner).poll_frame(cx),
            ProxyBody::Upstream(inner, ret) => {
                let polled = Pin::new(inner).poll_frame(cx);
                if let Poll::Ready(None) = polled {
                    if let Some(ret) = ret.take() {
                        ret.give_back();
                    }
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Full(bytes) => bytes.is_none(),
            ProxyBody::Stream(inner) | ProxyBody::Upstream(inner, _) => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ProxyBody::Stream(inner) | ProxyBody::Upstream(inner, _) => inner.size_hint(),
        }
    }
}
