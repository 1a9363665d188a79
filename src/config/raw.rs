//! The raw shape of `douane.toml`, as serde reads it: every table refuses unknown keys and
//! every default has a name. `super::Config::parse` validates this into the immutable value.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use serde_spanned::Spanned;

use crate::audit::AuditConfig;
use crate::resolve::ResolverConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub policy: FilePolicy,
    #[serde(default)]
    pub geo: FileGeo,
    #[serde(default)]
    pub resolver: ResolverConfig,
    pub forward: Option<FileForward>,
    #[serde(default)]
    pub reverse: Vec<FileReverse>,
    #[serde(default)]
    pub route: Vec<FileRoute>,
    pub admin: Option<FileAdmin>,
    pub audit: Option<AuditConfig>,
    #[serde(default)]
    pub upstream: FileUpstream,
    #[serde(default)]
    pub limits: FileLimits,
    #[serde(default)]
    pub trust: FileTrust,
    #[serde(default)]
    pub log: FileLog,
    #[serde(default)]
    pub block_page: FileBlockPage,
    #[serde(default)]
    pub reload: FileReload,
    /// The PAC file served at `/proxy.pac` and `/wpad.dat`.
    pub pac: Option<crate::pac::PacConfig>,
    /// The local CA that mints certificates for the HTTPS block page.
    pub local_ca: Option<crate::mint::LocalCaConfig>,
    /// What is checked inside CONNECT tunnels.
    #[serde(default)]
    pub tunnel: crate::proxy::tunnel::TunnelConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePolicy {
    #[serde(default = "default_policy_dir")]
    pub dir: Spanned<PathBuf>,
    #[serde(default = "default_operators")]
    pub operators: Spanned<PathBuf>,
}

impl Default for FilePolicy {
    fn default() -> Self {
        FilePolicy {
            dir: default_policy_dir(),
            operators: default_operators(),
        }
    }
}

fn default_policy_dir() -> Spanned<PathBuf> {
    Spanned::new(0..0, PathBuf::from("policies"))
}

fn default_operators() -> Spanned<PathBuf> {
    Spanned::new(0..0, PathBuf::from("policies/operators.toml"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileGeo {
    pub country: Option<Spanned<PathBuf>>,
    pub asn: Option<Spanned<PathBuf>>,
    /// `douane check` warns about a database older than this, and the metrics export it
    /// (`douane_geo_max_age_seconds`) for the shipped alert to use the same number.
    #[serde(default = "default_max_age_days")]
    pub max_age_days: u32,
    /// The providers' published ranges, compiled by `douane ranges import`.
    pub published: Option<Spanned<PathBuf>>,
    /// `douane check` warns about published ranges whose oldest source is older than this.
    #[serde(default = "default_published_max_age_days")]
    pub published_max_age_days: u32,
    /// Where `douane geodb update` gets new data; none: only `--from DIR`.
    #[serde(default)]
    pub update: FileUpdate,
}

/// `[geo.update]`: what `douane geodb update` rebuilds the databases from.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileUpdate {
    /// Refuse a new database with fewer networks than this share of the old one's (a
    /// truncated download, a wrong edition): 0.0 turns the check off. Default 0.8.
    pub min_size_ratio: Option<Spanned<f64>>,
    /// The sources; none: the shipped recipe (`--from DIR` holding `asn-ipv4.csv`,
    /// `asn-ipv6.csv` and `geo-whois-asn-country.mmdb`).
    #[serde(default)]
    pub source: Vec<FileSource>,
}

/// One `[[geo.update.source]]`: a file that goes into the country or the ASN database.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// `country` or `asn`.
    pub database: Spanned<String>,
    /// `mmdb`, `mmdb-gz`, `maxmind-tar-gz`, `country-csv`, `asn-csv`.
    pub format: Spanned<String>,
    /// Where to download it; `{license_key}` is replaced by the key in `license_key_file`.
    pub url: Option<Spanned<String>>,
    /// Its name in the `--from DIR` bundle (default: the last segment of `url`).
    pub file: Option<Spanned<String>>,
    /// A file holding a licence key (MaxMind), for `{license_key}` in `url`.
    pub license_key_file: Option<Spanned<PathBuf>>,
}

fn default_published_max_age_days() -> u32 {
    30
}

fn default_max_age_days() -> u32 {
    30
}

impl Default for FileGeo {
    fn default() -> Self {
        FileGeo {
            country: None,
            asn: None,
            max_age_days: default_max_age_days(),
            update: Default::default(),
            published: None,
            published_max_age_days: default_published_max_age_days(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileForward {
    #[serde(default = "default_forward_name")]
    pub name: String,
    pub listen: Spanned<SocketAddr>,
    /// Serve plain `http://` absolute-form requests on the direct path (`proxy::h1`);
    /// `false` sends every request through hyper.
    #[serde(default = "yes")]
    pub direct_http1: bool,
}

fn default_forward_name() -> String {
    "forward".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReverse {
    pub name: Spanned<String>,
    pub listen: Spanned<SocketAddr>,
    /// Certificates served by SNI. None: plain HTTP.
    #[serde(default)]
    pub tls: Vec<FileCertificate>,
    /// Serve plain HTTP/1.1 requests on the direct path (`proxy::h1`); `false` sends every
    /// request through hyper.
    #[serde(default = "yes")]
    pub direct_http1: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCertificate {
    pub cert: Spanned<PathBuf>,
    pub key: Spanned<PathBuf>,
    /// Generate a self-signed certificate for `localhost` and the listener's route hosts
    /// when neither file exists (development and the shipped default only).
    #[serde(default)]
    pub generate_if_missing: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRoute {
    pub name: Spanned<String>,
    /// The reverse listener this route belongs to; the only one when omitted.
    pub listener: Option<Spanned<String>>,
    pub host: Spanned<String>,
    #[serde(default = "default_path_prefix")]
    pub path_prefix: Spanned<String>,
    pub upstream: Spanned<String>,
}

fn default_path_prefix() -> Spanned<String> {
    Spanned::new(0..0, "/".into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAdmin {
    pub listen: Spanned<SocketAddr>,
    /// A file holding a bearer token; required when `listen` is not loopback.
    pub token_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUpstream {
    /// PEM bundle of extra roots for upstream TLS; system roots are always trusted too unless
    /// `system_roots = false`.
    pub ca_file: Option<Spanned<PathBuf>>,
    #[serde(default = "yes")]
    pub system_roots: bool,
    /// `http://host:port` of a parent proxy that every allowed connection goes through.
    pub parent_proxy: Option<Spanned<String>>,
}

impl Default for FileUpstream {
    fn default() -> Self {
        FileUpstream {
            ca_file: None,
            system_roots: true,
            parent_proxy: None,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    #[serde(default = "d_connect")]
    pub connect_timeout_ms: u64,
    #[serde(default = "d_tls")]
    pub tls_handshake_timeout_ms: u64,
    #[serde(default = "d_header")]
    pub header_read_timeout_ms: u64,
    #[serde(default = "d_idle")]
    pub idle_timeout_ms: u64,
    #[serde(default = "d_response")]
    pub upstream_response_timeout_ms: u64,
    #[serde(default = "d_max_header_bytes")]
    pub max_header_bytes: usize,
    #[serde(default = "d_max_headers")]
    pub max_headers: usize,
    #[serde(default = "d_max_connections")]
    pub max_connections: usize,
    #[serde(default = "d_grace")]
    pub shutdown_grace_ms: u64,
    /// How long a write to a client may make no progress (a client that stops reading).
    #[serde(default = "d_send")]
    pub client_send_timeout_ms: u64,
    /// How long a request body may send nothing.
    #[serde(default = "d_body")]
    pub request_body_timeout_ms: u64,
    /// Upstream connections open at once to one checked address (0: no cap).
    #[serde(default = "d_per_address")]
    pub max_upstream_connections_per_address: usize,
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            connect_timeout_ms: d_connect(),
            tls_handshake_timeout_ms: d_tls(),
            header_read_timeout_ms: d_header(),
            idle_timeout_ms: d_idle(),
            upstream_response_timeout_ms: d_response(),
            max_header_bytes: d_max_header_bytes(),
            max_headers: d_max_headers(),
            max_connections: d_max_connections(),
            shutdown_grace_ms: d_grace(),
            client_send_timeout_ms: d_send(),
            request_body_timeout_ms: d_body(),
            max_upstream_connections_per_address: d_per_address(),
        }
    }
}

fn d_connect() -> u64 {
    5_000
}
fn d_tls() -> u64 {
    10_000
}
fn d_header() -> u64 {
    10_000
}
fn d_idle() -> u64 {
    60_000
}
fn d_response() -> u64 {
    60_000
}
fn d_max_header_bytes() -> usize {
    64 * 1024
}
fn d_max_headers() -> usize {
    100
}
fn d_max_connections() -> usize {
    10_000
}
fn d_grace() -> u64 {
    10_000
}
fn d_send() -> u64 {
    30_000
}
fn d_body() -> u64 {
    30_000
}
fn d_per_address() -> usize {
    256
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileTrust {
    /// Peers whose `X-Forwarded-For` is believed (e.g. the collectivité's load balancer).
    #[serde(default)]
    pub forwarded_from: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLog {
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `douane=debug`; `RUST_LOG` wins when set.
    #[serde(default = "default_level")]
    pub level: String,
}

fn default_level() -> String {
    "info".into()
}

impl Default for FileLog {
    fn default() -> Self {
        FileLog {
            format: LogFormat::default(),
            level: default_level(),
        }
    }
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileBlockPage {
    /// Where `Link: <…>; rel="blocked-by"` points: the page that explains the policy.
    pub link: Option<String>,
    /// Who to contact (DPO / RSSI), shown on the block page.
    pub contact: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReload {
    /// Watch config, policies and databases and reload on change.
    #[serde(default = "yes")]
    pub watch: bool,
    #[serde(default = "d_poll")]
    pub poll_interval_ms: u64,
}

impl Default for FileReload {
    fn default() -> Self {
        FileReload {
            watch: true,
            poll_interval_ms: d_poll(),
        }
    }
}

fn d_poll() -> u64 {
    2_000
}

/// Parses a CIDR or a bare address (as a /32 or /128).
pub fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}
