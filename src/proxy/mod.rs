//! The proxy: forward listener (CONNECT and absolute-form), reverse listeners (TLS routes),
//! the upstream connector that dials only checked addresses, and the responses.

pub mod body;
pub mod context;
pub mod forward;
pub mod headers;
pub mod respond;
pub mod reverse;
pub mod server;
pub mod upstream;

/// The copy buffer of each direction of a tunnel (CONNECT, WebSocket): large enough that a
/// bulk transfer costs few system calls (tokio's default is 8 KiB).
pub const TUNNEL_BUFFER: usize = 64 * 1024;
