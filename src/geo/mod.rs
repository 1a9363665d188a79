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
pub use published::{PublishedError, PublishedRanges, PublishedSummary, RangeFacts};
pub use registry::{Operator, OperatorRegistry, RegistryError};
pub use special::{canonical, special_range, SpecialRange};

/// Where a fact about an address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A `[[network]]` entry of the policy.
    Network,
    /// A provider's own published ranges (`data/published.bin`).
    Published,
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
            Origin::Published => "published",
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
    /// The AS organisation, inline when it is short (most are): no allocation per lookup.
    pub as_org: Option<compact_str::CompactString>,
    /// The operator's name, from the registry (or the network entry's label).
    pub operator: Option<Arc<str>>,
    /// The operator jurisdiction.
    pub jurisdiction: Option<Country>,
    pub operator_origin: Origin,
    /// The provider's published range holding the address, if one does (with what the
    /// country database says, once looked up, whether or not it agrees).
    pub published: Option<PublishedFact>,
}

impl Classification {
    /// Published without a region by its provider (and not placed by a `[[network]]`
    /// entry): no location is claimed; the policy's `anycast_location` says how to judge it.
    pub fn anycast(&self) -> bool {
        self.location_origin != Origin::Network
            && self.published.as_ref().is_some_and(|p| p.anycast)
    }

    /// No autonomous system at all for this address (and no operator from anywhere else):
    /// a different unknown from an ASN the registry does not know.
    pub fn no_asn(&self) -> bool {
        self.asn.is_none() && self.jurisdiction.is_none()
    }
}

/// The published range an address is in: the most specific prefix, its facts and source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedFact {
    pub prefix: ipnet::IpNet,
    #[serde(flatten)]
    pub facts: Arc<RangeFacts>,
    /// Published without a region: no location claimed.
    pub anycast: bool,
    /// The country database's answer for the address, kept beside the published region's
    /// once looked up ([`Geo::with_database_location`]).
    pub database_location: Option<Country>,
    /// Whether `database_location` is the database's answer (else not looked up yet: the
    /// published region named the location).
    #[serde(skip)]
    pub database_looked_up: bool,
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
    #[error(transparent)]
    Published(#[from] PublishedError),
}

/// The loaded geolocation state: both databases (each optional) and the operator registry.
/// Immutable once built; an update builds a new one and swaps it in.
#[derive(Debug)]
pub struct Geo {
    pub country: Option<GeoDb>,
    pub asn: Option<GeoDb>,
    pub registry: OperatorRegistry,
    /// The providers' published ranges, with the operator each publisher maps to.
    pub published: Option<PublishedAttribution>,
}

/// Published ranges joined to the registry: for each range fact, the operator that the
/// registry's `published` keys give its publisher (`"aws:cn-north-1"` before `"aws"`).
#[derive(Debug)]
pub struct PublishedAttribution {
    pub ranges: Arc<PublishedRanges>,
    operators: Vec<Option<PublisherOperator>>,
}

/// The registry operator (name, jurisdiction) a publisher's ranges are attributed to.
pub type PublisherOperator = (Arc<str>, Country);

impl PublishedAttribution {
    pub fn new(ranges: Arc<PublishedRanges>, registry: &OperatorRegistry) -> Self {
        let operators = ranges
            .facts()
            .iter()
            .map(|f| {
                let op = f
                    .region
                    .as_ref()
                    .and_then(|r| registry.by_publisher(&format!("{}:{r}", f.publisher)))
                    .or_else(|| registry.by_publisher(&f.publisher))?;
                Some((op.name.clone(), op.jurisdiction))
            })
            .collect();
        PublishedAttribution { ranges, operators }
    }

    /// Publishers (or publisher:region keys) of the loaded ranges that no registry entry
    /// names: their ranges place addresses but attribute no operator.
    pub fn unattributed_publishers(&self) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = self
            .ranges
            .facts()
            .iter()
            .zip(&self.operators)
            .filter(|(_, op)| op.is_none())
            .map(|(f, _)| f.publisher.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    #[inline]
    fn find(
        &self,
        ip: IpAddr,
    ) -> Option<(ipnet::IpNet, &Arc<RangeFacts>, Option<&PublisherOperator>)> {
        let (prefix, index) = self.ranges.lookup(ip)?;
        let facts = self.ranges.fact(index)?;
        let operator = self.operators.get(index as usize).and_then(Option::as_ref);
        Some((prefix, facts, operator))
    }
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
            published: None,
        })
    }

    /// Adds the providers' published ranges (attributed through this registry).
    pub fn with_published(mut self, ranges: Option<Arc<PublishedRanges>>) -> Geo {
        self.published = ranges.map(|r| PublishedAttribution::new(r, &self.registry));
        self
    }

    /// Reads the published-ranges artifact, refusing a truncated or corrupt one.
    pub fn load_published(path: &Path) -> Result<Arc<PublishedRanges>, GeoError> {
        Ok(Arc::new(PublishedRanges::open(path)?))
    }

    /// Classifies one address. Precedence (README, "Where an address's facts come from"):
    ///
    /// 1. canonical form (IPv4-mapped and NAT64 as their IPv4), then the most specific
    ///    `[[network]]` entry: its location and operator jurisdiction, where it names them;
    /// 2. a special-purpose address that no network entry names stops here;
    /// 3. the most specific **published range**: the location from the region it names (the
    ///    country database is not asked; [`Geo::with_database_location`] adds its answer
    ///    beside the region's where a report shows both), the operator from its publisher
    ///    through the registry's `published` keys; a range without a region (anycast)
    ///    claims no location, and the country database's answer stands, marked anycast;
    /// 4. the country database for a location still unknown; the ASN database;
    /// 5. the registry (by CIDR, then ASN) for an operator still unknown. An ASN the
    ///    registry does not list leaves the operator unknown; so does no ASN at all.
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
            published: None,
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
        let published = self.published.as_ref().and_then(|p| p.find(ip));
        // The country database only where the location still needs it: a published region
        // that names a country answers without it (`with_database_location` adds the
        // database's answer for `explain`, which shows both).
        let mut database_location = None;
        let mut looked_up = false;
        if c.location.is_none() {
            match published.and_then(|(_, facts, _)| facts.country) {
                Some(country) => {
                    c.location = Some(country);
                    c.location_origin = Origin::Published;
                }
                None => {
                    database_location = self.country_db_location(ip);
                    looked_up = true;
                    if let Some(location) = database_location {
                        c.location = Some(location);
                        c.location_origin = Origin::Database;
                    }
                }
            }
        }
        if let Some((asn, org)) = self.asn.as_ref().and_then(|db| db.asn(ip)) {
            c.asn = Some(asn);
            c.as_org = org.map(compact_str::CompactString::from);
        }
        if let Some((prefix, facts, operator)) = published {
            if c.operator_origin == Origin::Unknown {
                if let Some((name, jurisdiction)) = operator {
                    c.operator = Some(name.clone());
                    c.jurisdiction = Some(*jurisdiction);
                    c.operator_origin = Origin::Published;
                }
            }
            c.published = Some(PublishedFact {
                prefix,
                facts: facts.clone(),
                anycast: facts.anycast(),
                database_location,
                database_looked_up: looked_up,
            });
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

    /// `c` with the country database's answer beside a published region's, for the
    /// reports that show both (`explain`, `test`); [`Geo::classify`] skips that lookup
    /// when the decision does not need it.
    pub fn with_database_location(&self, c: &mut Classification) {
        let ip = c.ip;
        if let Some(p) = c.published.as_mut() {
            if !p.database_looked_up {
                p.database_location = self.country_db_location(ip);
                p.database_looked_up = true;
            }
        }
    }

    #[inline]
    fn country_db_location(&self, ip: IpAddr) -> Option<Country> {
        self.country.as_ref().and_then(|db| db.country(ip))
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
