//! `douane ranges import | info`: compile the providers' published range files into the
//! artifact douane loads (`data/published.bin`), and describe an artifact.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Exit;
use crate::geo::published::{compile_files, files_in, PublishedRanges};

/// Compiles every provider file of the directories (or the files) given into `output`,
/// written atomically (a temporary file renamed over it).
pub fn import(
    inputs: &[PathBuf],
    output: &Path,
    fetched: Option<&str>,
    build_date: Option<&str>,
) -> anyhow::Result<Exit> {
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Some(f) = fetched {
        time::Date::parse(f, day)
            .with_context(|| format!("--fetched `{f}` is not a date (YYYY-MM-DD)"))?;
    }
    let built = match build_date {
        Some(d) => {
            time::Date::parse(d, day)
                .with_context(|| format!("--build-date `{d}` is not a date (YYYY-MM-DD)"))?;
            d.to_owned()
        }
        None => time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?,
    };
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            files.extend(files_in(input)?);
        } else {
            files.push(input.clone());
        }
    }
    anyhow::ensure!(!files.is_empty(), "no provider file found in the inputs");
    let report = compile_files(&files, fetched, &built)?;
    let bytes = report.compiled.encode();
    let name = output.file_name().map_or_else(
        || "published.bin".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let temp = output.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&temp, &bytes).with_context(|| format!("cannot write {}", temp.display()))?;
    std::fs::rename(&temp, output)
        .with_context(|| format!("cannot move {} to {}", temp.display(), output.display()))?;
    // Read it back the way `run` will.
    let loaded = PublishedRanges::open(output)?;
    for s in &report.compiled.sources {
        println!(
            "{:<34} {:<10} {:>6} prefixes  dated {} ({})",
            s.file,
            s.publisher,
            s.prefixes,
            s.date,
            match s.dated_by {
                crate::geo::published::DatedBy::File => "in the file",
                crate::geo::published::DatedBy::Fetched => "fetched",
            }
        );
    }
    for (file, regions) in &report.unmapped_regions {
        let list: Vec<&str> = regions.iter().map(String::as_str).collect();
        println!(
            "note: {file}: regions with no country in douane's table (the country database places them): {}",
            list.join(", ")
        );
    }
    println!(
        "wrote {}: {} sources, {} distinct prefixes ({} listed more than once, merged), {} bytes, version {}",
        output.display(),
        report.compiled.sources.len(),
        loaded.prefix_count(),
        report.merged,
        bytes.len(),
        &loaded.version[..12]
    );
    Ok(Exit::Success)
}

pub fn info(files: &[PathBuf]) -> anyhow::Result<Exit> {
    let mut failed = false;
    for path in files {
        match PublishedRanges::open(path) {
            Ok(r) => {
                println!("{}", path.display());
                println!("  version   {}", r.version);
                println!("  built     {}", r.built);
                println!(
                    "  prefixes  {} ({} range facts)",
                    r.prefix_count(),
                    r.facts().len()
                );
                for s in &r.sources {
                    println!(
                        "  source    {} ({}, {}): {} prefixes, dated {}{}, sha256 {}",
                        s.file,
                        s.publisher,
                        s.format,
                        s.prefixes,
                        s.date,
                        s.serial
                            .as_deref()
                            .map(|x| format!(", {x}"))
                            .unwrap_or_default(),
                        &s.sha256[..16]
                    );
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
