//! `douane audit verify | report`: what an auditor runs on the block log.

use std::path::PathBuf;

use anyhow::Context;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::Exit;
use crate::audit::{report, verify_files, ReportFormat};
use crate::cli::ReportFormatArg;

pub fn verify(files: &[PathBuf]) -> Exit {
    // A mistyped path is a usage error, not a broken chain.
    if let Some(missing) = files.iter().find(|f| !f.exists()) {
        eprintln!("douane: {}: no such file or directory", missing.display());
        return Exit::Usage;
    }
    match verify_files(files) {
        Ok(summary) => {
            println!("{summary}");
            Exit::Success
        }
        Err(e) => {
            println!("audit chain BROKEN: {e}");
            Exit::Failed
        }
    }
}

pub fn run_report(
    files: &[PathBuf],
    from: Option<&str>,
    to: Option<&str>,
    format: ReportFormatArg,
) -> anyhow::Result<Exit> {
    let format = match format {
        ReportFormatArg::Text => ReportFormat::Text,
        ReportFormatArg::Csv => ReportFormat::Csv,
        ReportFormatArg::Json => ReportFormat::Json,
        ReportFormatArg::Html => ReportFormat::Html,
    };
    let from = from.map(parse_time).transpose().context("--from")?;
    let to = to.map(parse_time).transpose().context("--to")?;
    match report(files, from, to, format) {
        Ok(text) => {
            print!("{text}");
            Ok(Exit::Success)
        }
        Err(e) => {
            eprintln!("douane: no report: {e}");
            Ok(Exit::Failed)
        }
    }
}

/// RFC 3339, or a bare date meaning its midnight UTC.
fn parse_time(s: &str) -> anyhow::Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s, format)
        .with_context(|| format!("`{s}` is neither an RFC 3339 time nor a date YYYY-MM-DD"))?;
    Ok(date.midnight().assume_utc())
}
