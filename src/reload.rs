//! Reloads without downtime: on SIGHUP, or when a watched file changes (config, policy
//! files, operator registry, databases), build the whole new state aside, validate it, and
//! swap it in atomically; keep the old one, and say why, when the new one is invalid.
//! Requests in flight finish on the snapshot they started with.
//!
//! What a reload takes: policies, the registry, the databases (also when the config now
//! points at other files). What needs a restart: listener addresses, routes, TLS
//! certificates, resolver, audit and admin settings.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::state::State;

/// A cheap picture of the watched files: a reload happens when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(PathBuf, Option<(SystemTime, u64)>)>);

impl Fingerprint {
    pub fn of(config_path: &Path, config: &Config) -> Fingerprint {
        let mut paths = vec![config_path.to_path_buf(), config.operators.clone()];
        paths.extend(config.geo.country.iter().cloned());
        paths.extend(config.geo.asn.iter().cloned());
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

pub struct Reloader {
    pub config_path: PathBuf,
    pub state: Arc<ArcSwap<State>>,
    pub metrics: Arc<Metrics>,
    pub poll_interval: Option<Duration>,
}

impl Reloader {
    /// Loads the new state from disk and swaps it in; the old state stays on any error.
    pub async fn reload(&self) -> bool {
        let path = self.config_path.clone();
        let built = tokio::task::spawn_blocking(move || {
            let config = Config::load(&path)?;
            State::load(&config)
        })
        .await;
        match built {
            Ok(Ok(state)) => {
                let state = Arc::new(state);
                self.metrics.set_state(&state);
                tracing::info!(
                    policy = &*state.provenance.policy_name,
                    version = &*state.provenance.policy_version,
                    "reloaded: new policy and databases in force"
                );
                self.state.store(state);
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
                    self.reload().await;
                    seen = self.fingerprint();
                }
                _ = ticker.tick(), if self.poll_interval.is_some() => {
                    let now = self.fingerprint();
                    if now != seen {
                        // Let a writer finish its file before reading it.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        tracing::info!("a watched file changed: reloading");
                        self.reload().await;
                        seen = self.fingerprint();
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
