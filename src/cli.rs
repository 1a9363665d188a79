//! The command line: `douane run | check | test | explain | audit | geodb | certs`.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "douane",
    version,
    about = "Data-residency policy enforcement proxy: blocks, with HTTP 451, what leaves the jurisdictions your policy allows"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Threads that serve connections; default: one per CPU douane may run on. With 1,
    /// everything runs on a single-threaded runtime (no work stealing: the lowest latency
    /// on one core).
    #[arg(long, env = "DOUANE_WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigArg {
    /// The daemon configuration file.
    #[arg(
        long,
        short = 'c',
        default_value = "douane.toml",
        env = "DOUANE_CONFIG"
    )]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (forward, reverse and admin listeners of the config).
    Run(RunArgs),
    /// Validate the config, the policies, the operator registry and the databases; list
    /// every error at once and warn of what expires or ages soon.
    Check(ConfigArg),
    /// Run the policies' [[test]] cases.
    Test(ConfigArg),
    /// Explain the decision for a URL, with its whole trace.
    Explain(ExplainArgs),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Build and inspect geolocation databases.
    #[command(subcommand)]
    Geodb(GeodbCommand),
    /// Certificates for development.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Compile and inspect the providers' published address ranges.
    #[command(subcommand)]
    Ranges(RangesCommand),
    /// Inspect the operator registry.
    #[command(subcommand)]
    Registry(RegistryCommand),
}

#[derive(Debug, Subcommand)]
pub enum RangesCommand {
    /// Compile provider range files (AWS, Google Cloud, Azure, Oracle, GitHub, Fastly,
    /// Cloudflare, Akamai, Zscaler, RFC 8805 geofeeds) into the artifact douane loads.
    Import {
        /// Directories (every file with a known name) or files.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[arg(long, short = 'o', default_value = "data/published.bin")]
        output: PathBuf,
        /// The day the files were fetched (YYYY-MM-DD): the date of files that carry none.
        #[arg(long)]
        fetched: Option<String>,
        /// Build date to record (YYYY-MM-DD); defaults to now.
        #[arg(long)]
        build_date: Option<String>,
    },
    /// Print an artifact's version, build date and sources with their dates.
    Info {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// The autonomous systems holding the most address space in the ASN database that no
    /// registry entry (nor a published range) attributes.
    Gaps {
        #[command(flatten)]
        config: ConfigArg,
        /// How many to list.
        #[arg(long, default_value_t = 30)]
        top: usize,
    },
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The URL (`https://crm.example/login`; a bare host means https) or `host:port`.
    pub url: String,
    /// The client address that rules match on.
    #[arg(long, default_value = "127.0.0.1")]
    pub client: IpAddr,
    /// Use these addresses instead of resolving the host (repeatable).
    #[arg(long = "resolve", value_name = "IP")]
    pub resolve: Vec<IpAddr>,
    /// The HTTP method; with --connect, the request is a CONNECT tunnel (no method, no path).
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Decide as a CONNECT tunnel: rules on methods and paths do not apply.
    #[arg(long)]
    pub connect: bool,
    /// Print the decision as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of audit files (in order; a directory means its rotated files).
    Verify {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Summarise audit files for an auditor.
    Report {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only records at or after this time (RFC 3339, or a date YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Only records before this time (RFC 3339, or a date YYYY-MM-DD, exclusive).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormatArg::Text)]
        format: ReportFormatArg,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormatArg {
    Text,
    Csv,
    Json,
    Html,
}

#[derive(Debug, Subcommand)]
pub enum GeodbCommand {
    /// Build an .mmdb from CSV ranges: `first_ip,last_ip,asn,organisation` (asn) or
    /// `first_ip,last_ip,country_code` (country).
    Import {
        #[arg(long, value_enum)]
        kind: DbKindArg,
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// Build date to record (YYYY-MM-DD); defaults to now.
        #[arg(long)]
        build_date: Option<String>,
        #[arg(required = true)]
        csv: Vec<PathBuf>,
    },
    /// Print a database's type, schema, build date and size.
    Info {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DbKindArg {
    Country,
    Asn,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write a self-signed certificate and key for development.
    Dev {
        #[arg(long, default_value = "certs/localhost.pem")]
        cert: PathBuf,
        #[arg(long, default_value = "certs/localhost-key.pem")]
        key: PathBuf,
        /// Names the certificate is valid for (repeatable).
        #[arg(long = "name", default_values_t = vec!["localhost".to_string()])]
        names: Vec<String>,
    },
}
