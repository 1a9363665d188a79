//! `douane audit verify | report | inventory | key | prove | verify-proof | consistency |
//! witness | prune`: what an auditor runs on the block log and its signed checkpoints.

use std::path::{Path, PathBuf};

use anyhow::Context;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::Exit;
use crate::audit::note::VerifierKey;
use crate::audit::proof::{self, LogOnDisk, ProofBundle};
use crate::audit::tlog::{read_verifier, TlogPaths};
use crate::audit::Target;
use crate::audit::{report_with, verify_files, Lang, ReportFormat, ReportOptions};
use crate::cli::{AuditCommand, AuditLogArg, LangArg, ReportFormatArg};

/// `verify`, against a checkpoint when one is given.
pub fn verify_with(files: &[PathBuf], checkpoint: Option<&Path>, key: Option<&str>) -> Exit {
    let Some(checkpoint) = checkpoint else {
        return verify(files);
    };
    let key = match key {
        Some(k) => read_verifier(k),
        None => {
            let beside = checkpoint.with_file_name("key.pub");
            eprintln!(
                "douane: warning: no --key: using {} beside the log; whoever can rewrite the log can replace it",
                beside.display()
            );
            read_verifier(&beside.to_string_lossy())
        }
    };
    let key = match key {
        Ok(k) => k,
        Err(e) => {
            println!("audit log NOT VERIFIED: key {e}");
            return Exit::Failed;
        }
    };
    match proof::verify_against(files, checkpoint, &key) {
        Ok(summary) => {
            println!("{summary}");
            Exit::Success
        }
        Err(e) => {
            println!("audit log BROKEN: {e}");
            Exit::Failed
        }
    }
}

/// The transparency-log commands.
pub fn run_tlog(command: AuditCommand) -> anyhow::Result<Exit> {
    match command {
        AuditCommand::Key(log) => {
            let key = log_key(&log)?;
            println!("{}", key.encode());
            Ok(Exit::Success)
        }
        AuditCommand::Prove {
            seq,
            log,
            checkpoint,
            output,
        } => {
            let key = log_key(&log)?;
            let paths = log_paths(&log.log)?;
            let cp_file = checkpoint.unwrap_or(paths.checkpoint);
            let text = std::fs::read_to_string(&cp_file)
                .with_context(|| format!("cannot read {}", cp_file.display()))?;
            let disk = LogOnDisk::open(&log.log, None)?;
            let bundle = proof::prove(&disk, seq, &text, &key)?;
            let json = serde_json::to_string_pretty(&bundle)? + "\n";
            match output {
                Some(p) => std::fs::write(&p, json)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => print!("{json}"),
            }
            Ok(Exit::Success)
        }
        AuditCommand::VerifyProof { bundle, key } => {
            let key = read_verifier(&key).map_err(anyhow::Error::msg)?;
            let text = std::fs::read_to_string(&bundle)
                .with_context(|| format!("cannot read {}", bundle.display()))?;
            let parsed: ProofBundle = match serde_json::from_str(&text) {
                Ok(b) => b,
                Err(e) => {
                    println!(
                        "proof REFUSED: {}: not a proof bundle ({e})",
                        bundle.display()
                    );
                    return Ok(Exit::Failed);
                }
            };
            match proof::verify_proof(&parsed, &key) {
                Ok(cp) => {
                    println!(
                        "proof OK: seq {} is in {} (checkpoint of {} records, signed by {})",
                        parsed.index, cp.origin, cp.size, key.name
                    );
                    println!("{}", parsed.record);
                    Ok(Exit::Success)
                }
                Err(e) => {
                    println!("proof REFUSED: {e}");
                    Ok(Exit::Failed)
                }
            }
        }
        AuditCommand::Consistency { old, new, log } => {
            let key = log_key(&log)?;
            let open = |p: &Path| -> anyhow::Result<crate::audit::note::Checkpoint> {
                Ok(proof::open_checkpoint(p, &key)?)
            };
            let (a, b) = (open(&old)?, open(&new)?);
            let disk = LogOnDisk::open(&log.log, None)?;
            let (small, large) = if a.size <= b.size { (&a, &b) } else { (&b, &a) };
            let proof_hashes = if small.size == 0 || small.size == large.size {
                Vec::new()
            } else {
                disk.tree.consistency_proof(small.size, large.size)?
            };
            match proof::check_consistency(&a, &b, &proof_hashes) {
                Ok(()) => {
                    println!(
                        "consistent: the log of {} records extends the log of {}",
                        b.size, a.size
                    );
                    for h in &proof_hashes {
                        println!("{}", base64_of(h));
                    }
                    Ok(Exit::Success)
                }
                Err(e) => {
                    println!("NOT consistent: {e}");
                    Ok(Exit::Failed)
                }
            }
        }
        AuditCommand::Witness(args) => crate::audit::witness::run(&args),
        AuditCommand::Prune {
            log,
            allowed_days,
            blocks_days,
        } => {
            let days = |d: Option<u32>| d.map(|d| time::Duration::days(i64::from(d)));
            let retention = crate::audit::prune::Retention {
                allowed: days(allowed_days),
                blocks: days(blocks_days),
            };
            match crate::audit::prune::prune(&log.log, retention, OffsetDateTime::now_utc()) {
                Ok(s) => {
                    println!(
                        "pruned {} record(s) in {} file(s); {} kept",
                        s.pruned, s.files_rewritten, s.kept
                    );
                    Ok(Exit::Success)
                }
                Err(e) => {
                    println!("nothing pruned: {e}");
                    Ok(Exit::Failed)
                }
            }
        }
        AuditCommand::Verify { .. }
        | AuditCommand::Report { .. }
        | AuditCommand::Inventory { .. } => {
            anyhow::bail!("handled by verify and report")
        }
    }
}

fn base64_of(h: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(h)
}

fn log_paths(log: &Path) -> anyhow::Result<TlogPaths> {
    match Target::from_path(log) {
        Target::Rotating { dir, stem } => Ok(TlogPaths::new(&dir, &stem, None)),
        Target::Device(p) => anyhow::bail!("{} is a device: no signed log is kept", p.display()),
    }
}

/// The verifier key: `--key`, else the `.pub` beside the log (or derived from its checkpoint
/// key file when the `.pub` is missing).
fn log_key(log: &AuditLogArg) -> anyhow::Result<VerifierKey> {
    if let Some(k) = &log.key {
        return read_verifier(k).map_err(anyhow::Error::msg);
    }
    let paths = log_paths(&log.log)?;
    if let Ok(k) = read_verifier(&paths.public.to_string_lossy()) {
        return Ok(k);
    }
    let text = std::fs::read_to_string(&paths.key)
        .with_context(|| format!("no key beside the log ({})", paths.public.display()))?;
    Ok(crate::audit::note::SigningKey::parse(&text)?.verifier())
}

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
