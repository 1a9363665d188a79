//! Builds the shipped databases in `data/` from the public sources (see `data/NOTICE`):
//! `data/asn.mmdb` from the ip-location-db ASN CSV ranges, and `data/country.mmdb` as a copy
//! of the ip-location-db country database.
//!
//! ```text
//! cargo run --example build_shipped_data -- ../shared/data data
//! ```

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use douane::geo::import::{import_csv_with, ImportOptions};
use douane::geo::{DbKind, GeoDb};

/// 2026-06-17T00:00:00Z, the build date of npm packages version 2.3.2026061719.
const DATA_DATE: u64 = 1_781_654_400;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let source = PathBuf::from(args.next().unwrap_or_else(|| "../shared/data".into()));
    let target = PathBuf::from(args.next().unwrap_or_else(|| "data".into()));
    std::fs::create_dir_all(&target)?;

    let mut options = ImportOptions::new(DbKind::Asn);
    options.database_type = Some("douane-ASN".into());
    options.description = Some(
        "IP to ASN from @ip-location-db/asn 2.3.2026061719 (RouteViews, NRO, DB-IP; CC BY 4.0)"
            .into(),
    );
    options.build_time = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(DATA_DATE));
    let inputs = [source.join("asn-ipv4.csv"), source.join("asn-ipv6.csv")];
    let summary = import_csv_with(&inputs, &target.join("asn.mmdb"), &options)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);

    let country = target.join("country.mmdb");
    // The source is read-only and `copy` keeps permissions: replace, do not overwrite.
    let _ = std::fs::remove_file(&country);
    std::fs::copy(source.join("geo-whois-asn-country.mmdb"), &country)?;
    for path in [country, target.join("asn.mmdb")] {
        let db = GeoDb::open(&path)?;
        println!("{}", serde_json::to_string_pretty(&db.info)?);
    }
    Ok(())
}
