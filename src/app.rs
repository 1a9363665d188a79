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
use crate::proxy::server::{serve_forward, serve_reverse, ReverseSite, Serving};
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
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
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

    // Bind everything before serving anything: a taken port fails the start, cleanly.
    let forward = match &config.forward {
        Some(f) => Some((
            startup::bind(f.listen, &f.name, &f.listen_at).await?,
            Arc::<str>::from(f.name.as_str()),
            f.direct_http1,
        )),
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
        reverse.push(ReverseSite {
            listener: startup::bind(listener.listen, &listener.name, &listener.listen_at).await?,
            name: Arc::<str>::from(listener.name.as_str()),
            routes,
            tls: acceptor,
            direct_http1: listener.direct_http1,
        });
    }
    let admin_listener = match &config.admin {
        Some(a) => Some(startup::bind(a.listen, "admin", &a.listen_at).await?),
        None => None,
    };
    let mut own_addresses: Vec<SocketAddr> = Vec::new();
    own_addresses.extend(forward.iter().filter_map(|(l, ..)| l.local_addr().ok()));
    own_addresses.extend(
        reverse
            .iter()
            .filter_map(|site| site.listener.local_addr().ok()),
    );
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

    let mut tasks = tokio::task::JoinSet::new();
    if let Some((listener, name, direct_http1)) = forward {
        tracing::info!(listener = &*name, address = %listener.local_addr()?, direct_http1, "forward proxy listening");
        tasks.spawn(serve_forward(serving.clone(), listener, name, direct_http1));
    }
    for site in reverse {
        tracing::info!(
            listener = &*site.name,
            address = %site.listener.local_addr()?,
            tls = site.tls.is_some(),
            direct_http1 = site.direct_http1,
            "reverse proxy listening"
        );
        tasks.spawn(serve_reverse(serving.clone(), site));
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
    tracing::info!("stopped");
    Ok(())
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
