//! `douane geodb import`: CSV ranges (`first_ip,last_ip,asn,organisation` or
//! `first_ip,last_ip,country_code`) into an `.mmdb`, written atomically.
//!
//! Records use the GeoIP2/GeoLite2 field names (`autonomous_system_number`,
//! `autonomous_system_organization`; `country.iso_code`), so any MaxMind reader, and
//! douane itself, reads the result like a GeoLite2 file.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};
use mmdb_writer::{Value, Writer};
use serde::Serialize;

use super::db::{DbKind, GeoDb, GeoDbError};
use crate::country::Country;

/// What to import and how to label the result.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub kind: DbKind,
    /// Defaults to `douane-ASN` / `douane-Country` (names that say the kind, so that
    /// [`GeoDb`] recognises it).
    pub database_type: Option<String>,
    /// English description stored in the metadata (e.g. the data's sources).
    pub description: Option<String>,
    /// Build time stored in the metadata; defaults to now. Set it to the data's date so
    /// that "database older than N days" warnings tell the truth, and output is
    /// reproducible.
    pub build_time: Option<SystemTime>,
}

impl ImportOptions {
    pub fn new(kind: DbKind) -> Self {
        ImportOptions {
            kind,
            database_type: None,
            description: None,
            build_time: None,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    pub output: PathBuf,
    pub kind: DbKind,
    pub database_type: String,
    /// Data lines read (ranges).
    pub ranges: u64,
    /// CIDR blocks written (ranges split on bit boundaries).
    pub networks: u64,
    /// Blocks left out because the IPv6 tree reserves them for IPv4 (IPv4-mapped
    /// `::ffff:0:0/96`, Teredo `2001::/32`, 6to4 `2002::/16`, and the IPv4 subtree `::/96`
    /// itself): a lookup there reaches the IPv4 data instead.
    pub skipped_aliased: u64,
    /// Country lines whose code is not an assigned ISO 3166-1 country (`EU`, `ZZ`, …).
    pub skipped_unassigned: u64,
    /// Size of the file written, in bytes.
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Line {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("no input files: name at least one CSV file")]
    NoInput,
    #[error("cannot build the database: {0}")]
    Build(String),
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the database built does not read back: {0}")]
    Verify(#[from] GeoDbError),
}

/// Imports CSV ranges into `output` with default options (build time: now).
pub fn import_csv(
    inputs: &[PathBuf],
    output: &Path,
    kind: DbKind,
) -> Result<ImportSummary, ImportError> {
    import_csv_with(inputs, output, &ImportOptions::new(kind))
}

/// Imports CSV ranges into `output`. Later lines win where ranges overlap. The file is
/// written to a temporary name beside `output`, read back, then renamed over it: a running
/// douane (or anyone else) sees the old file or the new one, never half of one.
pub fn import_csv_with(
    inputs: &[PathBuf],
    output: &Path,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    if inputs.is_empty() {
        return Err(ImportError::NoInput);
    }
    let database_type = options.database_type.clone().unwrap_or_else(|| {
        match options.kind {
            DbKind::Asn => "douane-ASN",
            DbKind::Country => "douane-Country",
        }
        .to_owned()
    });
    let description = options
        .description
        .clone()
        .unwrap_or_else(|| format!("imported by douane from {} CSV file(s)", inputs.len()));
    let mut writer = Writer::builder(database_type.clone())
        .description(&[("en", description.as_str())])
        .maybe_build_epoch(options.build_time)
        .build();
    let mut summary = ImportSummary {
        output: output.to_owned(),
        kind: options.kind,
        database_type,
        ranges: 0,
        networks: 0,
        skipped_aliased: 0,
        skipped_unassigned: 0,
        size: 0,
    };
    for input in inputs {
        import_file(input, options.kind, &mut writer, &mut summary)?;
    }
    let bytes = writer
        .to_bytes()
        .map_err(|e| ImportError::Build(e.to_string()))?;
    summary.size = bytes.len() as u64;
    let tmp = temp_path(output);
    let written = write_file(&tmp, &bytes);
    let checked = written.and_then(|()| {
        GeoDb::from_bytes(bytes, output).map_err(ImportError::from)?;
        std::fs::rename(&tmp, output).map_err(|source| ImportError::Write {
            path: output.to_owned(),
            source,
        })
    });
    if checked.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    checked.map(|()| summary)
}

fn temp_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map_or_else(|| "geo.mmdb".into(), |n| n.to_string_lossy().into_owned());
    output.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    let err = |source| ImportError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = File::create(path).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}

fn import_file(
    path: &Path,
    kind: DbKind,
    writer: &mut Writer,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    let file = File::open(path).map_err(|source| ImportError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut seen_data = false;
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line_no = index as u64 + 1;
        let at = |message: String| ImportError::Line {
            path: path.to_owned(),
            line: line_no,
            message,
        };
        let line = line.map_err(|e| at(format!("cannot read line: {e}")))?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_csv(line).map_err(&at)?;
        let first_field = fields.first().map(|f| f.trim()).unwrap_or_default();
        let Ok(first) = first_field.parse::<IpAddr>() else {
            if !seen_data && index == 0 {
                continue; // a header line
            }
            return Err(at(format!("`{first_field}` is not an IP address")));
        };
        seen_data = true;
        let (last, value) = parse_record(kind, &fields).map_err(&at)?;
        let Some(value) = value else {
            summary.skipped_unassigned += 1;
            continue;
        };
        summary.ranges += 1;
        insert_range(writer, first, last, value, summary).map_err(at)?;
    }
    Ok(())
}

/// The last address and the record of one line; `None` for a country code that is not an
/// assigned country.
fn parse_record(kind: DbKind, fields: &[String]) -> Result<(IpAddr, Option<Value>), String> {
    let expected = match kind {
        DbKind::Asn => "first_ip,last_ip,asn,organisation",
        DbKind::Country => "first_ip,last_ip,country_code",
    };
    let want = match kind {
        DbKind::Asn => 3..=4,
        DbKind::Country => 3..=3,
    };
    if !want.contains(&fields.len()) {
        return Err(format!(
            "expected {expected}, found {} field(s)",
            fields.len()
        ));
    }
    let last_field = fields[1].trim();
    let last: IpAddr = last_field
        .parse()
        .map_err(|_| format!("`{last_field}` is not an IP address"))?;
    let value = match kind {
        DbKind::Asn => {
            let raw = fields[2].trim();
            let digits = raw
                .strip_prefix("AS")
                .or_else(|| raw.strip_prefix("as"))
                .unwrap_or(raw);
            let asn: u32 = digits
                .parse()
                .map_err(|_| format!("`{raw}` is not an AS number (e.g. 16276 or AS16276)"))?;
            let org = fields.get(3).map(|s| s.trim()).unwrap_or_default();
            let mut entries = vec![("autonomous_system_number", Value::from(asn))];
            if !org.is_empty() {
                entries.push(("autonomous_system_organization", Value::from(org)));
            }
            Some(Value::map(entries))
        }
        DbKind::Country => {
            let code = fields[2].trim();
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(format!(
                    "`{code}` is not a two-letter country code (e.g. FR)"
                ));
            }
            Country::from_database(code).map(|c| {
                Value::map([(
                    "country",
                    Value::map([("iso_code", Value::from(c.as_str()))]),
                )])
            })
        }
    };
    Ok((last, value))
}

/// Networks of the IPv6 tree that hold or alias the IPv4 data.
fn reserved_for_ipv4() -> [IpNet; 4] {
    [
        IpNet::V6("::/96".parse().unwrap_or_default()),
        IpNet::V6("::ffff:0:0/96".parse().unwrap_or_default()),
        IpNet::V6("2001::/32".parse().unwrap_or_default()),
        IpNet::V6("2002::/16".parse().unwrap_or_default()),
    ]
}

fn insert_range(
    writer: &mut Writer,
    first: IpAddr,
    last: IpAddr,
    value: Value,
    summary: &mut ImportSummary,
) -> Result<(), String> {
    let networks: Vec<IpNet> = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => {
            Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect()
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => {
            Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect()
        }
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
            return Err(format!("range {first} - {last} ends before it starts"))
        }
        _ => return Err(format!("range {first} - {last} mixes IPv4 and IPv6")),
    };
    let reserved = reserved_for_ipv4();
    for net in networks {
        if matches!(net, IpNet::V6(_))
            && reserved
                .iter()
                .any(|r| r.contains(&net) || (r == &reserved[0] && net.contains(r)))
        {
            summary.skipped_aliased += 1;
            continue;
        }
        writer
            .insert_value(net, value.clone())
            .map_err(|e| format!("cannot insert {net}: {e}"))?;
        summary.networks += 1;
    }
    Ok(())
}

/// Splits one CSV line (RFC 4180 quoting: `"a, b"`, `""` for a quote inside quotes).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::with_capacity(4);
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_field_start = true;
    while let Some(ch) = chars.next() {
        if quoted {
            if ch == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                    match chars.peek() {
                        None | Some(',') => {}
                        Some(other) => {
                            return Err(format!(
                                "unexpected `{other}` after a closing quote; write \"\" for a quote inside quotes"
                            ))
                        }
                    }
                }
            } else {
                field.push(ch);
            }
            continue;
        }
        match ch {
            '"' if at_field_start => {
                quoted = true;
                at_field_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            _ => {
                field.push(ch);
                at_field_start = false;
            }
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        let mut f = File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        path
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(
            split_csv(r#"1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc.""#).unwrap(),
            ["1.0.0.0", "1.0.0.255", "13335", "Cloudflare, Inc."]
        );
        assert_eq!(
            split_csv(r#"a,b,1,"LLC ""SPUTNIK""""#).unwrap(),
            ["a", "b", "1", "LLC \"SPUTNIK\""]
        );
        assert_eq!(split_csv("a,b,1,").unwrap(), ["a", "b", "1", ""]);
        assert!(split_csv(r#"a,b,1,"open"#).is_err());
        assert!(split_csv(r#"a,b,1,"x"y"#).is_err());
    }

    #[test]
    fn asn_ranges_become_a_readable_database() {
        let dir = tempfile::tempdir().unwrap();
        let v4 = write(
            dir.path(),
            "v4.csv",
            "first_ip,last_ip,asn,organisation\n\
             15.236.0.0,15.240.255.255,16509,\"Amazon.com, Inc.\"\n\
             51.75.0.0,51.75.255.255,16276,OVH SAS\n\
             2.26.200.0,2.26.215.255,201907,\"LLC \"\"SPUTNIK\"\"\"\n",
        );
        let v6 = write(
            dir.path(),
            "v6.csv",
            "2001::,2001::ffff:ffff:ffff:ffff:ffff:ffff,6939,Hurricane Electric LLC\n\
             2001:41d0::,2001:41d0:ffff:ffff:ffff:ffff:ffff:ffff,16276,OVH SAS\n\
             2002::,2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff,1,six-to-four\n",
        );
        let out = dir.path().join("asn.mmdb");
        let summary = import_csv(&[v4, v6], &out, DbKind::Asn).unwrap();
        assert_eq!(summary.ranges, 6);
        assert_eq!(summary.skipped_aliased, 2, "{summary:?}");
        assert!(summary.networks >= 5);
        let db = GeoDb::open(&out).unwrap();
        assert_eq!(db.info.kind, DbKind::Asn);
        assert_eq!(db.info.size, summary.size);
        assert_eq!(
            db.asn(ip("15.237.1.1")),
            Some((16509, Some("Amazon.com, Inc.")))
        );
        assert_eq!(
            db.asn(ip("2.26.210.1")),
            Some((201907, Some("LLC \"SPUTNIK\"")))
        );
        assert_eq!(db.asn(ip("2001:41d0::1")), Some((16276, Some("OVH SAS"))));
        assert_eq!(db.asn(ip("15.241.0.1")), None);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn country_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let csv = write(
            dir.path(),
            "c.csv",
            "81.0.0.0,81.0.0.255,FR\n81.0.1.0,81.0.1.255,ZZ\n2a01::,2a01::ffff,de\n",
        );
        let out = dir.path().join("c.mmdb");
        let mut options = ImportOptions::new(DbKind::Country);
        let date = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_781_654_400);
        options.build_time = Some(date);
        let summary = import_csv_with(&[csv], &out, &options).unwrap();
        assert_eq!((summary.ranges, summary.skipped_unassigned), (2, 1));
        let db = GeoDb::open(&out).unwrap();
        assert_eq!(db.info.kind, DbKind::Country);
        assert_eq!(db.info.build_epoch, 1_781_654_400);
        assert_eq!(db.country(ip("81.0.0.7")), Country::parse("FR").ok());
        assert_eq!(db.country(ip("81.0.1.7")), None);
        assert_eq!(db.country(ip("2a01::5")), Country::parse("DE").ok());
    }

    #[test]
    fn errors_name_file_and_line_and_leave_the_old_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("asn.mmdb");
        std::fs::write(&out, b"previous").unwrap();
        let cases = [
            (
                "1.0.0.0,1.0.0.255,13335,x\n1.0.1.0,nope,1,y\n",
                ":2: `nope` is not an IP",
            ),
            ("1.0.0.0,1.0.0.255,ASX,x\n", ":1: `ASX` is not an AS number"),
            (
                "1.0.0.9,1.0.0.1,1,x\n",
                ":1: range 1.0.0.9 - 1.0.0.1 ends before it starts",
            ),
            ("1.0.0.0,::1,1,x\n", ":1: range 1.0.0.0 - ::1 mixes"),
            (
                "1.0.0.0,1.0.0.1\n",
                ":1: expected first_ip,last_ip,asn,organisation",
            ),
            (
                "1.0.0.0,1.0.0.1,1,x\nbad,1.0.0.1,1,x\n",
                ":2: `bad` is not an IP",
            ),
        ];
        for (text, want) in cases {
            let csv = write(dir.path(), "bad.csv", text);
            let err = import_csv(std::slice::from_ref(&csv), &out, DbKind::Asn)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&csv.display().to_string()) && err.contains(want),
                "{err} / {want}"
            );
        }
        assert_eq!(std::fs::read(&out).unwrap(), b"previous");
        let err = import_csv(&[dir.path().join("missing.csv")], &out, DbKind::Asn).unwrap_err();
        assert!(
            err.to_string().contains("missing.csv: cannot read"),
            "{err}"
        );
        let csv = write(dir.path(), "c.csv", "1.0.0.0,1.0.0.1,FRA\n");
        let err = import_csv(&[csv], &out, DbKind::Country).unwrap_err();
        assert!(
            err.to_string().contains(":1: `FRA` is not a two-letter"),
            "{err}"
        );
    }
}
