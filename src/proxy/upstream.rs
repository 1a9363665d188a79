//! The upstream side: dial only addresses that the decision checked (in order, the next one
//! when one refuses), optionally through a parent proxy, TLS with SNI and verification
//! against the upstream's name, HTTP/2 when the upstream offers it, and a pool of idle
//! connections keyed by address and TLS name, so a pooled connection can only ever be reused
//! for the very address it was checked for.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::body::{BodyError, ProxyBody};

/// Which upstream connection: the checked address, and for TLS the name to verify.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub addr: SocketAddr,
    /// SNI and certificate name for `https` upstreams; `None` for plain HTTP.
    pub tls_name: Option<Arc<str>>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no checked address accepted a connection: {0}")]
    Connect(io::Error),
    #[error("connecting timed out")]
    ConnectTimeout,
    #[error("tls handshake with `{name}` failed: {source}")]
    Tls { name: Arc<str>, source: io::Error },
    #[error("tls handshake with the upstream timed out")]
    TlsTimeout,
    #[error("`{0}` is not a valid TLS server name")]
    BadName(String),
    #[error("parent proxy: {0}")]
    Parent(String),
    #[error("http handshake with the upstream failed: {0}")]
    Handshake(hyper::Error),
    #[error("the upstream failed: {0}")]
    Http(hyper::Error),
    #[error("the upstream broke the exchange: {0}")]
    Broken(String),
    #[error("the upstream did not answer in time")]
    ResponseTimeout,
    /// `[limits] max_upstream_connections_per_address` connections are open to it already.
    #[error("{0} has the most upstream connections allowed open already")]
    PerAddressCap(SocketAddr),
    /// The client's request body broke while it was being sent (a malformed chunk, cut
    /// short): the client's fault, not the upstream's.
    #[error("the client's request body failed: {error}")]
    ClientBody { error: hyper::Error, stalled: bool },
}

impl UpstreamError {
    /// Every value of [`UpstreamError::kind`], for metrics that exist at 0 from the start.
    pub const KINDS: [&'static str; 8] = [
        "connect",
        "connect_timeout",
        "tls",
        "tls_timeout",
        "parent_proxy",
        "http",
        "response_timeout",
        "per_address_cap",
    ];

    /// A stable metric label, one of [`UpstreamError::KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Connect(_) => "connect",
            UpstreamError::ConnectTimeout => "connect_timeout",
            UpstreamError::Tls { .. } | UpstreamError::BadName(_) => "tls",
            UpstreamError::TlsTimeout => "tls_timeout",
            UpstreamError::Parent(_) => "parent_proxy",
            UpstreamError::Handshake(_)
            | UpstreamError::Http(_)
            | UpstreamError::Broken(_)
            | UpstreamError::ClientBody { .. } => "http",
            UpstreamError::ResponseTimeout => "response_timeout",
            UpstreamError::PerAddressCap(_) => "per_address_cap",
        }
    }

    /// The client's fault, not the upstream's: its request body broke or stalled.
    pub fn client_refusal(&self) -> Option<super::exchange::Refusal> {
        use super::exchange::Refusal;
        match self {
            UpstreamError::ClientBody { stalled: true, .. } => Some(Refusal::BodyTimeout),
            UpstreamError::ClientBody { .. } => Some(Refusal::MalformedBody),
            _ => None,
        }
    }

    /// A failed `send_request`: the client's when hyper reports a failed request body
    /// whose cause is the client connection's own parse error (hyper wraps the error of
    /// the body it was polling, here the client's `Incoming`).
    fn of_send(e: hyper::Error) -> UpstreamError {
        let body = std::error::Error::source(&e).and_then(|c| c.downcast_ref::<BodyError>());
        match body {
            Some(b) => UpstreamError::ClientBody {
                stalled: matches!(b, BodyError::Stalled(_)),
                error: e,
            },
            None => UpstreamError::Http(e),
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            UpstreamError::ConnectTimeout
                | UpstreamError::TlsTimeout
                | UpstreamError::ResponseTimeout
        )
    }
}

/// A ready-to-use HTTP connection to one upstream address.
pub enum Sender {
    H1(http1::SendRequest<ProxyBody>),
    H2(http2::SendRequest<ProxyBody>),
}

/// Upstream connection settings.
#[derive(Debug, Clone)]
pub struct ConnectorSettings {
    pub connect_timeout: Duration,
    pub tls_timeout: Duration,
    pub response_timeout: Duration,
    /// `host:port` of a parent proxy to CONNECT through.
    pub parent_proxy: Option<String>,
    /// Its `Proxy-Authorization` value (`Basic …`), computed by the config.
    pub parent_proxy_authorization: Option<String>,
    /// Upstream connections open at once per checked address; 0: no cap.
    pub max_per_address: usize,
    /// Worker threads (`crate::workers`), each with its own pools.
    pub workers: usize,
}

/// One open upstream connection's place under the per-address cap, given back on drop (it
/// lives as long as the connection: in the pool beside a bare socket, in hyper's
/// connection task, in a tunnel's task).
#[derive(Debug)]
pub struct Slot(Option<Arc<AtomicUsize>>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(open) = &self.0 {
            open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

pub struct Connector {
    tls: TlsConnector,
    /// The same, offering only `http/1.1`: an HTTP/1.1 upgrade (WebSocket) cannot cross an
    /// HTTP/2 connection, so those requests must not let the upstream pick h2.
    tls_http1: TlsConnector,
    settings: ConnectorSettings,
    /// One set of pools per worker (`crate::workers`): a connection is registered with the
    /// runtime of the worker that opened it, and is only ever taken again by that worker.
    pools: Box<[Pools]>,
    /// What each `https` upstream (TLS name, port) chose by ALPN when offered h2 and
    /// http/1.1 on hyper's path: `true` for HTTP/1.1. Written once per new connection, read
    /// by the direct path, which takes only upstreams known to choose HTTP/1.1.
    chose_http1: RwLock<AlpnChoices>,
    /// Connections open per checked address (only counted under a cap). Taken when a
    /// connection is opened, never for a pooled one.
    open: Mutex<rustc_hash::FxHashMap<SocketAddr, Arc<AtomicUsize>>>,
}

/// The idle upstream connections of one worker.
#[derive(Default)]
struct Pools {
    idle: Mutex<HashMap<PoolKey, Vec<http1::SendRequest<ProxyBody>>>>,
    h2: Mutex<HashMap<PoolKey, http2::SendRequest<ProxyBody>>>,
    /// Idle plain-HTTP connections of the direct HTTP/1.1 path (`proxy::h1`), by checked
    /// address: bare sockets, with no hyper connection task behind them.
    tcp_idle: Mutex<rustc_hash::FxHashMap<SocketAddr, Vec<(TcpStream, Slot)>>>,
    /// Idle TLS connections of the direct path (an `https` upstream that chose HTTP/1.1), by
    /// checked address and TLS name: bare TLS streams, with no hyper connection task.
    tls_idle: Mutex<rustc_hash::FxHashMap<PoolKey, Vec<(TlsUpstream, Slot)>>>,
}

/// Idle HTTP/1.1 connections kept per key; more are closed. As many as the streams one
/// HTTP/2 client may have in flight on a couple of connections (each stream takes an
/// HTTP/1.1 upstream connection of its own): with fewer, a burst of streams closes the
/// connections it opened and the next burst opens them again (a connect, and a close, for
/// one request in four under h2load's 4 × 32 streams with 64).
const MAX_IDLE_PER_KEY: usize = 256;

/// Per TLS name, per port: whether the upstream chose HTTP/1.1 (see `Connector::chose_http1`).
type AlpnChoices = rustc_hash::FxHashMap<Arc<str>, Vec<(u16, bool)>>;

/// A TLS connection of the direct path (boxed: a rustls client connection is large).
pub type TlsUpstream = Box<TlsStream<TcpStream>>;

impl Connector {
    pub fn new(tls: Arc<ClientConfig>, settings: ConnectorSettings) -> Self {
        let mut http1 = (*tls).clone();
        http1.alpn_protocols = vec![b"http/1.1".to_vec()];
        Connector {
            tls: TlsConnector::from(tls),
            tls_http1: TlsConnector::from(Arc::new(http1)),
            pools: (0..settings.workers.max(1))
                .map(|_| Pools::default())
                .collect(),
            settings,
            chose_http1: RwLock::new(Default::default()),
            open: Mutex::new(Default::default()),
        }
    }

    pub fn settings(&self) -> &ConnectorSettings {
        &self.settings
    }

    /// The pools of the worker running this code.
    fn pools(&self) -> &Pools {
        &self.pools[crate::workers::current() % self.pools.len()]
    }

    /// Every worker's pools, this worker's first: an idle connection that holds a place
    /// under the per-address cap may sit in any of them.
    fn all_pools(&self) -> impl Iterator<Item = &Pools> {
        let first = crate::workers::current() % self.pools.len();
        self.pools[first..].iter().chain(&self.pools[..first])
    }

    /// Opens a TCP stream to the first of `addrs` that accepts. Every address given must have
    /// been checked by the decision; none other is ever tried.
    pub async fn connect_tcp(
        &self,
        addrs: &[IpAddr],
        port: u16,
    ) -> Result<(TcpStream, SocketAddr, Slot), UpstreamError> {
        let mut last = UpstreamError::Connect(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "no address to connect to",
        ));
        for ip in addrs {
            let addr = SocketAddr::new(*ip, port);
            let slot = match self.slot(addr) {
                Ok(slot) => Ok(slot),
                Err(_) => self.slot_after_closing_idle(addr).await,
            };
            let slot = match slot {
                Ok(slot) => slot,
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "upstream address at its cap, trying the next checked one");
                    last = e;
                    continue;
                }
            };
            match self.connect_one(addr).await {
                Ok(stream) => return Ok((stream, addr, slot)),
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "upstream address refused, trying the next checked one");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// A place under the per-address cap for a new connection to `addr`.
    fn slot(&self, addr: SocketAddr) -> Result<Slot, UpstreamError> {
        let cap = self.settings.max_per_address;
        if cap == 0 {
            return Ok(Slot(None));
        }
        let open = {
            let mut map = self.open.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(addr).or_default().clone()
        };
        let take = || {
            open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
        };
        // Idle pooled connections hold places too: at the cap, one of them is closed to make
        // room, so that what waits in the pool never refuses a request (a tunnel, a new
        // exchange) to the same address.
        match take().or_else(|_| {
            if self.close_one_idle(addr) {
                take()
            } else {
                Err(cap)
            }
        }) {
            Ok(_) => Ok(Slot(Some(open))),
            Err(_) => Err(UpstreamError::PerAddressCap(addr)),
        }
    }

    /// A place for `addr` at the cap once an idle hyper connection is closed: its task gives
    /// the place back when it ends, a moment later (waited for up to 50 ms).
    async fn slot_after_closing_idle(&self, addr: SocketAddr) -> Result<Slot, UpstreamError> {
        let closed = self.all_pools().find_map(|pools| {
            let mut idle = pools.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.iter_mut()
                .find(|(key, list)| key.addr == addr && !list.is_empty())
                .and_then(|(_, list)| list.pop())
        });
        if closed.is_none() {
            return Err(UpstreamError::PerAddressCap(addr));
        }
        drop(closed);
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if let Ok(slot) = self.slot(addr) {
                return Ok(slot);
            }
        }
        Err(UpstreamError::PerAddressCap(addr))
    }

    /// Closes one idle pooled connection of the direct path to `addr`, plain or TLS (its
    /// place under the cap is free at once); false when there is none.
    fn close_one_idle(&self, addr: SocketAddr) -> bool {
        self.all_pools().any(|pools| {
            {
                let mut idle = pools.tcp_idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.get_mut(&addr).and_then(Vec::pop).is_some() {
                    return true;
                }
            }
            let mut idle = pools.tls_idle.lock().unwrap_or_else(|p| p.into_inner());
            let closed = idle
                .iter_mut()
                .filter(|(key, _)| key.addr == addr)
                .find_map(|(_, list)| list.pop());
            closed.is_some()
        })
    }

    async fn connect_one(&self, addr: SocketAddr) -> Result<TcpStream, UpstreamError> {
        let attempt = async {
            match &self.settings.parent_proxy {
                None => TcpStream::connect(addr)
                    .await
                    .map_err(UpstreamError::Connect),
                Some(parent) => {
                    let auth = self.settings.parent_proxy_authorization.as_deref();
                    connect_via_parent(parent, auth, addr).await
                }
            }
        };
        let stream = tokio::time::timeout(self.settings.connect_timeout, attempt)
            .await
            .map_err(|_| UpstreamError::ConnectTimeout)??;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// A connection for `key`: an idle pooled one if there is one, else a new one. With
    /// `http1_only` (a request that asks for an upgrade), never an HTTP/2 one.
    pub async fn sender(&self, key: &PoolKey, http1_only: bool) -> Result<Sender, UpstreamError> {
        if let Some(sender) = self.take_idle(key, http1_only) {
            return Ok(sender);
        }
        // Boxed: opening a connection (TCP, TLS, handshake) is a large future that the common
        // path, a pooled connection, should not carry and move around.
        Box::pin(self.connect_http(key, http1_only)).await
    }

    fn take_idle(&self, key: &PoolKey, http1_only: bool) -> Option<Sender> {
        if key.tls_name.is_some() && !http1_only {
            let mut h2 = self.pools().h2.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = h2.get(key) {
                if !s.is_closed() {
                    return Some(Sender::H2(s.clone()));
                }
                h2.remove(key);
            }
        }
        let mut idle = self.pools().idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(key)?;
        // A connection comes back as soon as its response body ended; its task may not have
        // noticed yet, so "not ready" is fine here (`send` waits for ready), "closed" is not.
        while let Some(s) = list.pop() {
            if !s.is_closed() {
                return Some(Sender::H1(s));
            }
        }
        None
    }

    /// Gives a connection back to the pool once its exchange is over.
    pub fn put_back(&self, key: PoolKey, sender: Sender) {
        match sender {
            Sender::H2(_) => {} // shared: it stays in the h2 map
            Sender::H1(s) => {
                if s.is_closed() {
                    return;
                }
                let mut idle = self.pools().idle.lock().unwrap_or_else(|p| p.into_inner());
                let list = idle.entry(key).or_default();
                if list.len() < MAX_IDLE_PER_KEY {
                    list.push(s);
                }
            }
        }
    }

    /// An idle plain connection to `addr` that is still open, if there is one.
    pub fn take_tcp(&self, addr: SocketAddr) -> Option<(TcpStream, Slot)> {
        let mut idle = self
            .pools()
            .tcp_idle
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(&addr)?;
        while let Some((stream, slot)) = list.pop() {
            // An idle connection has nothing to say: end of stream means the upstream closed
            // it, bytes mean it is out of step. Costs no system call unless the socket became
            // readable since it was put back.
            let mut probe = [0u8; 1];
            match stream.try_read(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some((stream, slot)),
                _ => continue,
            }
        }
        None
    }

    /// Gives back a plain connection whose exchange ended cleanly.
    pub fn put_back_tcp(&self, addr: SocketAddr, stream: TcpStream, slot: Slot) {
        let mut idle = self
            .pools()
            .tcp_idle
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(addr).or_default();
        if list.len() < MAX_IDLE_PER_KEY {
            list.push((stream, slot));
        }
    }

    /// What the `https` upstream `name:port` chose by ALPN the last time it was offered h2
    /// and http/1.1: `Some(true)` for HTTP/1.1, `Some(false)` for h2, `None` while unknown.
    fn chosen(&self, name: &str, port: u16) -> Option<bool> {
        let known = self.chose_http1.read().unwrap_or_else(|p| p.into_inner());
        known
            .get(name)?
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, h1)| *h1)
    }

    /// Whether the `https` upstream `name:port` is known to choose h2: then hyper's path
    /// serves its requests (the direct path takes the others, and learns).
    pub fn chose_h2(&self, name: &str, port: u16) -> bool {
        self.chosen(name, port) == Some(false)
    }

    /// Records what `name:port` chose (once per new connection offered both).
    fn learn_alpn(&self, name: &Arc<str>, port: u16, http1: bool) {
        let mut known = self.chose_http1.write().unwrap_or_else(|p| p.into_inner());
        let ports = known.entry(name.clone()).or_default();
        match ports.iter_mut().find(|(p, _)| *p == port) {
            Some(entry) => entry.1 = http1,
            None => ports.push((port, http1)),
        }
    }

    /// Opens an HTTP/1.1 TLS connection for the direct path to the first of `addrs` that
    /// accepts one (TCP and a handshake verified for `name`). While the upstream's choice is
    /// unknown it is offered h2 and http/1.1, and what it chooses is recorded; one that
    /// chooses h2 gets a second connection, offered only http/1.1, for this request (its
    /// next ones go to hyper's path, decided there).
    pub async fn connect_tls(
        &self,
        addrs: &[IpAddr],
        port: u16,
        name: &Arc<str>,
    ) -> Result<(TlsUpstream, SocketAddr, Slot), UpstreamError> {
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| UpstreamError::BadName(name.to_string()))?;
        let mut last = None;
        for ip in addrs {
            let addr = SocketAddr::new(*ip, port);
            let learn = self.chosen(name, port).is_none();
            match self.handshake_tls(addr, &server_name, name, !learn).await {
                Ok((tls, slot)) if !learn => return Ok((tls, addr, slot)),
                Ok((tls, slot)) => {
                    let http1 = tls.get_ref().1.alpn_protocol() != Some(b"h2");
                    self.learn_alpn(name, port, http1);
                    if http1 {
                        return Ok((tls, addr, slot));
                    }
                    drop((tls, slot));
                    match self.handshake_tls(addr, &server_name, name, true).await {
                        Ok((tls, slot)) => return Ok((tls, addr, slot)),
                        Err(e) => last = Some(e),
                    }
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            UpstreamError::Connect(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "no address to connect to",
            ))
        }))
    }

    /// TCP and a TLS handshake to `addr` verified for `name`; only `http/1.1` offered when
    /// `http1_only`, else h2 too.
    async fn handshake_tls(
        &self,
        addr: SocketAddr,
        server_name: &ServerName<'static>,
        name: &Arc<str>,
        http1_only: bool,
    ) -> Result<(TlsUpstream, Slot), UpstreamError> {
        let (tcp, _, slot) = self.connect_tcp(&[addr.ip()], addr.port()).await?;
        let connector = if http1_only {
            &self.tls_http1
        } else {
            &self.tls
        };
        let handshake = connector.connect(server_name.clone(), tcp);
        match tokio::time::timeout(self.settings.tls_timeout, handshake).await {
            Ok(Ok(tls)) => Ok((Box::new(tls), slot)),
            Ok(Err(source)) => {
                tracing::debug!(%addr, error = %source, "upstream tls handshake failed");
                Err(UpstreamError::Tls {
                    name: name.clone(),
                    source,
                })
            }
            Err(_) => Err(UpstreamError::TlsTimeout),
        }
    }

    /// An idle TLS connection for `key` that is still open, if there is one.
    pub fn take_tls(&self, key: &PoolKey) -> Option<(TlsUpstream, Slot)> {
        let mut idle = self
            .pools()
            .tls_idle
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(key)?;
        while let Some((mut stream, slot)) = list.pop() {
            if idle_tls_is_open(&mut stream) {
                return Some((stream, slot));
            }
        }
        None
    }

    /// Gives back a TLS connection whose exchange ended cleanly.
    pub fn put_back_tls(&self, key: PoolKey, stream: TlsUpstream, slot: Slot) {
        let mut idle = self
            .pools()
            .tls_idle
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(key).or_default();
        if list.len() < MAX_IDLE_PER_KEY {
            list.push((stream, slot));
        }
    }

    /// Opens a new HTTP connection (TLS and ALPN when the key has a TLS name; only
    /// `http/1.1` offered when `http1_only`).
    pub async fn connect_http(
        &self,
        key: &PoolKey,
        http1_only: bool,
    ) -> Result<Sender, UpstreamError> {
        let (tcp, _, slot) = self.connect_tcp(&[key.addr.ip()], key.addr.port()).await?;
        let Some(name) = &key.tls_name else {
            return handshake_h1(TokioIo::new(tcp), slot).await;
        };
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| UpstreamError::BadName(name.to_string()))?;
        let connector = if http1_only {
            &self.tls_http1
        } else {
            &self.tls
        };
        let tls = tokio::time::timeout(
            self.settings.tls_timeout,
            connector.connect(server_name, tcp),
        )
        .await
        .map_err(|_| UpstreamError::TlsTimeout)?
        .map_err(|source| UpstreamError::Tls {
            name: name.clone(),
            source,
        })?;
        let chose_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        if !http1_only {
            self.learn_alpn(name, key.addr.port(), !chose_h2);
        }
        if !chose_h2 {
            return handshake_h1(TokioIo::new(tls), slot).await;
        }
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(TokioIo::new(tls))
            .await
            .map_err(UpstreamError::Handshake)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream h2 connection ended");
            }
            drop(slot);
        });
        self.pools()
            .h2
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), sender.clone());
        Ok(Sender::H2(sender))
    }

    /// Sends a request on `sender`, bounded by the response timeout. A pooled HTTP/1.1
    /// connection that turns out closed before the request left is replaced once.
    pub async fn send(
        &self,
        key: &PoolKey,
        sender: Sender,
        request: Request<ProxyBody>,
    ) -> Result<(Response<Incoming>, Sender), UpstreamError> {
        tokio::time::timeout(
            self.settings.response_timeout,
            self.exchange(key, sender, request),
        )
        .await
        .map_err(|_| UpstreamError::ResponseTimeout)?
    }

    async fn exchange(
        &self,
        key: &PoolKey,
        sender: Sender,
        mut request: Request<ProxyBody>,
    ) -> Result<(Response<Incoming>, Sender), UpstreamError> {
        match sender {
            Sender::H2(mut s) => {
                shape_for_h2(&mut request, key);
                let response = s
                    .send_request(request)
                    .await
                    .map_err(UpstreamError::of_send)?;
                return Ok((response, Sender::H2(s)));
            }
            Sender::H1(mut s) => {
                shape_for_h1(&mut request);
                if s.ready().await.is_ok() {
                    match s.try_send_request(request).await {
                        Ok(response) => return Ok((response, Sender::H1(s))),
                        Err(mut e) => match e.take_message() {
                            // Never sent: the pooled connection was stale.
                            Some(unsent) => request = unsent,
                            None => return Err(UpstreamError::of_send(e.into_error())),
                        },
                    }
                }
            }
        }
        // One fresh connection for a request that never left (it was on HTTP/1.1: keep it so,
        // it may be an upgrade).
        match Box::pin(self.connect_http(key, true)).await? {
            Sender::H1(mut s) => {
                shape_for_h1(&mut request);
                let response = s
                    .send_request(request)
                    .await
                    .map_err(UpstreamError::of_send)?;
                Ok((response, Sender::H1(s)))
            }
            Sender::H2(mut s) => {
                shape_for_h2(&mut request, key);
                let response = s
                    .send_request(request)
                    .await
                    .map_err(UpstreamError::of_send)?;
                Ok((response, Sender::H2(s)))
            }
        }
    }
}

/// Whether an idle TLS connection is still usable: reading it without waiting finds nothing
/// (a session ticket that arrived meanwhile is taken in by rustls); end of stream or a
/// `close_notify` means the upstream closed it, application bytes that it is out of step.
/// Costs no system call unless the socket became readable since it was put back.
fn idle_tls_is_open(stream: &mut TlsUpstream) -> bool {
    use std::task::{Context, Poll, Waker};
    use tokio::io::{AsyncRead, ReadBuf};
    let mut cx = Context::from_waker(Waker::noop());
    let mut probe = [0u8; 1];
    let mut buf = ReadBuf::new(&mut probe);
    matches!(
        std::pin::Pin::new(&mut **stream).poll_read(&mut cx, &mut buf),
        Poll::Pending
    )
}

/// HTTP/1.1 upstream: origin-form target, version 1.1 (the client may have spoken h2).
fn shape_for_h1(request: &mut Request<ProxyBody>) {
    *request.version_mut() = http::Version::HTTP_11;
    if request.uri().scheme().is_some() {
        let origin = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        if let Ok(uri) = http::Uri::try_from(origin) {
            *request.uri_mut() = uri;
        }
    }
}

/// HTTP/2 upstream: absolute target (`:scheme`, `:authority`), no `Host` header.
fn shape_for_h2(request: &mut Request<ProxyBody>, key: &PoolKey) {
    *request.version_mut() = http::Version::HTTP_2;
    let authority = request
        .headers_mut()
        .remove(http::header::HOST)
        .and_then(|h| h.to_str().ok().map(str::to_owned))
        .or_else(|| key.tls_name.as_deref().map(str::to_owned))
        .unwrap_or_else(|| key.addr.to_string());
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if let Ok(uri) = http::Uri::try_from(format!("https://{authority}{path}")) {
        *request.uri_mut() = uri;
    }
}

async fn handshake_h1<I>(io: I, slot: Slot) -> Result<Sender, UpstreamError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .handshake(io)
        .await
        .map_err(UpstreamError::Handshake)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream connection ended");
        }
        drop(slot);
    });
    Ok(Sender::H1(sender))
}

/// Opens a tunnel to `target` through a parent proxy with CONNECT. The target is the checked
/// address itself, never a name, so the parent cannot resolve it to something else.
async fn connect_via_parent(
    parent: &str,
    authorization: Option<&str>,
    target: SocketAddr,
) -> Result<TcpStream, UpstreamError> {
    let mut stream = TcpStream::connect(parent)
        .await
        .map_err(|e| UpstreamError::Parent(format!("cannot reach {parent}: {e}")))?;
    let request = match authorization {
        None => format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"),
        Some(auth) => format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {auth}\r\n\r\n"
        ),
    };
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| UpstreamError::Parent(e.to_string()))?;
    // Read the response head byte by byte: nothing after it may be consumed, it belongs to
    // the tunnel.
    let mut head = Vec::with_capacity(128);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            return Err(UpstreamError::Parent("response head too long".into()));
        }
        let n = stream
            .read(&mut byte)
            .await
            .map_err(|e| UpstreamError::Parent(e.to_string()))?;
        if n == 0 {
            return Err(UpstreamError::Parent(
                "closed before answering CONNECT".into(),
            ));
        }
        head.push(byte[0]);
    }
    let status_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let ok = status_line
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code == "200");
    if ok {
        Ok(stream)
    } else {
        Err(UpstreamError::Parent(format!(
            "refused CONNECT {target}: {}",
            status_line.trim()
        )))
    }
}
