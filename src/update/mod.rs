//! `douane geodb update`: rebuild the country and ASN databases from their sources (a
//! `--from DIR` bundle carried into an air-gapped site, or the URLs of `[geo.update]`),
//! check the new files, and swap them in atomically.
//!
//! All or nothing: every database is built and checked aside (it opens, it is of the kind
//! its path is configured for, its whole tree verifies, it did not shrink below
//! `min_size_ratio` of the one in place) before any is swapped in; then each is written
//! beside its target, fsynced, renamed over it, and the directory fsynced. A running
//! douane sees the old file or the new one, and its file watch (or a SIGHUP) reloads it.
//! One more kind of source is a [`SourceFormat`] variant and an arm in `unpack`.

pub mod fetch;
pub mod unpack;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, DataSource};
use crate::geo::import::{import_csv_with, ImportOptions};
use crate::geo::{DbKind, GeoDb};

use fetch::Fetcher;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("nothing to update: the config names no {0} database path ([geo] country / asn) that has a source")]
    NothingToUpdate(&'static str),
    #[error("the {kind} database: {message}")]
    Source { kind: DbKind, message: String },
    #[error("{}: {message}", path.display())]
    Candidate { path: PathBuf, message: String },
    #[error(
        "{}: refused: the new {kind} database has {new} networks, {percent:.0}% of the {old} of the one in place \
         (below [geo.update] min_size_ratio = {ratio}): a truncated source or a smaller edition? The old file stays; \
         lower min_size_ratio (0 turns the check off) if the shrink is expected",
        path.display(), percent = 100.0 * *new as f64 / (*old).max(1) as f64
    )]
    Shrunk {
        path: PathBuf,
        kind: DbKind,
        old: u64,
        new: u64,
        ratio: f64,
    },
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the sources come from.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// A directory holding every source file by its `file` name: no download.
    pub from: Option<PathBuf>,
    /// Build and check, swap nothing.
    pub dry_run: bool,
}

/// One database rebuilt.
#[derive(Debug, Clone)]
pub struct Updated {
    pub kind: DbKind,
    pub path: PathBuf,
    pub database_type: String,
    /// Networks with a record in the file in place (none: no readable file there).
    pub old_records: Option<u64>,
    pub records: u64,
    pub size: u64,
    pub sources: Vec<String>,
}

/// A database built and checked, not yet swapped in.
struct Candidate {
    report: Updated,
    bytes: Vec<u8>,
}

/// Rebuilds every configured database that has sources; swaps nothing unless all succeed.
pub fn update(config: &Config, options: &UpdateOptions) -> Result<Vec<Updated>, UpdateError> {
    let settings = &config.geo.update;
    let mut candidates = Vec::new();
    for (kind, target) in [
        (DbKind::Country, &config.geo.country),
        (DbKind::Asn, &config.geo.asn),
    ] {
        let sources: Vec<&DataSource> = settings
            .sources
            .iter()
            .filter(|s| s.database == kind)
            .collect();
        let Some(target) = target else { continue };
        if sources.is_empty() {
            continue;
        }
        let work = WorkDir::beside(target).map_err(|source| UpdateError::Write {
            path: target.clone(),
            source,
        })?;
        let candidate = build(config, kind, target, &sources, options, &work)?;
        check_shrink(&candidate, settings.min_size_ratio)?;
        candidates.push(candidate);
    }
    if candidates.is_empty() {
        return Err(UpdateError::NothingToUpdate("country or ASN"));
    }
    if !options.dry_run {
        for c in &candidates {
            swap_in(&c.report.path, &c.bytes)?;
        }
    }
    Ok(candidates.into_iter().map(|c| c.report).collect())
}

fn build(
    config: &Config,
    kind: DbKind,
    target: &Path,
    sources: &[&DataSource],
    options: &UpdateOptions,
    work: &WorkDir,
) -> Result<Candidate, UpdateError> {
    let source_err = |message: String| UpdateError::Source { kind, message };
    let csv = sources.iter().all(|s| s.format.is_csv());
    if !csv && sources.len() > 1 {
        return Err(source_err(
            "several sources, not all CSV: a database is one .mmdb file, or CSV ranges added up"
                .into(),
        ));
    }
    let mut files = Vec::new();
    let mut names = Vec::new();
    for s in sources {
        let (path, name) = obtain(config, s, options, work).map_err(&source_err)?;
        files.push(path);
        names.push(name);
    }
    let bytes = if csv {
        let mut import = ImportOptions::new(kind);
        import.description = Some(format!("douane geodb update from {}", names.join(", ")));
        let out = work.0.join(format!("{kind}.mmdb"));
        import_csv_with(&files, &out, &import).map_err(|e| source_err(e.to_string()))?;
        std::fs::read(&out).map_err(|e| source_err(format!("{}: {e}", out.display())))?
    } else {
        let raw = std::fs::read(&files[0])
            .map_err(|e| source_err(format!("{}: {e}", files[0].display())))?;
        unpack::mmdb_bytes(sources[0].format, raw)
            .map_err(|m| source_err(format!("{}: {m}", names[0])))?
    };
    let candidate = |message: String| UpdateError::Candidate {
        path: target.to_owned(),
        message: format!(
            "the new {kind} database from {}: {message}",
            names.join(", ")
        ),
    };
    let size = bytes.len() as u64;
    // The reader owns what it reads: it checks a copy, and the checked bytes are written.
    let db = GeoDb::from_bytes(bytes.clone(), target)
        .map_err(|e| candidate(inner(&e.to_string(), target)))?;
    if db.info.kind != kind {
        return Err(candidate(format!(
            "it is a {} database (`{}`), not a {kind} one",
            db.info.kind, db.info.database_type
        )));
    }
    let records = count_records(&bytes).map_err(candidate)?;
    if records == 0 {
        return Err(candidate("it holds no network at all".into()));
    }
    let old_records = std::fs::read(target)
        .ok()
        .and_then(|old| count_records(&old).ok());
    let report = Updated {
        kind,
        path: target.to_owned(),
        database_type: db.info.database_type.clone(),
        old_records,
        records,
        size,
        sources: names,
    };
    Ok(Candidate { report, bytes })
}

/// Walks the whole tree and decodes every record: the networks that have data. A file cut
/// short or with a damaged tree or data section fails here (the metadata's own checks are
/// left out: the shipped ip-location-db file has an empty description map, which
/// maxminddb's `verify` refuses).
fn count_records(bytes: &[u8]) -> Result<u64, String> {
    let reader = maxminddb::Reader::from_source(bytes)
        .map_err(|e| format!("not a valid MaxMind database (.mmdb): {e}"))?;
    let mut count = 0u64;
    let networks = reader
        .networks(maxminddb::WithinOptions::default())
        .map_err(|e| format!("cannot walk the tree: {e}"))?;
    for item in networks {
        let item = item.map_err(|e| format!("the tree is damaged: {e}"))?;
        item.decode::<serde::de::IgnoredAny>()
            .map_err(|e| format!("a record is damaged: {e}"))?;
        count += 1;
    }
    Ok(count)
}

/// A message of [`GeoDb`] names the target path; the candidate is not there yet.
fn inner(message: &str, target: &Path) -> String {
    let prefix = format!("{}: ", target.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_owned()
}

fn check_shrink(c: &Candidate, ratio: f64) -> Result<(), UpdateError> {
    let Some(old) = c.report.old_records else {
        return Ok(());
    };
    if (c.report.records as f64) < ratio * old as f64 {
        return Err(UpdateError::Shrunk {
            path: c.report.path.clone(),
            kind: c.report.kind,
            old,
            new: c.report.records,
            ratio,
        });
    }
    Ok(())
}

/// A source file on disk: from the bundle, or downloaded into the work directory. Returns
/// it and the name to show.
fn obtain(
    config: &Config,
    source: &DataSource,
    options: &UpdateOptions,
    work: &WorkDir,
) -> Result<(PathBuf, String), String> {
    if let Some(dir) = &options.from {
        let path = dir.join(&source.file);
        if !path.is_file() {
            return Err(format!(
                "the bundle {} has no `{}`",
                dir.display(),
                source.file
            ));
        }
        return Ok((path, source.file.clone()));
    }
    let Some(url) = &source.url else {
        return Err(format!(
            "`{}` has no url in [[geo.update.source]]: give --from DIR holding it",
            source.file
        ));
    };
    let (url, shown) = match &source.license_key_file {
        Some(key_file) if url.contains("{license_key}") => {
            let key = std::fs::read_to_string(key_file)
                .map_err(|e| format!("licence key file {}: {e}", key_file.display()))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(format!("licence key file {} is empty", key_file.display()));
            }
            (
                url.replace("{license_key}", key),
                url.replace("{license_key}", "…"),
            )
        }
        _ => (url.clone(), url.clone()),
    };
    let tls = crate::tls::client_config(
        config.upstream.ca_file.as_deref(),
        config.upstream.system_roots,
    )
    .map_err(|e| e.to_string())?;
    let fetcher = Fetcher {
        tls,
        timeout: Duration::from_secs(600),
        parent: config
            .upstream
            .parent_proxy
            .clone()
            .map(|p| (p, config.upstream.parent_proxy_authorization.clone())),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let bytes = runtime
        .block_on(fetcher.get(&url, &shown))
        .map_err(|e| e.to_string())?;
    let path = work.0.join(&source.file);
    std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((path, shown))
}

/// Writes `bytes` beside `target`, fsyncs, renames over it, fsyncs the directory.
fn swap_in(target: &Path, bytes: &[u8]) -> Result<(), UpdateError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| UpdateError::Write { path, source }
    };
    let name = target
        .file_name()
        .map_or_else(|| "geo.mmdb".into(), |n| n.to_string_lossy().into_owned());
    let tmp = target.with_file_name(format!(".{name}.update{}", std::process::id()));
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(&tmp)(e));
    }
    if let Err(e) = std::fs::rename(&tmp, target) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(target)(e));
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err(dir))?;
    }
    Ok(())
}

/// A scratch directory beside a target (same file system), removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn beside(target: &Path) -> std::io::Result<WorkDir> {
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .map_or_else(|| "geo".into(), |n| n.to_string_lossy().into_owned());
        let path = dir.join(format!(".{name}.update-work{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(WorkDir(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
