//! DNS resolution with hickory-resolver, a TTL-honouring cache and static overrides.
//!
//! Order of answers for a host: an IP literal is itself; a static override answers next; then
//! our cache (positive answers for the record TTL clamped into `[min_ttl, max_ttl]`, NXDOMAIN
//! and "no A/AAAA" for `negative_ttl`); then A and AAAA queries, concurrently. SERVFAIL,
//! REFUSED and timeouts are not cached. Hickory's own cache is sized 0 and given the same TTL
//! bounds, so ours is the one that decides. Names are queried fully qualified: no search
//! domains and no `/etc/hosts` (static answers belong in `overrides`), so the name that the
//! policy judged is the name that was resolved. Concurrent lookups of one name share a query.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig as HickoryConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::OnceCell;

use super::cache::{Answer, Cache};
use super::destination::Host;

/// Why a name did not resolve; each is a distinct reason in the decision. Serialised as
/// [`DnsFailure::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum DnsFailure {
    #[serde(rename = "nxdomain")]
    #[error("the name does not exist (nxdomain)")]
    NxDomain,
    #[serde(rename = "servfail")]
    #[error("the name server failed to answer (servfail)")]
    ServFail,
    #[error("no answer from the name server in time")]
    Timeout,
    #[error("the name exists but has no a/aaaa records")]
    NoAddresses,
    #[error("the name server refused the query")]
    Refused,
    #[error("resolution failed")]
    Other,
}

impl DnsFailure {
    /// A stable label for metrics, logs and the audit record.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsFailure::NxDomain => "nxdomain",
            DnsFailure::ServFail => "servfail",
            DnsFailure::Timeout => "timeout",
            DnsFailure::NoAddresses => "no_addresses",
            DnsFailure::Refused => "refused",
            DnsFailure::Other => "other",
        }
    }

    /// Negative answers (RFC 2308) are cached; failures to get an answer are not.
    fn is_negative_answer(self) -> bool {
        matches!(self, DnsFailure::NxDomain | DnsFailure::NoAddresses)
    }

    fn from_error(err: &NetError) -> DnsFailure {
        match err {
            NetError::Dns(DnsError::NoRecordsFound(nr))
                if nr.response_code == ResponseCode::NXDomain =>
            {
                DnsFailure::NxDomain
            }
            NetError::Dns(DnsError::NoRecordsFound(_)) => DnsFailure::NoAddresses,
            NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => DnsFailure::ServFail,
            NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => DnsFailure::Refused,
            NetError::Timeout => DnsFailure::Timeout,
            _ => DnsFailure::Other,
        }
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Literal,
    Override,
    Cache,
    Dns,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Literal => "literal",
            Source::Override => "override",
            Source::Cache => "cache",
            Source::Dns => "dns",
        }
    }
}

/// The addresses of a name, all of which the decision checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub addresses: Arc<[IpAddr]>,
    pub source: Source,
    /// Remaining lifetime of a DNS answer (clamped); `None` for literals and overrides.
    pub ttl: Option<Duration>,
}

fn default_timeout() -> u64 {
    2000
}
fn default_attempts() -> u32 {
    2
}
fn default_min_ttl() -> u32 {
    5
}
fn default_max_ttl() -> u32 {
    300
}
fn default_negative_ttl() -> u32 {
    30
}
fn default_cache_size() -> usize {
    10_000
}
fn default_ipv6() -> bool {
    true
}

/// The `[resolver]` table of `douane.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverConfig {
    /// Name servers, `IP` (port 53) or `IP:port`; empty: the system's (`/etc/resolv.conf`).
    #[serde(default, deserialize_with = "nameservers")]
    pub nameservers: Vec<SocketAddr>,
    /// Per-query timeout, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Tries per query and name server, the first included.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Bounds, in seconds, applied to the TTL of positive answers.
    #[serde(default = "default_min_ttl")]
    pub min_ttl: u32,
    #[serde(default = "default_max_ttl")]
    pub max_ttl: u32,
    /// Seconds that NXDOMAIN and "no A/AAAA records" are cached.
    #[serde(default = "default_negative_ttl")]
    pub negative_ttl: u32,
    /// Names cached at most (about); 0 disables the cache.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
    /// Static answers, checked before the cache: name → addresses.
    #[serde(default)]
    pub overrides: BTreeMap<String, Vec<IpAddr>>,
    /// Query AAAA as well as A.
    #[serde(default = "default_ipv6")]
    pub ipv6: bool,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            nameservers: Vec::new(),
            timeout: default_timeout(),
            attempts: default_attempts(),
            min_ttl: default_min_ttl(),
            max_ttl: default_max_ttl(),
            negative_ttl: default_negative_ttl(),
            cache_size: default_cache_size(),
            overrides: BTreeMap::new(),
            ipv6: default_ipv6(),
        }
    }
}

/// `"192.0.2.53"` (port 53) or `"192.0.2.53:5353"` / `"[2001:db8::53]:53"`.
fn nameservers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "invalid nameserver `{s}`: write an IP address, optionally with a port \
                         (`192.0.2.53`, `192.0.2.53:5353`, `[2001:db8::53]:53`)"
                    ))
                })
        })
        .collect()
}

/// One problem in a `[resolver]` table: the key (under `resolver.`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resolver.{}: {}", self.key, self.message)
    }
}

impl ResolverConfig {
    /// Every problem at once (empty when the table is usable).
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            problems.push(ConfigProblem {
                key: key.to_owned(),
                message,
            })
        };
        if !(1..=60_000).contains(&self.timeout) {
            problem(
                "timeout",
                format!("{} ms is outside 1..=60000", self.timeout),
            );
        }
        if !(1..=10).contains(&self.attempts) {
            problem("attempts", format!("{} is outside 1..=10", self.attempts));
        }
        if self.max_ttl == 0 {
            problem("max_ttl", "must be at least 1 second".into());
        }
        if self.min_ttl > self.max_ttl {
            problem(
                "min_ttl",
                format!("{} is above max_ttl ({})", self.min_ttl, self.max_ttl),
            );
        }
        if self.max_ttl > 86_400 {
            problem(
                "max_ttl",
                format!("{} s is above one day (86400)", self.max_ttl),
            );
        }
        if self.negative_ttl > 86_400 {
            problem(
                "negative_ttl",
                format!("{} s is above one day (86400)", self.negative_ttl),
            );
        }
        if self.cache_size > 10_000_000 {
            problem(
                "cache_size",
                format!("{} is above 10000000", self.cache_size),
            );
        }
        for ns in &self.nameservers {
            if ns.port() == 0 || ns.ip().is_unspecified() || ns.ip().is_multicast() {
                problem(
                    "nameservers",
                    format!("`{ns}` is not a usable name server address"),
                );
            }
        }
        let mut seen: HashMap<std::sync::Arc<str>, &str> = HashMap::new();
        for (key, addrs) in &self.overrides {
            let at = format!("overrides.{key:?}");
            match Host::parse(key) {
                Ok(Host::Name(name)) => {
                    if let Some(first) = seen.insert(name.clone(), key) {
                        problem(
                            &at,
                            format!("`{key}` is the same name as `{first}` ({name})"),
                        );
                    }
                }
                Ok(Host::Ip(_)) => problem(
                    &at,
                    "is an IP address; overrides give addresses to names".into(),
                ),
                Err(e) => problem(&at, e.to_string()),
            }
            if addrs.is_empty() {
                problem(&at, "has no addresses; give at least one".into());
            }
        }
        problems
    }
}

/// Why a resolver could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("invalid [resolver] configuration: {}", join(.0))]
    Config(Vec<ConfigProblem>),
    #[error(
        "cannot read the system resolver configuration (/etc/resolv.conf): {0}; \
         set resolver.nameservers in douane.toml"
    )]
    SystemConfig(String),
    #[error("cannot build the dns resolver: {0}")]
    Build(String),
}

fn join(problems: &[ConfigProblem]) -> String {
    let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
    all.join("; ")
}

type Inflight = Mutex<HashMap<Box<str>, Arc<OnceCell<Result<Resolved, DnsFailure>>>>>;

/// Resolves hosts to the addresses the decision checks. Cheap to share behind an `Arc`.
pub struct Resolver {
    hickory: TokioResolver,
    overrides: HashMap<Box<str>, Arc<[IpAddr]>>,
    cache: Cache,
    /// Lookups under way, so concurrent misses of one name share a query (miss path only).
    inflight: Inflight,
    min_ttl: Duration,
    max_ttl: Duration,
    negative_ttl: Duration,
    /// Bound on a whole lookup, over hickory's own timeouts: never a hang.
    deadline: Duration,
    ipv6: bool,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("overrides", &self.overrides.len())
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl Resolver {
    pub fn new(config: &ResolverConfig) -> Result<Resolver, ResolveError> {
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(ResolveError::Config(problems));
        }
        let overrides = config
            .overrides
            .iter()
            .filter_map(|(key, addrs)| {
                let name = Host::parse(key).ok()?.as_name()?.into();
                Some((name, Arc::from(addrs.as_slice())))
            })
            .collect();

        let name_servers = if config.nameservers.is_empty() {
            let (system, _) = hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| ResolveError::SystemConfig(e.to_string()))?;
            let servers = system.name_servers().to_vec();
            if servers.is_empty() {
                return Err(ResolveError::SystemConfig("it names no name server".into()));
            }
            servers
        } else {
            config
                .nameservers
                .iter()
                .map(|addr| {
                    let conn = |mut c: ConnectionConfig| {
                        c.port = addr.port();
                        c
                    };
                    let connections =
                        vec![conn(ConnectionConfig::udp()), conn(ConnectionConfig::tcp())];
                    NameServerConfig::new(addr.ip(), true, connections)
                })
                .collect()
        };

        let min_ttl = Duration::from_secs(config.min_ttl.into());
        let max_ttl = Duration::from_secs(config.max_ttl.into());
        let negative_ttl = Duration::from_secs(config.negative_ttl.into());
        let timeout = Duration::from_millis(config.timeout);
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = config.attempts.saturating_sub(1) as usize; // hickory counts retries
        opts.cache_size = 0;
        opts.positive_min_ttl = Some(min_ttl);
        opts.positive_max_ttl = Some(max_ttl);
        opts.negative_min_ttl = Some(negative_ttl);
        opts.negative_max_ttl = Some(negative_ttl);
        opts.use_hosts_file = ResolveHosts::Never;
        opts.preserve_intermediates = true;

        let servers = name_servers.len().max(1) as u32;
        let hickory = TokioResolver::builder_with_config(
            HickoryConfig::from_parts(None, Vec::new(), name_servers),
            TokioRuntimeProvider::default(),
        )
        .with_options(opts)
        .build()
        .map_err(|e| ResolveError::Build(e.to_string()))?;

        Ok(Resolver {
            hickory,
            overrides,
            cache: Cache::new(config.cache_size),
            inflight: Mutex::default(),
            min_ttl,
            max_ttl,
            negative_ttl,
            deadline: timeout * config.attempts * servers + Duration::from_millis(500),
            ipv6: config.ipv6,
        })
    }

    /// The addresses of `host`: literal, override, cache, then DNS.
    pub async fn resolve(&self, host: &Host) -> Result<Resolved, DnsFailure> {
        let name = match host {
            Host::Ip(ip) => return Ok(literal(*ip)),
            Host::Name(name) => name,
        };
        if let Some(hit) = self.in_memory(name) {
            return hit;
        }
        // Boxed: the query's state (hickory's lookup) would otherwise sit in the future of
        // every request that awaits a resolution, cached or not.
        Box::pin(self.shared_query(name)).await
    }

    /// What `resolve` answers without the network: literal, override or a live cache entry,
    /// positive only.
    pub fn cached(&self, host: &Host) -> Option<Resolved> {
        self.try_cached(host)?.ok()
    }

    /// Like [`Resolver::cached`], negative cached answers included.
    pub fn try_cached(&self, host: &Host) -> Option<Result<Resolved, DnsFailure>> {
        match host {
            Host::Ip(ip) => Some(Ok(literal(*ip))),
            Host::Name(name) => self.in_memory(name),
        }
    }

    fn in_memory(&self, name: &str) -> Option<Result<Resolved, DnsFailure>> {
        if let Some(addresses) = self.overrides.get(name) {
            return Some(Ok(Resolved {
                addresses: addresses.clone(),
                source: Source::Override,
                ttl: None,
            }));
        }
        let (answer, left) = self.cache.get(name, Instant::now())?;
        Some(answer.map(|addresses| Resolved {
            addresses,
            source: Source::Cache,
            ttl: Some(left),
        }))
    }

    /// One query per name at a time: later callers wait for the first one's answer.
    async fn shared_query(&self, name: &str) -> Result<Resolved, DnsFailure> {
        let cell = lock(&self.inflight).entry(name.into()).or_default().clone();
        let result = cell.get_or_init(|| self.query(name)).await.clone();
        let mut inflight = lock(&self.inflight);
        if inflight.get(name).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            inflight.remove(name);
        }
        result
    }

    async fn query(&self, name: &str) -> Result<Resolved, DnsFailure> {
        let fqdn = Name::from_ascii(format!("{name}.")).map_err(|e| {
            tracing::debug!(name, error = %e, "name refused by the dns library");
            DnsFailure::Other
        })?;
        let lookups = async {
            let a = self.hickory.lookup(fqdn.clone(), RecordType::A);
            if self.ipv6 {
                let (a, aaaa) =
                    tokio::join!(a, self.hickory.lookup(fqdn.clone(), RecordType::AAAA));
                vec![a, aaaa]
            } else {
                vec![a.await]
            }
        };
        let results = tokio::time::timeout(self.deadline, lookups)
            .await
            .map_err(|_| DnsFailure::Timeout)?;

        let mut addresses: Vec<IpAddr> = Vec::new();
        let mut ttl: Option<u32> = None;
        let mut failures = Vec::new();
        for result in &results {
            let lookup = match result {
                Ok(lookup) => lookup,
                Err(e) => {
                    tracing::debug!(name, error = %e, "dns lookup failed");
                    failures.push(DnsFailure::from_error(e));
                    continue;
                }
            };
            let before = addresses.len();
            for record in lookup.answers() {
                let ip = match &record.data {
                    RData::A(a) => IpAddr::V4(a.0),
                    RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
                    RData::CNAME(_) => {
                        ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
                        continue;
                    }
                    _ => continue,
                };
                ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
                if !addresses.contains(&ip) {
                    addresses.push(ip);
                }
            }
            if addresses.len() == before {
                failures.push(DnsFailure::NoAddresses);
            }
        }

        let now = Instant::now();
        if addresses.is_empty() {
            let failure = if failures.contains(&DnsFailure::NxDomain) {
                DnsFailure::NxDomain
            } else {
                failures
                    .iter()
                    .copied()
                    .find(|f| *f != DnsFailure::NoAddresses)
                    .unwrap_or(DnsFailure::NoAddresses)
            };
            if failure.is_negative_answer() {
                self.cache
                    .insert(name, Err(failure), self.negative_ttl, now);
            }
            return Err(failure);
        }

        let ttl = Duration::from_secs(ttl.unwrap_or(0).into()).clamp(self.min_ttl, self.max_ttl);
        // One family answered and the other failed to: keep the partial answer briefly only.
        let partial = failures.iter().any(|f| !f.is_negative_answer());
        let ttl = if partial { self.min_ttl } else { ttl };
        let addresses: Arc<[IpAddr]> = addresses.into();
        let answer: Answer = Ok(addresses.clone());
        self.cache.insert(name, answer, ttl, now);
        Ok(Resolved {
            addresses,
            source: Source::Dns,
            ttl: Some(ttl),
        })
    }
}

fn literal(ip: IpAddr) -> Resolved {
    Resolved {
        addresses: Arc::from([ip]),
        source: Source::Literal,
        ttl: None,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;
