//! DNS resolution with hickory-resolver, a TTL-honouring cache and static overrides.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Why a name did not resolve; each is a distinct reason in the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsFailure {
    NxDomain,
    ServFail,
    Timeout,
    NoAddresses,
    Refused,
    Other,
}

/// The addresses of a name, all of which the decision checks.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub addresses: Arc<[IpAddr]>,
}

/// The `[resolver]` table of `douane.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverConfig {}

pub struct Resolver {}

impl ResolverConfig {
    pub fn validate(&self) -> Vec<String> {
        Vec::new()
    }
}
