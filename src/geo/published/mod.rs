//! Providers' own published address ranges (AWS, Google Cloud, Azure, Oracle, GitHub,
//! Fastly, Cloudflare, Akamai, Zscaler, RFC 8805 geofeeds): one importer per format, the
//! compiled artifact (`data/published.bin`), and the lookup `classify` uses.
//!
//! ```text
//! provider files ─► importers (aws, google, azure, oracle, lists, geofeed)
//!                ─► compile (one fact per source+region, equal prefixes merged)
//!                ─► artifact (checksummed binary) ─► PublishedRanges (flattened intervals)
//! ```
//!
//! A prefix's facts: its publisher (the operator, through the registry's `published` keys),
//! the region it names and that region's country (`regions`), or no region at all: an
//! *anycast* range, whose location is not claimed. The most specific published prefix
//! holding an address wins (AWS publishes `/16` supersets over prefixes of other regions).

pub mod artifact;
pub mod aws;
pub mod azure;
pub mod compile;
pub mod geofeed;
pub mod google;
pub mod lists;
pub mod oracle;
pub mod regions;
pub mod source;
pub mod table;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::country::Country;

pub use artifact::{ArtifactError, Compiled, DatedBy, SourceRecord};
pub use compile::{compile_files, files_in, ImportReport};
pub use source::{detect, Format, ImportError};

/// What one published prefix says about its addresses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RangeFacts {
    /// The publisher (`aws`, `azure`, `cloudflare`, a geofeed's name, …).
    pub publisher: Arc<str>,
    /// The region the range is published for; `None` for an anycast/global range.
    pub region: Option<Arc<str>>,
    /// The country of that region.
    pub country: Option<Country>,
    /// The source file it comes from, and that file's own date.
    pub source_file: Arc<str>,
    pub source_date: Arc<str>,
}

impl RangeFacts {
    /// Published without a region: no location is claimed.
    pub fn anycast(&self) -> bool {
        self.region.is_none() && self.country.is_none()
    }
}

/// Why the published ranges could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PublishedError {
    #[error("{}: cannot read the published ranges: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: published ranges refused: {source}", path.display())]
    Artifact {
        path: PathBuf,
        source: ArtifactError,
    },
}

/// The loaded published ranges: immutable, read into memory, looked up without locks.
#[derive(Debug)]
pub struct PublishedRanges {
    pub path: PathBuf,
    /// Hex SHA-256 of the artifact's contents.
    pub version: Arc<str>,
    /// When the import ran.
    pub built: Arc<str>,
    pub sources: Vec<Arc<SourceRecord>>,
    facts: Vec<Arc<RangeFacts>>,
    v4_entries: Vec<(u32, u8, u32)>,
    v6_entries: Vec<(u128, u8, u32)>,
    v4: table::Segments<u32>,
    v6: table::Segments<u128>,
}

impl PublishedRanges {
    /// Reads an artifact; a truncated, altered or foreign file is refused with the reason.
    pub fn open(path: &Path) -> Result<PublishedRanges, PublishedError> {
        let bytes = std::fs::read(path).map_err(|source| PublishedError::Read {
            path: path.to_owned(),
            source,
        })?;
        let (compiled, version) =
            Compiled::decode(&bytes).map_err(|source| PublishedError::Artifact {
                path: path.to_owned(),
                source,
            })?;
        Ok(PublishedRanges::new(compiled, version, path.to_owned()))
    }

    /// Builds the lookup over compiled contents.
    pub fn new(c: Compiled, version: String, path: PathBuf) -> PublishedRanges {
        let sources: Vec<Arc<SourceRecord>> = c.sources.into_iter().map(Arc::new).collect();
        let facts = c
            .facts
            .into_iter()
            .map(|f| {
                let s = &sources[f.source as usize];
                Arc::new(RangeFacts {
                    publisher: s.publisher.as_str().into(),
                    region: f.region.map(Arc::from),
                    country: f.country,
                    source_file: s.file.as_str().into(),
                    source_date: s.date.as_str().into(),
                })
            })
            .collect();
        let span = |net: u128, len: u8, bits: u8| {
            let host = if len >= bits {
                0
            } else {
                (1u128 << (bits - len)) - 1
            };
            (net, net | host)
        };
        let v4 = table::Segments::flatten(
            c.v4.iter()
                .enumerate()
                .map(|(i, &(net, len, _))| {
                    let (a, b) = span(u128::from(net), len, 32);
                    (a, b, i as u32)
                })
                .collect(),
        );
        let v6 = table::Segments::flatten(
            c.v6.iter()
                .enumerate()
                .map(|(i, &(net, len, _))| {
                    let (a, b) = span(net, len, 128);
                    (a, b, i as u32)
                })
                .collect(),
        );
        PublishedRanges {
            path,
            version: version.into(),
            built: c.built.into(),
            sources,
            facts,
            v4_entries: c.v4,
            v6_entries: c.v6,
            v4,
            v6,
        }
    }

    /// The most specific published prefix holding `ip` (canonical form), and the index of
    /// its facts.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<(IpNet, u32)> {
        match ip {
            IpAddr::V4(a) => {
                let e = self.v4.lookup(u32::from(a))?;
                let &(net, len, fact) = self.v4_entries.get(e as usize)?;
                let net = Ipv4Net::new(Ipv4Addr::from(net), len).ok()?;
                Some((IpNet::V4(net), fact))
            }
            IpAddr::V6(a) => {
                let e = self.v6.lookup(u128::from(a))?;
                let &(net, len, fact) = self.v6_entries.get(e as usize)?;
                let net = Ipv6Net::new(Ipv6Addr::from(net), len).ok()?;
                Some((IpNet::V6(net), fact))
            }
        }
    }

    pub fn fact(&self, index: u32) -> Option<&Arc<RangeFacts>> {
        self.facts.get(index as usize)
    }

    pub fn facts(&self) -> &[Arc<RangeFacts>] {
        &self.facts
    }

    /// Every published prefix with its facts index (IPv4 first).
    pub fn prefixes(&self) -> impl Iterator<Item = (IpNet, u32)> + '_ {
        let v4 = self.v4_entries.iter().filter_map(|&(n, l, f)| {
            Some((IpNet::V4(Ipv4Net::new(Ipv4Addr::from(n), l).ok()?), f))
        });
        let v6 = self.v6_entries.iter().filter_map(|&(n, l, f)| {
            Some((IpNet::V6(Ipv6Net::new(Ipv6Addr::from(n), l).ok()?), f))
        });
        v4.chain(v6)
    }

    pub fn prefix_count(&self) -> usize {
        self.v4_entries.len() + self.v6_entries.len()
    }

    /// The date of the oldest source: what `check` compares with its maximum age.
    pub fn oldest_source(&self) -> Option<&SourceRecord> {
        self.sources
            .iter()
            .min_by(|a, b| a.date.cmp(&b.date))
            .map(|s| &**s)
    }

    /// Bytes of the lookup tables (for the memory figure).
    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes()
            + self.v6.heap_bytes()
            + self.v4_entries.capacity() * 12
            + self.v6_entries.capacity() * 32
    }

    /// What a decision records of them: version, build date and every source's date.
    pub fn summary(&self) -> PublishedSummary {
        PublishedSummary {
            version: self.version.clone(),
            built: self.built.clone(),
            sources: self
                .sources
                .iter()
                .map(|s| SourceDate {
                    file: s.file.as_str().into(),
                    date: s.date.as_str().into(),
                })
                .collect(),
        }
    }
}

/// The published ranges a state was loaded with, as decisions, `/policy`, the metrics and
/// the audit log record them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedSummary {
    pub version: Arc<str>,
    pub built: Arc<str>,
    pub sources: Vec<SourceDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceDate {
    pub file: Arc<str>,
    pub date: Arc<str>,
}

/// Parses a source date (RFC 3339, `YYYY-MM-DDTHH:MM:SS` taken as UTC, or `YYYY-MM-DD`)
/// into a Unix time.
pub fn date_epoch(date: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(date, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let with_zone = format!("{date}Z");
    if let Ok(t) = time::OffsetDateTime::parse(&with_zone, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let day = time::Date::parse(
        date.get(..10)?,
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(day.midnight().assume_utc().unix_timestamp())
}
