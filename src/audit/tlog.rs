//! The transparency log kept beside the JSON-lines files, in the directory `<stem>.tlog/`:
//! the Merkle tree over every record (one leaf a line, leaf `i` is the record of `seq` `i`),
//! its leaf hashes cached in `tree`, the signing key (`key`, 0600, generated on first start;
//! the verifier key in `key.pub`) and the latest signed checkpoint (`checkpoint`). Owned by
//! the writer thread: the request path never touches it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::config::AuditConfig;
use super::merkle::{Hash, ProofError, Tree};
use super::note::{Checkpoint, SignedNote, SigningKey, VerifierKey, ALG_ED25519};
use super::verify::replay_lines;
use super::AuditError;

/// The files of the transparency log of the log `dir/<stem>.*.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogPaths {
    /// `<dir>/<stem>.tlog`
    pub dir: PathBuf,
    pub tree: PathBuf,
    pub checkpoint: PathBuf,
    pub key: PathBuf,
    pub public: PathBuf,
}

impl TlogPaths {
    pub fn new(dir: &Path, stem: &str, key: Option<&Path>) -> TlogPaths {
        let tlog = dir.join(format!("{stem}.tlog"));
        TlogPaths {
            tree: tlog.join("tree"),
            checkpoint: tlog.join("checkpoint"),
            key: key.map_or_else(|| tlog.join("key"), Path::to_path_buf),
            public: tlog.join("key.pub"),
            dir: tlog,
        }
    }
}

/// The log's origin line when `audit.origin` is not set: `<host name>/douane-audit`.
pub fn default_origin() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic() && c != '+'))
        .unwrap_or_else(|| "localhost".into());
    format!("{host}/douane-audit")
}

/// Reads the signing key, or generates it (private key 0600, verifier key beside the log).
pub fn load_or_create_key(paths: &TlogPaths, name: &str) -> Result<SigningKey, AuditError> {
    let key_err = |detail: String| AuditError::KeyFile {
        path: paths.key.clone(),
        detail,
    };
    match std::fs::read_to_string(&paths.key) {
        Ok(text) => return SigningKey::parse(&text).map_err(|e| key_err(e.to_string())),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(key_err(e.to_string())),
        Err(_) => {}
    }
    let key = SigningKey::generate(name, ALG_ED25519).map_err(|e| key_err(e.to_string()))?;
    if let Some(dir) = paths.key.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| AuditError::io("create directory", dir, e))?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&paths.key)
        .map_err(|e| AuditError::io("create", &paths.key, e))?;
    f.write_all(format!("{}\n", key.encode()).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| AuditError::io("write", &paths.key, e))?;
    write_atomic(
        &paths.public,
        format!("{}\n", key.verifier().encode()).as_bytes(),
    )?;
    tracing::info!(key = %paths.key.display(), public = %key.verifier().encode(), "audit signing key generated");
    Ok(key)
}

/// Reads a verifier key from a file (or the text itself when it is not a file name).
pub fn read_verifier(path_or_key: &str) -> Result<VerifierKey, String> {
    let text = match std::fs::read_to_string(path_or_key) {
        Ok(t) => t,
        Err(_) if path_or_key.contains('+') => path_or_key.to_owned(),
        Err(e) => return Err(format!("{path_or_key}: {e}")),
    };
    VerifierKey::parse(&text).map_err(|e| format!("{path_or_key}: {e}"))
}

/// Writes a file whole: a temporary file beside it, synced, renamed over it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let tmp = path.with_extension("tmp");
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| AuditError::io("write", path, e))
}

/// Reads the cached leaf hashes (a cut last entry is dropped).
pub fn read_tree_file(path: &Path) -> io::Result<Vec<Hash>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// The leaves of the log's files, recomputed from their lines (records the chain accepts).
pub fn leaves_from_log(files: &[PathBuf]) -> Vec<(u64, Hash)> {
    let mut out = Vec::new();
    if files.is_empty() {
        return out;
    }
    let _ = replay_lines(files, &mut |r, line, _| out.push((r.seq, r.leaf_of(line))));
    out
}

/// The tree and the checkpoints, driven by the writer.
pub(crate) struct Tlog {
    pub tree: Tree,
    paths: TlogPaths,
    tree_file: Option<File>,
    /// Leaf hashes not yet in the cache file (written at each sync and checkpoint).
    unwritten: Vec<u8>,
    key: SigningKey,
    origin: String,
    interval: Duration,
    signed_size: u64,
    last_sign: Instant,
    /// A checkpoint is due regardless of the interval (a rotation).
    forced: bool,
    latest: Arc<ArcSwapOption<String>>,
}

impl std::fmt::Debug for Tlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tlog")
            .field("size", &self.tree.size())
            .field("signed_size", &self.signed_size)
            .field("paths", &self.paths)
            .finish()
    }
}

impl Tlog {
    /// Loads the tree for a log whose chain goes on at `next_seq` with the line `last_line`
    /// last (the cache is used when it matches, else the tree is rebuilt from `files`).
    pub fn open(
        config: &AuditConfig,
        dir: &Path,
        stem: &str,
        files: &[PathBuf],
        next_seq: u64,
        last_line: Option<&[u8]>,
    ) -> Result<Tlog, AuditError> {
        let paths = TlogPaths::new(dir, stem, config.signing_key_file.as_deref());
        let origin = config.origin.clone().unwrap_or_else(default_origin);
        std::fs::create_dir_all(&paths.dir)
            .map_err(|e| AuditError::io("create directory", &paths.dir, e))?;
        let key = load_or_create_key(&paths, &origin)?;
        let mut cached = read_tree_file(&paths.tree).unwrap_or_default();
        let fits = cached.len() as u64 >= next_seq
            && match (next_seq, last_line) {
                (0, _) => true,
                (n, Some(line)) => cached[n as usize - 1] == super::merkle::leaf_hash(line),
                (_, None) => false,
            };
        let leaves = if fits {
            cached.truncate(next_seq as usize);
            cached
        } else {
            let rebuilt: Vec<Hash> = leaves_from_log(files)
                .into_iter()
                .enumerate()
                .take_while(|(i, (seq, _))| *i as u64 == *seq)
                .map(|(_, (_, h))| h)
                .take(next_seq as usize)
                .collect();
            if (rebuilt.len() as u64) < next_seq {
                return Err(AuditError::Config {
                    detail: format!(
                        "the audit log does not verify up to seq {} (only {} records chain from seq 0): run `douane audit verify` on it; no checkpoint is signed over a broken log",
                        next_seq.saturating_sub(1),
                        rebuilt.len()
                    ),
                });
            }
            tracing::info!(records = rebuilt.len(), "audit tree rebuilt from the log");
            rebuilt
        };
        let mut bytes = Vec::with_capacity(leaves.len() * 32);
        for l in &leaves {
            bytes.extend_from_slice(l);
        }
        write_atomic(&paths.tree, &bytes)?;
        let tree_file = OpenOptions::new()
            .append(true)
            .open(&paths.tree)
            .map_err(|e| AuditError::io("open", &paths.tree, e))?;
        let tree = Tree::from_leaves(leaves);
        let latest = Arc::new(ArcSwapOption::empty());
        let mut signed_size = u64::MAX;
        if let Ok(text) = std::fs::read_to_string(&paths.checkpoint) {
            if let Ok((cp, _)) = Checkpoint::open(&text, &key.verifier()) {
                if cp.size > tree.size() {
                    tracing::error!(checkpoint = cp.size, log = tree.size(), "the audit log holds fewer records than its last signed checkpoint: records were removed");
                } else if tree.root(cp.size).ok() != Some(cp.root) {
                    tracing::error!(size = cp.size, "the audit log does not match its last signed checkpoint: records were rewritten");
                } else {
                    signed_size = cp.size;
                    latest.store(Some(Arc::new(text)));
                }
            }
        }
        let mut t = Tlog {
            tree,
            paths,
            tree_file: Some(tree_file),
            unwritten: Vec::with_capacity(64 * 1024),
            key,
            origin,
            interval: Duration::from_millis(config.checkpoint_interval_ms.max(1)),
            signed_size,
            last_sign: Instant::now(),
            forced: false,
            latest,
        };
        if t.signed_size != t.tree.size() {
            t.forced = true;
        }
        Ok(t)
    }

    /// Appends the leaves of lines just written.
    pub fn push(&mut self, leaves: &[Hash]) {
        if leaves.is_empty() {
            return;
        }
        for l in leaves {
            self.tree.push(*l);
            if self.tree_file.is_some() {
                self.unwritten.extend_from_slice(l);
            }
        }
        if self.unwritten.len() >= 64 * 1024 {
            self.flush_cache();
        }
    }

    /// Writes the leaves not yet in the cache file (with the log's syncs: the cache only
    /// spares a rebuild at start, it is never trusted over the log).
    pub fn flush_cache(&mut self) {
        if self.unwritten.is_empty() {
            return;
        }
        if let Some(f) = &mut self.tree_file {
            let result = f.write_all(&self.unwritten);
            self.unwritten.clear();
            if let Err(e) = result {
                // The cache is rebuilt from the log at the next start.
                tracing::warn!(error = %e, file = %self.paths.tree.display(), "audit tree cache not written; rebuilt at next start");
                self.tree_file = None;
            }
        }
    }

    pub fn force(&mut self) {
        self.forced = true;
    }

    /// Whether a checkpoint should be signed now.
    pub fn due(&self) -> bool {
        self.tree.size() != self.signed_size
            && (self.forced || self.last_sign.elapsed() >= self.interval)
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Signs a checkpoint of the whole tree, writes it beside the log and publishes it. The
    /// caller has synced the log first: a checkpoint never covers a record a power loss
    /// could take back.
    pub fn sign(&mut self) -> Result<(), AuditError> {
        self.flush_cache();
        let size = self.tree.size();
        let root = self.tree.root(size).map_err(|e| AuditError::Config {
            detail: e.to_string(),
        })?;
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
        };
        let text = self.key.sign_note(&cp.body());
        write_atomic(&self.paths.checkpoint, text.as_bytes())?;
        self.latest.store(Some(Arc::new(text)));
        self.signed_size = size;
        self.last_sign = Instant::now();
        self.forced = false;
        Ok(())
    }

    pub fn latest(&self) -> Arc<ArcSwapOption<String>> {
        self.latest.clone()
    }

    pub fn verifier(&self) -> VerifierKey {
        self.key.verifier()
    }

    pub fn consistency(&self, first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
        self.tree.consistency_proof(first, second)
    }

    pub fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.tree.inclusion_proof(index, size)
    }
}

/// Reads the latest checkpoint beside a log, unchecked.
pub fn read_note(path: &Path) -> Result<SignedNote, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    SignedNote::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}
