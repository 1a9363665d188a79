//! `douane audit verify | report | inventory`: what an auditor runs on the block log.

use std::path::PathBuf;

use anyhow::Context;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::Exit;
use crate::audit::{report_with, verify_files, Lang, ReportFormat, ReportOptions};
use crate::cli::{LangArg, ReportFormatArg};

pub fn verify(files: &[PathBuf]) -> Exit {
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
    run_report_with(files, from, to, format, LangArg::Fr, None)
}

fn report_format(format: ReportFormatArg) -> ReportFormat {
    match format {
        ReportFormatArg::Text => ReportFormat::Text,
        ReportFormatArg::Csv => ReportFormat::Csv,
        ReportFormatArg::Json => ReportFormat::Json,
        ReportFormatArg::Html => ReportFormat::Html,
    }
}

fn lang(lang: LangArg) -> Lang {
    match lang {
        LangArg::Fr => Lang::Fr,
        LangArg::En => Lang::En,
    }
}

/// `douane audit report --lang … [--config …]`: with a config, the policy's exemptions
/// give the justification, ticket and expiry of each exemption used.
pub fn run_report_with(
    files: &[PathBuf],
    from: Option<&str>,
    to: Option<&str>,
    format: ReportFormatArg,
    language: LangArg,
    config: Option<&std::path::Path>,
) -> anyhow::Result<Exit> {
    let format = report_format(format);
    let from = from.map(parse_time).transpose().context("--from")?;
    let to = to.map(parse_time).transpose().context("--to")?;
    let exemptions = match config {
        Some(path) => super::load(path)?.1.policy.exemptions(),
        None => Vec::new(),
    };
    let options = ReportOptions {
        lang: lang(language),
        exemptions,
    };
    match report_with(files, from, to, format, &options) {
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

/// `douane audit inventory`: the SaaS in use over a period.
pub fn run_inventory(
    files: &[PathBuf],
    from: Option<&str>,
    to: Option<&str>,
    format: ReportFormatArg,
    language: LangArg,
) -> anyhow::Result<Exit> {
    let from = from.map(parse_time).transpose().context("--from")?;
    let to = to.map(parse_time).transpose().context("--to")?;
    match crate::audit::inventory::inventory(files, from, to, report_format(format), lang(language))
    {
        Ok(text) => {
            print!("{text}");
            Ok(Exit::Success)
        }
        Err(e) => {
            eprintln!("douane: no inventory: {e}");
            Ok(Exit::Failed)
        }
    }
}
