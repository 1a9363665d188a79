//! The proxy: forward listener (CONNECT and absolute-form), reverse listeners (TLS routes),
//! the upstream connector that dials only checked addresses, and the responses. One request's
//! life on both HTTP engines, accept to `finish`, is drawn in `LIFECYCLE.md` beside this file.

pub mod body;
pub mod buffers;
pub mod context;
pub mod exchange;
pub mod forward;
pub mod forwarding;
pub mod h1;
pub mod headers;
pub mod intercept;
pub mod respond;
pub mod reverse;
pub mod server;
#[cfg(target_os = "linux")]
pub mod splice;
pub mod tunnel;
pub mod upstream;

/// The copy buffer of each direction of a tunnel (CONNECT, WebSocket): large enough that a
/// bulk transfer costs few system calls (tokio's default is 8 KiB).
pub const TUNNEL_BUFFER: usize = 64 * 1024;

/// A CONNECT tunnel answered `200` on hyper's path: its first bytes judged
/// (`tunnel::judge`), then relayed. On Linux, when the client is a plain TCP socket, the
/// bytes are relayed by `tunnel::relay_tcp` after the ones the client sent behind its
/// CONNECT head; otherwise they are copied by `tunnel`.
pub async fn connect_tunnel(
    upgraded: hyper::upgrade::Upgraded,
    upstream: tokio::net::TcpStream,
    proxy: &context::Proxy,
    opened: &tunnel::Opened<'_>,
    decision: &crate::policy::Decision,
) {
    // hyper-util's auto builder wraps the IO in a private type: its own downcast unwraps
    // it. The forward listener hands hyper its socket behind a `Rewind` (the bytes the
    // direct path read first), whose unread rest is early bytes too.
    #[cfg(target_os = "linux")]
    let upgraded = {
        use hyper_util::rt::TokioIo;
        use hyper_util::server::conn::auto::upgrade::downcast;
        use tokio::net::TcpStream;
        let plain = match downcast::<TokioIo<h1::Rewind<TcpStream>>>(upgraded) {
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
            Ok((client, early)) => {
                return tunnel_tcp(proxy, opened, client, early, upstream, decision).await
            }
            Err(upgraded) => upgraded,
        }
    };
    let mut client = hyper_util::rt::TokioIo::new(upgraded);
    let mut first = Vec::new();
    let judged = tunnel::judge(proxy, opened, &mut client, &upstream, &mut first).await;
    if let tunnel::Judged::Refused = judged {
        return;
    }
    let mut upstream = upstream;
    if tokio::io::AsyncWriteExt::write_all(&mut upstream, &first)
        .await
        .is_err()
    {
        return;
    }
    tunnel(client, upstream, &proxy.metrics, decision).await
}

/// A tunnel whose client is a plain TCP socket, `early` the bytes it sent behind its
/// CONNECT head: judged, then relayed and counted.
pub async fn tunnel_tcp(
    proxy: &context::Proxy,
    opened: &tunnel::Opened<'_>,
    mut client: tokio::net::TcpStream,
    mut early: Vec<u8>,
    upstream: tokio::net::TcpStream,
    decision: &crate::policy::Decision,
) {
    let judged = tunnel::judge(proxy, opened, &mut client, &upstream, &mut early).await;
    if let tunnel::Judged::Refused = judged {
        return;
    }
    match tunnel::relay_tcp(client, &early, upstream).await {
        Ok((sent, received)) => proxy.metrics.observe_bytes(decision, sent, received),
        Err(e) => tracing::debug!(error = %e, "tunnel ended with an error"),
    }
}

/// Copies both ways between a client and an upstream until either side closes (a CONNECT
/// tunnel, an upgraded WebSocket), then counts the bytes that crossed.
pub async fn tunnel<C, U>(
    mut client: C,
    mut upstream: U,
    metrics: &crate::metrics::Metrics,
    decision: &crate::policy::Decision,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let copied = tokio::io::copy_bidirectional_with_sizes(
        &mut client,
        &mut upstream,
        TUNNEL_BUFFER,
        TUNNEL_BUFFER,
    )
    .await;
    match copied {
        Ok((sent, received)) => metrics.observe_bytes(decision, sent, received),
        Err(e) => tracing::debug!(error = %e, "tunnel ended with an error"),
    }
}
