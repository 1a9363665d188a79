//! Where an IP is and who runs it: the country and ASN databases, the operator registry,
//! the collectivité's own networks and the special-purpose ranges, behind one `classify(ip)`.

pub mod db;
pub mod import;
pub mod networks;
pub mod registry;
pub mod special;

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::country::Country;

pub use db::{DatabaseInfo, GeoDb, GeoDbError};
pub use networks::{LocalNetwork, LocalNetworks};
pub use registry::{Operator, OperatorRegistry, RegistryError};
pub use special::SpecialRange;

/// Where a fact about an address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A `[[network]]` entry of the policy.
    Network,
    /// The country or ASN database.
    Database,
    /// The operator registry (`operators.toml`).
    Registry,
    /// Nothing knew.
    Unknown,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Network => "network",
            Origin::Database => "database",
            Origin::Registry => "registry",
            Origin::Unknown => "unknown",
        }
    }
}

/// Everything douane knows about one address.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The address in canonical form (IPv4-mapped and NAT64 addresses as their IPv4).
    pub ip: IpAddr,
    /// A special-purpose range the address is in (loopback, private, …), if any.
    pub special: Option<SpecialRange>,
    /// The label of the `[[network]]` entry that placed the address, if one did.
    pub network: Option<Arc<str>>,
    /// The location jurisdiction.
    pub location: Option<Country>,
    pub location_origin: Origin,
    pub asn: Option<u32>,
    pub as_org: Option<Box<str>>,
    /// The operator's name, from the registry (or the network entry's label).
    pub operator: Option<Arc<str>>,
    /// The operator jurisdiction.
    pub jurisdiction: Option<Country>,
    pub operator_origin: Origin,
}

/// The loaded geolocation state: both databases (each optional) and the operator registry.
#[derive(Debug)]
pub struct Geo {
    pub country: Option<GeoDb>,
    pub asn: Option<GeoDb>,
    pub registry: OperatorRegistry,
}

impl Geo {
    /// Classifies one address. `networks` (the policy's own entries) win over every database.
    pub fn classify(&self, ip: IpAddr, networks: &LocalNetworks) -> Classification {
        let _ = networks;
        Classification {
            ip,
            special: None,
            network: None,
            location: None,
            location_origin: Origin::Unknown,
            asn: None,
            as_org: None,
            operator: None,
            jurisdiction: None,
            operator_origin: Origin::Unknown,
        }
    }
}
