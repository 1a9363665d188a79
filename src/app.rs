//! Wiring only: config → state → resolver → metrics → audit → listeners → reloads; and the
//! shutdown. Everything is validated before a socket is bound.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::admin::Admin;
use crate::audit::AuditLog;
use crate::commands::InvalidSetup;
use crate::config::{Config, LogFormat, ReverseListener};
use crate::diag::Errors;
use crate::metrics::Metrics;
use crate::proxy::context::Proxy;
use crate::proxy::reverse::RouteTable;
use crate::proxy::server::{serve_worker, ForwardSite, ReverseSite, Serving, WorkerListeners};
use crate::proxy::upstream::{Connector, ConnectorSettings};
use crate::reload::{OpsMetrics, Reloader};
use crate::resolve::Resolver;
use crate::state::State;
use crate::{startup, tls};

/// Starts tracing as the config says (`RUST_LOG` wins when set).
pub fn init_tracing(config: &Config) {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| config.log.level.clone());
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: never escape codes in a file or a journal,
    // and never when NO_COLOR is set (https://no-color.org).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // JSON: one flat object a line, stable names (`timestamp`, `level`, `target`,
    // `message`, then the event's fields), no span lists that change with the code.
    let _ = match config.log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// `douane run`: loads and checks everything, binds the listeners, serves until SIGTERM or
/// SIGINT, then drains.
pub async fn run(config_path: &Path, workers: usize) -> anyhow::Result<()> {
    let workers = workers.max(1);
    let config = Config::load(config_path).map_err(InvalidSetup)?;
    crate::startup::require_a_listener(&config)?;
    init_tracing(&config);
    let state = State::load(&config).map_err(InvalidSetup)?;
    tracing::info!(
        policy = &*state.provenance.policy_name,
        version = &*state.provenance.policy_version,
        mode = state.policy.mode.as_str(),
        rules = state.policy.rules.len(),
        operators = state.geo.registry.len(),
        "policy loaded"
    );
    let state = Arc::new(ArcSwap::from_pointee(state));
    let metrics = Arc::new(Metrics::new());
    metrics.set_state(&state.load());

    let resolver = Arc::new(
        Resolver::new(&config.resolver).map_err(|e| startup::invalid(&config, "[resolver]", e))?,
    );
    let client_tls = tls::client_config(
        config.upstream.ca_file.as_deref(),
        config.upstream.system_roots,
    )
    .map_err(|e| startup::invalid(&config, "[upstream] (TLS roots for upstreams)", e))?;
    let connector = Arc::new(Connector::new(
        client_tls,
        ConnectorSettings {
            connect_timeout: config.limits.connect_timeout,
            tls_timeout: config.limits.tls_handshake_timeout,
            response_timeout: config.limits.upstream_response_timeout,
            max_per_address: config.limits.max_upstream_connections_per_address,
            parent_proxy: config.upstream.parent_proxy.clone(),
            parent_proxy_authorization: config.upstream.parent_proxy_authorization.clone(),
            workers,
        },
    ));
    keep_alive_past_file_size_limit();
    let audit = match &config.audit {
        Some(audit_config) => {
            let (log, _writer) = AuditLog::start(audit_config)
                .map_err(|e| startup::invalid(&config, "[audit]", e))?;
            Some(log)
        }
        None => None,
    };

    // Bind everything before serving anything: a taken port fails the start, cleanly. Each
    // proxy listener gets one socket per worker.
    let mut forward = match &config.forward {
        Some(f) => Some(Bound {
            sockets: startup::bind_for_workers(f.listen, workers, &f.name, &f.listen_at)?,
            name: Arc::<str>::from(f.name.as_str()),
            settings: ForwardSettings {
                direct_http1: f.direct_http1,
            },
        }),
        None => None,
    };
    let mut reverse = Vec::new();
    let mut certificates = Vec::new();
    let mut route_tables = Vec::new();
    for listener in &config.reverse {
        let table = route_table(&config, &listener.name)?;
        let acceptor = match reverse_tls(listener, &table)? {
            Some((acceptor, certs)) => {
                certificates.push((listener.name.clone(), certs));
                Some(acceptor)
            }
            None => None,
        };
        let routes = Arc::new(ArcSwap::from_pointee(table));
        route_tables.push((listener.name.clone(), routes.clone()));
        reverse.push(Bound {
            sockets: startup::bind_for_workers(
                listener.listen,
                workers,
                &listener.name,
                &listener.listen_at,
            )?,
            name: Arc::<str>::from(listener.name.as_str()),
            settings: ReverseSettings {
                routes,
                tls: acceptor,
                direct_http1: listener.direct_http1,
            },
        });
    }
    let admin_listener = match &config.admin {
        Some(a) => Some(startup::bind(a.listen, "admin", &a.listen_at).await?),
        None => None,
    };
    let mut own_addresses: Vec<SocketAddr> = Vec::new();
    own_addresses.extend(forward.iter().filter_map(|b| b.address().ok()));
    own_addresses.extend(reverse.iter().filter_map(|b| b.address().ok()));
    own_addresses.extend(admin_listener.iter().filter_map(|l| l.local_addr().ok()));

    let mut proxy = Proxy::new(
        state.clone(),
        resolver,
        connector,
        audit.clone(),
        metrics.clone(),
        own_addresses,
        config.trusted_proxies.clone(),
        config.block_page.link.clone(),
    );
    proxy.request_body_timeout = config.limits.request_body_timeout;
    proxy.contact = config.block_page.contact.clone();
    proxy.pac = config.pac.clone();
    proxy.tunnel = config.tunnel.clone();
    if let Some(ca) = &config.local_ca {
        proxy.minter = Some(Arc::new(crate::mint::Minter::load(ca)?));
    }
    let proxy = Arc::new(proxy);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let serving = Serving {
        proxy,
        limits: config.limits.clone(),
        connections: Arc::new(Semaphore::new(config.limits.max_connections)),
        shutdown: shutdown_rx.clone(),
    };

    if let Some(f) = &forward {
        tracing::info!(listener = &*f.name, address = %f.address()?, direct_http1 = f.settings.direct_http1, workers, "forward proxy listening");
    }
    for site in &reverse {
        tracing::info!(
            listener = &*site.name,
            address = %site.address()?,
            tls = site.settings.tls.is_some(),
            direct_http1 = site.settings.direct_http1,
            workers,
            "reverse proxy listening"
        );
    }
    let mut tasks = tokio::task::JoinSet::new();
    let mut other_workers = Vec::new();
    // The last sockets go to the last worker: popped from the end, worker 0 (this thread)
    // takes the first ones.
    for index in (0..workers).rev() {
        let runtime = (index > 0).then(crate::workers::runtime).transpose()?;
        let listeners = {
            // Sockets are registered with the runtime of the worker that serves them.
            let _entered = runtime.as_ref().map(tokio::runtime::Runtime::enter);
            WorkerListeners {
                forward: forward.as_mut().map(Bound::forward_site).transpose()?,
                reverse: reverse
                    .iter_mut()
                    .map(Bound::reverse_site)
                    .collect::<std::io::Result<_>>()?,
            }
        };
        let serve = serve_worker(serving.clone(), listeners);
        match runtime {
            Some(runtime) => other_workers.push(crate::workers::spawn(index, runtime, serve)?),
            None => {
                tasks.spawn(serve);
            }
        }
    }
    if let Some(listener) = admin_listener {
        let authorization = match config.admin.as_ref().and_then(|a| a.token_file.as_ref()) {
            Some(path) => Some(format!(
                "Bearer {}",
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        startup::invalid(
                            &config,
                            "[admin] token_file",
                            format!("{}: {}", path.display(), startup::io_reason(&e)),
                        )
                    })?
                    .trim()
            )),
            None => None,
        };
        tracing::info!(address = %listener.local_addr()?, "admin listening");
        let admin = Arc::new(Admin {
            state: state.clone(),
            metrics: metrics.clone(),
            audit: audit.clone(),
            authorization,
            pac: config.pac.clone(),
        });
        tasks.spawn(crate::admin::serve(admin, listener, shutdown_rx.clone()));
    }

    let (reload_tx, reload_rx) = mpsc::channel(1);
    let reloader = Reloader {
        config_path: config_path.to_path_buf(),
        state,
        ops: OpsMetrics::register(&metrics, &config),
        metrics,
        poll_interval: config.reload.watch.then_some(config.reload.poll_interval),
        certificates,
        routes: route_tables,
        running: std::sync::Mutex::new(config.clone()),
    };
    tasks.spawn(reloader.run(reload_rx, shutdown_rx.clone()));

    wait_for_stop(reload_tx).await;
    crate::notify::stopping();
    tracing::info!(
        grace_ms = config.limits.shutdown_grace.as_millis() as u64,
        "stopping: no new connections, draining the ones in flight"
    );
    let _ = shutdown_tx.send(true);
    while tasks.join_next().await.is_some() {}
    for finished in other_workers {
        let _ = finished.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// A proxy listener's sockets, one per worker, with what its accept loops need.
struct Bound<S> {
    sockets: Vec<std::net::TcpListener>,
    name: Arc<str>,
    settings: S,
}

/// What the forward listener's accept loops need beside the socket.
struct ForwardSettings {
    direct_http1: bool,
}

/// What a reverse listener's accept loops share across workers.
struct ReverseSettings {
    routes: Arc<ArcSwap<RouteTable>>,
    tls: Option<TlsAcceptor>,
    direct_http1: bool,
}

impl<S> Bound<S> {
    /// The address bound (port 0 in tests becomes a real port, the same for every worker).
    fn address(&self) -> std::io::Result<SocketAddr> {
        match self.sockets.first() {
            Some(socket) => socket.local_addr(),
            None => Err(std::io::Error::other("a listener without a socket")),
        }
    }

    /// The next worker's socket, registered with the runtime entered.
    fn take_socket(&mut self) -> std::io::Result<tokio::net::TcpListener> {
        let socket = self.sockets.pop().ok_or_else(|| {
            std::io::Error::other(format!(
                "listener `{}`: no socket left for a worker",
                self.name
            ))
        })?;
        tokio::net::TcpListener::from_std(socket)
    }
}

impl Bound<ForwardSettings> {
    fn forward_site(&mut self) -> std::io::Result<ForwardSite> {
        Ok(ForwardSite {
            listener: self.take_socket()?,
            name: self.name.clone(),
            direct_http1: self.settings.direct_http1,
        })
    }
}

impl Bound<ReverseSettings> {
    fn reverse_site(&mut self) -> std::io::Result<ReverseSite> {
        Ok(ReverseSite {
            listener: self.take_socket()?,
            name: self.name.clone(),
            routes: self.settings.routes.clone(),
            tls: self.settings.tls.clone(),
            direct_http1: self.settings.direct_http1,
        })
    }
}

/// The route table of the reverse listener `listener`, from the routes of `config`.
pub fn route_table(config: &Config, listener: &str) -> Result<RouteTable, InvalidSetup> {
    let routes: Vec<_> = config
        .routes
        .iter()
        .filter(|r| r.listener == listener)
        .collect();
    RouteTable::new(&routes)
        .map_err(|e| startup::invalid(config, &format!("the routes of listener `{listener}`"), e))
}

/// The TLS acceptor of a reverse listener; a missing development certificate is generated
/// when the config asks for it.
fn reverse_tls(
    listener: &ReverseListener,
    routes: &RouteTable,
) -> Result<Option<(TlsAcceptor, Arc<tls::Certificates>)>, InvalidSetup> {
    if listener.certificates.is_empty() {
        return Ok(None);
    }
    let mut names: Vec<&str> = routes.hosts().collect();
    for cert in &listener.certificates {
        if cert.generate_if_missing && !cert.cert.exists() && !cert.key.exists() {
            let mut san = vec!["localhost"];
            san.extend(names.iter().copied());
            tls::write_self_signed(&cert.cert, &cert.key, &san).map_err(|e| {
                InvalidSetup(Errors::from(cert.at.error(format!(
                    "listener `{}`: cannot write a development certificate: {e}",
                    listener.name
                ))))
            })?;
            tracing::warn!(
                cert = %cert.cert.display(),
                names = ?san,
                "no certificate: generated a self-signed one for development (replace it for production)"
            );
        }
    }
    names.sort_unstable();
    match tls::server_config(&listener.certificates, &names) {
        Ok((config, certs)) => Ok(Some((TlsAcceptor::from(config), certs))),
        Err(e) => {
            let located = startup::listener_tls_error(listener, &e);
            Err(InvalidSetup(Errors::from(located)))
        }
    }
}

/// A write past the file-size limit (`ulimit -f`, `LimitFSIZE=`) raises SIGXFSZ, whose
/// default action kills the process: a full quota would take the proxy down with every
/// connection. Caught, the write fails with `EFBIG` instead, and the audit log handles it
/// as it handles a full disk (a 503 for what needs a record, not ready until it writes).
fn keep_alive_past_file_size_limit() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::from_raw(libc::SIGXFSZ)) {
        Ok(mut xfsz) => {
            tokio::spawn(async move {
                while xfsz.recv().await.is_some() {
                    tracing::warn!("a write went past the process's file-size limit (SIGXFSZ): it failed, the process goes on");
                }
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "SIGXFSZ not caught: a write past the file-size limit kills douane")
        }
    }
}

/// Waits for SIGTERM or SIGINT; forwards SIGHUP to the reloader meanwhile. Tells the
/// service manager it is ready only once the handlers are in place: a SIGTERM sent right
/// after `READY=1` drains instead of killing the process.
async fn wait_for_stop(reload: mpsc::Sender<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        crate::notify::ready();
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    crate::notify::ready();
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hup.recv() => { let _ = reload.try_send(()); }
        }
    }
}
