//! Where an IP is and who runs it: the country and ASN databases, the operator registry,
//! the collectivité's own networks and the special-purpose ranges, behind one `classify(ip)`.

pub mod db;
pub mod import;
pub mod networks;
pub mod published;
pub mod registry;
pub mod special;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::country::Country;
use crate::diag::Errors;

pub use db::{DatabaseInfo, DbKind, GeoDb, GeoDbError, Schema};
pub use networks::{LocalNetwork, LocalNetworks};
pub use registry::{Operator, OperatorRegistry, RegistryError};
pub use special::{canonical, special_range, SpecialRange};

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

/// Why the geolocation state could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error(transparent)]
    Database(#[from] GeoDbError),
    #[error("{}: a {found} database (`{database_type}`) is configured as the {expected} database; swap the paths", path.display())]
    WrongKind {
        path: PathBuf,
        expected: DbKind,
        found: DbKind,
        database_type: String,
    },
    #[error(transparent)]
    Registry(#[from] Errors),
}

/// The loaded geolocation state: both databases (each optional) and the operator registry.
/// Immutable once built; an update builds a new one and swaps it in.
#[derive(Debug)]
pub struct Geo {
    pub country: Option<GeoDb>,
    pub asn: Option<GeoDb>,
    pub registry: OperatorRegistry,
}

impl Geo {
    /// Reads the databases and the registry. A database of the wrong kind (an ASN file given
    /// as the country database, or the reverse) is an error, not a silent "unknown".
    pub fn load(
        country: Option<&Path>,
        asn: Option<&Path>,
        registry: &Path,
    ) -> Result<Geo, GeoError> {
        let country = country.map(|p| open_kind(p, DbKind::Country)).transpose()?;
        let asn = asn.map(|p| open_kind(p, DbKind::Asn)).transpose()?;
        let registry = OperatorRegistry::load(registry)?;
        Ok(Geo {
            country,
            asn,
            registry,
        })
    }

    /// Classifies one address. `networks` (the policy's own entries) win over every database.
    ///
    /// Order: canonical form (IPv4-mapped and NAT64 as their IPv4); the most specific
    /// `[[network]]` entry (its location and operator jurisdiction, where it names them);
    /// the special range; then, unless the address is special and no network entry names
    /// it, the country database, the ASN database, and the registry (by CIDR, then ASN)
    /// for the operator. An ASN that the registry does not list leaves the operator unknown.
    pub fn classify(&self, ip: IpAddr, networks: &LocalNetworks) -> Classification {
        let ip = special::canonical(ip);
        let special = special::special_range(ip);
        let mut c = Classification {
            ip,
            special,
            network: None,
            location: None,
            location_origin: Origin::Unknown,
            asn: None,
            as_org: None,
            operator: None,
            jurisdiction: None,
            operator_origin: Origin::Unknown,
        };
        let entry = networks.lookup(ip);
        if let Some(net) = entry {
            c.network = Some(net.label.clone());
            if let Some(location) = net.location {
                c.location = Some(location);
                c.location_origin = Origin::Network;
            }
            if let Some(jurisdiction) = net.operator {
                c.operator = Some(net.label.clone());
                c.jurisdiction = Some(jurisdiction);
                c.operator_origin = Origin::Network;
            }
        }
        // A special address is no one's to place unless the collectivité claimed it; then
        // the databases may fill what its entry left out (test fixtures place loopback).
        if special.is_some() && entry.is_none() {
            return c;
        }
        if c.location.is_none() {
            if let Some(location) = self.country.as_ref().and_then(|db| db.country(ip)) {
                c.location = Some(location);
                c.location_origin = Origin::Database;
            }
        }
        if let Some((asn, org)) = self.asn.as_ref().and_then(|db| db.asn(ip)) {
            c.asn = Some(asn);
            c.as_org = org.map(Box::from);
        }
        if c.operator_origin == Origin::Unknown {
            if let Some(op) = self.registry.lookup(ip, c.asn) {
                c.operator = Some(op.name.clone());
                c.jurisdiction = Some(op.jurisdiction);
                c.operator_origin = Origin::Registry;
            }
        }
        c
    }
}

fn open_kind(path: &Path, expected: DbKind) -> Result<GeoDb, GeoError> {
    let db = GeoDb::open(path)?;
    if db.info.kind != expected {
        return Err(GeoError::WrongKind {
            path: path.to_owned(),
            expected,
            found: db.info.kind,
            database_type: db.info.database_type.clone(),
        });
    }
    Ok(db)
}
