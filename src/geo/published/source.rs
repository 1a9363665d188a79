//! What an importer reads out of one provider file: its ranges (prefix, region, country)
//! and the file's own date; and which importer a file name calls for.

use std::collections::BTreeSet;
use std::path::Path;

use ipnet::IpNet;

use crate::country::Country;
use crate::geo::published::regions::{self, RegionTable};

/// The formats douane reads. `as_str` names them in `douane ranges info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// AWS `ip-ranges.json`.
    Aws,
    /// Google Cloud `cloud.json`.
    GoogleCloud,
    /// Azure IP ranges and service tags (public cloud).
    Azure,
    /// Oracle Cloud `public_ip_ranges.json`.
    Oracle,
    /// GitHub `meta`.
    GitHub,
    /// Fastly `public-ip-list`.
    Fastly,
    /// One CIDR a line (Cloudflare `ips-v4`/`ips-v6`, Akamai).
    CidrList,
    /// Zscaler's `hubPrefixes` JSON.
    Zscaler,
    /// An RFC 8805 geofeed (`prefix,country,region,city,postal`).
    Geofeed,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Aws => "aws-ip-ranges",
            Format::GoogleCloud => "google-cloud",
            Format::Azure => "azure-service-tags",
            Format::Oracle => "oracle-public-ip-ranges",
            Format::GitHub => "github-meta",
            Format::Fastly => "fastly-public-ip-list",
            Format::CidrList => "cidr-list",
            Format::Zscaler => "zscaler",
            Format::Geofeed => "rfc8805-geofeed",
        }
    }
}

/// One published prefix, as the file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRange {
    pub net: IpNet,
    /// The region the file names; `None` when it names none (anycast, global).
    pub region: Option<String>,
    /// The country of that region (from the provider's region table, or the geofeed's
    /// own country column).
    pub country: Option<Country>,
}

/// One provider file, read.
#[derive(Debug, Clone, Default)]
pub struct ParsedFile {
    /// The file's own date (RFC 3339 or `YYYY-MM-DD`), when the file carries one.
    pub date: Option<String>,
    /// A serial the file carries (AWS `syncToken`, Azure `changeNumber`), when it has one.
    pub serial: Option<String>,
    pub ranges: Vec<RawRange>,
    /// Regions the file names that the provider's region table does not know.
    pub unmapped_regions: BTreeSet<String>,
}

impl ParsedFile {
    /// Adds a prefix with its region, placed by `table`; `GLOBAL`/`global`/empty is no region.
    pub(super) fn push_region(&mut self, net: IpNet, region: &str, table: RegionTable) {
        let region = region.trim();
        if region.is_empty() || region.eq_ignore_ascii_case("global") {
            self.push_anycast(net);
            return;
        }
        let country = regions::country_of(table, region);
        if country.is_none() {
            self.unmapped_regions.insert(region.to_owned());
        }
        self.ranges.push(RawRange {
            net: net.trunc(),
            region: Some(region.to_owned()),
            country,
        });
    }

    /// Adds a prefix published without a region.
    pub(super) fn push_anycast(&mut self, net: IpNet) {
        self.ranges.push(RawRange {
            net: net.trunc(),
            region: None,
            country: None,
        });
    }
}

/// Why a provider file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a {format} file: {message}")]
    Malformed {
        path: String,
        format: &'static str,
        message: String,
    },
    #[error("{path}: line {line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: no importer for this file name; name it like the publisher's file (aws-ip-ranges.json, google-cloud-ip-ranges.json, microsoft-azure-ip-ranges.json, oracle-cloud-ip-ranges.json, github-ip-ranges.json, fastly-ip-ranges.json, cloudflare-v4-ip-ranges.txt, akamai-v4-ip-ranges.txt, zscaler-cloud-ip-ranges.json) or give a geofeed a .csv or a name with `geofeed`/`linode`")]
    UnknownFormat { path: String },
    #[error("{path}: no prefix in the file")]
    Empty { path: String },
}

/// The importer and the publisher a file name calls for. The publisher is the file name's
/// first word (`aws`, `google-cloud`, `microsoft-azure` → `azure`, …), which the operator
/// registry's `published` keys refer to.
pub fn detect(path: &Path) -> Option<(Format, String)> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let found = |f: Format, p: &str| Some((f, p.to_owned()));
    if name.contains("aws") || name == "ip-ranges.json" {
        found(Format::Aws, "aws")
    } else if name.contains("google") || name == "cloud.json" {
        found(Format::GoogleCloud, "google-cloud")
    } else if name.contains("azure") || name.starts_with("servicetags") {
        found(Format::Azure, "azure")
    } else if name.contains("oracle") || name == "public_ip_ranges.json" {
        found(Format::Oracle, "oracle-cloud")
    } else if name.contains("github") || name == "meta" || name == "meta.json" {
        found(Format::GitHub, "github")
    } else if name.contains("fastly") || name.starts_with("public-ip-list") {
        found(Format::Fastly, "fastly")
    } else if name.contains("cloudflare") || name.starts_with("ips-v") {
        found(Format::CidrList, "cloudflare")
    } else if name.contains("akamai") {
        found(Format::CidrList, "akamai")
    } else if name.contains("zscaler") {
        found(Format::Zscaler, "zscaler")
    } else if name.ends_with(".csv") || name.contains("geofeed") || name.contains("linode") {
        let publisher = name
            .split(['.', '-', '_'])
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("geofeed");
        found(Format::Geofeed, publisher)
    } else {
        None
    }
}

/// Reads a prefix; a host address written without a length is its own /32 or /128.
pub(super) fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("`{text}` is not a CIDR prefix"))
}
