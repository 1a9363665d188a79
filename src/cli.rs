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
    /// Worker threads that serve connections; default: one per CPU douane may run on. Each
    /// has its own runtime, listening sockets (SO_REUSEPORT) and upstream pools, and keeps a
    /// connection from accept to close; with 1, douane serves on its main thread.
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) or, with
    /// `man`, the manual page (roff) to standard output.
    Completions {
        #[arg(value_enum)]
        shell: CompletionTarget,
    },
    /// Compile and inspect the providers' published address ranges.
    #[command(subcommand)]
    Ranges(RangesCommand),
    /// Inspect the operator registry.
    #[command(subcommand)]
    Registry(RegistryCommand),
}

/// What `douane completions` writes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompletionTarget {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
    /// The manual page douane(1), roff.
    Man,
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
        /// Rank by the traffic of these audit logs (files or log directories) instead of
        /// the address space of the ASN database: the unattributed ASNs requests met.
        #[arg(long, num_args = 1.., value_name = "LOG")]
        audit: Vec<PathBuf>,
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
        /// Also check the files against this signed checkpoint: a cut tail, a removed
        /// rotated file or a rebuilt log fails.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The verifier key (file or text `<name>+<id>+<base64>`); default the `key.pub`
        /// beside the checkpoint (an attacker who rewrote the log could have replaced it).
        #[arg(long)]
        key: Option<String>,
    },
    /// Summarise audit files for an auditor.
    Report {
        #[command(flatten)]
        read: AuditReading,
        /// The daemon config: each exemption used then shows its justification, ticket and
        /// expiry from the policy.
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
    },
    /// Print the verifier key of the log's checkpoints (C2SP note verifier key).
    Key(AuditLogArg),
    /// Write a self-contained proof that record SEQ is in the signed log: the record, its
    /// inclusion proof and the latest checkpoint (JSON).
    Prove {
        seq: u64,
        #[command(flatten)]
        log: AuditLogArg,
        /// The checkpoint to prove against; default the latest beside the log.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Write the bundle here instead of standard output.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Check a proof bundle from `douane audit prove` offline, with the log's public key.
    VerifyProof {
        bundle: PathBuf,
        /// The verifier key (file or text).
        #[arg(long, required = true)]
        key: String,
    },
    /// Show that checkpoint NEW extends checkpoint OLD (RFC 9162 consistency proof).
    Consistency {
        old: PathBuf,
        new: PathBuf,
        #[command(flatten)]
        log: AuditLogArg,
    },
    /// Remove the content of records past their retention period, keeping what the chain
    /// and the Merkle tree need (old checkpoints and proofs still verify). The newest file is
    /// left alone; the log must verify first.
    Prune {
        #[command(flatten)]
        log: AuditLogArg,
        /// Days allowed-request (and failed) records keep their content.
        #[arg(long)]
        allowed_days: Option<u32>,
        /// Days block, would-block and exemption records keep their content.
        #[arg(long)]
        blocks_days: Option<u32>,
    },
    /// Pull checkpoints from douane replicas' admin listeners, check each extends the last
    /// one seen, cosign them (C2SP tlog-cosignature) and keep them.
    Witness(WitnessArgs),
    /// The SaaS in use: distinct destinations grouped by registrable domain, with their
    /// operator, its jurisdiction, the locations and the requests by outcome.
    Inventory {
        #[command(flatten)]
        read: AuditReading,
    },
}

/// What the report and the inventory read, and how they write it.
#[derive(Debug, Args, Clone)]
pub struct AuditReading {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Only records at or after this time (RFC 3339, or a date YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<String>,
    /// Only records before this time (RFC 3339, or a date YYYY-MM-DD, exclusive).
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long, value_enum, default_value_t = ReportFormatArg::Text)]
    pub format: ReportFormatArg,
    /// The language: fr (default) or en.
    #[arg(long, value_enum, default_value_t = LangArg::Fr)]
    pub lang: LangArg,
}

/// Where the log is, as `audit.path` in the config.
#[derive(Debug, Args, Clone)]
pub struct AuditLogArg {
    /// The log's `audit.path` (file base or directory).
    #[arg(long, default_value = "audit/douane-audit.jsonl")]
    pub log: PathBuf,
    /// The verifier key (file or text); default `<stem>.tlog/key.pub` beside the log.
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct WitnessArgs {
    /// A replica's admin base URL, `http://host:port` (repeatable).
    #[arg(long = "replica", required = true)]
    pub replicas: Vec<String>,
    /// The verifier key of each replica, in the order of --replica (file or text).
    #[arg(long = "log-key", required = true)]
    pub log_keys: Vec<String>,
    /// The admin bearer token.
    #[arg(long, env = "DOUANE_ADMIN_TOKEN")]
    pub token: Option<String>,
    /// Where the witness keeps its key and the last checkpoint of each log.
    #[arg(long, default_value = "witness")]
    pub state: PathBuf,
    /// The witness's name (its key's name), generated with the key on first start.
    #[arg(long, default_value = "douane-witness")]
    pub name: String,
    /// Pull once and exit (status 1 on a fork or a shrinking log).
    #[arg(long)]
    pub once: bool,
    /// Seconds between pulls.
    #[arg(long, default_value_t = 10)]
    pub interval: u64,
}

/// The language of what people read (report, inventory).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LangArg {
    Fr,
    En,
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
    /// Rebuild the configured country and ASN databases from their sources ([geo.update]
    /// of the config, or the shipped recipe), check them and swap them in atomically.
    Update(GeodbUpdateArgs),
}

#[derive(Debug, Args)]
pub struct GeodbUpdateArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Read every source file from this directory (an offline bundle) instead of
    /// downloading them.
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// Build and check the new databases, swap nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Send SIGHUP to this process (a running douane) once the files are swapped; without
    /// it, a douane with `[reload] watch = true` picks them up by itself.
    #[arg(long, value_name = "PID")]
    pub reload_pid: Option<u32>,
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
