//! `douane geodb import | info | update`: build an `.mmdb` from CSV ranges, describe a
//! database, rebuild the configured ones from their sources.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Exit;
use crate::cli::{DbKindArg, GeodbUpdateArgs};
use crate::commands::InvalidSetup;
use crate::config::Config;
use crate::geo::db::DbKind;
use crate::geo::import::{import_csv_with, ImportOptions};
use crate::geo::GeoDb;
use crate::update::{UpdateError, UpdateOptions};

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

/// `douane geodb update`: exit 0 when every database was rebuilt and swapped in, 1 when
/// one was refused (nothing was swapped), 3 for an invalid config.
pub fn update(args: &GeodbUpdateArgs) -> anyhow::Result<Exit> {
    let config = Config::load(&args.config.config).map_err(InvalidSetup)?;
    let options = UpdateOptions {
        from: args.from.clone(),
        dry_run: args.dry_run,
    };
    let updated = match crate::update::update(&config, &options) {
        Ok(updated) => updated,
        Err(e @ UpdateError::NothingToUpdate(_)) => {
            eprintln!("douane: {e}");
            return Ok(Exit::Invalid);
        }
        Err(e) => {
            eprintln!("douane: {e}");
            eprintln!("douane: nothing was swapped in: the databases in place keep serving");
            return Ok(Exit::Failed);
        }
    };
    for u in &updated {
        let verb = if args.dry_run {
            "checked (dry run, not swapped)"
        } else {
            "updated"
        };
        let before = u
            .old_records
            .map_or_else(|| "no previous file".to_owned(), |n| format!("{n} before"));
        println!(
            "{verb} {} ({} database `{}`): {} networks ({before}), {} bytes, from {}",
            u.path.display(),
            u.kind,
            u.database_type,
            u.records,
            u.size,
            u.sources.join(", ")
        );
    }
    if args.dry_run {
        return Ok(Exit::Success);
    }
    match args.reload_pid {
        Some(pid) => {
            let status = std::process::Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .context("running kill -HUP")?;
            if !status.success() {
                eprintln!("douane: could not signal process {pid}: reload it by hand (SIGHUP)");
                return Ok(Exit::Failed);
            }
            println!("sent SIGHUP to {pid}: it reloads the new databases");
        }
        None if config.reload.watch => println!(
            "a running douane with this config reloads them within {} ms (its file watch)",
            config.reload.poll_interval.as_millis()
        ),
        None => println!(
            "[reload] watch is off: reload the running douane (SIGHUP, `systemctl reload douane`)"
        ),
    }
    Ok(Exit::Success)
}
