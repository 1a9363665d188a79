//! The proxy: forward listener (CONNECT and absolute-form), reverse listeners (TLS routes),
//! the upstream connector that dials only checked addresses, and the responses.

pub mod body;
pub mod context;
pub mod forward;
pub mod headers;
pub mod respond;
pub mod reverse;
pub mod server;
#[cfg(target_os = "linux")]
pub mod splice;
pub mod upstream;

/// The copy buffer of each direction of a tunnel (CONNECT, WebSocket): large enough that a
/// bulk transfer costs few system calls (tokio's default is 8 KiB).
pub const TUNNEL_BUFFER: usize = 64 * 1024;

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
