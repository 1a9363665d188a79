//! `[geo.update]`, validated: the sources `douane geodb update` rebuilds the country and
//! ASN databases from, and how much a new database may shrink.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::geo::DbKind;

use super::raw::FileUpdate;

/// How a source file is laid out. One more kind of source is one more variant here and one
/// more arm in `update::build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// A MaxMind-format database, used as it is (DB-IP lite, ip-location-db).
    Mmdb,
    /// The same, gzip-compressed (DB-IP's `.mmdb.gz` downloads).
    MmdbGz,
    /// MaxMind's download format: a `.tar.gz` holding `GeoLite2-…_DATE/….mmdb`.
    MaxmindTarGz,
    /// `first_ip,last_ip,country_code` ranges (imported like `geodb import`).
    CountryCsv,
    /// `first_ip,last_ip,asn,organisation` ranges (RouteViews/NRO, the shipped ASN data).
    AsnCsv,
}

impl SourceFormat {
    pub const NAMES: &'static str = "mmdb, mmdb-gz, maxmind-tar-gz, country-csv, asn-csv";

    pub fn by_name(name: &str) -> Option<SourceFormat> {
        Some(match name {
            "mmdb" => SourceFormat::Mmdb,
            "mmdb-gz" => SourceFormat::MmdbGz,
            "maxmind-tar-gz" => SourceFormat::MaxmindTarGz,
            "country-csv" => SourceFormat::CountryCsv,
            "asn-csv" => SourceFormat::AsnCsv,
            _ => return None,
        })
    }

    /// CSV sources are ranges that several files add up to one database.
    pub fn is_csv(self) -> bool {
        matches!(self, SourceFormat::CountryCsv | SourceFormat::AsnCsv)
    }
}

/// One source file of a database.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSource {
    pub database: DbKind,
    pub format: SourceFormat,
    pub url: Option<String>,
    /// Its name in a `--from DIR` bundle.
    pub file: String,
    pub license_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateSettings {
    /// A new database with fewer networks than this share of the one in place is refused.
    pub min_size_ratio: f64,
    pub sources: Vec<DataSource>,
}

pub const DEFAULT_MIN_SIZE_RATIO: f64 = 0.8;

impl Default for UpdateSettings {
    /// The shipped recipe: the ip-location-db files of `data/NOTICE`, from a bundle.
    fn default() -> Self {
        let source = |database, format, file: &str| DataSource {
            database,
            format,
            url: None,
            file: file.into(),
            license_key_file: None,
        };
        UpdateSettings {
            min_size_ratio: DEFAULT_MIN_SIZE_RATIO,
            sources: vec![
                source(
                    DbKind::Country,
                    SourceFormat::Mmdb,
                    "geo-whois-asn-country.mmdb",
                ),
                source(DbKind::Asn, SourceFormat::AsnCsv, "asn-ipv4.csv"),
                source(DbKind::Asn, SourceFormat::AsnCsv, "asn-ipv6.csv"),
            ],
        }
    }
}

/// Validates `[geo.update]`; each error goes to `error` with the span it is about.
pub fn validate(
    raw: &FileUpdate,
    mut error: impl FnMut(Range<usize>, String),
    base: &Path,
) -> UpdateSettings {
    let defaults = UpdateSettings::default();
    let min_size_ratio = match &raw.min_size_ratio {
        None => defaults.min_size_ratio,
        Some(r) => {
            let v = *r.get_ref();
            if !(0.0..=1.0).contains(&v) {
                error(
                    r.span(),
                    format!("`min_size_ratio` is a share from 0.0 (no check) to 1.0, not {v}"),
                );
            }
            v
        }
    };
    if raw.source.is_empty() {
        return UpdateSettings {
            min_size_ratio,
            ..defaults
        };
    }
    let mut sources = Vec::new();
    for s in &raw.source {
        let database = match s.database.get_ref().as_str() {
            "country" => DbKind::Country,
            "asn" => DbKind::Asn,
            other => {
                error(
                    s.database.span(),
                    format!("`{other}`: a source's `database` is `country` or `asn`"),
                );
                continue;
            }
        };
        let Some(format) = SourceFormat::by_name(s.format.get_ref()) else {
            error(
                s.format.span(),
                format!(
                    "`{}` is not a source format; formats are {}",
                    s.format.get_ref(),
                    SourceFormat::NAMES
                ),
            );
            continue;
        };
        if matches!(
            (database, format),
            (DbKind::Country, SourceFormat::AsnCsv) | (DbKind::Asn, SourceFormat::CountryCsv)
        ) {
            error(
                s.format.span(),
                format!(
                    "format `{}` cannot build the {database} database",
                    s.format.get_ref()
                ),
            );
            continue;
        }
        let url = s.url.as_ref().map(|u| u.get_ref().clone());
        if let Some(u) = &s.url {
            if !(u.get_ref().starts_with("https://") || u.get_ref().starts_with("http://")) {
                error(
                    u.span(),
                    "a source `url` starts with https:// or http://".into(),
                );
            }
        }
        let file = match (&s.file, &url) {
            (Some(f), _) => f.get_ref().clone(),
            (None, Some(u)) => last_segment(u),
            (None, None) => {
                error(
                    s.database.span(),
                    "a source needs a `url`, a `file` (its name in the --from bundle), or both"
                        .into(),
                );
                continue;
            }
        };
        if file.is_empty() || file.contains('/') {
            let at = s.file.as_ref().map_or(s.database.span(), |f| f.span());
            error(
                at,
                format!("`{file}` is not a plain file name for the --from bundle; set `file`"),
            );
            continue;
        }
        let license_key_file = s.license_key_file.as_ref().map(|p| {
            let p = p.get_ref();
            if p.is_absolute() || base.as_os_str().is_empty() {
                p.clone()
            } else {
                base.join(p)
            }
        });
        if url.as_deref().is_some_and(|u| u.contains("{license_key}")) && license_key_file.is_none()
        {
            let at = s.url.as_ref().map_or(s.database.span(), |u| u.span());
            error(
                at,
                "the url names `{license_key}`: give `license_key_file`".into(),
            );
        }
        sources.push(DataSource {
            database,
            format,
            url,
            file,
            license_key_file,
        });
    }
    UpdateSettings {
        min_size_ratio,
        sources,
    }
}

/// `https://host/path/GeoLite2.tar.gz?x=1` → `GeoLite2.tar.gz`.
fn last_segment(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let after_host = path.splitn(4, '/').nth(3).unwrap_or_default();
    after_host.rsplit('/').next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> crate::diag::Errors {
        crate::config::Config::parse(&crate::diag::SourceFile::new(
            "/etc/douane/douane.toml",
            text,
        ))
        .unwrap_err()
    }

    #[test]
    fn sources_are_validated_all_at_once() {
        let err = errors(
            r#"[geo.update]
min_size_ratio = 1.5
[[geo.update.source]]
database = "city"
format = "mmdb"
file = "x.mmdb"
[[geo.update.source]]
database = "asn"
format = "zip"
file = "x.zip"
[[geo.update.source]]
database = "country"
format = "asn-csv"
file = "x.csv"
[[geo.update.source]]
database = "country"
format = "maxmind-tar-gz"
url = "https://download.example/x?license_key={license_key}"
"#,
        );
        let lines: Vec<usize> = err.0.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 4, 9, 13, 18], "{err}");
        assert!(err.0[4].message.contains("license_key_file"), "{err}");
        assert!(err.0[2].message.contains("mmdb, mmdb-gz"), "{err}");
    }

    #[test]
    fn no_source_is_the_shipped_recipe() {
        let c = crate::config::Config::parse(&crate::diag::SourceFile::new(
            "/etc/douane/douane.toml",
            "[geo.update]
min_size_ratio = 0.5
",
        ))
        .unwrap();
        assert_eq!(c.geo.update.min_size_ratio, 0.5);
        assert_eq!(c.geo.update.sources, UpdateSettings::default().sources);
    }

    #[test]
    fn file_names_from_urls() {
        assert_eq!(
            last_segment(
                "https://download.example/app/geoip_download?edition_id=GeoLite2-ASN&suffix=tar.gz"
            ),
            "geoip_download"
        );
        assert_eq!(last_segment("http://127.0.0.1:8080/a/b.mmdb"), "b.mmdb");
        assert_eq!(last_segment("http://127.0.0.1:8080"), "");
    }
}
