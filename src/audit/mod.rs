//! The tamper-evident block log: one JSON object a line, each carrying `seq`, the hash of
//! the previous record (`prev`) and its own `hash = SHA-256(prev ‖ exact bytes of the record
//! without its hash)`, so that any edit, insertion, deletion or reordering is found by
//! [`verify_files`]; [`report()`] summarises a verified log for auditors.
//!
//! ```text
//! proxy record() (gate) ─► AuditLog::record_with (encode body on the caller's side)
//!                     └─ bounded mpsc ─► one writer thread (AuditWriter): ts, seq, prev,
//!                                        hash, append, rotate, sync ─► ack ─► 451 goes out
//! proxy finish() (exit) ─► AuditLog::record_end: the end record, not awaited
//! ```
//!
//! A request that needs a record gets two: its gate record (decision, provenance, what it
//! asked for) and its end record (`"event":"end"`, same `request_id`: status, connected
//! address, bytes, duration). See `RECORD.md` beside this file.

mod chain;
mod config;
mod files;
mod health;
mod log;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod prune;
mod record;
mod report;
pub mod ship;
pub mod tlog;
mod verify;
pub mod witness;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use chain::{HashHex, ZERO_HASH};
pub use config::{AuditConfig, ClientMode, OnFailure, PathMode, SyncMode};
pub use files::{file_name, parse_name, RotatedFile, Target, DEFAULT_STEM};
pub use health::AuditHealth;
pub use log::{AuditLog, CHANNEL_CAPACITY};
pub use record::{
    AuditDetails, AuditEnd, AuditEvent, ExemptionFacts, RecordEncoder, StoredExemption, StoredIp,
    StoredRecord, CHAIN_RESTART, END,
};
pub use report::{
    build_report, render, report, Counts, ExemptionUse, PolicySeen, Report, ReportError,
    ReportFormat, Row,
};
pub use verify::{expand_paths, verify_files, ChainRestart, VerifyError, VerifySummary};
pub use writer::{list_log_files, AuditWriter};
// issue 11: the report in French and English, the SaaS inventory.
pub mod inventory;
pub use report::{
    render_lang, report_with, ExposureDay, Lang, MonitorPeriod, OperatorRow, ReportOptions,
};

/// The checkpoint and shipping figures the metrics show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlogStatus {
    pub checkpoint_size: u64,
    pub ship_sent: u64,
    pub ship_failures: u64,
    pub ship_backlog: u64,
}

/// Why a record could not be written, or the log could not start. `Clone`, so that one
/// failed write answers every record waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("audit config: {detail}")]
    Config { detail: String },
    #[error("audit hmac_key_file {}: {detail}", path.display())]
    KeyFile { path: PathBuf, detail: String },
    #[error("audit log: cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("audit log: the writer has stopped; restart douane")]
    Closed,
}

impl AuditError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> AuditError {
        AuditError::Io {
            action,
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }
}
