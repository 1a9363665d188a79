//! The direct HTTP/1.1 path of reverse listeners: the common request — a complete head, no
//! upgrade, its body (if any) already read, a route to a plain-HTTP upstream, allowed — is
//! served without hyper, over bare pooled upstream sockets, in the client connection's own
//! task. Whatever else (HTTP/2, upgrades, streamed or chunked request bodies, blocks,
//! monitor mode, TLS upstreams, malformed requests) is handed, with the connection and the
//! bytes already read, to the hyper path, which answers it exactly as before. Requests on
//! the direct path are decided, rewritten, logged, measured and recorded as on hyper's.

mod message;
mod plan;
#[cfg(test)]
mod props;
mod request;
mod response;
mod rewind;
mod serve;

pub use plan::{ForwardConnection, Site};
pub use rewind::Rewind;
pub use serve::{serve, tls_on_proxy_port, DirectLimits, Served, TLS_HANDSHAKE};
