//! Replays the chain across files and names the first record that was altered, inserted,
//! removed or moved: file, line, `seq` and what does not match.
//!
//! Without an external anchor a hash chain cannot tell whole records cut from the end of
//! the newest file, nor a tail rewritten with recomputed hashes: the summary's `last_seq`
//! and `last_hash` are what to keep elsewhere (a ticket, the metrics) to close that gap.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::chain::{hash_str, parse_hash, rehash, unseal, HashHex, ZERO_HASH};
use super::files;
use super::merkle::{leaf_hash, Hash};
use super::record::{StoredRecord, CHAIN_RESTART, PRUNED};

/// What the chain needs of a line, and nothing more: the rest of the record is skipped by
/// the parser, not built (verifying a million records is mostly this parse). `ts` and `prev`
/// are borrowed from the line (copied only when they hold an escape); the optional ones,
/// absent from a request record, are copied when present: no allocation per request line.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ChainFields<'a> {
    #[serde(borrow)]
    pub ts: Cow<'a, str>,
    pub seq: u64,
    #[serde(default, borrow)]
    pub event: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub detail: Option<Cow<'a, str>>,
    /// A pruned record's Merkle leaf (base64).
    #[serde(default, borrow)]
    pub leaf: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub prev: Cow<'a, str>,
}

impl ChainFields<'_> {
    pub fn is_restart(&self) -> bool {
        self.event.as_deref() == Some(CHAIN_RESTART)
    }

    pub fn is_pruned(&self) -> bool {
        self.event.as_deref() == Some(PRUNED)
    }

    /// A pruned record's kept leaf, when it is a valid one.
    pub fn stored_leaf(&self) -> Option<Hash> {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD
            .decode(self.leaf.as_deref()?)
            .ok()?;
        b.try_into().ok()
    }

    /// The Merkle leaf of its line: the line's hash, or the one it kept if pruned.
    pub fn leaf_of(&self, line: &[u8]) -> Hash {
        if self.is_pruned() {
            if let Some(l) = self.stored_leaf() {
                return l;
            }
        }
        leaf_hash(line)
    }
}

/// A line read, its hash checked against its own bytes.
#[derive(Debug)]
pub(crate) struct CheckedLine<'a> {
    pub record: ChainFields<'a>,
    pub prev: HashHex,
    pub hash: HashHex,
}

/// What is wrong with one line on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineProblem {
    NotJson(String),
    NoHash,
    BadPrev,
    HashMismatch {
        seq: u64,
        stored: Box<HashHex>,
        computed: Box<HashHex>,
    },
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineProblem::NotJson(e) => write!(f, "not a JSON record ({e})"),
            LineProblem::NoHash => f.write_str("it does not end with its \"hash\" field"),
            LineProblem::BadPrev => f.write_str("its \"prev\" is not 64 lowercase hex digits"),
            LineProblem::HashMismatch { seq, .. } => {
                write!(f, "seq {seq} does not match its hash (altered)")
            }
        }
    }
}

/// Reads one line (without its newline) and checks its hash over its exact bytes.
pub(crate) fn check_line(line: &[u8]) -> Result<CheckedLine<'_>, LineProblem> {
    let record: ChainFields<'_> =
        serde_json::from_slice(line).map_err(|e| LineProblem::NotJson(e.to_string()))?;
    let (body, stored) = unseal(line).ok_or(LineProblem::NoHash)?;
    let prev = parse_hash(&record.prev).ok_or(LineProblem::BadPrev)?;
    if record.is_pruned() {
        // Its content is gone: its hash cannot be recomputed, only chained to; the Merkle
        // leaf it keeps is checked against a checkpoint.
        if record.stored_leaf().is_none() {
            return Err(LineProblem::NotJson(
                "a pruned record without a valid \"leaf\"".into(),
            ));
        }
        return Ok(CheckedLine {
            record,
            prev,
            hash: stored,
        });
    }
    let computed = rehash(&prev, body);
    if computed != stored {
        return Err(LineProblem::HashMismatch {
            seq: record.seq,
            stored: Box::new(stored),
            computed: Box::new(computed),
        });
    }
    Ok(CheckedLine {
        record,
        prev,
        hash: stored,
    })
}

/// A verified chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifySummary {
    pub files: usize,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    /// The hash of the last record: keep it elsewhere to detect a later cut of the tail.
    pub last_hash: Option<String>,
    /// The first record given does not start a chain (`seq` 0, `prev` zero): earlier files
    /// were not given, and cannot be checked from these.
    pub starts_mid_chain: bool,
    /// Where douane restarted the chain after finding a corrupt tail.
    pub restarts: Vec<ChainRestart>,
}

/// A `chain_restart` record met on the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainRestart {
    pub file: PathBuf,
    pub line: usize,
    pub seq: u64,
    pub detail: String,
    /// The corrupt last line it excuses (file, line), if there was one.
    pub skipped: Option<(PathBuf, usize)>,
}

impl fmt::Display for VerifySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Some(first), Some(last)) = (self.first_seq, self.last_seq) else {
            return write!(f, "audit chain OK: {} file(s), no records", self.files);
        };
        writeln!(
            f,
            "audit chain OK: {} file(s), {} record(s), seq {first}..={last}",
            self.files, self.records
        )?;
        writeln!(
            f,
            "period: {} .. {}",
            self.first_ts.as_deref().unwrap_or("?"),
            self.last_ts.as_deref().unwrap_or("?")
        )?;
        write!(f, "last hash: {}", self.last_hash.as_deref().unwrap_or("?"))?;
        if self.starts_mid_chain {
            write!(f, "\nnote: the chain starts at seq {first}: earlier files were not given and are not checked")?;
        }
        for r in &self.restarts {
            write!(
                f,
                "\nwarning: {}:{}: chain restarted at seq {}: {}",
                r.file.display(),
                r.line,
                r.seq,
                r.detail
            )?;
        }
        Ok(())
    }
}

fn after(seq: &Option<u64>) -> String {
    match seq {
        Some(s) => format!("after seq {s}"),
        None => "at the start of the chain".into(),
    }
}

/// The first problem found. Every variant but `NoFiles`, `Io` and `SeveralLogs` names the
/// file and line.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("no audit files given: name the log's files or its directory")]
    NoFiles,
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds several audit logs ({}): name the files of one", dir.display(), stems.join(", "))]
    SeveralLogs { dir: PathBuf, stems: Vec<String> },
    #[error("{}:{line}: truncated record {}: the last line has no newline (the file was cut, or a write was interrupted)", file.display(), after(after_seq))]
    Truncated {
        file: PathBuf,
        line: usize,
        after_seq: Option<u64>,
    },
    #[error("{}:{line}: unreadable record {}: {detail}", file.display(), after(after_seq))]
    Malformed {
        file: PathBuf,
        line: usize,
        after_seq: Option<u64>,
        detail: String,
    },
    #[error("{}:{line}: seq {seq} was altered: its content hashes to {computed}, its hash field says {stored}", file.display())]
    HashMismatch {
        file: PathBuf,
        line: usize,
        seq: u64,
        stored: String,
        computed: String,
    },
    #[error("{}:{line}: {} record(s) missing: expected seq {expected}, found seq {found} (lines deleted)", file.display(), found - expected)]
    Gap {
        file: PathBuf,
        line: usize,
        expected: u64,
        found: u64,
    },
    #[error("{}:{line}: seq {found} and seq {expected} are swapped", file.display())]
    Swapped {
        file: PathBuf,
        line: usize,
        expected: u64,
        found: u64,
    },
    #[error("{}:{line}: seq {seq} appears twice, at line {first_line} of {} and here: one of them was inserted", file.display(), first_file.display())]
    Duplicate {
        file: PathBuf,
        line: usize,
        seq: u64,
        first_file: PathBuf,
        first_line: usize,
    },
    #[error("{}:{line}: seq {found} where seq {expected} was expected: a record was inserted, copied or moved here", file.display())]
    OutOfOrder {
        file: PathBuf,
        line: usize,
        expected: u64,
        found: u64,
    },
    #[error("{}:{line}: seq {seq} does not chain to the record before it: its prev is {found_prev}, the record before hashes to {expected_prev} (a record was inserted, or the one before was rewritten)", file.display())]
    PrevMismatch {
        file: PathBuf,
        line: usize,
        seq: u64,
        expected_prev: String,
        found_prev: String,
    },
    #[error("{}:1: the file starts at seq {found} but {} ends at seq {}: a rotated file is missing or was cut", file.display(), prev_file.display(), expected.saturating_sub(1))]
    RotationGap {
        file: PathBuf,
        prev_file: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{}:1: seq {seq} does not chain to the end of {}: its prev is {found_prev}, expected {expected_prev} (a rotated file was replaced or altered)", file.display(), prev_file.display())]
    RotationPrevMismatch {
        file: PathBuf,
        prev_file: PathBuf,
        seq: u64,
        expected_prev: String,
        found_prev: String,
    },
}

impl VerifyError {
    /// The sequence number the problem is at (or after, for an unreadable line).
    pub fn seq(&self) -> Option<u64> {
        match self {
            VerifyError::Truncated { after_seq, .. } | VerifyError::Malformed { after_seq, .. } => {
                *after_seq
            }
            VerifyError::HashMismatch { seq, .. }
            | VerifyError::PrevMismatch { seq, .. }
            | VerifyError::Duplicate { seq, .. }
            | VerifyError::RotationPrevMismatch { seq, .. } => Some(*seq),
            VerifyError::Gap { found, .. }
            | VerifyError::Swapped { found, .. }
            | VerifyError::OutOfOrder { found, .. }
            | VerifyError::RotationGap { found, .. } => Some(*found),
            VerifyError::NoFiles | VerifyError::Io { .. } | VerifyError::SeveralLogs { .. } => None,
        }
    }

    /// The file and 1-based line of the problem.
    pub fn location(&self) -> Option<(&Path, usize)> {
        match self {
            VerifyError::Truncated { file, line, .. }
            | VerifyError::Malformed { file, line, .. }
            | VerifyError::HashMismatch { file, line, .. }
            | VerifyError::Gap { file, line, .. }
            | VerifyError::Swapped { file, line, .. }
            | VerifyError::OutOfOrder { file, line, .. }
            | VerifyError::Duplicate { file, line, .. }
            | VerifyError::PrevMismatch { file, line, .. } => Some((file, *line)),
            VerifyError::RotationGap { file, .. }
            | VerifyError::RotationPrevMismatch { file, .. } => Some((file, 1)),
            VerifyError::NoFiles | VerifyError::Io { .. } | VerifyError::SeveralLogs { .. } => None,
        }
    }
}

/// The files to replay, in chain order. A directory stands for its rotated files (of one
/// log). Files whose names are all rotated names of one log are put in rotation order (date,
/// then number), whatever order a shell glob gave; other names are kept in the order given.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, VerifyError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let found = files::list(p, None).map_err(|source| VerifyError::Io {
                path: p.clone(),
                source,
            })?;
            let mut stems: Vec<String> = found.iter().map(|f| f.stem.clone()).collect();
            stems.dedup();
            stems.sort();
            stems.dedup();
            if stems.len() > 1 {
                return Err(VerifyError::SeveralLogs {
                    dir: p.clone(),
                    stems,
                });
            }
            out.extend(found.into_iter().map(|f| f.path));
        } else {
            out.push(p.clone());
        }
    }
    let keys: Option<Vec<_>> = out
        .iter()
        .map(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(files::parse_name)
                .map(|(s, d, n)| (s.to_owned(), d, n))
        })
        .collect();
    if let Some(keys) = keys {
        let one_log = keys.windows(2).all(|w| w[0].0 == w[1].0);
        if one_log {
            let mut pairs: Vec<_> = keys.into_iter().zip(out).collect();
            pairs.sort_by_key(|a| (a.0 .1, a.0 .2));
            out = pairs.into_iter().map(|(_, p)| p).collect();
        }
    }
    if out.is_empty() {
        return Err(VerifyError::NoFiles);
    }
    Ok(out)
}

/// Verifies the chain across `paths` (see [`expand_paths`] for the order).
pub fn verify_files(paths: &[PathBuf]) -> Result<VerifySummary, VerifyError> {
    replay(paths, &mut |_| {})
}

/// Verifies, handing each intact record to `visit` in chain order, read whole (the report
/// and the inventory; the chain itself reads only [`ChainFields`]).
pub(crate) fn replay(
    paths: &[PathBuf],
    visit: &mut dyn FnMut(&StoredRecord),
) -> Result<VerifySummary, VerifyError> {
    let files = expand_paths(paths)?;
    let mut bad: Option<(LineAt, u64, String)> = None;
    let sum = replay_lines(&files, &mut |c, line, at| {
        match serde_json::from_slice::<StoredRecord>(line) {
            Ok(r) => visit(&r),
            // Its hash matches, but a field is not of its type: the line was not written by
            // douane (a rebuilt chain), and the report does not count around it.
            Err(e) if bad.is_none() => bad = Some((at, c.seq, e.to_string())),
            Err(_) => {}
        }
    })?;
    match bad {
        Some(((fi, line), seq, detail)) => Err(VerifyError::Malformed {
            file: files[fi].clone(),
            line,
            after_seq: seq.checked_sub(1),
            detail: format!("not a record douane writes ({detail})"),
        }),
        None => Ok(sum),
    }
}

/// Where a visited line is: the index of its file among the expanded paths, its 1-based line.
pub(crate) type LineAt = (usize, usize);

/// Verifies, handing each intact record, its exact line (without the newline: the Merkle
/// leaf's bytes) and where it is to `visit` in chain order.
pub(crate) fn replay_lines(
    paths: &[PathBuf],
    visit: &mut dyn FnMut(&ChainFields<'_>, &[u8], LineAt),
) -> Result<VerifySummary, VerifyError> {
    let files = expand_paths(paths)?;
    let mut sum = VerifySummary {
        files: files.len(),
        records: 0,
        first_seq: None,
        last_seq: None,
        first_ts: None,
        last_ts: None,
        last_hash: None,
        starts_mid_chain: false,
        restarts: Vec::new(),
    };
    // The next seq expected and the hash it must chain to.
    let mut expect: Option<(u64, HashHex)> = None;
    // A corrupt last line of a file: an error unless the next record is a chain_restart.
    let mut pending: Option<(VerifyError, PathBuf, usize)> = None;
    let mut buf = Vec::new();
    let mut last_ts = String::new();
    let mut last_loc = (0usize, 0usize);
    for (fi, path) in files.iter().enumerate() {
        let io = |source| VerifyError::Io {
            path: path.clone(),
            source,
        };
        let mut reader = BufReader::with_capacity(256 * 1024, File::open(path).map_err(io)?);
        let mut line = 0usize;
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf).map_err(io)? == 0 {
                break;
            }
            line += 1;
            let terminated = buf.last() == Some(&b'\n');
            if terminated {
                buf.pop();
            }
            let at_eof = reader.fill_buf().map_err(io)?.is_empty();
            let after_seq = expect.and_then(|(s, _)| s.checked_sub(1));
            let checked = match check_line(&buf) {
                Ok(_) if !terminated => Err(VerifyError::Truncated {
                    file: path.clone(),
                    line,
                    after_seq,
                }),
                Ok(c) => Ok(c),
                Err(LineProblem::HashMismatch {
                    seq,
                    stored,
                    computed,
                }) => Err(VerifyError::HashMismatch {
                    file: path.clone(),
                    line,
                    seq,
                    stored: hash_str(&stored).into(),
                    computed: hash_str(&computed).into(),
                }),
                Err(p)
                    if !terminated
                        && matches!(p, LineProblem::NotJson(_) | LineProblem::NoHash) =>
                {
                    Err(VerifyError::Truncated {
                        file: path.clone(),
                        line,
                        after_seq,
                    })
                }
                Err(p) => Err(VerifyError::Malformed {
                    file: path.clone(),
                    line,
                    after_seq,
                    detail: p.to_string(),
                }),
            };
            let c = match checked {
                Ok(c) => c,
                Err(e) if at_eof && pending.is_none() => {
                    pending = Some((e, path.clone(), line));
                    continue;
                }
                Err(e) => return Err(pending.map_or(e, |p| p.0)),
            };
            let seq = c.record.seq;
            let mut restart_noted = false;
            if let Some((err, bad_file, bad_line)) = pending.take() {
                let chains = match expect {
                    Some((s, h)) => seq == s && c.prev == h,
                    None => true,
                };
                if !(c.record.is_restart() && chains) {
                    return Err(err);
                }
                sum.restarts.push(ChainRestart {
                    file: path.clone(),
                    line,
                    seq,
                    detail: c.record.detail.as_deref().unwrap_or_default().to_owned(),
                    skipped: Some((bad_file, bad_line)),
                });
                restart_noted = true;
            }
            match expect {
                None => sum.starts_mid_chain = seq != 0 || c.prev != ZERO_HASH,
                Some((want, want_prev)) => {
                    let first_of_file = line == 1 && fi > 0;
                    if seq > want && first_of_file {
                        return Err(VerifyError::RotationGap {
                            file: path.clone(),
                            prev_file: files[fi - 1].clone(),
                            expected: want,
                            found: seq,
                        });
                    }
                    if seq > want {
                        // Swapped with the next one?
                        buf.clear();
                        let next_seq = match reader.read_until(b'\n', &mut buf) {
                            Ok(n) if n > 0 => {
                                serde_json::from_slice::<ChainFields>(buf.trim_ascii_end())
                                    .ok()
                                    .map(|r| r.seq)
                            }
                            _ => None,
                        };
                        return Err(if seq == want + 1 && next_seq == Some(want) {
                            VerifyError::Swapped {
                                file: path.clone(),
                                line,
                                expected: want,
                                found: seq,
                            }
                        } else {
                            VerifyError::Gap {
                                file: path.clone(),
                                line,
                                expected: want,
                                found: seq,
                            }
                        });
                    }
                    if seq + 1 == want {
                        let (first_file, first_line) = (files[last_loc.0].clone(), last_loc.1);
                        return Err(VerifyError::Duplicate {
                            file: path.clone(),
                            line,
                            seq,
                            first_file,
                            first_line,
                        });
                    }
                    if seq < want {
                        return Err(VerifyError::OutOfOrder {
                            file: path.clone(),
                            line,
                            expected: want,
                            found: seq,
                        });
                    }
                    if c.prev != want_prev {
                        let expected_prev = hash_str(&want_prev).to_owned();
                        let found_prev = hash_str(&c.prev).to_owned();
                        return Err(if first_of_file {
                            VerifyError::RotationPrevMismatch {
                                file: path.clone(),
                                prev_file: files[fi - 1].clone(),
                                seq,
                                expected_prev,
                                found_prev,
                            }
                        } else {
                            VerifyError::PrevMismatch {
                                file: path.clone(),
                                line,
                                seq,
                                expected_prev,
                                found_prev,
                            }
                        });
                    }
                }
            }
            if c.record.is_restart() && !restart_noted {
                sum.restarts.push(ChainRestart {
                    file: path.clone(),
                    line,
                    seq,
                    detail: c.record.detail.as_deref().unwrap_or_default().to_owned(),
                    skipped: None,
                });
            }
            visit(&c.record, &buf, (fi, line));
            sum.records += 1;
            if sum.first_seq.is_none() {
                sum.first_seq = Some(seq);
                sum.first_ts = Some(c.record.ts.clone().into_owned());
            }
            sum.last_seq = Some(seq);
            expect = Some((seq + 1, c.hash));
            // Kept in place: the String's capacity is reused, line after line.
            last_ts.clear();
            last_ts.push_str(&c.record.ts);
            last_loc = (fi, line);
        }
    }
    if let Some((err, _, _)) = pending {
        return Err(err);
    }
    if let Some((_, hash)) = expect {
        sum.last_ts = Some(last_ts);
        sum.last_hash = Some(hash_str(&hash).to_owned());
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::writer::tests::{config_in, write_log};
    use crate::audit::AuditConfig;

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .expect("read")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn put(path: &Path, lines: &[String]) {
        std::fs::write(
            path,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .expect("write");
    }

    fn ten() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = write_log(&config_in(dir.path()), 10);
        let f = files[0].clone();
        (dir, f)
    }

    #[test]
    fn an_untouched_log_verifies() {
        let (dir, f) = ten();
        let s = verify_files(&[f]).expect("verifies");
        assert_eq!(
            (s.files, s.records, s.first_seq, s.last_seq),
            (1, 10, Some(0), Some(9))
        );
        assert!(s.first_ts.is_some() && s.last_ts.is_some());
        assert_eq!(s.last_hash.as_ref().map(String::len), Some(64));
        // A directory stands for its files.
        assert_eq!(
            verify_files(&[dir.path().to_path_buf()])
                .expect("dir")
                .records,
            10
        );
        assert!(
            s.to_string()
                .starts_with("audit chain OK: 1 file(s), 10 record(s), seq 0..=9"),
            "{s}"
        );
    }

    #[test]
    fn an_edited_field_is_found() {
        let (_dir, f) = ten();
        let mut l = lines(&f);
        l[4] = l[4].replacen("crm.example", "crm.exbmple", 1);
        put(&f, &l);
        let err = verify_files(&[f]).expect_err("edited");
        assert!(
            matches!(
                err,
                VerifyError::HashMismatch {
                    line: 5,
                    seq: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.seq(), Some(4));
        assert!(err.to_string().contains(":5: seq 4 was altered"), "{err}");
    }

    #[test]
    fn an_edited_hash_is_found() {
        let (_dir, f) = ten();
        let mut l = lines(&f);
        let n = l[2].len();
        let last = if l[2].as_bytes()[n - 3] == b'0' {
            "1"
        } else {
            "0"
        };
        l[2].replace_range(n - 3..n - 2, last);
        put(&f, &l);
        assert!(matches!(
            verify_files(&[f]),
            Err(VerifyError::HashMismatch { seq: 2, .. })
        ));
    }

    #[test]
    fn a_rewritten_and_rehashed_record_breaks_the_next_link() {
        let (_dir, f) = ten();
        let mut l = lines(&f);
        // Edit seq 4 and recompute its own hash: seq 5 no longer chains to it.
        let edited = l[4].replacen("crm.example", "crm.exbmple", 1);
        let (body, _) = super::unseal(edited.as_bytes()).expect("sealed");
        let rec: StoredRecord = serde_json::from_str(&edited).expect("json");
        let h = rehash(&parse_hash(&rec.prev).expect("prev"), body);
        let mut fixed = String::from_utf8(body.to_vec()).expect("utf8");
        fixed.push_str(&format!(",\"hash\":\"{}\"}}", hash_str(&h)));
        l[4] = fixed;
        put(&f, &l);
        let err = verify_files(&[f]).expect_err("rehashed");
        assert!(
            matches!(
                err,
                VerifyError::PrevMismatch {
                    line: 6,
                    seq: 5,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_deleted_line_is_found() {
        let (_dir, f) = ten();
        let mut l = lines(&f);
        l.remove(4);
        put(&f, &l);
        let err = verify_files(&[f]).expect_err("deleted");
        assert!(
            matches!(
                err,
                VerifyError::Gap {
                    line: 5,
                    expected: 4,
                    found: 5,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("1 record(s) missing: expected seq 4, found seq 5"),
            "{err}"
        );
    }

    #[test]
    fn inserted_lines_are_found() {
        // A copy of an earlier record.
        let (_dir, f) = ten();
        let mut l = lines(&f);
        let copy = l[1].clone();
        l.insert(6, copy);
        put(&f, &l);
        let err = verify_files(&[f]).expect_err("copied");
        assert!(
            matches!(
                err,
                VerifyError::OutOfOrder {
                    line: 7,
                    expected: 6,
                    found: 1,
                    ..
                }
            ),
            "{err}"
        );

        // A forged record, correctly chained: the original that follows shows the duplicate.
        let (_dir, f) = ten();
        let mut l = lines(&f);
        let last: StoredRecord = serde_json::from_str(&l[4]).expect("json");
        let prev = parse_hash(&last.hash).expect("hash");
        let body = format!(
            "{{\"ts\":\"{}\",\"seq\":5,\"host\":\"forged\",\"prev\":\"{}\"}}",
            last.ts, last.hash
        );
        let h = super::super::chain::record_hash(&prev, body.as_bytes());
        let forged = format!(
            "{},\"hash\":\"{}\"}}",
            &body[..body.len() - 1],
            hash_str(&h)
        );
        assert!(
            check_line(forged.as_bytes()).is_ok(),
            "the forgery is self-consistent"
        );
        l.insert(5, forged);
        put(&f, &l);
        let err = verify_files(&[f]).expect_err("forged");
        assert!(
            matches!(
                err,
                VerifyError::Duplicate {
                    line: 7,
                    seq: 5,
                    first_line: 6,
                    ..
                }
            ),
            "{err}"
        );

        // Garbage.
        let (_dir, f) = ten();
        let mut l = lines(&f);
        l.insert(3, "{\"hello\":1}".into());
        put(&f, &l);
        let err = verify_files(&[f]).expect_err("garbage");
        assert!(
            matches!(
                err,
                VerifyError::Malformed {
                    line: 4,
                    after_seq: Some(2),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_swapped_pair_is_found() {
        let (_dir, f) = ten();
        let mut l = lines(&f);
        l.swap(3, 4);
        put(&f, &l);
        let err = verify_files(&[f]).expect_err("swapped");
        assert!(
            matches!(
                err,
                VerifyError::Swapped {
                    line: 4,
                    expected: 3,
                    found: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().ends_with("seq 4 and seq 3 are swapped"),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_tail_is_found() {
        let (_dir, f) = ten();
        let text = std::fs::read(&f).expect("read");
        std::fs::write(&f, &text[..text.len() - 100]).expect("cut");
        let err = verify_files(&[f]).expect_err("cut");
        assert!(
            matches!(
                err,
                VerifyError::Truncated {
                    line: 10,
                    after_seq: Some(8),
                    ..
                }
            ),
            "{err}"
        );
        // Only the newline cut: still a truncation.
        let (_dir, f) = ten();
        let text = std::fs::read(&f).expect("read");
        std::fs::write(&f, &text[..text.len() - 1]).expect("cut");
        assert!(matches!(
            verify_files(&[f]),
            Err(VerifyError::Truncated { line: 10, .. })
        ));
    }

    #[test]
    fn rotated_files_out_of_shape_are_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = AuditConfig {
            rotate_size_bytes: 4096,
            ..config_in(dir.path())
        };
        let files = write_log(&cfg, 30);
        assert!(files.len() >= 4, "{files:?}");
        // Given in reverse (a shell glob past 9999 would not, but any order is sorted).
        let mut reversed = files.clone();
        reversed.reverse();
        assert_eq!(verify_files(&reversed).expect("sorted").records, 30);

        // A middle file missing.
        let mut missing = files.clone();
        let gone = missing.remove(1);
        let err = verify_files(&missing).expect_err("missing file");
        assert!(
            matches!(&err, VerifyError::RotationGap { file, .. } if *file == files[2]),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("a rotated file is missing or was cut"),
            "{err}"
        );
        // The same from the directory, after deleting it.
        std::fs::remove_file(&gone).expect("rm");
        assert!(matches!(
            verify_files(&[dir.path().to_path_buf()]),
            Err(VerifyError::RotationGap { .. })
        ));

        // Only later files given: verifies, and says it starts mid-chain.
        let s = verify_files(&files[2..]).expect("a suffix verifies");
        assert!(s.starts_mid_chain);
        assert!(
            s.to_string().contains("earlier files were not given"),
            "{s}"
        );
    }

    /// Escapes in the chain fields (never written by douane, but valid JSON with a valid
    /// hash) are read as their text: the borrowed fields fall back to a copy.
    #[test]
    fn escaped_chain_fields_read_as_their_text() {
        let mut line = format!(
            r#"{{"ts":"2026-12-01T12:00:0\u0030Z","seq":0,"event":"chain_restart","detail":"a \"cut\" file\\x","prev":"{}"}}"#,
            hash_str(&ZERO_HASH)
        )
        .into_bytes();
        super::super::chain::seal(&ZERO_HASH, &mut line, 0);
        line.pop(); // the newline
        let c = check_line(&line).expect("a valid line");
        assert_eq!(c.record.ts, "2026-12-01T12:00:00Z");
        assert_eq!(c.record.detail.as_deref(), Some(r#"a "cut" file\x"#));
        assert!(c.record.is_restart());
        assert_eq!(c.prev, ZERO_HASH);
    }

    #[test]
    fn nothing_to_verify() {
        assert!(matches!(verify_files(&[]), Err(VerifyError::NoFiles)));
        let err = verify_files(&["/nonexistent/audit.jsonl".into()]).expect_err("missing");
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/audit.jsonl"),
            "{err}"
        );
    }
}
