//! Accept loops: connection limits, TLS handshakes with a deadline, hyper's HTTP/1.1 (and
//! HTTP/2 on reverse listeners) with header limits and timeouts, and a graceful drain when
//! douane is asked to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::context::Proxy;
use super::h1::{self, DirectLimits, ForwardConnection, FramingVerdict, Rewind, Served, Site};
use super::readiness::AwaitReadable;
use super::reverse::{ReverseConnection, RouteTable};
use super::{forward, reverse};
use crate::config::Limits;
use crate::metrics::ConnectionGauge;

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

/// One worker's listeners: the forward proxy's, if any, and the reverse sites.
pub struct WorkerListeners {
    pub forward: Option<ForwardSite>,
    pub reverse: Vec<ReverseSite>,
}

/// The forward listener, ready to serve.
pub struct ForwardSite {
    pub listener: TcpListener,
    pub name: Arc<str>,
    /// Plain `http://` absolute-form requests start on the direct path (`proxy::h1`).
    pub direct_http1: bool,
}

/// Runs one worker's accept loops (`crate::workers`); returns once all have drained.
pub async fn serve_worker(serving: Serving, listeners: WorkerListeners) {
    let mut loops = tokio::task::JoinSet::new();
    if let Some(site) = listeners.forward {
        loops.spawn(serve_forward(serving.clone(), site));
    }
    for site in listeners.reverse {
        loops.spawn(serve_reverse(serving.clone(), site));
    }
    while let Some(ended) = loops.join_next().await {
        // An accept loop only returns once drained; a panic there (a bug) closes this
        // worker's socket, and the kernel sends new connections to the other workers.
        if let Err(e) = ended {
            tracing::error!(worker = crate::workers::current(), error = %e, "an accept loop failed: this worker takes no new connections");
        }
    }
}

/// The forward listener's accept loop; returns once drained after shutdown. Connections
/// start on the direct path (plain `http://` absolute-form requests); CONNECT and the rest
/// go to hyper.
pub async fn serve_forward(serving: Serving, site: ForwardSite) {
    let ForwardSite {
        listener,
        name,
        direct_http1,
    } = site;
    // hyper-util's builder, HTTP/1.1 only: its connections support both upgrades (CONNECT)
    // and the graceful drain.
    let mut http = auto::Builder::new(TokioExecutor::new()).http1_only();
    limit_http1(&mut http, &serving.limits);
    let http = Arc::new(http);
    let direct = direct_http1.then(|| direct_limits(&serving));
    let mut open = OpenConnections::new(&serving, name.clone());
    while let Some(accepted) = open.next(&listener).await {
        let Accepted {
            stream,
            peer,
            watcher,
            hold,
        } = accepted;
        let serving = serving.clone();
        let name = name.clone();
        let http = http.clone();
        tokio::spawn(async move {
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
                None => {
                    // hyper would wait out the header timeout on a TLS ClientHello.
                    let mut first = [0u8; 1];
                    let peeked = tokio::time::timeout(
                        serving.limits.header_read_timeout,
                        stream.peek(&mut first),
                    )
                    .await;
                    match peeked {
                        Ok(Ok(1)) if first[0] == h1::TLS_HANDSHAKE => {
                            h1::tls_on_proxy_port(&proxy, &name, peer);
                            Served::Closed
                        }
                        Ok(Ok(1..)) => Served::HandOver(Rewind::new(Vec::new(), stream)),
                        _ => Served::Closed,
                    }
                }
            };
            let served = match served {
                Served::Connect(stream) => {
                    let (buf, stream) = stream.into_parts();
                    h1::serve_connect(stream, buf, &proxy, &conn).await
                }
                other => other,
            };
            if let Served::HandOver(stream) = served {
                let stream = stream.with_send_timeout(serving.limits.client_send_timeout);
                let (stream, framing) = watch_framing(stream, &serving.limits);
                let (p, n, f) = (proxy.clone(), name.clone(), framing.clone());
                let service = service_fn(move |mut req| {
                    f.mark(&mut req);
                    forward::handle(p.clone(), n.clone(), peer, req)
                });
                let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
                // Boxed: hyper's connection state would size every forward connection's task,
                // an idle tunnel's too (8.2 KB, against 4.5 KB with it boxed).
                if let Err(e) = Box::pin(watcher.watch(conn)).await {
                    refused_by_hyper(&proxy, &name, peer, &*e, &framing);
                    tracing::debug!(%peer, error = %e, "forward connection ended with an error");
                }
            }
            drop(hold);
        });
    }
    open.drain(listener).await;
}

/// The framing watch on a stream hyper is about to read (see `h1::FramingVerdict`).
fn watch_framing<S>(stream: Rewind<S>, limits: &Limits) -> (Rewind<S>, Arc<FramingVerdict>) {
    stream.watch_framing(limits.max_header_bytes.max(8192), limits.max_headers)
}

/// A request head hyper itself refused (malformed, too large: it answered 400 or 431 and
/// closed) gets the log line and the metric of every refusal — two different lengths are
/// ambiguous framing, as on the direct path.
fn refused_by_hyper(
    proxy: &Proxy,
    listener: &str,
    peer: SocketAddr,
    error: &(dyn std::error::Error + 'static),
    framing: &FramingVerdict,
) {
    let Some(e) = error.downcast_ref::<hyper::Error>() else {
        return;
    };
    if !e.is_parse() && !e.is_parse_too_large() {
        return;
    }
    let refusal = if framing.refused_head_was_ambiguous() {
        super::exchange::Refusal::AmbiguousFraming
    } else {
        super::exchange::Refusal::MalformedHead
    };
    proxy.metrics.refusal(refusal.kind());
    tracing::info!(
        listener,
        client = %peer.ip(),
        refusal = refusal.kind(),
        error = %e,
        "request refused"
    );
}

/// The limits of the direct HTTP/1.1 path, from `[limits]` and the upstream settings.
fn direct_limits(serving: &Serving) -> DirectLimits {
    DirectLimits {
        header_read_timeout: serving.limits.header_read_timeout,
        response_timeout: serving.proxy.connector.settings().response_timeout,
        max_header_bytes: serving.limits.max_header_bytes,
        max_headers: serving.limits.max_headers,
        client_send_timeout: serving.limits.client_send_timeout,
    }
}

/// A reverse listener, ready to serve.
pub struct ReverseSite {
    pub listener: TcpListener,
    pub name: Arc<str>,
    /// The listener's routes; a reload swaps in a new table. Each connection takes the
    /// table in force when it is accepted and keeps it to its end.
    pub routes: Arc<ArcSwap<RouteTable>>,
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
    let mut http = auto::Builder::new(TokioExecutor::new());
    limit_http1(&mut http, &serving.limits);
    http.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(serving.limits.max_header_bytes as u32)
        .keep_alive_interval(serving.limits.idle_timeout / 2)
        .keep_alive_timeout(Duration::from_secs(20));
    let http = Arc::new(http);
    let direct = direct_http1.then(|| direct_limits(&serving));
    let mut open = OpenConnections::new(&serving, name.clone());
    while let Some(accepted) = open.next(&listener).await {
        let Accepted {
            stream,
            peer,
            watcher,
            hold,
        } = accepted;
        let accepted = AcceptedReverse {
            serving: serving.clone(),
            name: name.clone(),
            routes: routes.load_full(),
            http: http.clone(),
            direct,
            peer,
            watcher,
            hold,
        };
        // Two task types: a plain connection's future is not sized by a TLS one's.
        match &tls {
            None => tokio::spawn(accepted.serve_plain(stream)),
            Some(acceptor) => tokio::spawn(accepted.serve_tls(stream, acceptor.clone())),
        };
    }
    open.drain(listener).await;
}

/// A reverse connection's stream: the accepted socket, or the TLS session over it.
trait ClientStream:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + AwaitReadable + Unpin + Send + 'static
{
}

impl<T> ClientStream for T where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + AwaitReadable + Unpin + Send + 'static
{
}

/// A connection accepted on a reverse listener, with what its task needs.
struct AcceptedReverse {
    serving: Serving,
    name: Arc<str>,
    routes: Arc<RouteTable>,
    http: Arc<auto::Builder<TokioExecutor>>,
    direct: Option<DirectLimits>,
    peer: SocketAddr,
    watcher: Watcher,
    hold: Hold,
}

impl AcceptedReverse {
    /// Not an `async fn` of its own: a layer of future would hold `self` once more.
    fn serve_plain(self, stream: TcpStream) -> impl std::future::Future<Output = ()> + Send {
        let direct = self.direct;
        self.serve(stream, None, false, direct)
    }

    async fn serve_tls(self, stream: TcpStream, acceptor: TlsAcceptor) {
        let peer = self.peer;
        let timeout = self.serving.limits.tls_handshake_timeout;
        // Boxed as it comes out of the handshake: held unboxed, the session (1.2 KB) would
        // take room in the task beside everything the connection awaits later.
        let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(s)) => Box::new(s),
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
        let direct = self.direct.filter(|_| !h2);
        self.serve(stream, sni, true, direct).await;
    }

    async fn serve<S>(
        self,
        stream: S,
        sni: Option<Arc<str>>,
        tls: bool,
        direct: Option<DirectLimits>,
    ) where
        S: ClientStream,
    {
        let proxy = &self.serving.proxy;
        let conn = Arc::new(ReverseConnection {
            listener: self.name.clone(),
            routes: self.routes,
            peer: self.peer,
            sni,
            tls,
            direct_upstream: self.direct.is_some(),
        });
        let one = OneConnection {
            send_timeout: self.serving.limits.client_send_timeout,
            limits: &self.serving.limits,
            proxy,
            http: &self.http,
            watcher: self.watcher,
            shutdown: self.serving.shutdown.clone(),
        };
        if let Err((e, framing)) = one.serve(stream, conn, direct).await {
            let peer = self.peer;
            refused_by_hyper(proxy, &self.name, peer, &*e, &framing);
            tracing::debug!(%peer, error = %e, "reverse connection ended with an error");
        }
        drop(self.hold);
    }
}

/// What serving one reverse connection needs besides the connection itself.
struct OneConnection<'a> {
    send_timeout: Duration,
    limits: &'a Limits,
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
    ) -> Result<
        (),
        (
            Box<dyn std::error::Error + Send + Sync>,
            Arc<FramingVerdict>,
        ),
    >
    where
        S: ClientStream,
    {
        let stream = match direct {
            Some(limits) => {
                let site = Site::Reverse(&conn);
                match h1::serve(stream, self.proxy, site, limits, self.shutdown).await {
                    Served::Closed | Served::Connect(_) => return Ok(()),
                    Served::HandOver(stream) => stream,
                }
            }
            None => Rewind::new(Vec::new(), stream),
        };
        let stream = stream.with_send_timeout(self.send_timeout);
        let (stream, framing) = watch_framing(stream, self.limits);
        let service = reverse_service(self.proxy.clone(), conn, framing.clone());
        self.watcher
            .watch(
                self.http
                    .serve_connection_with_upgrades(TokioIo::new(stream), service),
            )
            .await
            .map_err(|e| (e, framing))
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
    framing: Arc<FramingVerdict>,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<super::body::ProxyBody>,
    Error = hyper::Error,
    Future = impl std::future::Future<
        Output = Result<http::Response<super::body::ProxyBody>, hyper::Error>,
    > + Send,
> + Clone {
    service_fn(move |mut req| {
        framing.mark(&mut req);
        // Boxed: hyper spawns a task per HTTP/2 stream holding this future, and a request's
        // state (decision, upstream exchange) is large — inline, it was copied when the task
        // was made, spawned and finished (4 % of douane's time under h2load's 4 × 32
        // streams). One allocation instead.
        Box::pin(reverse::handle(proxy.clone(), conn.clone(), req))
    })
}

/// A listener's connections, from accept to drain: each takes a connection slot and a
/// place in the open-connections gauge, and is watched for the drain — by hyper's graceful
/// shutdown once hyper serves it, and by `direct_open` while the direct path does (hyper
/// does not see those).
struct OpenConnections {
    serving: Serving,
    name: Arc<str>,
    shutdown: watch::Receiver<bool>,
    graceful: GracefulShutdown,
    /// Each connection holds a receiver: the drain waits until every one is gone.
    direct_open: watch::Sender<()>,
}

/// An admitted connection and what it holds until it ends.
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    /// For the hyper connection, if the connection ever gets one.
    watcher: Watcher,
    hold: Hold,
}

/// Released when the connection ends: its slot, its gauge, its place in the drain.
struct Hold {
    _permit: OwnedSemaphorePermit,
    _gauge: ConnectionGauge,
    _direct_open: watch::Receiver<()>,
}

impl OpenConnections {
    fn new(serving: &Serving, name: Arc<str>) -> Self {
        OpenConnections {
            serving: serving.clone(),
            name,
            shutdown: serving.shutdown.clone(),
            graceful: GracefulShutdown::new(),
            direct_open: watch::channel(()).0,
        }
    }

    /// The next admitted connection, or `None` once douane must stop. Accept errors (e.g.
    /// out of file descriptors) are logged and retried after a pause, never a busy loop; a
    /// connection beyond the limit is closed at once.
    async fn next(&mut self, listener: &TcpListener) -> Option<Accepted> {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = self.shutdown.changed() => return None,
            };
            // Linux: inherited from the listening socket (`startup::bind_one`).
            #[cfg(not(target_os = "linux"))]
            let _ = stream.set_nodelay(true);
            let Ok(permit) = self.serving.connections.clone().try_acquire_owned() else {
                self.serving.proxy.metrics.connection_refused(&self.name);
                tracing::warn!(
                    listener = &*self.name,
                    "connection limit reached: closing a new connection"
                );
                continue;
            };
            return Some(Accepted {
                stream,
                peer,
                watcher: self.graceful.watcher(),
                hold: Hold {
                    _permit: permit,
                    _gauge: self.serving.proxy.metrics.connection_opened(&self.name),
                    _direct_open: self.direct_open.subscribe(),
                },
            });
        }
    }

    /// Closes the listening socket, then lets the connections finish within the grace:
    /// hyper's are told to stop after their request in flight, the direct path's stop by
    /// themselves on the shutdown signal.
    async fn drain(self, listener: TcpListener) {
        // Close the socket first: connections would otherwise still be completed by the
        // kernel and wait in the backlog, unserved, until the process exits.
        drop(listener);
        let listener = &*self.name;
        let worker = crate::workers::current();
        let connections = self.graceful.count();
        tracing::info!(listener, worker, connections, "draining");
        let direct_open = self.direct_open;
        let both = async { tokio::join!(self.graceful.shutdown(), direct_open.closed()) };
        let grace = self.serving.limits.shutdown_grace;
        if tokio::time::timeout(grace, both).await.is_err() {
            tracing::warn!(
                listener,
                worker,
                "drain deadline reached: closing the remaining connections"
            );
        }
    }
}

/// The address a listener really bound (port 0 in tests becomes a real port).
pub fn bound(listener: &TcpListener) -> std::io::Result<SocketAddr> {
    listener.local_addr()
}
