//! Accept loops: connection limits, TLS handshakes with a deadline, hyper's HTTP/1.1 (and
//! HTTP/2 on reverse listeners) with header limits and timeouts, and a graceful drain when
//! douane is asked to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::context::Proxy;
use super::h1::{self, DirectLimits, ForwardConnection, Rewind, Served, Site};
use super::reverse::{ReverseConnection, RouteTable};
use super::{forward, reverse};
use crate::config::Limits;

/// What every accept loop shares.
#[derive(Clone)]
pub struct Serving {
    pub proxy: Arc<Proxy>,
    pub limits: Limits,
    /// Connections across all listeners.
    pub connections: Arc<Semaphore>,
    /// Turns true when douane must stop accepting and drain.
    pub shutdown: watch::Receiver<bool>,
}

/// The forward listener's accept loop; returns once drained after shutdown. Connections
/// start on the direct path (plain `http://` absolute-form requests); CONNECT and the rest
/// go to hyper.
pub async fn serve_forward(
    serving: Serving,
    listener: TcpListener,
    name: Arc<str>,
    direct_http1: bool,
) {
    let graceful = GracefulShutdown::new();
    // hyper-util's builder, HTTP/1.1 only: its connections support both upgrades (CONNECT)
    // and the graceful drain.
    let mut http = auto::Builder::new(TokioExecutor::new()).http1_only();
    limit_http1(&mut http, &serving.limits);
    let http = Arc::new(http);
    let direct = direct_http1.then(|| direct_limits(&serving));
    let (direct_open, _) = watch::channel(());
    let mut shutdown = serving.shutdown.clone();
    loop {
        let Some((stream, peer)) = next_connection(&listener, &mut shutdown).await else {
            break;
        };
        let Some(permit) = admit(&serving, &name, &stream) else {
            continue;
        };
        let serving = serving.clone();
        let name = name.clone();
        let http = http.clone();
        let watcher = graceful.watcher();
        let open = direct_open.subscribe();
        tokio::spawn(async move {
            let gauge = serving.proxy.metrics.connection_opened(&name);
            let proxy = serving.proxy.clone();
            let conn = ForwardConnection {
                listener: name.clone(),
                peer,
            };
            let served = match direct {
                Some(limits) => {
                    let site = Site::Forward(&conn);
                    h1::serve(stream, &proxy, site, limits, serving.shutdown.clone()).await
                }
                None => Served::HandOver(Rewind::new(Vec::new(), stream)),
            };
            if let Served::HandOver(stream) = served {
                let service =
                    service_fn(move |req| forward::handle(proxy.clone(), name.clone(), peer, req));
                let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(%peer, error = %e, "forward connection ended with an error");
                }
            }
            drop(open);
            drop(gauge);
            drop(permit);
        });
    }
    // Close the socket before draining: connections would otherwise still be completed by
    // the kernel and wait in the backlog, unserved, until the process exits.
    drop(listener);
    drain(
        graceful,
        serving.limits.shutdown_grace,
        &name,
        direct_open.closed(),
    )
    .await;
}

/// The limits of the direct HTTP/1.1 path, from `[limits]` and the upstream settings.
fn direct_limits(serving: &Serving) -> DirectLimits {
    DirectLimits {
        header_read_timeout: serving.limits.header_read_timeout,
        response_timeout: serving.proxy.connector.settings().response_timeout,
        max_header_bytes: serving.limits.max_header_bytes,
        max_headers: serving.limits.max_headers,
    }
}

/// A reverse listener, ready to serve.
pub struct ReverseSite {
    pub listener: TcpListener,
    pub name: Arc<str>,
    pub routes: Arc<RouteTable>,
    /// TLS termination; `None` for plain HTTP.
    pub tls: Option<TlsAcceptor>,
    /// HTTP/1.1 connections start on the direct path (`proxy::h1`).
    pub direct_http1: bool,
}

/// A reverse listener's accept loop, with TLS when the site has it.
pub async fn serve_reverse(serving: Serving, site: ReverseSite) {
    let ReverseSite {
        listener,
        name,
        routes,
        tls,
        direct_http1,
    } = site;
    let graceful = GracefulShutdown::new();
    let mut http = auto::Builder::new(TokioExecutor::new());
    limit_http1(&mut http, &serving.limits);
    http.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(serving.limits.max_header_bytes as u32)
        .keep_alive_interval(serving.limits.idle_timeout / 2)
        .keep_alive_timeout(Duration::from_secs(20));
    let http = Arc::new(http);
    let direct = direct_http1.then(|| direct_limits(&serving));
    // Connections on the direct path, which hyper's graceful shutdown does not see: the
    // drain waits until every receiver is gone.
    let (direct_open, _) = watch::channel(());
    let mut shutdown = serving.shutdown.clone();
    loop {
        let Some((stream, peer)) = next_connection(&listener, &mut shutdown).await else {
            break;
        };
        let Some(permit) = admit(&serving, &name, &stream) else {
            continue;
        };
        let serving = serving.clone();
        let name = name.clone();
        let routes = routes.clone();
        let tls = tls.clone();
        let http = http.clone();
        let watcher = graceful.watcher();
        let open = direct_open.subscribe();
        tokio::spawn(async move {
            let gauge = serving.proxy.metrics.connection_opened(&name);
            let proxy = serving.proxy.clone();
            let connection = |sni, tls| {
                Arc::new(ReverseConnection {
                    listener: name,
                    routes,
                    peer,
                    sni,
                    tls,
                })
            };
            let one = OneConnection {
                proxy: &proxy,
                http: &http,
                watcher,
                shutdown: serving.shutdown.clone(),
            };
            let served = match tls {
                None => one.serve(stream, connection(None, false), direct).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        serving.limits.tls_handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await;
                    let stream = match handshake {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "tls handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "tls handshake timed out");
                            return;
                        }
                    };
                    let session = stream.get_ref().1;
                    let sni = session
                        .server_name()
                        .map(|s| Arc::<str>::from(s.to_ascii_lowercase()));
                    // HTTP/2 is hyper's from the first byte.
                    let h2 = session.alpn_protocol() == Some(b"h2");
                    let direct = direct.filter(|_| !h2);
                    one.serve(stream, connection(sni, true), direct).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "reverse connection ended with an error");
            }
            drop(open);
            drop(gauge);
            drop(permit);
        });
    }
    // Close the socket before draining: connections would otherwise still be completed by
    // the kernel and wait in the backlog, unserved, until the process exits.
    drop(listener);
    drain(
        graceful,
        serving.limits.shutdown_grace,
        &name,
        direct_open.closed(),
    )
    .await;
}

/// What serving one reverse connection needs besides the connection itself.
struct OneConnection<'a> {
    proxy: &'a Arc<Proxy>,
    http: &'a auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    shutdown: watch::Receiver<bool>,
}

impl OneConnection<'_> {
    /// The direct path first (when `direct`), then hyper from wherever it handed over.
    async fn serve<S>(
        self,
        stream: S,
        conn: Arc<ReverseConnection>,
        direct: Option<DirectLimits>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let stream = match direct {
            Some(limits) => {
                let site = Site::Reverse(&conn);
                match h1::serve(stream, self.proxy, site, limits, self.shutdown).await {
                    Served::Closed => return Ok(()),
                    Served::HandOver(stream) => stream,
                }
            }
            None => Rewind::new(Vec::new(), stream),
        };
        let service = reverse_service(self.proxy.clone(), conn);
        self.watcher
            .watch(
                self.http
                    .serve_connection_with_upgrades(TokioIo::new(stream), service),
            )
            .await
    }
}

/// The HTTP/1.1 limits of `[limits]`, the same on every listener: header read timeout (slow
/// clients, idle keep-alive), header size and count.
fn limit_http1(http: &mut auto::Builder<TokioExecutor>, limits: &Limits) {
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    if limits.max_headers != 100 {
        // hyper's default; any other value moves header parsing to the heap.
        http.http1().max_headers(limits.max_headers);
    }
}

/// The service of one reverse connection: every request goes to `reverse::handle`.
fn reverse_service(
    proxy: Arc<Proxy>,
    conn: Arc<ReverseConnection>,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<super::body::ProxyBody>,
    Error = hyper::Error,
    Future = impl std::future::Future<
        Output = Result<http::Response<super::body::ProxyBody>, hyper::Error>,
    > + Send,
> + Clone {
    service_fn(move |req| reverse::handle(proxy.clone(), conn.clone(), req))
}

/// The next accepted connection, or `None` once douane must stop. Accept errors (e.g. out
/// of file descriptors) are logged and retried after a pause, never a busy loop.
async fn next_connection(
    listener: &TcpListener,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => return Some(a),
                Err(e) => accept_error(e).await,
            },
            _ = shutdown.changed() => return None,
        }
    }
}

/// Takes a connection slot, or closes the connection when every slot is taken.
fn admit(
    serving: &Serving,
    listener: &str,
    stream: &TcpStream,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let _ = stream.set_nodelay(true);
    match serving.connections.clone().try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) => {
            serving.proxy.metrics.connection_refused(listener);
            tracing::warn!(
                listener,
                "connection limit reached: closing a new connection"
            );
            None
        }
    }
}

/// Accept errors (e.g. out of file descriptors) must not spin the loop.
async fn accept_error(e: std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Lets the listener's connections finish: hyper's (told to stop after their request in
/// flight) and `others` (the direct path's, which stop by themselves on the shutdown signal).
async fn drain(
    graceful: GracefulShutdown,
    grace: Duration,
    listener: &str,
    others: impl std::future::Future<Output = ()>,
) {
    tracing::info!(listener, connections = graceful.count(), "draining");
    let both = async { tokio::join!(graceful.shutdown(), others) };
    if tokio::time::timeout(grace, both).await.is_err() {
        tracing::warn!(
            listener,
            "drain deadline reached: closing the remaining connections"
        );
    }
}

/// The address a listener really bound (port 0 in tests becomes a real port).
pub fn bound(listener: &TcpListener) -> std::io::Result<SocketAddr> {
    listener.local_addr()
}
