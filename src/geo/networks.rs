//! The collectivité's own networks (`[[network]]` in policy files), placed before any database.

use std::sync::Arc;

use ipnet::IpNet;
use serde::Serialize;

use crate::country::Country;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalNetwork {
    pub cidr: IpNet,
    pub location: Option<Country>,
    pub operator: Option<Country>,
    pub label: Arc<str>,
}

/// Longest-prefix lookup over the local networks.
#[derive(Debug, Clone, Default)]
pub struct LocalNetworks {
    entries: Vec<LocalNetwork>,
}

impl LocalNetworks {
    pub fn new(entries: Vec<LocalNetwork>) -> Self {
        LocalNetworks { entries }
    }

    pub fn entries(&self) -> &[LocalNetwork] {
        &self.entries
    }

    /// The most specific entry containing `ip`.
    pub fn lookup(&self, ip: std::net::IpAddr) -> Option<&LocalNetwork> {
        self.entries
            .iter()
            .filter(|n| n.cidr.contains(&ip))
            .max_by_key(|n| n.cidr.prefix_len())
    }
}
