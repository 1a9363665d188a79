//! The direct path's upstream connection: a bare TCP socket for a plain-HTTP upstream, or a
//! TLS stream (verified against the upstream's name, session resumed when the upstream
//! allows) for an `https` upstream that chose HTTP/1.1 — taken from and given back to the
//! connector's pools, keyed by checked address (and TLS name).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::proxy::upstream::{Connector, PoolKey, Slot, TlsUpstream, UpstreamError};

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
