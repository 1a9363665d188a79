//! `douane ranges import`: read provider files with their importers and compile them into
//! one artifact. Equal prefixes are merged (a regional entry wins over a region-less one,
//! then the first file in name order): Azure lists a prefix under its regional tag and its
//! global ones, GitHub's Actions ranges are Azure's.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use super::artifact::{Compiled, DatedBy, FactRecord, SourceRecord};
use super::source::{detect, Format, ImportError, ParsedFile};
use super::{aws, azure, geofeed, google, lists, oracle};

/// What an import did, for the command to print.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub compiled: Compiled,
    /// Per file: regions its provider's table does not place.
    pub unmapped_regions: Vec<(String, BTreeSet<String>)>,
    /// Prefixes listed more than once (merged).
    pub merged: usize,
}

/// The provider files of a directory that an importer reads, in name order; others (a
/// README, licences) are skipped.
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let read = |e| ImportError::Read {
        path: dir.display().to_string(),
        source: e,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.is_file() && detect(&path).is_some() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads every file (each must have an importer) and compiles them. `fetched` dates the
/// files that carry no date of their own; without it such a file is an error.
pub fn compile_files(
    files: &[PathBuf],
    fetched: Option<&str>,
    built: &str,
) -> Result<ImportReport, ImportError> {
    let mut files = files.to_vec();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let mut report = ImportReport::default();
    report.compiled.built = built.to_owned();
    let mut fact_index: HashMap<FactRecord, u32> = HashMap::new();
    // prefix → (has a region, fact)
    let mut best: HashMap<IpNet, (bool, u32)> = HashMap::new();
    for path in &files {
        let name = path.display().to_string();
        let (format, publisher) =
            detect(path).ok_or_else(|| ImportError::UnknownFormat { path: name.clone() })?;
        let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
            path: name.clone(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let parsed = parse(format, &text, &name)?;
        if parsed.ranges.is_empty() {
            return Err(ImportError::Empty { path: name });
        }
        let (date, dated_by) = match (&parsed.date, fetched) {
            (Some(d), _) => (d.clone(), DatedBy::File),
            (None, Some(f)) => (f.to_owned(), DatedBy::Fetched),
            (None, None) => {
                return Err(ImportError::Malformed {
                    path: name,
                    format: format.as_str(),
                    message: "the file carries no date; give the day it was fetched with --fetched YYYY-MM-DD".into(),
                })
            }
        };
        let source = report.compiled.sources.len() as u32;
        let file = path
            .file_name()
            .map_or_else(|| name.clone(), |f| f.to_string_lossy().into_owned());
        report.compiled.sources.push(SourceRecord {
            file: file.clone(),
            publisher,
            format: format.as_str().to_owned(),
            date,
            dated_by,
            serial: parsed.serial.clone(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            prefixes: parsed.ranges.len() as u32,
        });
        if !parsed.unmapped_regions.is_empty() {
            report
                .unmapped_regions
                .push((file, parsed.unmapped_regions.clone()));
        }
        for r in parsed.ranges {
            let record = FactRecord {
                source,
                region: r.region,
                country: r.country,
            };
            let has_region = record.region.is_some();
            let next = fact_index.len() as u32;
            let fact = *fact_index.entry(record.clone()).or_insert_with(|| {
                report.compiled.facts.push(record);
                next
            });
            match best.get(&r.net) {
                Some(&(had_region, _)) => {
                    report.merged += 1;
                    if has_region && !had_region {
                        best.insert(r.net, (true, fact));
                    }
                }
                None => {
                    best.insert(r.net, (has_region, fact));
                }
            }
        }
    }
    let mut prefixes: Vec<(IpNet, u32)> = best.into_iter().map(|(n, (_, f))| (n, f)).collect();
    prefixes.sort();
    for (net, fact) in prefixes {
        match net {
            IpNet::V4(n) => report
                .compiled
                .v4
                .push((u32::from(n.network()), n.prefix_len(), fact)),
            IpNet::V6(n) => {
                report
                    .compiled
                    .v6
                    .push((u128::from(n.network()), n.prefix_len(), fact))
            }
        }
    }
    Ok(report)
}

fn parse(format: Format, text: &str, path: &str) -> Result<ParsedFile, ImportError> {
    let malformed = |message: String| ImportError::Malformed {
        path: path.to_owned(),
        format: format.as_str(),
        message,
    };
    let line = |(line, message): (usize, String)| ImportError::Line {
        path: path.to_owned(),
        line,
        message,
    };
    match format {
        Format::Aws => aws::parse(text).map_err(malformed),
        Format::GoogleCloud => google::parse(text).map_err(malformed),
        Format::Azure => azure::parse(text).map_err(malformed),
        Format::Oracle => oracle::parse(text).map_err(malformed),
        Format::GitHub => lists::github(text).map_err(malformed),
        Format::Fastly => lists::fastly(text).map_err(malformed),
        Format::Zscaler => lists::zscaler(text).map_err(malformed),
        Format::CidrList => lists::cidr_lines(text).map_err(line),
        Format::Geofeed => geofeed::parse(text).map_err(line),
    }
}
