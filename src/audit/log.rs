//! The async audit log the proxy holds: callers encode their record's body, send it over a
//! bounded channel to the one writer thread (so chain order is write order), and wait for the
//! line to be written (and synced, with `sync = "every_record"`) before answering.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::config::{AuditConfig, OnFailure, SyncMode};
use super::files::Target;
use super::health::{AuditHealth, HealthCells};
use super::merkle::{Hash, ProofError};
use super::note::VerifierKey;
use super::record::{AuditDetails, AuditEnd, AuditEvent, RecordEncoder};
use super::ship::ShipStats;
use super::writer::{list_log_files, AuditWriter};
use super::AuditError;

/// Records waiting for the writer; past this, `record()` waits (backpressure).
pub const CHANNEL_CAPACITY: usize = 1024;
/// Records the writer takes in one write.
const MAX_BATCH: usize = 128;

type Ack = oneshot::Sender<Result<(), AuditError>>;

enum Msg {
    Record {
        body: Vec<u8>,
        /// `None` for an end record: nobody waits for it.
        ack: Option<Ack>,
    },
    /// Time to sync, if `sync = "interval"` and lines wait, and to sign a checkpoint if due.
    Tick,
    /// A consistency proof between two tree sizes (for a witness).
    Consistency {
        first: u64,
        second: u64,
        ack: oneshot::Sender<Result<Vec<Hash>, ProofError>>,
    },
    /// An inclusion proof of one record in the tree of `size` records.
    Inclusion {
        index: u64,
        size: u64,
        ack: oneshot::Sender<Result<Vec<Hash>, ProofError>>,
    },
}

/// A handle on the audit log; cheap to clone. The writer stops once every handle is dropped
/// (after syncing), which ends the task returned by [`AuditLog::start`].
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
}

struct Shared {
    config: AuditConfig,
    encoder: RecordEncoder,
    health: Arc<HealthCells>,
    target: Target,
    /// The latest signed checkpoint (none for a device target).
    checkpoint: Option<Arc<ArcSwapOption<String>>>,
    verifier: Option<VerifierKey>,
    /// The shipper's counters, when `[audit.ship]` is set.
    ship: Option<Arc<ShipStats>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("target", &self.shared.target)
            .field("health", &self.health())
            .finish()
    }
}

impl AuditLog {
    /// Opens the log (continuing the chain of the files found) and starts its writer on a
    /// blocking thread. Must be called within a tokio runtime.
    pub fn start(config: &AuditConfig) -> Result<(AuditLog, JoinHandle<()>), AuditError> {
        let writer = AuditWriter::open(config)?;
        let shared = Arc::new(Shared {
            config: config.clone(),
            encoder: writer.encoder().clone(),
            health: writer.health_cells(),
            target: Target::from_path(&config.path),
            checkpoint: writer.checkpoint_cell(),
            verifier: writer.verifier(),
            ship: config.ship.as_ref().map(|_| Arc::new(ShipStats::default())),
        });
        if let (Some(ship), Some(stats)) = (&config.ship, &shared.ship) {
            tokio::spawn(super::ship::run(
                ship.clone(),
                shared.target.clone(),
                stats.clone(),
            ));
        }
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let sync_period = (config.sync == SyncMode::Interval)
            .then(|| Duration::from_millis(config.sync_interval_ms.max(1)));
        let period = match (sync_period, writer.checkpoint_interval()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(period) = period {
            let weak = tx.downgrade();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(period);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    // A weak sender: the ticker does not keep the writer alive.
                    let Some(tx) = weak.upgrade() else { break };
                    // A full channel means records flow, and each batch syncs when due.
                    let _ = tx.try_send(Msg::Tick);
                }
            });
        }
        if let (Some(retention), Target::Rotating { .. }) = (config.retention(), &shared.target) {
            let every = Duration::from_secs(config.prune_interval_s.max(1));
            tokio::spawn(prune_every(
                config.path.clone(),
                retention,
                every,
                tx.downgrade(),
            ));
        }
        let task = tokio::task::spawn_blocking(move || run(writer, rx));
        Ok((AuditLog { tx, shared }, task))
    }

    /// Records the event if its outcome needs a record (blocks, would-blocks and exemption
    /// uses always; the rest with `record_allowed`). Resolves once the line is written, and
    /// synced with `sync = "every_record"`: the proxy awaits it before answering 451.
    pub async fn record(&self, event: &AuditEvent<'_>) -> Result<(), AuditError> {
        self.record_with(event, &AuditDetails::default()).await
    }

    /// Like [`AuditLog::record`], with the facts of the request's end (final status,
    /// connected address, bytes, duration, route, SNI, exemption, …).
    pub async fn record_with(
        &self,
        event: &AuditEvent<'_>,
        details: &AuditDetails<'_>,
    ) -> Result<(), AuditError> {
        if !self.shared.config.needs_record(event.decision.outcome) {
            return Ok(());
        }
        let mut body = Vec::with_capacity(768);
        self.shared
            .encoder
            .encode_body_with(event, details, &mut body);
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Record {
                body,
                ack: Some(ack),
            })
            .await
            .map_err(|_| AuditError::Closed)?;
        done.await.map_err(|_| AuditError::Closed)?
    }

    /// Writes the end record of a request whose outcome needs a record, without waiting:
    /// the response is already decided. A full channel hands the send to a task (the order
    /// after its gate record holds: that one was written before the request went on); a
    /// stopped writer loses it, with a log line (the write failures show in the health).
    pub fn record_end(&self, end: &AuditEnd<'_>) {
        if !self.shared.config.needs_record(end.outcome) {
            return;
        }
        let mut body = Vec::with_capacity(256);
        self.shared.encoder.encode_end(end, &mut body);
        match self.tx.try_send(Msg::Record { body, ack: None }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                let tx = self.tx.clone();
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => {
                        rt.spawn(async move {
                            let _ = tx.send(msg).await;
                        });
                    }
                    Err(_) => tracing::warn!("audit end record lost: no runtime"),
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::warn!(
                    request_id = end.request_id,
                    "audit end record lost: the writer has stopped"
                );
            }
        }
    }

    /// Lock-free: for /readyz and the metrics.
    pub fn health(&self) -> AuditHealth {
        let mut h = self.shared.health.snapshot();
        h.ok &= !self.tx.is_closed();
        h
    }

    /// What the proxy does when `record()` fails.
    pub fn on_failure(&self) -> OnFailure {
        self.shared.config.on_failure
    }

    pub fn config(&self) -> &AuditConfig {
        &self.shared.config
    }

    /// The latest signed checkpoint (C2SP signed note), once one was signed.
    pub fn checkpoint(&self) -> Option<Arc<String>> {
        self.shared.checkpoint.as_ref().and_then(|c| c.load_full())
    }

    /// The checkpoint and shipping figures, for the metrics.
    pub fn tlog_status(&self) -> super::TlogStatus {
        use std::sync::atomic::Ordering::Relaxed;
        let checkpoint_size = self
            .checkpoint()
            .and_then(|c| c.lines().nth(1).and_then(|l| l.parse().ok()))
            .unwrap_or(0);
        let mut s = super::TlogStatus {
            checkpoint_size,
            ..super::TlogStatus::default()
        };
        if let Some(ship) = self.ship_stats() {
            s.ship_sent = ship.sent.load(Relaxed);
            s.ship_failures = ship.failures.load(Relaxed);
            s.ship_backlog = ship.backlog.load(Relaxed);
        }
        s
    }

    /// The shipper's counters (sent, failures, cursor, backlog), when shipping.
    pub fn ship_stats(&self) -> Option<&ShipStats> {
        self.shared.ship.as_deref()
    }

    /// The key that verifies the checkpoints.
    pub fn verifier(&self) -> Option<&VerifierKey> {
        self.shared.verifier.as_ref()
    }

    /// The consistency proof between two tree sizes, computed by the writer thread.
    pub async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<Hash>, ProofError> {
        let (ack, done) = oneshot::channel();
        let closed = ProofError::TooLarge {
            size: second,
            have: 0,
        };
        if self
            .tx
            .send(Msg::Consistency { first, second, ack })
            .await
            .is_err()
        {
            return Err(closed);
        }
        done.await.unwrap_or(Err(closed))
    }

    /// The inclusion proof of record `index` in the tree of `size` records.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        let (ack, done) = oneshot::channel();
        let closed = ProofError::TooLarge { size, have: 0 };
        if self
            .tx
            .send(Msg::Inclusion { index, size, ack })
            .await
            .is_err()
        {
            return Err(closed);
        }
        done.await.unwrap_or(Err(closed))
    }

    /// The log's files in chain order (what `douane audit verify` should be given).
    pub fn files(&self) -> std::io::Result<Vec<PathBuf>> {
        list_log_files(&self.shared.target)
    }
}

/// Retention, applied inside `run`: the rotated files are pruned at start and every `every`
/// (off the writer thread; the file douane appends to is never rewritten). Stops with the
/// writer (a weak sender).
async fn prune_every(
    path: PathBuf,
    retention: super::prune::Retention,
    every: Duration,
    writer: mpsc::WeakSender<Msg>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if writer.upgrade().is_none() {
            break;
        }
        let p = path.clone();
        let now = time::OffsetDateTime::now_utc();
        let done =
            tokio::task::spawn_blocking(move || super::prune::prune(&p, retention, now)).await;
        match done {
            Ok(Ok(s)) if s.pruned > 0 => tracing::info!(
                pruned = s.pruned,
                files = s.files_rewritten,
                "audit retention: records pruned"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "audit retention: nothing pruned"),
            Err(e) => tracing::warn!(error = %e, "audit retention: the prune failed"),
        }
    }
}

/// The writer thread: takes what waits in the channel (up to a batch), writes it in one go,
/// answers every waiting caller with the result.
fn run(mut writer: AuditWriter, mut rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<(Vec<u8>, Option<Ack>)> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record { body, ack } => batch.push((body, ack)),
                Msg::Tick => {}
                Msg::Consistency { first, second, ack } => {
                    let _ = ack.send(writer.consistency_proof(first, second));
                }
                Msg::Inclusion { index, size, ack } => {
                    let _ = ack.send(writer.inclusion_proof(index, size));
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if batch.is_empty() {
            // Only ticks: sync what waits, if due. A failure shows in the health.
            let _ = writer.sync_if_due();
            let _ = writer.checkpoint_if_due();
            continue;
        }
        let bodies: Vec<&[u8]> = batch.iter().map(|(b, _)| b.as_slice()).collect();
        // All or nothing for the callers: a record reported failed may still be in the log
        // (an earlier part of the batch, or a failed sync), never the reverse.
        let (_, result) = writer.append_encoded(&bodies);
        drop(bodies);
        for (_, ack) in batch.drain(..) {
            if let Some(ack) = ack {
                let _ = ack.send(result.clone());
            }
        }
        // After the callers are answered: signing is never on a request's path.
        let _ = writer.checkpoint_if_due();
    }
    let _ = writer.sync();
    let _ = writer.checkpoint();
}
