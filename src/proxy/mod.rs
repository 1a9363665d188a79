//! The proxy: forward listener (CONNECT and absolute-form), reverse listeners (TLS routes),
//! the upstream connector that dials only checked addresses, and the responses. One request's
//! life on both HTTP engines, accept to `finish`, is drawn in `LIFECYCLE.md` beside this file.

pub mod body;
pub mod buffers;
pub mod connect;
pub mod context;
pub mod exchange;
pub mod forward;
pub mod forwarding;
pub mod h1;
pub mod headers;
pub mod intercept;
pub mod readiness;
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

pub use tunnel::{connect_tunnel, copy_counted, tunnel, tunnel_tcp};
