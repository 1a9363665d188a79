//! The synchronous core of the audit log: composes each line (`ts`, `seq`, body, `prev`,
//! `hash`), appends it, rotates by size and UTC day, syncs by config, recovers from write
//! failures, and continues the chain of the files it finds at start. No tokio here: the
//! async [`super::AuditLog`] runs one of these on a blocking thread, and the bench drives it
//! directly.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use super::chain::{hash_str, seal, HashHex, ZERO_HASH};
use super::config::{AuditConfig, SyncMode};
use super::files::{self, RotatedFile, Target};
use super::health::{AuditHealth, HealthCells};
use super::merkle::{leaf_hash, Hash, ProofError};
use super::note::VerifierKey;
use super::record::{AuditEvent, RecordEncoder};
use super::tlog::Tlog;
use super::verify::check_line;
use super::AuditError;

/// Leaf hashes kept ready for one batch.
const MAX_LEAVES: usize = 256;

/// The open file records go to.
#[derive(Debug)]
struct Current {
    file: File,
    path: PathBuf,
    date: Date,
    /// Bytes known to hold complete records.
    len: u64,
}

/// Appends records to the chain. One per log: chain order is the order of `append` calls.
#[derive(Debug)]
pub struct AuditWriter {
    target: Target,
    sync: SyncMode,
    sync_interval: Duration,
    rotate_size: u64,
    rotate_daily: bool,
    encoder: RecordEncoder,
    current: Option<Current>,
    /// The newest rotated file known (to name the next one, and to reuse at start).
    last_file: Option<RotatedFile>,
    /// Whether `last_file` may be appended to (false after a corrupt tail or a failed
    /// truncation: the next record opens a new file).
    reuse_last: bool,
    next_seq: u64,
    prev: HashHex,
    /// The detail of a `chain_restart` record still to be written first.
    pending_restart: Option<String>,
    unsynced: bool,
    last_sync: Instant,
    buf: Vec<u8>,
    body: Vec<u8>,
    health: Arc<HealthCells>,
    /// The Merkle tree and checkpoints (rotating files only).
    tlog: Option<Tlog>,
    /// Leaf hashes of the lines composed and not yet written.
    leaves: Vec<Hash>,
    /// The last intact line found at start (to check the tree cache against).
    last_line: Option<Vec<u8>>,
}

impl AuditWriter {
    /// Validates the config, finds the existing files and continues their chain. A corrupt
    /// tail (a line cut by a crash, or altered) is left as it is for the auditor to see; the
    /// writer opens a new file whose first record is a `chain_restart` saying what it found,
    /// chained to the last intact record.
    pub fn open(config: &AuditConfig) -> Result<AuditWriter, AuditError> {
        config.validate()?;
        let encoder = RecordEncoder::new(config)?;
        let target = Target::from_path(&config.path);
        let mut w = AuditWriter {
            target,
            sync: config.sync,
            sync_interval: Duration::from_millis(config.sync_interval_ms),
            rotate_size: config.rotate_size_bytes,
            rotate_daily: config.rotate_daily,
            encoder,
            current: None,
            last_file: None,
            reuse_last: true,
            next_seq: 0,
            prev: ZERO_HASH,
            pending_restart: None,
            unsynced: false,
            last_sync: Instant::now(),
            buf: Vec::with_capacity(4096),
            body: Vec::with_capacity(1024),
            health: Arc::new(HealthCells::default()),
            tlog: None,
            leaves: Vec::with_capacity(MAX_LEAVES),
            last_line: None,
        };
        if let Target::Rotating { dir, stem } = w.target.clone() {
            let (dir, stem) = (&dir, &stem);
            let found = files::list(dir, Some(stem)).map_err(|e| AuditError::io("list", dir, e))?;
            w.recover(&found)?;
            let paths: Vec<PathBuf> = found.iter().map(|f| f.path.clone()).collect();
            let last_line = w.last_line.take();
            w.tlog = Some(Tlog::open(
                config,
                dir,
                stem,
                &paths,
                w.next_seq,
                last_line.as_deref(),
            )?);
        }
        // Open now so that /readyz tells at once; a failure here is retried at each record.
        let today = OffsetDateTime::now_utc().date();
        match w.ensure_file(today, 0) {
            Ok(()) => {
                if w.pending_restart.is_some() {
                    let (_, result) = w.write_lines(&[], OffsetDateTime::now_utc());
                    if let Err(e) = result {
                        w.health.unusable(e.to_string());
                    }
                }
            }
            Err(e) => w.health.unusable(e.to_string()),
        }
        // A start signs at once when the tree moved since the last checkpoint.
        let _ = w.checkpoint_if_due();
        Ok(w)
    }

    /// Signs a checkpoint if records were added and the interval passed (or a rotation or
    /// the start asked for one). Syncs the log first.
    pub fn checkpoint_if_due(&mut self) -> Result<(), AuditError> {
        if self.tlog.as_ref().is_some_and(Tlog::due) {
            self.sign_checkpoint()
        } else {
            Ok(())
        }
    }

    /// Signs a checkpoint now if records were added since the last one (at shutdown).
    pub fn checkpoint(&mut self) -> Result<(), AuditError> {
        if let Some(t) = &mut self.tlog {
            t.force();
        }
        self.checkpoint_if_due()
    }

    fn sign_checkpoint(&mut self) -> Result<(), AuditError> {
        self.sync()?;
        let result = self.tlog.as_mut().map_or(Ok(()), Tlog::sign);
        if let Err(e) = &result {
            tracing::warn!(error = %e, "audit checkpoint not signed");
        }
        result
    }

    /// The latest signed checkpoint, shared with readers (none for a device target).
    pub fn checkpoint_cell(&self) -> Option<Arc<arc_swap::ArcSwapOption<String>>> {
        self.tlog.as_ref().map(Tlog::latest)
    }

    /// The key that verifies this log's checkpoints.
    pub fn verifier(&self) -> Option<VerifierKey> {
        self.tlog.as_ref().map(Tlog::verifier)
    }

    /// How many records the tree holds.
    pub fn tree_size(&self) -> u64 {
        self.tlog.as_ref().map_or(0, |t| t.tree.size())
    }

    /// The root of the tree of the first `size` records.
    pub fn tree_root(&self, size: u64) -> Option<Hash> {
        self.tlog.as_ref().and_then(|t| t.tree.root(size).ok())
    }

    /// The consistency proof between two tree sizes.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
        match &self.tlog {
            Some(t) => t.consistency(first, second),
            None => Err(ProofError::TooLarge {
                size: second,
                have: 0,
            }),
        }
    }

    /// The inclusion proof of record `index` in the tree of `size` records.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        match &self.tlog {
            Some(t) => t.inclusion(index, size),
            None => Err(ProofError::TooLarge { size, have: 0 }),
        }
    }

    /// How long until a checkpoint may be due.
    pub fn checkpoint_interval(&self) -> Option<Duration> {
        self.tlog.as_ref().map(Tlog::interval)
    }

    /// Serialises and appends one record; returns its `seq`.
    pub fn append(&mut self, event: &AuditEvent<'_>) -> Result<u64, AuditError> {
        self.append_dated(event, OffsetDateTime::now_utc())
    }

    /// Like [`AuditWriter::append`], the record dated `now` (a log made for a test of
    /// retention, whose records must be months old). A date before the newest file's goes
    /// to that file: files are never dated backwards.
    pub fn append_dated(
        &mut self,
        event: &AuditEvent<'_>,
        now: OffsetDateTime,
    ) -> Result<u64, AuditError> {
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        self.encoder.encode_body(event, &mut body);
        let (n, result) = self.write_lines(&[&body], now);
        self.body = body;
        result?;
        debug_assert_eq!(n, 1);
        Ok(self.next_seq - 1)
    }

    /// Appends record bodies made by [`RecordEncoder::encode_body`], in order, with one
    /// write per file. Returns how many were written (those first ones are in the log even
    /// when an error follows) and the error, if any.
    pub fn append_encoded(&mut self, bodies: &[&[u8]]) -> (usize, Result<(), AuditError>) {
        self.write_lines(bodies, OffsetDateTime::now_utc())
    }

    /// The encoder this writer uses (the async log encodes on the caller's side with it).
    pub fn encoder(&self) -> &RecordEncoder {
        &self.encoder
    }

    /// Forces the written lines to disk.
    pub fn sync(&mut self) -> Result<(), AuditError> {
        if let Some(t) = &mut self.tlog {
            t.flush_cache();
        }
        if !self.unsynced {
            return Ok(());
        }
        if let (Some(cur), Target::Rotating { .. }) = (&self.current, &self.target) {
            if let Err(e) = cur.file.sync_data() {
                let err = AuditError::io("sync", &cur.path, e);
                self.health.failed(err.to_string());
                return Err(err);
            }
        }
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Syncs if `sync = "interval"` and the interval has passed since the last sync.
    pub fn sync_if_due(&mut self) -> Result<(), AuditError> {
        if self.unsynced && self.last_sync.elapsed() >= self.sync_interval {
            self.sync()
        } else {
            Ok(())
        }
    }

    /// How long until an unsynced write must be synced, if one waits.
    pub fn sync_due_in(&self) -> Option<Duration> {
        self.unsynced
            .then(|| self.sync_interval.saturating_sub(self.last_sync.elapsed()))
    }

    pub fn health(&self) -> AuditHealth {
        self.health.snapshot()
    }

    pub(crate) fn health_cells(&self) -> Arc<HealthCells> {
        self.health.clone()
    }

    /// The `seq` the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The hash of the last record written (the next record's `prev`).
    pub fn last_hash(&self) -> &str {
        hash_str(&self.prev)
    }

    /// The files of this log, in chain order.
    pub fn files(&self) -> io::Result<Vec<PathBuf>> {
        list_log_files(&self.target)
    }

    /// The file records go to now, once one is open.
    pub fn current_file(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    fn recover(&mut self, found: &[RotatedFile]) -> Result<(), AuditError> {
        let Some(newest) = found.last() else {
            return Ok(());
        };
        self.last_file = Some(newest.clone());
        for (i, f) in found.iter().enumerate().rev() {
            let tail =
                files::read_tail(&f.path, 2).map_err(|e| AuditError::io("read", &f.path, e))?;
            let Some(last) = tail.lines.last() else {
                continue;
            }; // an empty file
            let problem = match check_line(last) {
                _ if !tail.terminated => {
                    "its last line has no newline (a write cut short)".to_owned()
                }
                Ok(c) => {
                    self.next_seq = c.record.seq.saturating_add(1);
                    self.prev = c.hash;
                    self.last_line = Some(last.clone());
                    return Ok(());
                }
                Err(p) => format!("its last line is corrupt: {p}"),
            };
            // The last intact record: the line before, or the end of an earlier file.
            let before = if tail.lines.len() == 2 {
                check_line(&tail.lines[0])
                    .ok()
                    .map(|c| (c.record.seq, c.hash))
            } else {
                last_intact(&found[..i])?
            };
            let chain = match before {
                Some((seq, hash)) => {
                    self.next_seq = seq.saturating_add(1);
                    self.prev = hash;
                    format!("the chain goes on from the last intact record, seq {seq}")
                }
                None => "no intact record before it: a new chain starts".to_owned(),
            };
            self.pending_restart = Some(format!(
                "{} was left as found: {problem}; {chain}",
                f.path.display()
            ));
            self.reuse_last = false;
            return Ok(());
        }
        Ok(())
    }

    /// Whether the next `incoming` bytes must go to a new file.
    /// Whether a line of `line` bytes, after `pending` bytes not yet written, must go to a
    /// new file. A line longer than a whole file still goes alone into one.
    fn needs_new_file(&self, today: Date, pending: u64, line: u64) -> bool {
        let Some(cur) = &self.current else {
            return true;
        };
        if matches!(self.target, Target::Device(_)) {
            return false;
        }
        !self.reuse_last || (self.rotate_daily && today > cur.date) || {
            let before = cur.len.saturating_add(pending);
            before > 0 && before.saturating_add(line) > self.rotate_size
        }
    }

    /// Makes sure a file is open that can take `incoming` more bytes on `today`.
    fn ensure_file(&mut self, today: Date, incoming: u64) -> Result<(), AuditError> {
        if !self.needs_new_file(today, 0, incoming) {
            return Ok(());
        }
        if let Target::Device(path) = &self.target {
            let file = OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(|e| AuditError::io("open", path, e))?;
            self.current = Some(Current {
                file,
                path: path.clone(),
                date: today,
                len: 0,
            });
            return Ok(());
        }
        if let Some(cur) = self.current.take() {
            if let Some(t) = &mut self.tlog {
                t.force();
            }
            // Leave the old file synced before the chain moves on; a failure here is not
            // the new file's, and the next sync of the new file reports its own.
            if self.unsynced {
                let _ = cur.file.sync_data();
                self.unsynced = false;
            }
            self.reuse_last = false;
        }
        let Target::Rotating { dir, stem } = &self.target else {
            return Ok(());
        };
        if self.reuse_last {
            if let Some(last) = &self.last_file {
                let same_day = !self.rotate_daily || last.date >= today;
                let len = std::fs::metadata(&last.path).map(|m| m.len()).unwrap_or(0);
                if same_day && (len == 0 || len.saturating_add(incoming) <= self.rotate_size) {
                    let file = OpenOptions::new()
                        .append(true)
                        .open(&last.path)
                        .map_err(|e| AuditError::io("open", &last.path, e))?;
                    self.current = Some(Current {
                        file,
                        path: last.path.clone(),
                        date: last.date,
                        len,
                    });
                    return Ok(());
                }
            }
        }
        // A new file. Never dated before the newest one, so a clock set back keeps the order.
        let (date, mut n) = match &self.last_file {
            Some(last) if last.date >= today => (last.date, last.n + 1),
            _ => (today, 0),
        };
        std::fs::create_dir_all(dir).map_err(|e| AuditError::io("create directory", dir, e))?;
        loop {
            let path = dir.join(files::file_name(stem, date, n));
            match OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(file) => {
                    self.last_file = Some(RotatedFile {
                        path: path.clone(),
                        stem: stem.clone(),
                        date,
                        n,
                    });
                    self.current = Some(Current {
                        file,
                        path,
                        date,
                        len: 0,
                    });
                    self.reuse_last = true;
                    return Ok(());
                }
                // Someone else's file: never append to it, take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(AuditError::io("create", &path, e)),
            }
        }
    }

    /// Composes and writes the pending `chain_restart` (if any) then `bodies`. Returns how
    /// many of `bodies` were written.
    fn write_lines(
        &mut self,
        bodies: &[&[u8]],
        now: OffsetDateTime,
    ) -> (usize, Result<(), AuditError>) {
        let today = now.date();
        let mut ts_buf = [0u8; 48];
        let ts_len = {
            let mut c = io::Cursor::new(&mut ts_buf[..]);
            let _ = now.format_into(&mut c, &Rfc3339);
            c.position() as usize
        };
        let ts = &ts_buf[..ts_len];
        let mut restart = Vec::new();
        if let Some(detail) = &self.pending_restart {
            RecordEncoder::encode_restart(detail, &mut restart);
        }
        let restart_lines = usize::from(!restart.is_empty());
        let all = std::iter::once(restart.as_slice())
            .take(restart_lines)
            .chain(bodies.iter().copied());

        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut leaves = std::mem::take(&mut self.leaves);
        leaves.clear();
        let with_tree = self.tlog.is_some();
        // The chain state after the lines composed so far; `self` holds the written state.
        let (mut seq, mut prev) = (self.next_seq, self.prev);
        let mut in_buf = 0usize;
        let mut done = 0usize;
        let mut result = Ok(());
        for body in all {
            let start = buf.len();
            compose(&mut buf, ts, seq, body, &prev);
            let hash = seal(&prev, &mut buf, start);
            if with_tree {
                leaves.push(leaf_hash(&buf[start..buf.len() - 1]));
            }
            let line_len = (buf.len() - start) as u64;
            if self.needs_new_file(today, start as u64, line_len) {
                if start > 0 {
                    if let Err(e) = self.flush(&buf[..start]) {
                        result = Err(e);
                        break;
                    }
                    done += in_buf;
                    (self.next_seq, self.prev) = (seq, prev);
                    if let Some(t) = &mut self.tlog {
                        t.push(&leaves[..in_buf]);
                        leaves.drain(..in_buf);
                    }
                    in_buf = 0;
                    buf.drain(..start);
                }
                if let Err(e) = self.ensure_file(today, line_len) {
                    self.health.failed(e.to_string());
                    result = Err(e);
                    break;
                }
            }
            in_buf += 1;
            seq += 1;
            prev = hash;
        }
        if result.is_ok() && in_buf > 0 {
            match self.flush(&buf) {
                Ok(()) => {
                    done += in_buf;
                    (self.next_seq, self.prev) = (seq, prev);
                    if let Some(t) = &mut self.tlog {
                        t.push(&leaves[..in_buf]);
                    }
                }
                Err(e) => result = Err(e),
            }
        }
        self.buf = buf;
        self.leaves = leaves;
        if restart_lines == 1 && done >= 1 {
            self.pending_restart = None;
        }
        let written = done - restart_lines.min(done);
        self.health.written(written as u64);
        if result.is_ok() {
            result = match self.sync {
                SyncMode::EveryRecord => self.sync(),
                SyncMode::Interval => self.sync_if_due(),
            };
        }
        if result.is_ok() {
            self.health.succeeded();
        }
        (written, result)
    }

    /// Writes complete lines to the current file; on failure cuts the file back to its last
    /// complete record (or, if that fails, moves to a new file) and counts the failure.
    fn flush(&mut self, lines: &[u8]) -> Result<(), AuditError> {
        let Some(cur) = self.current.as_mut() else {
            return Err(AuditError::Closed);
        };
        match cur.file.write_all(lines) {
            Ok(()) => {
                cur.len += lines.len() as u64;
                self.unsynced = true;
                Ok(())
            }
            Err(e) => {
                let err = AuditError::io("write", &cur.path, e);
                let rotating = matches!(self.target, Target::Rotating { .. });
                if rotating && cur.file.set_len(cur.len).is_err() {
                    self.reuse_last = false;
                }
                self.health.failed(err.to_string());
                Err(err)
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn break_current_file_for_test(&mut self, broken: File) {
        if let Some(cur) = self.current.as_mut() {
            cur.file = broken;
        }
    }
}

/// `{"ts":"…","seq":N,` + the body's fields + `,"prev":"…"}`
fn compose(buf: &mut Vec<u8>, ts: &[u8], seq: u64, body: &[u8], prev: &HashHex) {
    buf.extend_from_slice(b"{\"ts\":\"");
    buf.extend_from_slice(ts);
    buf.extend_from_slice(b"\",\"seq\":");
    let _ = write!(buf, "{seq}");
    // The body is a JSON object: keep its fields, drop its braces.
    let inner = body
        .strip_prefix(b"{")
        .and_then(|b| b.strip_suffix(b"}"))
        .unwrap_or(b"");
    if !inner.is_empty() {
        buf.push(b',');
        buf.extend_from_slice(inner);
    }
    buf.extend_from_slice(b",\"prev\":\"");
    buf.extend_from_slice(prev);
    buf.extend_from_slice(b"\"}");
}

/// The last intact record of the newest non-empty file among `found`.
fn last_intact(found: &[RotatedFile]) -> Result<Option<(u64, HashHex)>, AuditError> {
    for f in found.iter().rev() {
        let tail = files::read_tail(&f.path, 1).map_err(|e| AuditError::io("read", &f.path, e))?;
        if let Some(last) = tail.lines.last() {
            return Ok(check_line(last)
                .ok()
                .filter(|_| tail.terminated)
                .map(|c| (c.record.seq, c.hash)));
        }
    }
    Ok(None)
}

/// The files of a log target, in chain order.
pub fn list_log_files(target: &Target) -> io::Result<Vec<PathBuf>> {
    match target {
        Target::Rotating { dir, stem } => Ok(files::list(dir, Some(stem))?
            .into_iter()
            .map(|f| f.path)
            .collect()),
        Target::Device(p) => Ok(vec![p.clone()]),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::audit::record::tests::{block_decision, event};
    use crate::audit::verify::verify_files;

    pub(crate) fn config_in(dir: &Path) -> AuditConfig {
        AuditConfig {
            path: dir.join("douane-audit.jsonl"),
            ..AuditConfig::default()
        }
    }

    /// Writes `n` block records with the sync writer; returns the files.
    pub(crate) fn write_log(config: &AuditConfig, n: usize) -> Vec<PathBuf> {
        let d = block_decision();
        let mut w = AuditWriter::open(config).expect("open");
        for i in 0..n {
            let path = format!("/page/{i}");
            w.append(&event(&d, "crm.example", Some(&path)))
                .expect("append");
        }
        w.files().expect("files")
    }

    #[test]
    fn a_restart_continues_the_chain_in_the_same_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config_in(dir.path());
        write_log(&cfg, 3);
        let files = write_log(&cfg, 2);
        assert_eq!(files.len(), 1, "{files:?}");
        let text = std::fs::read_to_string(&files[0]).expect("read");
        assert_eq!(text.lines().count(), 5);
        let s = verify_files(&files).expect("verifies");
        assert_eq!((s.records, s.first_seq, s.last_seq), (5, Some(0), Some(4)));
        assert!(s.restarts.is_empty() && !s.starts_mid_chain);
        let w = AuditWriter::open(&cfg).expect("open");
        assert_eq!(w.next_seq(), 5);
        assert_eq!(Some(w.last_hash()), s.last_hash.as_deref());
    }

    #[test]
    fn rotation_by_size_carries_the_chain_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = AuditConfig {
            rotate_size_bytes: 4096,
            ..config_in(dir.path())
        };
        let files = write_log(&cfg, 20);
        assert!(files.len() >= 3, "{files:?}");
        for f in &files {
            assert!(std::fs::metadata(f).expect("meta").len() <= 4096);
        }
        let s = verify_files(&files).expect("verifies");
        assert_eq!(s.records, 20);
        // The first record of the second file chains to the last of the first.
        let first = std::fs::read_to_string(&files[0]).expect("read");
        let second = std::fs::read_to_string(&files[1]).expect("read");
        let last: serde_json::Value =
            serde_json::from_str(first.lines().last().expect("line")).expect("json");
        let next: serde_json::Value =
            serde_json::from_str(second.lines().next().expect("line")).expect("json");
        assert_eq!(next["prev"], last["hash"]);
        assert_eq!(next["seq"].as_u64(), last["seq"].as_u64().map(|s| s + 1));
    }

    #[test]
    fn a_batch_rotates_line_by_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = AuditConfig {
            rotate_size_bytes: 4096,
            ..config_in(dir.path())
        };
        let d = block_decision();
        let mut w = AuditWriter::open(&cfg).expect("open");
        let mut body = Vec::new();
        w.encoder().encode_body(&event(&d, "h", None), &mut body);
        let bodies = vec![body.as_slice(); 40];
        let (n, result) = w.append_encoded(&bodies);
        result.expect("batch");
        assert_eq!(n, 40);
        let files = w.files().expect("files");
        assert!(files.len() >= 4, "{files:?}");
        for f in &files {
            assert!(std::fs::metadata(f).expect("meta").len() <= 4096);
        }
        assert_eq!(verify_files(&files).expect("verifies").records, 40);
        assert_eq!(w.health().records_written, 40);
    }

    #[test]
    fn rotation_by_utc_day() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config_in(dir.path());
        let d = block_decision();
        let mut w = AuditWriter::open(&cfg).expect("open");
        let mut body = Vec::new();
        w.encoder().encode_body(&event(&d, "h", None), &mut body);
        let now = OffsetDateTime::now_utc();
        w.write_lines(&[&body], now).1.expect("today");
        w.write_lines(&[&body, &body], now + time::Duration::days(1))
            .1
            .expect("tomorrow");
        let files = w.files().expect("files");
        assert_eq!(files.len(), 2, "{files:?}");
        let tomorrow = files::file_name("douane-audit", now.date().next_day().expect("date"), 0);
        assert!(files[1].ends_with(&tomorrow), "{files:?}");
        assert_eq!(verify_files(&files).expect("verifies").records, 3);
    }

    #[test]
    fn a_cut_tail_is_kept_and_the_chain_restarts_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config_in(dir.path());
        let files = write_log(&cfg, 3);
        let text = std::fs::read(&files[0]).expect("read");
        std::fs::write(&files[0], &text[..text.len() - 40]).expect("cut"); // a crash mid-write
        assert!(matches!(
            verify_files(&files),
            Err(crate::audit::VerifyError::Truncated { line: 3, .. })
        ));

        let files = write_log(&cfg, 2);
        assert_eq!(
            files.len(),
            2,
            "a new file after the corrupt one: {files:?}"
        );
        let restart = std::fs::read_to_string(&files[1]).expect("read");
        let first: serde_json::Value =
            serde_json::from_str(restart.lines().next().expect("line")).expect("json");
        assert_eq!(first["event"], "chain_restart");
        assert_eq!(
            first["seq"], 2,
            "goes on after the last intact record, seq 1"
        );
        assert!(
            first["detail"]
                .as_str()
                .expect("detail")
                .contains("no newline"),
            "{first}"
        );
        let s = verify_files(&files).expect("a documented restart verifies");
        assert_eq!(s.restarts.len(), 1);
        assert_eq!(s.restarts[0].skipped.as_ref().map(|s| s.1), Some(3));
        assert_eq!((s.records, s.last_seq), (5, Some(4)), "2 + restart + 2");
    }

    #[test]
    fn a_failed_write_is_reported_then_recovered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config_in(dir.path());
        let d = block_decision();
        let e = event(&d, "h", None);
        let mut w = AuditWriter::open(&cfg).expect("open");
        w.append(&e).expect("first");
        let full = OpenOptions::new()
            .append(true)
            .open("/dev/full")
            .expect("/dev/full");
        w.break_current_file_for_test(full);
        let err = w.append(&e).expect_err("disk full");
        assert!(err.to_string().contains("cannot write"), "{err}");
        let h = w.health();
        assert!(!h.ok);
        assert_eq!((h.write_failures, h.records_written), (1, 1));
        assert!(h.last_error.is_some());
        // The next write goes to a fresh file; the chain goes on from the last written record.
        assert_eq!(w.append(&e).expect("recovered"), 1);
        let h = w.health();
        assert!(h.ok);
        assert_eq!((h.write_failures, h.records_written), (1, 2));
        let files = w.files().expect("files");
        assert_eq!(files.len(), 2);
        assert_eq!(verify_files(&files).expect("verifies").records, 2);
    }

    #[test]
    fn a_full_device_fails_every_write() {
        let cfg = AuditConfig {
            path: "/dev/full".into(),
            ..AuditConfig::default()
        };
        let d = block_decision();
        let mut w = AuditWriter::open(&cfg).expect("open");
        assert!(w.health().ok, "nothing written yet");
        assert!(w.append(&event(&d, "h", None)).is_err());
        assert!(w.append(&event(&d, "h", None)).is_err());
        let h = w.health();
        assert!(!h.ok);
        assert_eq!((h.write_failures, h.records_written), (2, 0));
        assert_eq!(w.next_seq(), 0);
    }

    #[test]
    fn hostile_values_stay_on_one_line_and_verify() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = AuditConfig {
            max_field_bytes: 256,
            ..config_in(dir.path())
        };
        let d = block_decision();
        let mut w = AuditWriter::open(&cfg).expect("open");
        let long = "A".repeat(100_000);
        let hostile = [
            "evil.example\n{\"seq\":99,\"forged\":true}",
            "evil.example\r\nX-Injected: 1",
            "evil.example\"}",
            "evil.example\u{2028}\u{2029}next",
            "nul\0byte\u{1b}[31m",
            long.as_str(),
        ];
        for h in hostile {
            let mut e = event(&d, h, Some(h));
            e.method = Some(h);
            w.append(&e).expect("append");
        }
        let files = w.files().expect("files");
        let text = std::fs::read_to_string(&files[0]).expect("read");
        assert_eq!(text.matches('\n').count(), hostile.len());
        assert!(text.len() < 10_000, "the long value was cut");
        let s = verify_files(&files).expect("verifies");
        assert_eq!(s.records, hostile.len() as u64);
        for (line, h) in text.lines().zip(hostile) {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            if h.len() <= 256 {
                assert_eq!(v["host"], h, "read back exactly");
            } else {
                let host = v["host"].as_str().expect("host");
                assert!(
                    host.ends_with(&format!("…[truncated {} bytes]", h.len() - 256)),
                    "{host}"
                );
            }
            assert!(v.get("forged").is_none());
        }
    }
}
