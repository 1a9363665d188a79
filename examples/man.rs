//! Writes the manual pages generated from the clap definitions into `deploy/man/` (or the
//! directory given): `douane.1` and one page per subcommand.
//!
//! ```text
//! cargo run --example man              # after a change of src/cli.rs
//! ```

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/man").into());
    let names = douane::commands::completions::write_man_pages(std::path::Path::new(&dir))?;
    println!("wrote {} pages in {dir}: {}", names.len(), names.join(" "));
    Ok(())
}
