//! Retention: records older than their period (one for allowed requests, one for blocks,
//! would-blocks and exemption uses) lose their content. What the chain and the tree need
//! stays: `ts`, `seq`, `outcome`, the record's Merkle leaf hash (`leaf`, base64) and its
//! `prev` and `hash`, so that the chain still links and old checkpoints and proofs of other
//! records still verify. The newest file (the one douane appends to) is never rewritten.
//!
//! ```text
//! {"ts":"…","seq":12,"event":"pruned","outcome":"allow","leaf":"<base64>","prev":"…","hash":"…"}
//! {"ts":"…","seq":13,"event":"pruned","of":"end","outcome":"allow","leaf":"…","prev":"…","hash":"…"}
//! ```
//!
//! A request's end record (`"event":"end"`) carries its gate record's outcome: both keep
//! their content for the same period, and a pruned end record says `"of":"end"` so that it
//! is still not counted as a request.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::chain::unseal;
use super::files::{self, Target};
use super::merkle::{leaf_hash, Hash};
use super::record::{StoredRecord, PRUNED};
use super::tlog::write_atomic;
use super::verify::verify_files;

/// The leaf a pruned record keeps.
pub fn stored_leaf(r: &StoredRecord) -> Option<Hash> {
    let b = B64.decode(r.leaf.as_deref()?).ok()?;
    b.try_into().ok()
}

/// The Merkle leaf of a line: its hash, or the one it kept if it was pruned.
pub fn leaf_of(r: &StoredRecord, line: &[u8]) -> Hash {
    if r.is_pruned() {
        if let Some(l) = stored_leaf(r) {
            return l;
        }
    }
    leaf_hash(line)
}

/// How long each kind of record keeps its content (`None`: forever).
#[derive(Debug, Clone, Copy, Default)]
pub struct Retention {
    pub allowed: Option<Duration>,
    pub blocks: Option<Duration>,
}

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneSummary {
    pub files_rewritten: usize,
    pub pruned: u64,
    pub kept: u64,
}

fn is_block(outcome: Option<&str>) -> bool {
    matches!(outcome, Some("block" | "would-block" | "exempt"))
}

/// The stub that replaces a line.
fn stub(r: &StoredRecord, line: &[u8]) -> Option<String> {
    let (_, hash) = unseal(line)?;
    let hash = std::str::from_utf8(&hash).ok()?.to_owned();
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let of = if r.is_end() { ",\"of\":\"end\"" } else { "" };
    Some(format!(
        "{{\"ts\":{},\"seq\":{},\"event\":\"{PRUNED}\"{of},\"outcome\":{},\"leaf\":\"{}\",\"prev\":{},\"hash\":\"{hash}\"}}",
        q(&r.ts),
        r.seq,
        r.outcome.as_deref().map_or("null".into(), q),
        B64.encode(leaf_hash(line)),
        q(&r.prev),
    ))
}

/// Prunes the log at `path` (its `audit.path`) as of `now`. The log must verify first.
pub fn prune(
    path: &Path,
    retention: Retention,
    now: OffsetDateTime,
) -> Result<PruneSummary, String> {
    let Target::Rotating { dir, stem } = Target::from_path(path) else {
        return Err(format!("{} is a device: nothing to prune", path.display()));
    };
    let found = files::list(&dir, Some(&stem)).map_err(|e| format!("{}: {e}", dir.display()))?;
    let paths: Vec<PathBuf> = found.iter().map(|f| f.path.clone()).collect();
    if paths.is_empty() {
        return Ok(PruneSummary::default());
    }
    // The files it may rewrite must verify (the newest one, which douane may be appending
    // to while this runs, is neither verified nor rewritten).
    let rotated = &paths[..paths.len() - 1];
    if rotated.is_empty() {
        return Ok(PruneSummary::default());
    }
    verify_files(rotated).map_err(|e| format!("the log does not verify, nothing pruned: {e}"))?;
    let mut sum = PruneSummary::default();
    // The newest file is the one douane appends to: left alone.
    for f in rotated {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let mut out = String::with_capacity(text.len());
        let mut changed = false;
        for line in text.lines() {
            let r: Option<StoredRecord> = serde_json::from_str(line).ok();
            let replaced = r.as_ref().and_then(|r| {
                if r.is_pruned() || r.is_restart() {
                    return None;
                }
                let keep = if is_block(r.outcome.as_deref()) {
                    retention.blocks
                } else {
                    retention.allowed
                }?;
                let ts = OffsetDateTime::parse(&r.ts, &Rfc3339).ok()?;
                (ts + keep < now)
                    .then(|| stub(r, line.as_bytes()))
                    .flatten()
            });
            match replaced {
                Some(s) => {
                    out.push_str(&s);
                    sum.pruned += 1;
                    changed = true;
                }
                None => {
                    out.push_str(line);
                    sum.kept += 1;
                }
            }
            out.push('\n');
        }
        if changed {
            write_atomic(f, out.as_bytes()).map_err(|e| e.to_string())?;
            sum.files_rewritten += 1;
        }
    }
    Ok(sum)
}
