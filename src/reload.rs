//! Reloads without downtime: on SIGHUP, or when a watched file changes (config, policy
//! files, operator registry, databases, TLS certificates and keys), build the whole new
//! state aside, validate it, and swap it in atomically; keep the old one, and say why, when
//! the new one is invalid. Requests in flight finish on the snapshot they started with.
//!
//! What a reload applies: policies, the registry, the databases (also when the config now
//! points at other files), the certificates of each TLS listener (new handshakes get the
//! new ones; open connections keep theirs), the routes of each running reverse listener
//! (routes added, removed, or with another host, path or upstream: new connections get the
//! new table, open ones keep the table they were accepted with), `[geo] max_age_days`.
//! What needs a restart: listeners (address, TLS on or off, added or removed), `[upstream]`,
//! limits, resolver, audit, admin and log settings. A reload that sees one of those applies
//! the rest, names each change in a warning and in `douane_restart_required{change}`: never
//! a silent "reloaded". Under systemd, a reload is bracketed by `RELOADING=1` and `READY=1`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts};
use tokio::sync::{mpsc, watch};

use crate::config::diff::{self, Change};
use crate::config::Config;
use crate::diag::Errors;
use crate::metrics::Metrics;
use crate::proxy::reverse::RouteTable;
use crate::state::State;
use crate::tls::{self, Certificates, SniResolver};

/// The change kinds of [`diff::needs_restart`], so that every series exists from the start.
const CHANGE_KINDS: [&str; 13] = [
    "listener",
    "admin",
    "upstream",
    "limits",
    "audit",
    "resolver",
    "log",
    "trust",
    "block_page",
    "pac",
    "local_ca",
    "tunnel",
    "reload",
];

/// A cheap picture of the watched files: a reload happens when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(PathBuf, Option<(SystemTime, u64)>)>);

impl Fingerprint {
    pub fn of(config_path: &Path, config: &Config) -> Fingerprint {
        let mut paths = vec![config_path.to_path_buf(), config.operators.clone()];
        paths.extend(config.geo.country.iter().cloned());
        paths.extend(config.geo.asn.iter().cloned());
        // Certificate renewals (certbot, cert-manager) rewrite or relink these.
        for listener in &config.reverse {
            for c in &listener.certificates {
                paths.push(c.cert.clone());
                paths.push(c.key.clone());
            }
        }
        paths.extend(config.geo.published.iter().cloned());
        if let Ok(entries) = std::fs::read_dir(&config.policy_dir) {
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            paths.extend(files);
        }
        Fingerprint(
            paths
                .into_iter()
                .map(|p| {
                    // Follow symlinks: Kubernetes ConfigMaps swap a link, not the file.
                    let meta = std::fs::metadata(&p)
                        .ok()
                        .and_then(|m| Some((m.modified().ok()?, m.len())));
                    (p, meta)
                })
                .collect(),
        )
    }
}

/// The reload metrics that the config, not the state, drives: what waits for a restart,
/// and the data-age threshold that `check` and the shipped alert share.
#[derive(Debug, Clone)]
pub struct OpsMetrics {
    restart_required: IntGaugeVec,
    restart_changes: IntCounterVec,
    max_age: IntGauge,
}

impl OpsMetrics {
    /// Registers the families in the metrics' registry and sets them from `config`.
    pub fn register(metrics: &Metrics, config: &Config) -> OpsMetrics {
        let r = metrics.registry();
        let restart_required = IntGaugeVec::new(
            Opts::new(
                "douane_restart_required",
                "1 when the config on disk differs from the running one in a way only a restart applies, by change (listener, admin, upstream, limits, …).",
            ),
            &["change"],
        )
        .expect("valid metric");
        let restart_changes = IntCounterVec::new(
            Opts::new(
                "douane_reload_restart_required_total",
                "Reloads that applied policies, databases, certificates and routes but saw a change that needs a restart, by change.",
            ),
            &["change"],
        )
        .expect("valid metric");
        let max_age = IntGauge::new(
            "douane_geo_max_age_seconds",
            "[geo] max_age_days in seconds: a database older than this is stale (douane check warns, the shipped alert fires).",
        )
        .expect("valid metric");
        for kind in CHANGE_KINDS {
            restart_required.with_label_values(&[kind]).set(0);
            restart_changes.with_label_values(&[kind]);
        }
        // A second registration (two instances in one process, tests) keeps the first.
        let _ = r.register(Box::new(restart_required.clone()));
        let _ = r.register(Box::new(restart_changes.clone()));
        let _ = r.register(Box::new(max_age.clone()));
        let ops = OpsMetrics {
            restart_required,
            restart_changes,
            max_age,
        };
        ops.set_max_age(config);
        ops
    }

    fn set_max_age(&self, config: &Config) {
        self.max_age
            .set(i64::from(config.geo.max_age_days).saturating_mul(86_400));
    }

    fn set_changes(&self, changes: &[Change]) {
        for kind in CHANGE_KINDS {
            let pending = changes.iter().any(|c| c.kind == kind);
            self.restart_required
                .with_label_values(&[kind])
                .set(i64::from(pending));
            if pending {
                self.restart_changes.with_label_values(&[kind]).inc();
            }
        }
    }
}

/// Everything one reload read from disk, validated, before anything is swapped.
struct Loaded {
    config: Config,
    state: State,
    /// New certificates for each running TLS listener that still has TLS.
    certificates: Vec<(usize, SniResolver)>,
    /// New route tables for each running reverse listener still in the config.
    routes: Vec<(usize, RouteTable)>,
}

pub struct Reloader {
    pub config_path: PathBuf,
    pub state: Arc<ArcSwap<State>>,
    pub metrics: Arc<Metrics>,
    pub ops: OpsMetrics,
    pub poll_interval: Option<Duration>,
    /// The certificates of each TLS reverse listener, by listener name.
    pub certificates: Vec<(String, Arc<Certificates>)>,
    /// The route table of each reverse listener, by listener name.
    pub routes: Vec<(String, Arc<ArcSwap<RouteTable>>)>,
    /// The config the listeners were built from (what a restart would change), with the
    /// routes last applied. Only the reload task takes this lock.
    pub running: std::sync::Mutex<Config>,
}

impl Reloader {
    /// Loads the new state and certificates from disk and swaps them in; the old ones stay
    /// on any error. Changes that need a restart are named, not silently dropped.
    pub async fn reload(&self) -> bool {
        crate::notify::reloading();
        let applied = self.reload_now().await;
        crate::notify::reloaded();
        applied
    }

    async fn reload_now(&self) -> bool {
        let path = self.config_path.clone();
        let names: Vec<String> = self.certificates.iter().map(|(n, _)| n.clone()).collect();
        let sites: Vec<String> = self.routes.iter().map(|(n, _)| n.clone()).collect();
        let built = tokio::task::spawn_blocking(move || load(&path, &names, &sites)).await;
        match built {
            Ok(Ok(loaded)) => {
                let state = Arc::new(loaded.state);
                self.metrics.set_state(&state);
                self.state.store(state.clone());
                for (i, resolver) in loaded.certificates {
                    self.certificates[i].1.replace(resolver);
                }
                for (i, table) in loaded.routes {
                    self.routes[i].1.store(Arc::new(table));
                }
                self.ops.set_max_age(&loaded.config);
                let mut running = self
                    .running
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for c in diff::route_changes(&running, &loaded.config) {
                    tracing::info!(change = c.kind, "reload: applied to new connections: {c}");
                }
                running.routes = loaded.config.routes.clone();
                let changes = diff::needs_restart(&running, &loaded.config);
                drop(running);
                for c in &changes {
                    tracing::warn!(
                        change = c.kind,
                        "reload: not applied, needs a restart (the running setting keeps serving): {c}"
                    );
                }
                self.ops.set_changes(&changes);
                if changes.is_empty() {
                    tracing::info!(
                        policy = &*state.provenance.policy_name,
                        version = &*state.provenance.policy_version,
                        certificates = self.certificates.len(),
                        "reloaded: new policy, databases and certificates in force"
                    );
                } else {
                    tracing::warn!(
                        policy = &*state.provenance.policy_name,
                        version = &*state.provenance.policy_version,
                        pending = changes.len(),
                        "reloaded policy, databases, certificates and routes; {} change(s) wait for a restart: {}",
                        changes.len(),
                        changes.iter().map(|c| c.kind).collect::<Vec<_>>().join(", ")
                    );
                }
                self.metrics.reload(true);
                true
            }
            Ok(Err(errors)) => {
                for e in &errors.0 {
                    tracing::error!("reload refused, the previous state keeps serving: {e}");
                }
                self.metrics.reload(false);
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "reload task failed");
                self.metrics.reload(false);
                false
            }
        }
    }

    /// Runs until shutdown: reloads on each signal sent on `requests` (SIGHUP) and when the
    /// watched files change.
    pub async fn run(self, mut requests: mpsc::Receiver<()>, mut shutdown: watch::Receiver<bool>) {
        let mut seen = self.fingerprint();
        let poll = self
            .poll_interval
            .unwrap_or(Duration::from_secs(3600 * 24 * 365));
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                Some(()) = requests.recv() => {
                    tracing::info!("SIGHUP: reloading");
                    // Taken before reading: a file written during the reload (the key
                    // after its certificate) is a change the next poll sees.
                    seen = self.fingerprint();
                    self.reload().await;
                }
                _ = ticker.tick(), if self.poll_interval.is_some() => {
                    let now = self.fingerprint();
                    if now != seen {
                        // Let a writer finish its file before reading it.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        tracing::info!("a watched file changed: reloading");
                        seen = self.fingerprint();
                        self.reload().await;
                    }
                }
            }
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        match Config::load(&self.config_path) {
            Ok(config) => Fingerprint::of(&self.config_path, &config),
            // An unreadable config is a change too (and the reload will say what is wrong).
            Err(_) => Fingerprint(vec![(self.config_path.clone(), None)]),
        }
    }
}

/// Reads the config, the state, the certificates of the TLS listeners named `tls_names` and
/// the route tables of the reverse listeners named `sites` (in those orders), every error
/// at once.
fn load(path: &Path, tls_names: &[String], sites: &[String]) -> Result<Loaded, Errors> {
    let config = Config::load(path)?;
    let mut errors = Vec::new();
    let state = State::load(&config).map_err(|e| errors.extend(e.0)).ok();
    let mut routes = Vec::new();
    for (i, name) in sites.iter().enumerate() {
        // A listener gone is a restart change: its running routes stay with it.
        if !config.reverse.iter().any(|l| &l.name == name) {
            continue;
        }
        match crate::app::route_table(&config, name) {
            Ok(table) => routes.push((i, table)),
            Err(e) => errors.extend(e.0 .0),
        }
    }
    let mut certificates = Vec::new();
    for (i, name) in tls_names.iter().enumerate() {
        // A listener gone or turned plain is a restart change: its running certificates stay.
        let Some(listener) = config.reverse.iter().find(|l| &l.name == name) else {
            continue;
        };
        if listener.certificates.is_empty() {
            continue;
        }
        let mut hosts: Vec<&str> = config
            .routes
            .iter()
            .filter(|r| &r.listener == name)
            .map(|r| r.host.as_str())
            .collect();
        hosts.sort_unstable();
        hosts.dedup();
        match tls::load_resolver(&listener.certificates, &hosts) {
            Ok(resolver) => certificates.push((i, resolver)),
            Err(e) => {
                let located = crate::startup::listener_tls_error(listener, &e);
                errors.push(located);
            }
        }
    }
    match state {
        Some(state) if errors.is_empty() => Ok(Loaded {
            config,
            state,
            certificates,
            routes,
        }),
        _ => Err(Errors(errors)),
    }
}
