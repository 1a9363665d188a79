//! The proxy: forward listener (CONNECT and absolute-form), reverse listeners (TLS routes),
//! the upstream connector that dials only checked addresses, and the responses.

pub mod body;
pub mod headers;
pub mod respond;
pub mod upstream;
