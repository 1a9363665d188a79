//! The direct HTTP/1.1 path of reverse listeners and the forward proxy: the common request —
//! a complete head, no upgrade, its body (if any) already read, a route to a plain-HTTP
//! upstream or to an `https` one not known to choose h2 — is decided and answered without
//! hyper, over bare pooled upstream sockets or TLS streams, in the client connection's own
//! task: allowed, monitor-mode and exempt requests are forwarded, blocks get the shared
//! block response. Whatever else (HTTP/2, upgrades, streamed or chunked request bodies,
//! `https` upstreams that chose h2, malformed requests) is handed, with
//! the connection and the bytes already read, to the hyper path — always before deciding,
//! so a request is decided once. HTTP/2 streams without a body, decided on hyper's path,
//! go upstream over the same pooled sockets (`client`). See `../LIFECYCLE.md`.

mod client;
mod connect;
mod message;
mod plan;
#[cfg(test)]
mod props;
mod request;
mod response;
mod rewind;
mod serve;
mod watch;
mod wire;

pub use client::{send_stream, takes_stream, BodyCut, UpstreamBody};
pub use connect::serve_connect;
pub use plan::{ForwardConnection, Site};
pub use rewind::Rewind;
pub use serve::{serve, tls_on_proxy_port, DirectLimits, Served, TLS_HANDSHAKE};
pub use watch::{AmbiguousFraming, FramingVerdict};
