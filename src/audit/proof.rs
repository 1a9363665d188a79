//! What needs only the log, a checkpoint and the public key: verifying the files against a
//! signed checkpoint (the chain first, then the Merkle root of the first `size` records),
//! self-contained proof bundles for one record, and consistency between two checkpoints.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::files::Target;
use super::merkle::{leaf_hash, verify_consistency, verify_inclusion, CompactRange, Hash, Tree};
use super::note::{Checkpoint, NoteError, VerifierKey};
use super::tlog::{leaves_from_log, read_tree_file, TlogPaths};
use super::verify::{expand_paths, replay_lines, LineAt, VerifyError, VerifySummary};
use super::writer::list_log_files;

/// Why the log does not match the checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {}: {source}", file.display())]
    Checkpoint {
        file: PathBuf,
        #[source]
        source: NoteError,
    },
    #[error("{0}")]
    Chain(#[from] VerifyError),
    #[error("the files given start at seq {first_seq} ({}:1) but the checkpoint covers the log from seq 0: the earlier files were removed", file.display())]
    MissingStart { file: PathBuf, first_seq: u64 },
    #[error("the checkpoint covers {size} records but the log holds {have}: seq {have}..{} were cut (the log ends at {}:{line})", size - 1, file.display())]
    CutTail {
        size: u64,
        have: u64,
        file: PathBuf,
        line: usize,
    },
    #[error("the first {size} records (up to seq {}, {}:{line}) hash to root {computed} but the checkpoint signs {signed}: the log was rewritten or rebuilt, its chain recomputed", size - 1, file.display())]
    RootMismatch {
        size: u64,
        file: PathBuf,
        line: usize,
        computed: String,
        signed: String,
    },
    #[error("checkpoint of {cp_origin:?} does not name this key's log {key_name:?}")]
    Origin { cp_origin: String, key_name: String },
}

/// A log verified against a checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointSummary {
    pub chain: VerifySummary,
    pub checkpoint: Checkpoint,
    /// Records after the checkpoint (not covered by it).
    pub beyond: u64,
}

impl std::fmt::Display for CheckpointSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.chain)?;
        write!(
            f,
            "checkpoint OK: {} signs {} record(s), root {}",
            self.checkpoint.origin,
            self.checkpoint.size,
            B64.encode(self.checkpoint.root)
        )?;
        if self.beyond > 0 {
            write!(
                f,
                "\nnote: {} record(s) after the checkpoint are not covered by it",
                self.beyond
            )?;
        }
        Ok(())
    }
}

/// Reads and checks a signed checkpoint file.
pub fn open_checkpoint(file: &Path, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
    let err = |source| CheckpointError::Checkpoint {
        file: file.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| err(NoteError::Note(format!("cannot read: {e}"))))?;
    let (cp, _) = Checkpoint::open(&text, key).map_err(err)?;
    Ok(cp)
}

/// Verifies the chain of `paths` and that its first `size` records are the checkpoint's.
pub fn verify_against(
    paths: &[PathBuf],
    checkpoint_file: &Path,
    key: &VerifierKey,
) -> Result<CheckpointSummary, CheckpointError> {
    let cp = open_checkpoint(checkpoint_file, key)?;
    let files = expand_paths(paths)?;
    let mut range = CompactRange::new();
    let mut at_size: Option<Hash> = (cp.size == 0).then(|| range.root());
    let mut last: LineAt = (0, 0);
    let mut cp_at: LineAt = (0, 0);
    let chain = replay_lines(&files, &mut |r, line, at| {
        range.push(r.leaf_of(line));
        last = at;
        if range.size() == cp.size {
            at_size = Some(range.root());
            cp_at = at;
        }
    })?;
    let name = |at: LineAt| files.get(at.0).cloned().unwrap_or_default();
    let loc = (name(last), last.1);
    let cp_loc = (name(cp_at), cp_at.1);
    if chain.starts_mid_chain {
        return Err(CheckpointError::MissingStart {
            file: files[0].clone(),
            first_seq: chain.first_seq.unwrap_or(0),
        });
    }
    let have = range.size();
    let Some(root) = at_size else {
        return Err(CheckpointError::CutTail {
            size: cp.size,
            have,
            file: loc.0,
            line: loc.1,
        });
    };
    if root != cp.root {
        return Err(CheckpointError::RootMismatch {
            size: cp.size,
            file: cp_loc.0,
            line: cp_loc.1,
            computed: B64.encode(root),
            signed: B64.encode(cp.root),
        });
    }
    Ok(CheckpointSummary {
        chain,
        beyond: have - cp.size,
        checkpoint: cp,
    })
}

/// One record, its inclusion proof and the checkpoint it is proved against: all an auditor
/// needs, with the public key, to check that the record is in the signed log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofBundle {
    pub format: String,
    /// The record's line, exactly as written (the leaf's bytes).
    pub record: String,
    /// Its place in the tree: its `seq`.
    pub index: u64,
    pub tree_size: u64,
    /// The inclusion proof, leaf side first, base64.
    pub inclusion: Vec<String>,
    /// The signed checkpoint (C2SP signed note).
    pub checkpoint: String,
}

/// The bundle format name.
pub const PROOF_FORMAT: &str = "douane-audit-proof/v1";

/// What `prove` and `consistency` fail on.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error("{0}")]
    Msg(String),
}

fn msg(s: impl Into<String>) -> ProveError {
    ProveError::Msg(s.into())
}

/// The log at `path` (the `audit.path` of the config): its files, tree and checkpoint.
pub struct LogOnDisk {
    pub files: Vec<PathBuf>,
    pub paths: TlogPaths,
    pub tree: Tree,
}

impl LogOnDisk {
    /// Reads the tree cache, or rebuilds the tree from the log when the cache is short.
    pub fn open(path: &Path, key_file: Option<&Path>) -> Result<LogOnDisk, ProveError> {
        let target = Target::from_path(path);
        let Target::Rotating { dir, stem } = &target else {
            return Err(msg(format!(
                "{} is a device: no tree is kept for it",
                path.display()
            )));
        };
        let paths = TlogPaths::new(dir, stem, key_file);
        let files = list_log_files(&target).map_err(|e| msg(format!("{}: {e}", dir.display())))?;
        let leaves = read_tree_file(&paths.tree).unwrap_or_default();
        let tree = if leaves.is_empty() {
            Tree::from_leaves(leaves_from_log(&files).into_iter().map(|(_, h)| h))
        } else {
            Tree::from_leaves(leaves)
        };
        Ok(LogOnDisk { files, paths, tree })
    }

    /// The line of the record `seq`.
    pub fn find(&self, seq: u64) -> Result<String, ProveError> {
        #[derive(Deserialize)]
        struct Seq {
            seq: u64,
        }
        for f in &self.files {
            let text =
                std::fs::read_to_string(f).map_err(|e| msg(format!("{}: {e}", f.display())))?;
            let first = text
                .lines()
                .next()
                .and_then(|l| serde_json::from_str::<Seq>(l).ok());
            let last = text
                .lines()
                .last()
                .and_then(|l| serde_json::from_str::<Seq>(l).ok());
            if matches!((first, last), (Some(a), Some(b)) if seq < a.seq || seq > b.seq) {
                continue;
            }
            for line in text.lines() {
                if serde_json::from_str::<Seq>(line).is_ok_and(|r| r.seq == seq) {
                    return Ok(line.to_owned());
                }
            }
        }
        Err(msg(format!("no record with seq {seq} in the log")))
    }
}

/// Builds the proof bundle of record `seq` against the checkpoint text.
pub fn prove(
    log: &LogOnDisk,
    seq: u64,
    checkpoint: &str,
    key: &VerifierKey,
) -> Result<ProofBundle, ProveError> {
    let (cp, _) = Checkpoint::open(checkpoint, key).map_err(|e| msg(format!("checkpoint: {e}")))?;
    let record = log.find(seq)?;
    if seq >= cp.size {
        return Err(msg(format!(
            "seq {seq} is after the checkpoint (size {}): wait for the next checkpoint",
            cp.size
        )));
    }
    if log.tree.root(cp.size).ok() != Some(cp.root) {
        return Err(msg("the tree beside the log does not match the checkpoint: run `douane audit verify --checkpoint`"));
    }
    if log.tree.leaves().get(seq as usize) != Some(&leaf_hash(record.as_bytes())) {
        return Err(msg(format!(
            "the record seq {seq} in the log is not the one in the tree"
        )));
    }
    let proof = log
        .tree
        .inclusion_proof(seq, cp.size)
        .map_err(|e| msg(e.to_string()))?;
    Ok(ProofBundle {
        format: PROOF_FORMAT.into(),
        record,
        index: seq,
        tree_size: cp.size,
        inclusion: proof.iter().map(|h| B64.encode(h)).collect(),
        checkpoint: checkpoint.to_owned(),
    })
}

/// Checks a proof bundle offline; returns the checkpoint it was proved against.
pub fn verify_proof(bundle: &ProofBundle, key: &VerifierKey) -> Result<Checkpoint, ProveError> {
    if bundle.format != PROOF_FORMAT {
        return Err(msg(format!("unknown proof format {:?}", bundle.format)));
    }
    let (cp, _) =
        Checkpoint::open(&bundle.checkpoint, key).map_err(|e| msg(format!("checkpoint: {e}")))?;
    if cp.size != bundle.tree_size {
        return Err(msg(format!(
            "the proof is for a tree of {} records, the checkpoint signs {}",
            bundle.tree_size, cp.size
        )));
    }
    #[derive(Deserialize)]
    struct Seq {
        seq: u64,
    }
    match serde_json::from_str::<Seq>(&bundle.record) {
        Ok(r) if r.seq == bundle.index => {}
        _ => return Err(msg("the record's seq is not the proof's index")),
    }
    let proof = decode_hashes(&bundle.inclusion)?;
    if !verify_inclusion(
        bundle.index,
        cp.size,
        &leaf_hash(bundle.record.as_bytes()),
        &proof,
        &cp.root,
    ) {
        return Err(msg(format!(
            "the record is not seq {} of the signed log: the record or its proof was altered",
            bundle.index
        )));
    }
    Ok(cp)
}

pub fn decode_hashes(b64: &[String]) -> Result<Vec<Hash>, ProveError> {
    b64.iter()
        .map(|s| {
            B64.decode(s.trim())
                .ok()
                .and_then(|v| <Hash>::try_from(v).ok())
                .ok_or_else(|| msg(format!("{s:?} is not a base64 SHA-256 hash")))
        })
        .collect()
}

/// Checks that `newer` extends `older` (both signed by `key`) with a proof from `tree`.
pub fn check_consistency(
    older: &Checkpoint,
    newer: &Checkpoint,
    proof: &[Hash],
) -> Result<(), ProveError> {
    if older.origin != newer.origin {
        return Err(msg(format!(
            "the checkpoints are of two logs: {:?} and {:?}",
            older.origin, newer.origin
        )));
    }
    if newer.size < older.size {
        return Err(msg(format!(
            "the log shrank: {} records, then {}",
            older.size, newer.size
        )));
    }
    if !verify_consistency(older.size, newer.size, &older.root, &newer.root, proof) {
        return Err(msg(format!(
            "the log of {} records does not extend the log of {}: a fork (records rewritten)",
            newer.size, older.size
        )));
    }
    Ok(())
}
