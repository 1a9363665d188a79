//! The audit log's health, shared by the writer and its readers (/readyz, metrics) through
//! atomics: reading it takes no lock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use serde::Serialize;

/// A snapshot of the audit log's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditHealth {
    /// The last write (or the start, before any write) succeeded and the writer runs.
    pub ok: bool,
    /// The last failure, kept after a recovery for the operator to read.
    pub last_error: Option<Arc<String>>,
    pub records_written: u64,
    pub write_failures: u64,
}

#[derive(Debug)]
pub(crate) struct HealthCells {
    ok: AtomicBool,
    records_written: AtomicU64,
    write_failures: AtomicU64,
    last_error: ArcSwapOption<String>,
}

impl Default for HealthCells {
    fn default() -> Self {
        HealthCells {
            ok: AtomicBool::new(true),
            records_written: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
            last_error: ArcSwapOption::empty(),
        }
    }
}

impl HealthCells {
    pub(crate) fn snapshot(&self) -> AuditHealth {
        AuditHealth {
            ok: self.ok.load(Ordering::Acquire),
            last_error: self.last_error.load_full(),
            records_written: self.records_written.load(Ordering::Relaxed),
            write_failures: self.write_failures.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn written(&self, n: u64) {
        if n > 0 {
            self.records_written.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn succeeded(&self) {
        self.ok.store(true, Ordering::Release);
    }

    /// A failed write: counted, and the log is not ok until a write succeeds.
    pub(crate) fn failed(&self, error: String) {
        self.write_failures.fetch_add(1, Ordering::Relaxed);
        self.unusable(error);
    }

    /// Not ok, without counting a failed write (e.g. the file cannot be opened at start).
    pub(crate) fn unusable(&self, error: String) {
        self.last_error.store(Some(Arc::new(error)));
        self.ok.store(false, Ordering::Release);
    }
}
