//! The `douane` binary: parse the command line, run the command, turn the result into an
//! exit code. Invalid configuration exits 3, a failed check 1, bad usage 2.

use std::process::ExitCode;

use clap::Parser;

use douane::cli::{
    AuditCommand, CertsCommand, Cli, Command, GeodbCommand, RangesCommand, RegistryCommand,
};
use douane::commands::{self, Exit, InvalidSetup};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            if let Some(invalid) = e.downcast_ref::<InvalidSetup>() {
                for line in &invalid.0 .0 {
                    eprintln!("douane: {line}");
                }
                return ExitCode::from(Exit::Invalid as u8);
            }
            eprintln!("douane: {e:#}");
            ExitCode::from(Exit::Failed as u8)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Run(args) => {
            let workers = args.workers.map(usize::from).unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            });
            // The main thread's runtime is worker 0's; the others make their own
            // (`douane::workers`).
            let runtime = douane::workers::runtime()?;
            runtime.block_on(douane::app::run(&args.config.config, workers))?;
            Ok(Exit::Success)
        }
        Command::Check(args) => Ok(commands::check::run(&args.config)),
        Command::Test(args) => Ok(commands::test::run(&args.config)?),
        Command::Explain(args) => commands::explain::run(&args),
        Command::Audit(AuditCommand::Verify {
            files,
            checkpoint,
            key,
        }) => Ok(commands::audit::verify_with(
            &files,
            checkpoint.as_deref(),
            key.as_deref(),
        )),
        Command::Audit(AuditCommand::Report { read, config }) => commands::audit::run_report_with(
            &read.files,
            read.from.as_deref(),
            read.to.as_deref(),
            read.format,
            read.lang,
            config.as_deref(),
        ),
        Command::Audit(AuditCommand::Inventory { read }) => commands::audit::run_inventory(
            &read.files,
            read.from.as_deref(),
            read.to.as_deref(),
            read.format,
            read.lang,
        ),
        Command::Audit(other) => commands::audit::run_tlog(other),
        Command::Geodb(GeodbCommand::Import {
            kind,
            output,
            build_date,
            csv,
        }) => commands::geodb::import(kind, &output, build_date.as_deref(), &csv),
        Command::Geodb(GeodbCommand::Info { files }) => commands::geodb::info(&files),
        Command::Geodb(GeodbCommand::Update(args)) => commands::geodb::update(&args),
        Command::Ranges(RangesCommand::Import {
            inputs,
            output,
            fetched,
            build_date,
        }) => commands::ranges::import(&inputs, &output, fetched.as_deref(), build_date.as_deref()),
        Command::Ranges(RangesCommand::Info { files }) => commands::ranges::info(&files),
        Command::Registry(RegistryCommand::Gaps { config, top, audit }) => {
            commands::registry::gaps(&config.config, top, &audit)
        }
        Command::Certs(CertsCommand::Dev { cert, key, names }) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            douane::tls::write_self_signed(&cert, &key, &names)?;
            println!(
                "wrote {} and {} for {}",
                cert.display(),
                key.display(),
                names.join(", ")
            );
            Ok(Exit::Success)
        }
        Command::Completions { shell } => commands::completions::run(shell),
    }
}
