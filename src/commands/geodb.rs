//! `douane geodb import | info`: build an `.mmdb` from CSV ranges, describe a database.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Exit;
use crate::cli::DbKindArg;
use crate::geo::db::DbKind;
use crate::geo::import::{import_csv_with, ImportOptions};
use crate::geo::GeoDb;

pub fn import(
    kind: DbKindArg,
    output: &Path,
    build_date: Option<&str>,
    csv: &[PathBuf],
) -> anyhow::Result<Exit> {
    let kind = match kind {
        DbKindArg::Asn => DbKind::Asn,
        DbKindArg::Country => DbKind::Country,
    };
    let mut options = ImportOptions::new(kind);
    if let Some(date) = build_date {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let date = time::Date::parse(date, format)
            .with_context(|| format!("--build-date `{date}` is not a date (YYYY-MM-DD)"))?;
        options.build_time = Some(date.midnight().assume_utc().into());
    }
    let summary = import_csv_with(csv, output, &options)?;
    println!(
        "wrote {} ({} database `{}`): {} ranges as {} networks, {} bytes",
        summary.output.display(),
        summary.kind,
        summary.database_type,
        summary.ranges,
        summary.networks,
        summary.size
    );
    if summary.skipped_aliased > 0 {
        println!(
            "skipped {} blocks inside the IPv6 aliases of IPv4 space (IPv4-mapped, Teredo 2001::/32, 6to4 2002::/16): lookups there read the IPv4 data",
            summary.skipped_aliased
        );
    }
    if summary.skipped_unassigned > 0 {
        println!(
            "skipped {} lines whose country code is not an assigned ISO 3166-1 code",
            summary.skipped_unassigned
        );
    }
    Ok(Exit::Success)
}

pub fn info(files: &[PathBuf]) -> anyhow::Result<Exit> {
    let mut failed = false;
    for path in files {
        match GeoDb::open(path) {
            Ok(db) => {
                let i = &db.info;
                let age = (time::OffsetDateTime::now_utc() - i.build_time).whole_days();
                println!("{}", path.display());
                println!("  kind           {} ({} schema)", i.kind, i.schema);
                println!("  database_type  {}", i.database_type);
                println!("  built          {} ({age} days ago)", i.build_time.date());
                println!(
                    "  size           {} bytes, {} nodes, record size {}, IPv{}",
                    i.size, i.node_count, i.record_size, i.ip_version
                );
                if let Some(d) = &i.description {
                    println!("  description    {d}");
                }
            }
            Err(e) => {
                eprintln!("douane: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { Exit::Failed } else { Exit::Success })
}
