//! Wiring only: config → state → resolver → metrics → audit → listeners → reloads; and the
//! shutdown. Everything is validated before a socket is bound.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::admin::Admin;
use crate::audit::AuditLog;
use crate::commands::InvalidSetup;
use crate::config::{Config, LogFormat, ReverseListener};
use crate::metrics::Metrics;
use crate::proxy::context::Proxy;
use crate::proxy::reverse::RouteTable;
use crate::proxy::server::{serve_forward, serve_reverse, ReverseSite, Serving};
use crate::proxy::upstream::{Connector, ConnectorSettings};
use crate::reload::Reloader;
use crate::resolve::Resolver;
use crate::state::State;
use crate::tls;

/// Starts tracing as the config says (`RUST_LOG` wins when set).
pub fn init_tracing(config: &Config) {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| config.log.level.clone());
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// `douane run`: loads and checks everything, binds the listeners, serves until SIGTERM or
/// SIGINT, then drains.
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = Config::load(config_path).map_err(InvalidSetup)?;
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

    let resolver = Arc::new(Resolver::new(&config.resolver).context("resolver")?);
    let client_tls = tls::client_config(
        config.upstream.ca_file.as_deref(),
        config.upstream.system_roots,
    )
    .context("upstream TLS")?;
    let connector = Arc::new(Connector::new(
        client_tls,
        ConnectorSettings {
            connect_timeout: config.limits.connect_timeout,
            tls_timeout: config.limits.tls_handshake_timeout,
            response_timeout: config.limits.upstream_response_timeout,
            max_per_address: config.limits.max_upstream_connections_per_address,
            parent_proxy: config.upstream.parent_proxy.clone(),
        },
    ));
    let audit = match &config.audit {
        Some(audit_config) => {
            let (log, _writer) = AuditLog::start(audit_config).context("audit log")?;
            Some(log)
        }
        None => None,
    };

    // Bind everything before serving anything: a taken port fails the start, cleanly.
    let forward = match &config.forward {
        Some(f) => Some((
            bind(f.listen, &f.name).await?,
            Arc::<str>::from(f.name.as_str()),
            f.direct_http1,
        )),
        None => None,
    };
    let mut reverse = Vec::new();
    for listener in &config.reverse {
        let routes: Vec<_> = config
            .routes
            .iter()
            .filter(|r| r.listener == listener.name)
            .collect();
        let table = RouteTable::new(&routes)
            .with_context(|| format!("routes of listener `{}`", listener.name))?;
        let acceptor = reverse_tls(listener, &table)?;
        reverse.push(ReverseSite {
            listener: bind(listener.listen, &listener.name).await?,
            name: Arc::<str>::from(listener.name.as_str()),
            routes: Arc::new(table),
            tls: acceptor,
            direct_http1: listener.direct_http1,
        });
    }
    let admin_listener = match &config.admin {
        Some(a) => Some(bind(a.listen, "admin").await?),
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
                    .with_context(|| format!("admin token file {}", path.display()))?
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
        });
        tasks.spawn(crate::admin::serve(admin, listener, shutdown_rx.clone()));
    }

    let (reload_tx, reload_rx) = mpsc::channel(1);
    let reloader = Reloader {
        config_path: config_path.to_path_buf(),
        state,
        metrics,
        poll_interval: config.reload.watch.then_some(config.reload.poll_interval),
    };
    tasks.spawn(reloader.run(reload_rx, shutdown_rx.clone()));

    wait_for_stop(reload_tx).await;
    tracing::info!(
        grace_ms = config.limits.shutdown_grace.as_millis() as u64,
        "stopping: no new connections, draining the ones in flight"
    );
    let _ = shutdown_tx.send(true);
    while tasks.join_next().await.is_some() {}
    tracing::info!("stopped");
    Ok(())
}

async fn bind(address: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("listener `{name}` cannot bind {address}"))
}

/// The TLS acceptor of a reverse listener; a missing development certificate is generated
/// when the config asks for it.
fn reverse_tls(
    listener: &ReverseListener,
    routes: &RouteTable,
) -> anyhow::Result<Option<TlsAcceptor>> {
    if listener.certificates.is_empty() {
        return Ok(None);
    }
    let mut names: Vec<&str> = routes.hosts().collect();
    for cert in &listener.certificates {
        if cert.generate_if_missing && !cert.cert.exists() && !cert.key.exists() {
            let mut san = vec!["localhost"];
            san.extend(names.iter().copied());
            tls::write_self_signed(&cert.cert, &cert.key, &san)?;
            tracing::warn!(
                cert = %cert.cert.display(),
                names = ?san,
                "no certificate: generated a self-signed one for development (replace it for production)"
            );
        }
    }
    names.sort_unstable();
    let config = tls::server_config(&listener.certificates, &names)
        .with_context(|| format!("TLS of listener `{}`", listener.name))?;
    Ok(Some(TlsAcceptor::from(config)))
}

/// Waits for SIGTERM or SIGINT; forwards SIGHUP to the reloader meanwhile.
async fn wait_for_stop(reload: mpsc::Sender<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hup.recv() => { let _ = reload.try_send(()); }
        }
    }
}
