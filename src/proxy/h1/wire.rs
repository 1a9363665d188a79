//! The direct path's upstream connection: a bare TCP socket for a plain-HTTP upstream, or a
//! TLS stream (verified against the upstream's name, session resumed when the upstream
//! allows) for an `https` upstream that chose HTTP/1.1 — taken from and given back to the
//! connector's pools, keyed by checked address (and TLS name).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::message::head_end;
use super::response::is_informational;
use crate::proxy::upstream::{Connector, PoolKey, Slot, TlsUpstream, UpstreamError};

/// Why a request got no response head on a connection.
pub(super) enum SendError {
    /// Nothing came back on a reused connection: it may have been closed while idle (a
    /// request that can be sent again goes on a new one).
    Stale,
    Failed(UpstreamError),
}

impl From<SendError> for UpstreamError {
    fn from(e: SendError) -> UpstreamError {
        match e {
            SendError::Stale => {
                UpstreamError::Broken("the connection closed before answering".into())
            }
            SendError::Failed(e) => e,
        }
    }
}

/// A buffer a response head is read into: the direct path's lent `Vec`, an HTTP/2 stream's
/// `BytesMut` (its body's bytes follow in it).
pub(super) trait HeadBuf: BufMut + AsRef<[u8]> + Send {
    /// Drops the first `n` bytes (an informational head).
    fn consume(&mut self, n: usize);
    /// Room for the next read when the buffer is full.
    fn make_room(&mut self);
}

impl HeadBuf for Vec<u8> {
    fn consume(&mut self, n: usize) {
        self.drain(..n);
    }

    fn make_room(&mut self) {
        if self.len() == self.capacity() {
            self.reserve(4096);
        }
    }
}

impl HeadBuf for BytesMut {
    fn consume(&mut self, n: usize) {
        self.advance(n);
    }

    fn make_room(&mut self) {
        if self.len() == self.capacity() {
            self.reserve(4096);
        }
    }
}

/// One upstream connection of the direct path.
pub(super) enum Wire {
    Plain(TcpStream),
    Tls(TlsUpstream),
}

impl Wire {
    /// An idle pooled connection to `addr` (for `tls_name` when the upstream is `https`).
    pub(super) fn take(
        connector: &Connector,
        addr: SocketAddr,
        tls_name: Option<&Arc<str>>,
    ) -> Option<(Wire, Slot)> {
        match tls_name {
            None => connector
                .take_tcp(addr)
                .map(|(s, slot)| (Wire::Plain(s), slot)),
            Some(name) => connector
                .take_tls(&key(addr, name))
                .map(|(s, slot)| (Wire::Tls(s), slot)),
        }
    }

    /// A new connection to the first of the checked `addrs` that takes one.
    pub(super) async fn connect(
        connector: &Connector,
        addrs: &[IpAddr],
        port: u16,
        tls_name: Option<&Arc<str>>,
    ) -> Result<(Wire, SocketAddr, Slot), UpstreamError> {
        match tls_name {
            None => {
                let (s, addr, slot) = connector.connect_tcp(addrs, port).await?;
                Ok((Wire::Plain(s), addr, slot))
            }
            Some(name) => {
                let (s, addr, slot) = connector.connect_tls(addrs, port, name).await?;
                Ok((Wire::Tls(s), addr, slot))
            }
        }
    }

    /// Gives the connection back to its pool once an exchange ended cleanly on it.
    pub(super) fn put_back(
        self,
        connector: &Connector,
        addr: SocketAddr,
        tls_name: Option<&Arc<str>>,
        slot: Slot,
    ) {
        match (self, tls_name) {
            (Wire::Plain(s), _) => connector.put_back_tcp(addr, s, slot),
            (Wire::Tls(s), Some(name)) => connector.put_back_tls(key(addr, name), s, slot),
            (Wire::Tls(_), None) => {}
        }
    }
}

impl Wire {
    /// Writes a request (a TLS session's pending bytes flushed). A reused connection that
    /// fails here is `Stale`.
    pub(super) async fn send_request(
        &mut self,
        request: &[u8],
        reused: bool,
    ) -> Result<(), SendError> {
        let sent = async {
            self.write_all(request).await?;
            self.flush().await
        };
        sent.await.map_err(|e| stale_or(e, reused))
    }

    /// Reads up to the end of the final response head into `buf` (empty at the start);
    /// 1xx informational heads on the way are dropped (douane sends no `Expect`). Returns
    /// the head's length; the bytes after it stay in `buf`. A head longer than `max` fails.
    pub(super) async fn read_head<B: HeadBuf>(
        &mut self,
        buf: &mut B,
        max: usize,
        reused: bool,
    ) -> Result<usize, SendError> {
        let mut scanned = 0;
        loop {
            if let Some(end) = head_end(buf.as_ref(), scanned) {
                if is_informational(buf.as_ref()) {
                    buf.consume(end);
                    scanned = 0;
                    continue;
                }
                return Ok(end);
            }
            let len = buf.as_ref().len();
            scanned = len;
            if len >= max {
                return Err(SendError::Failed(UpstreamError::Broken(
                    "response head too large".into(),
                )));
            }
            buf.make_room();
            match self.read_buf(buf).await {
                Ok(0) if reused && len == 0 => return Err(SendError::Stale),
                Ok(0) => {
                    return Err(SendError::Failed(UpstreamError::Broken(
                        "closed before a whole response head".into(),
                    )))
                }
                Ok(_) => {}
                Err(e) if len == 0 => return Err(stale_or(e, reused)),
                Err(e) => return Err(SendError::Failed(UpstreamError::Broken(e.to_string()))),
            }
        }
    }
}

/// A failure before any answer: stale on a reused connection, else broken.
fn stale_or(e: io::Error, reused: bool) -> SendError {
    if reused {
        SendError::Stale
    } else {
        SendError::Failed(UpstreamError::Broken(e.to_string()))
    }
}

fn key(addr: SocketAddr, name: &Arc<str>) -> PoolKey {
    PoolKey {
        addr,
        tls_name: Some(name.clone()),
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Wire::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Wire::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_flush(cx),
            Wire::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Wire::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}
