//! A tunnel's bytes, both ways, once its first bytes are judged: a plain TCP client is
//! relayed by `splice::relay_bidirectional` on Linux (copied while short, spliced once
//! long), any other stream copied; each way counted as it is delivered, so that a tunnel
//! an error ends still says what it moved — the numbers the byte metrics and the
//! CONNECT's end record get.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{judge, Judged, Opened, TunnelEnd};
use crate::proxy::context::Proxy;
use crate::proxy::TUNNEL_BUFFER;

/// What a tunnel moved, to its close or to the error that ended it.
#[derive(Debug, Default)]
pub struct Moved {
    /// Bytes from the client delivered upstream (its first bytes included).
    pub sent: u64,
    /// Bytes from the upstream delivered to the client.
    pub received: u64,
    /// The error that ended the tunnel, if one did.
    pub error: Option<std::io::Error>,
}

/// Forwards the judged first bytes, then relays the tunnel (spliced on Linux, short ones
/// copied first), counting what crosses each way.
pub async fn relay_tcp(client: TcpStream, first: Vec<u8>, mut upstream: TcpStream) -> Moved {
    let first_len = first.len() as u64;
    if !first.is_empty() {
        if let Err(e) = upstream.write_all(&first).await {
            return Moved {
                error: Some(e),
                ..Moved::default()
            };
        }
    }
    // Both sockets have TCP_NODELAY already (the listener's, the connector's).
    drop(first); // not held by a tunnel that then waits
    #[cfg(target_os = "linux")]
    let mut moved = crate::proxy::splice::relay_bidirectional(client, upstream).await;
    #[cfg(not(target_os = "linux"))]
    let mut moved = {
        let mut client = client;
        copy_counted(&mut client, &mut upstream).await
    };
    moved.sent += first_len;
    moved
}

/// A CONNECT tunnel answered `200` on hyper's path: its first bytes judged
/// (`tunnel::judge`), then relayed. On Linux, when the client is a plain TCP socket, the
/// bytes are relayed by `tunnel::relay_tcp` after the ones the client sent behind its
/// CONNECT head; otherwise they are copied by [`copy_counted`]. Returns how it ended.
pub async fn connect_tunnel(
    upgraded: hyper::upgrade::Upgraded,
    upstream: tokio::net::TcpStream,
    proxy: &Proxy,
    opened: &Opened<'_>,
) -> TunnelEnd {
    // hyper-util's auto builder wraps the IO in a private type: its own downcast unwraps
    // it. The forward listener hands hyper its socket behind a `Rewind` (the bytes the
    // direct path read first), whose unread rest is early bytes too.
    #[cfg(target_os = "linux")]
    let upgraded = {
        use hyper_util::rt::TokioIo;
        use hyper_util::server::conn::auto::upgrade::downcast;
        use tokio::net::TcpStream;
        let plain = match downcast::<TokioIo<crate::proxy::h1::Rewind<TcpStream>>>(upgraded) {
            Ok(parts) => {
                let (mut early, client) = parts.io.into_inner().into_parts();
                early.splice(0..0, parts.read_buf.iter().copied());
                Ok((client, early))
            }
            Err(upgraded) => match downcast::<TokioIo<TcpStream>>(upgraded) {
                Ok(parts) => Ok((parts.io.into_inner(), parts.read_buf.to_vec())),
                Err(upgraded) => Err(upgraded),
            },
        };
        match plain {
            Ok((client, early)) => return tunnel_tcp(proxy, opened, client, early, upstream).await,
            Err(upgraded) => upgraded,
        }
    };
    let mut client = hyper_util::rt::TokioIo::new(upgraded);
    let mut first = Vec::new();
    let judged = judge(proxy, opened, &mut client, &upstream, &mut first).await;
    if !judged.pass {
        return TunnelEnd::refused(judged);
    }
    let mut upstream = upstream;
    let moved = match tokio::io::AsyncWriteExt::write_all(&mut upstream, &first).await {
        Ok(()) => {
            let mut moved = copy_counted(&mut client, &mut upstream).await;
            moved.sent += first.len() as u64;
            moved
        }
        Err(e) => Moved {
            error: Some(e),
            ..Moved::default()
        },
    };
    relayed(proxy, opened, judged, moved)
}

/// A tunnel whose client is a plain TCP socket, `early` the bytes it sent behind its
/// CONNECT head: judged, then relayed and counted. Returns how it ended.
pub async fn tunnel_tcp(
    proxy: &Proxy,
    opened: &Opened<'_>,
    mut client: tokio::net::TcpStream,
    mut early: Vec<u8>,
    upstream: tokio::net::TcpStream,
) -> TunnelEnd {
    let judged = judge(proxy, opened, &mut client, &upstream, &mut early).await;
    if !judged.pass {
        return TunnelEnd::refused(judged);
    }
    let moved = relay_tcp(client, early, upstream).await;
    relayed(proxy, opened, judged, moved)
}

/// The end of a relayed tunnel: its bytes counted in the metrics (the numbers its end
/// record carries), an error that ended it in the debug log.
fn relayed(proxy: &Proxy, opened: &Opened<'_>, judged: Judged, moved: Moved) -> TunnelEnd {
    proxy
        .metrics
        .observe_bytes(opened.decision, moved.sent, moved.received);
    if let Some(e) = &moved.error {
        tracing::debug!(request_id = opened.request_id, error = %e, "tunnel ended with an error");
    }
    TunnelEnd {
        sent: moved.sent,
        received: moved.received,
        first_bytes: judged.first_bytes,
    }
}

/// Copies both ways between a client and an upstream until either side closes (an
/// upgraded WebSocket), then counts the bytes that crossed.
pub async fn tunnel<C, U>(
    mut client: C,
    mut upstream: U,
    metrics: &crate::metrics::Metrics,
    decision: &crate::policy::Decision,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let moved = copy_counted(&mut client, &mut upstream).await;
    metrics.observe_bytes(decision, moved.sent, moved.received);
    if let Some(e) = moved.error {
        tracing::debug!(error = %e, "tunnel ended with an error");
    }
}

/// Copies both ways (tokio's `copy_bidirectional`, [`TUNNEL_BUFFER`] each way) until both
/// directions end, counting the client's bytes as they are read and written, so that an
/// error that ends the copy still leaves the counts.
pub async fn copy_counted<C, U>(client: &mut C, upstream: &mut U) -> Moved
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut counted = Counted {
        io: client,
        read: 0,
        written: 0,
    };
    let copied = tokio::io::copy_bidirectional_with_sizes(
        &mut counted,
        upstream,
        TUNNEL_BUFFER,
        TUNNEL_BUFFER,
    )
    .await;
    Moved {
        sent: counted.read,
        received: counted.written,
        error: copied.err(),
    }
}

/// A stream that counts the bytes read from it and written to it.
struct Counted<'a, T> {
    io: &'a mut T,
    read: u64,
    written: u64,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<'_, T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut *self.io).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = polled {
            self.read += (buf.filled().len() - before) as u64;
        }
        polled
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<'_, T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut *self.io).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = polled {
            self.written += n as u64;
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.io).poll_shutdown(cx)
    }
}
