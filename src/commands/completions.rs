//! `douane completions SHELL`: shell completion scripts (clap_complete) and the manual pages
//! (clap_mangen), both generated from the clap definitions of [`crate::cli`], so they cannot
//! drift from the real command line. `deploy/man/` holds the pages as shipped;
//! `cargo run --example man` rewrites them and `tests/deploy_man.rs` fails when they are stale.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionTarget};
use crate::commands::Exit;

/// Writes the completion script for `target`, or the douane(1) page, to standard output.
pub fn run(target: CompletionTarget) -> anyhow::Result<Exit> {
    let mut out = std::io::stdout().lock();
    let shell = match target {
        CompletionTarget::Bash => Shell::Bash,
        CompletionTarget::Zsh => Shell::Zsh,
        CompletionTarget::Fish => Shell::Fish,
        CompletionTarget::Elvish => Shell::Elvish,
        CompletionTarget::Powershell => Shell::PowerShell,
        CompletionTarget::Man => {
            let page = man_pages()?
                .into_iter()
                .next()
                .map(|(_, page)| page)
                .unwrap_or_default();
            out.write_all(&page)?;
            return Ok(Exit::Success);
        }
    };
    clap_complete::generate(shell, &mut Cli::command(), "douane", &mut out);
    out.flush()?;
    Ok(Exit::Success)
}

/// Every manual page: `douane.1` first, then one per subcommand (`douane-audit-verify.1`…),
/// as (file name, roff text).
pub fn man_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut command = Cli::command();
    command.build();
    let mut pages = Vec::new();
    collect(&command, &mut pages)?;
    Ok(pages)
}

fn collect(command: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    if command.is_hide_set() {
        return Ok(());
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .source(format!("douane {}", env!("CARGO_PKG_VERSION")))
        .manual("douane manual")
        .render(&mut page)?;
    let name = command.get_display_name().unwrap_or(command.get_name());
    pages.push((format!("{name}.1"), page));
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        collect(sub, pages)?;
    }
    Ok(())
}

/// Writes every manual page into `dir` (created if missing); returns the file names.
pub fn write_man_pages(dir: &Path) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut names = Vec::new();
    for (name, page) in man_pages()? {
        std::fs::write(dir.join(&name), page)?;
        names.push(name);
    }
    Ok(names)
}
