//! Waiting for a client's next bytes before making room for them: an idle connection (a
//! keep-alive between requests, a tunnel before its first bytes) then holds no read buffer.

use std::future::Future;
use std::io;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A client stream whose next bytes can be awaited without a buffer.
pub trait AwaitReadable {
    /// Whether [`AwaitReadable::readable`] waits for the peer (a socket), or returns at once
    /// because bytes may already be held above the socket (a TLS session's, hyper's).
    const WAITS: bool;

    /// Ready once a read would find bytes (or may: the read then waits as usual).
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send + '_;
}

impl AwaitReadable for TcpStream {
    const WAITS: bool = true;

    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        // The socket's read-direction waker, as a read would use, not `TcpStream::readable`'s
        // waiter list (a lock and a list entry per wait).
        std::future::poll_fn(|cx| self.poll_read_ready(cx))
    }
}

/// rustls may hold decrypted bytes that the socket's readiness does not show.
impl AwaitReadable for Box<TlsStream<TcpStream>> {
    const WAITS: bool = false;

    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        std::future::ready(Ok(()))
    }
}

/// hyper's upgraded connection: hyper may hold bytes it read past the head.
impl<T> AwaitReadable for hyper_util::rt::TokioIo<T> {
    const WAITS: bool = false;

    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        std::future::ready(Ok(()))
    }
}
