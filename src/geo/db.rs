//! A MaxMind-format database (country or ASN) read into memory, with its metadata.
//!
//! The file is read into a `Vec<u8>`, not memory-mapped. A mapped file that is rewritten
//! or truncated in place (a careless `cp` over it, a download tool that does not rename)
//! changes under the reader, and a truncation turns the next page access into SIGBUS: the
//! whole proxy dies. Read into memory, a database is a private immutable copy: an update
//! is a new file read aside, validated, and swapped in whole (see `reload`), and the old
//! copy lives until the last request holding it ends. The cost is the file's size in RAM
//! (about 8 + 10 MB for the shipped data) and a copy at load time; a lookup is the same
//! walk over the same bytes either way.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maxminddb::{PathElement, Reader};
use serde::Serialize;
use time::OffsetDateTime;

use super::asn_table::{AsnEntry, AsnRecord, AsnTable};
use crate::country::Country;

/// What a database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DbKind {
    /// Address → country (GeoIP2/GeoLite2 Country or City, DB-IP country, ip-location-db).
    Country,
    /// Address → autonomous system number and organisation.
    Asn,
}

impl DbKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DbKind::Country => "country",
            DbKind::Asn => "asn",
        }
    }
}

impl fmt::Display for DbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How records are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Schema {
    /// MaxMind GeoIP2/GeoLite2 field names (also DB-IP's and douane's own imports):
    /// `country.iso_code`; `autonomous_system_number`, `autonomous_system_organization`.
    #[serde(rename = "geoip2")]
    GeoIp2,
    /// The shipped ip-location-db country data: a flat `country_code`.
    CountryCode,
}

impl Schema {
    pub fn as_str(self) -> &'static str {
        match self {
            Schema::GeoIp2 => "geoip2",
            Schema::CountryCode => "country_code",
        }
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a database is, read from its metadata (for `geodb info`, `check` and the metrics).
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseInfo {
    pub path: PathBuf,
    pub kind: DbKind,
    pub schema: Schema,
    /// The metadata's `database_type`, e.g. `GeoLite2-Country`.
    pub database_type: String,
    /// Build time, seconds since the Unix epoch.
    pub build_epoch: u64,
    /// Build time; the epoch itself if the metadata holds an impossible date.
    #[serde(with = "time::serde::rfc3339")]
    pub build_time: OffsetDateTime,
    /// File size in bytes.
    pub size: u64,
    pub node_count: u32,
    pub record_size: u16,
    /// 4 or 6.
    pub ip_version: u16,
    /// The English description, if the metadata has one.
    pub description: Option<String>,
}

/// A database read into memory. Lookups never fail: a record that cannot be read is no
/// answer, and the classification says "unknown".
pub struct GeoDb {
    pub info: DatabaseInfo,
    reader: Reader<Vec<u8>>,
    /// An ASN database's records, decoded at load (empty for a country database).
    asns: AsnTable,
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb").field("info", &self.info).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GeoDbError {
    #[error("{}: cannot read database: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

const COUNTRY_ISO: [PathElement<'static>; 2] =
    [PathElement::Key("country"), PathElement::Key("iso_code")];
const COUNTRY_CODE: [PathElement<'static>; 1] = [PathElement::Key("country_code")];

impl GeoDb {
    /// Reads and validates a database file; the error names the path.
    pub fn open(path: &Path) -> Result<Self, GeoDbError> {
        let bytes = std::fs::read(path).map_err(|source| GeoDbError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(bytes, path)
    }

    /// Builds a database from bytes; `path` only labels errors and [`DatabaseInfo`].
    pub fn from_bytes(bytes: Vec<u8>, path: impl Into<PathBuf>) -> Result<Self, GeoDbError> {
        let path = path.into();
        let invalid = |message: String| GeoDbError::Invalid {
            path: path.clone(),
            message,
        };
        if bytes.is_empty() {
            return Err(invalid(
                "the file is empty, not a MaxMind database (.mmdb)".into(),
            ));
        }
        let size = bytes.len() as u64;
        let reader = Reader::from_source(bytes)
            .map_err(|e| invalid(format!("not a valid MaxMind database (.mmdb): {e}")))?;
        let meta = reader.metadata();
        let database_type = meta.database_type.clone();
        let kind = detect_kind(&database_type).ok_or_else(|| {
            invalid(format!(
                "cannot tell whether database type `{database_type}` holds countries or \
                 autonomous systems; expected a type naming `Country`, `City` or `ASN`"
            ))
        })?;
        let schema = match kind {
            DbKind::Asn => Schema::GeoIp2,
            DbKind::Country => detect_country_schema(&reader, &database_type),
        };
        let build_time = i64::try_from(meta.build_epoch)
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let info = DatabaseInfo {
            path: path.clone(),
            kind,
            schema,
            database_type,
            build_epoch: meta.build_epoch,
            build_time,
            size,
            node_count: meta.node_count,
            record_size: meta.record_size,
            ip_version: meta.ip_version,
            description: meta.description.get("en").cloned(),
        };
        let mut db = GeoDb {
            info,
            reader,
            asns: AsnTable::default(),
        };
        db.probe().map_err(invalid)?;
        if kind == DbKind::Asn {
            db.asns = AsnTable::build(&db.reader);
        }
        Ok(db)
    }

    /// Walks the whole search tree and data section (slow: for `douane check` and
    /// `geodb info`, not for every load).
    pub fn verify(&self) -> Result<(), GeoDbError> {
        self.reader.verify().map_err(|e| GeoDbError::Invalid {
            path: self.info.path.clone(),
            message: format!("database failed verification: {e}"),
        })
    }

    /// A few lookups at load time, so that a file whose tree or data section is cut short
    /// is refused now rather than answering "unknown" forever.
    fn probe(&self) -> Result<(), String> {
        let probes: [IpAddr; 4] = [
            IpAddr::from([1, 1, 1, 1]),
            IpAddr::from([8, 8, 8, 8]),
            IpAddr::from([193, 51, 224, 1]),
            IpAddr::from([0x2a01, 0xe0a, 0, 0, 0, 0, 0, 1]),
        ];
        for ip in probes {
            if ip.is_ipv6() && self.info.ip_version == 4 {
                continue;
            }
            let result = self
                .reader
                .lookup(ip)
                .map_err(|e| format!("lookup of {ip} failed, the file is damaged: {e}"))?;
            let decoded = match self.info.kind {
                DbKind::Asn => result.decode::<AsnRecord<'_>>().map(|_| ()),
                DbKind::Country => result.decode::<serde::de::IgnoredAny>().map(|_| ()),
            };
            decoded.map_err(|e| format!("record for {ip} is damaged: {e}"))?;
        }
        Ok(())
    }

    /// The country of `ip`, if the database places it in an assigned ISO country.
    pub fn country(&self, ip: IpAddr) -> Option<Country> {
        let result = self.reader.lookup(ip).ok()?;
        let path: &[PathElement<'_>] = match self.info.schema {
            Schema::GeoIp2 => &COUNTRY_ISO,
            Schema::CountryCode => &COUNTRY_CODE,
        };
        let code: &str = result.decode_path(path).ok()??;
        Country::from_database(code)
    }

    /// The autonomous system of `ip` and its organisation, shared (no copy): the record
    /// decoded at load, or decoded now when the walk at load did not reach it.
    #[inline]
    pub fn autonomous_system(&self, ip: IpAddr) -> Option<AsnEntry> {
        let result = self.reader.lookup(ip).ok()?;
        if let Some(entry) = result.offset().and_then(|o| self.asns.get(o)) {
            return Some(entry);
        }
        let record: AsnRecord<'_> = result.decode().ok()??;
        Some(AsnEntry {
            asn: record.autonomous_system_number?,
            org: record.autonomous_system_organization.map(Arc::from),
        })
    }

    /// How many ASN records were decoded at load (0 for a country database).
    pub fn decoded_asn_records(&self) -> usize {
        self.asns.len()
    }

    /// About how many heap bytes those decoded records take.
    pub fn decoded_asn_bytes(&self) -> usize {
        self.asns.heap_bytes()
    }

    /// The autonomous system of `ip` and its organisation name, borrowed from the database.
    pub fn asn(&self, ip: IpAddr) -> Option<(u32, Option<&str>)> {
        let result = self.reader.lookup(ip).ok()?;
        let record: AsnRecord<'_> = result.decode().ok()??;
        Some((
            record.autonomous_system_number?,
            record.autonomous_system_organization,
        ))
    }
}

impl GeoDb {
    /// Calls `f` with every network of an ASN database: its first address, prefix length,
    /// ASN and organisation. (For `douane registry gaps`; not on the request path.)
    pub fn for_each_asn_block(
        &self,
        mut f: impl FnMut(IpAddr, u8, u32, Option<&str>),
    ) -> Result<(), GeoDbError> {
        let invalid = |e: maxminddb::MaxMindDbError| GeoDbError::Invalid {
            path: self.info.path.clone(),
            message: e.to_string(),
        };
        for item in self.reader.networks(Default::default()).map_err(invalid)? {
            let result = item.map_err(invalid)?;
            let net = result.network().map_err(invalid)?;
            if let Ok(Some(record)) = result.decode::<AsnRecord<'_>>() {
                if let Some(asn) = record.autonomous_system_number {
                    f(
                        net.ip(),
                        net.prefix(),
                        asn,
                        record.autonomous_system_organization,
                    );
                }
            }
        }
        Ok(())
    }
}

fn detect_kind(database_type: &str) -> Option<DbKind> {
    // Country first: ip-location-db names its country data after its method
    // (`geo-whois-asn-country`), which mentions ASNs.
    let t = database_type.to_ascii_lowercase();
    if t.contains("country") || t.contains("city") || t.contains("enterprise") {
        Some(DbKind::Country)
    } else if t.contains("asn") || t.contains("isp") {
        Some(DbKind::Asn)
    } else {
        None
    }
}

/// MaxMind and DB-IP names mean the GeoIP2 layout; otherwise the first records decide.
fn detect_country_schema(reader: &Reader<Vec<u8>>, database_type: &str) -> Schema {
    let t = database_type.to_ascii_lowercase();
    if t.starts_with("geoip") || t.starts_with("geolite") || t.starts_with("dbip") {
        return Schema::GeoIp2;
    }
    let Ok(networks) = reader.networks(Default::default()) else {
        return Schema::GeoIp2;
    };
    for item in networks.take(64) {
        let Ok(result) = item else { break };
        if let Ok(Some(_)) = result.decode_path::<&str>(&COUNTRY_CODE) {
            return Schema::CountryCode;
        }
        if let Ok(Some(_)) = result.decode_path::<&str>(&COUNTRY_ISO) {
            return Schema::GeoIp2;
        }
    }
    Schema::GeoIp2
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmdb_writer::{Value, Writer};

    fn country_db(record: Value, database_type: &str) -> Vec<u8> {
        let mut w = Writer::new(database_type);
        w.insert_value("81.0.0.0/8".parse::<ipnet::IpNet>().unwrap(), record)
            .unwrap();
        w.to_bytes().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn reads_both_country_schemas() {
        let geoip = country_db(
            Value::map([("country", Value::map([("iso_code", Value::from("FR"))]))]),
            "GeoLite2-Country",
        );
        let db = GeoDb::from_bytes(geoip, "geolite.mmdb").unwrap();
        assert_eq!(
            (db.info.kind, db.info.schema),
            (DbKind::Country, Schema::GeoIp2)
        );
        assert_eq!(db.country(ip("81.2.3.4")), Country::parse("FR").ok());
        assert_eq!(db.country(ip("82.2.3.4")), None);
        assert_eq!(db.country(ip("::ffff:81.2.3.4")), Country::parse("FR").ok());

        let flat = country_db(
            Value::map([("country_code", Value::from("DE"))]),
            "some country ip db",
        );
        let db = GeoDb::from_bytes(flat, "flat.mmdb").unwrap();
        assert_eq!(
            db.info.schema,
            Schema::CountryCode,
            "detected from the records"
        );
        assert_eq!(db.country(ip("81.2.3.4")), Country::parse("DE").ok());
    }

    #[test]
    fn unassigned_and_legacy_codes() {
        let db = GeoDb::from_bytes(
            country_db(
                Value::map([("country_code", Value::from("EU"))]),
                "x-Country",
            ),
            "eu.mmdb",
        )
        .unwrap();
        assert_eq!(db.country(ip("81.0.0.1")), None, "EU is not a country");
        let db = GeoDb::from_bytes(
            country_db(
                Value::map([("country_code", Value::from("FX"))]),
                "x-Country",
            ),
            "fx.mmdb",
        )
        .unwrap();
        assert_eq!(db.country(ip("81.0.0.1")), Country::parse("FR").ok());
    }

    #[test]
    fn reads_asn_records() {
        let mut w = Writer::new("GeoLite2-ASN");
        w.insert_value(
            "15.236.0.0/15".parse::<ipnet::IpNet>().unwrap(),
            Value::map([
                ("autonomous_system_number", Value::from(16509u32)),
                (
                    "autonomous_system_organization",
                    Value::from("Amazon.com, Inc."),
                ),
            ]),
        )
        .unwrap();
        w.insert_value(
            "2a01:4f8::/32".parse::<ipnet::IpNet>().unwrap(),
            Value::map([("autonomous_system_number", Value::from(24940u32))]),
        )
        .unwrap();
        let db = GeoDb::from_bytes(w.to_bytes().unwrap(), "asn.mmdb").unwrap();
        assert_eq!(db.info.kind, DbKind::Asn);
        assert_eq!(
            db.asn(ip("15.236.0.1")),
            Some((16509, Some("Amazon.com, Inc.")))
        );
        assert_eq!(db.asn(ip("2a01:4f8::1")), Some((24940, None)));
        assert_eq!(db.asn(ip("16.0.0.1")), None);
        // The records decoded at load answer the same, without a copy per lookup.
        assert_eq!(db.decoded_asn_records(), 2);
        for addr in [
            "15.236.0.1",
            "15.237.255.254",
            "2a01:4f8::1",
            "16.0.0.1",
            "::1",
        ] {
            let shared = db.autonomous_system(ip(addr));
            let decoded = db.asn(ip(addr));
            assert_eq!(
                shared.as_ref().map(|e| (e.asn, e.org.as_deref())),
                decoded,
                "{addr}"
            );
        }
        let a = db.autonomous_system(ip("15.236.0.1")).unwrap().org.unwrap();
        let b = db.autonomous_system(ip("15.237.0.9")).unwrap().org.unwrap();
        assert!(Arc::ptr_eq(&a, &b), "one organisation string, shared");
    }

    #[test]
    fn a_damaged_asn_database_loads_or_fails_but_never_hangs() {
        let mut w = Writer::new("GeoLite2-ASN");
        for (net, asn, org) in [
            ("15.236.0.0/15", 16509u32, "Amazon.com, Inc."),
            ("51.75.0.0/16", 16276, "OVH SAS"),
            ("2a01:4f8::/32", 24940, "Hetzner Online GmbH"),
        ] {
            w.insert_value(
                net.parse::<ipnet::IpNet>().unwrap(),
                Value::map([
                    ("autonomous_system_number", Value::from(asn)),
                    ("autonomous_system_organization", Value::from(org)),
                ]),
            )
            .unwrap();
        }
        let good = w.to_bytes().unwrap();
        for i in 0..good.len() {
            let mut bytes = good.clone();
            bytes[i] ^= 0xff;
            if let Ok(db) = GeoDb::from_bytes(bytes, "flip.mmdb") {
                assert!(db.decoded_asn_records() <= 2 * (db.info.node_count as usize + 1));
                for addr in ["15.236.0.1", "51.75.0.1", "2a01:4f8::1", "8.8.8.8"] {
                    let _ = db.autonomous_system(ip(addr));
                }
            }
        }
    }

    #[test]
    fn metadata_is_reported() {
        let bytes = country_db(
            Value::map([("country_code", Value::from("FR"))]),
            "geo-whois-asn-country",
        );
        let size = bytes.len() as u64;
        let db = GeoDb::from_bytes(bytes, "c.mmdb").unwrap();
        assert_eq!(db.info.size, size);
        assert_eq!(db.info.ip_version, 6);
        assert!(db.info.node_count > 0);
        assert!(db.info.build_time.year() >= 2024);
        assert_eq!(db.info.path, PathBuf::from("c.mmdb"));
    }

    #[test]
    fn damaged_files_are_errors_naming_the_path() {
        let good = country_db(
            Value::map([("country_code", Value::from("FR"))]),
            "x-Country",
        );
        for (label, bytes) in [
            ("empty", Vec::new()),
            ("garbage", b"this is not a database at all".repeat(10)),
            ("head only", good[..good.len() / 2].to_vec()),
            ("tail only", good[good.len() / 2..].to_vec()),
        ] {
            let err = GeoDb::from_bytes(bytes, format!("/x/{label}.mmdb")).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("/x/{label}.mmdb: ")),
                "{label}: {err}"
            );
        }
        // Every truncation and every single-byte flip: an error or a database, never a panic.
        for cut in 0..good.len() {
            let _ = GeoDb::from_bytes(good[..cut].to_vec(), "cut.mmdb");
        }
        for i in 0..good.len() {
            let mut bytes = good.clone();
            bytes[i] ^= 0xff;
            if let Ok(db) = GeoDb::from_bytes(bytes, "flip.mmdb") {
                let _ = db.country(ip("81.1.1.1"));
                let _ = db.asn(ip("81.1.1.1"));
            }
        }
    }

    #[test]
    fn kinds_from_database_types() {
        for (t, kind) in [
            ("GeoLite2-Country", Some(DbKind::Country)),
            ("GeoIP2-City", Some(DbKind::Country)),
            ("DBIP-Country-Lite", Some(DbKind::Country)),
            ("geo-whois-asn-country", Some(DbKind::Country)),
            ("country ipvAll", Some(DbKind::Country)),
            ("GeoLite2-ASN", Some(DbKind::Asn)),
            ("DBIP-ASN-Lite (compat=GeoLite2-ASN)", Some(DbKind::Asn)),
            ("GeoIP2-ISP", Some(DbKind::Asn)),
            ("douane-ASN", Some(DbKind::Asn)),
            ("Mystery-DB", None),
        ] {
            assert_eq!(detect_kind(t), kind, "{t}");
        }
    }

    #[test]
    fn unknown_database_type_is_refused() {
        let bytes = country_db(Value::map([("x", Value::from(1u32))]), "Mystery-DB");
        let err = GeoDb::from_bytes(bytes, "m.mmdb").unwrap_err().to_string();
        assert!(err.contains("Mystery-DB"), "{err}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = GeoDb::open(Path::new("/nonexistent/geo.mmdb")).unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/geo.mmdb: "),
            "{err}"
        );
    }
}
