//! The validated, normalised policy: what the files mean, independent of how they are
//! written. Its canonical JSON serialisation is what the policy version hashes.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use time::Date;

use crate::country::{Country, CountrySet};
use crate::policy::decision::{Mode, Reason};
use crate::policy::model::{
    Action, AnycastLocation, Expect, IpSelection, UnknownLocation, UnknownOperator,
};
use crate::resolve::Destination;

/// Where something was written: for messages, `douane test` output and `douane check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// The jurisdiction test that applies to the addresses of a request: the policy defaults,
/// or a rule's own values with the defaults filling what it leaves unset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Criteria {
    pub allowed_locations: CountrySet,
    pub allowed_operators: CountrySet,
    pub unknown_location: UnknownLocation,
    pub unknown_operator: UnknownOperator,
    /// No ASN at all; `None`: as `unknown_operator`.
    pub no_asn: Option<UnknownOperator>,
    pub anycast_location: AnycastLocation,
    /// Qualifications the operator of each address must hold (rules only).
    pub required_qualifications: Vec<Arc<str>>,
    pub ip_selection: IpSelection,
    /// Sorted, without duplicates.
    pub allowed_ports: Vec<u16>,
}

impl Criteria {
    pub fn allows_port(&self, port: u16) -> bool {
        self.allowed_ports.binary_search(&port).is_ok()
    }
}

/// A host pattern of a rule, normalised like destinations are (lowercase ASCII, punycode,
/// no trailing dot).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostPattern {
    /// `crm.example`: that name only.
    Exact(Box<str>),
    /// `*.example.org`, stored as `example.org`: any name below it, not the apex.
    Suffix(Box<str>),
    /// An IP literal destination (`https://192.0.2.10/`).
    Ip(IpAddr),
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Suffix(s) => write!(f, "*.{s}"),
            HostPattern::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A validated `[[network]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkSpec {
    pub cidr: IpNet,
    pub location: Option<Country>,
    pub operator: Option<Country>,
    pub label: Arc<str>,
}

/// A validated `[[rule]]`, its criteria resolved against the policy defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSpec {
    pub id: Arc<str>,
    pub action: Action,
    /// Each match list is sorted and deduplicated; empty means "any".
    pub clients: Vec<IpNet>,
    pub hosts: Vec<HostPattern>,
    pub ports: Vec<u16>,
    pub methods: Vec<Box<str>>,
    pub paths: Vec<Box<str>>,
    pub criteria: Criteria,
    pub justification: Option<Arc<str>>,
    pub ticket: Option<Arc<str>>,
    #[serde(serialize_with = "iso_date_opt")]
    pub expires: Option<Date>,
    pub description: Option<Arc<str>>,
    #[serde(skip)]
    pub origin: Origin,
}

/// How a test request reaches douane, derived from its url and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestTarget {
    pub destination: Destination,
    /// `None` for a CONNECT tunnel (an `https` url without `method`, or `method = "CONNECT"`).
    pub http: Option<(Box<str>, Box<str>)>,
}

/// A validated `[[test]]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestSpec {
    pub url: Box<str>,
    pub client: IpAddr,
    pub method: Option<Box<str>>,
    pub resolve: Vec<IpAddr>,
    #[serde(serialize_with = "iso_date_opt")]
    pub date: Option<Date>,
    pub expect: Expect,
    pub expect_rule: Option<Arc<str>>,
    pub expect_reason: Option<Reason>,
    pub description: Option<Box<str>>,
    #[serde(skip)]
    pub target: TestTarget,
    #[serde(skip)]
    pub origin: Origin,
}

/// The whole validated policy: what the version is computed over.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    pub name: Arc<str>,
    pub mode: Mode,
    pub description: Option<Arc<str>>,
    pub defaults: Criteria,
    /// Sorted by CIDR: the lookup is longest-prefix, so their order carries no meaning.
    pub networks: Vec<NetworkSpec>,
    /// In merge order: first match wins, so their order is meaning.
    pub rules: Vec<RuleSpec>,
    pub tests: Vec<TestSpec>,
    /// The files it was read from, in merge order (not part of the version).
    #[serde(skip)]
    pub sources: Vec<PathBuf>,
}

impl Model {
    /// SHA-256 (hex) over the canonical JSON of the model. Comments, key order, whitespace,
    /// the order of set-like lists and the split into files do not change it; any change to
    /// a name, value, rule order or test does.
    pub fn version(&self) -> String {
        let canon = Canonical::new(self);
        // Serialising plain structs to a Vec cannot fail; an empty hash input would still be
        // a stable (if useless) version, never a panic.
        let json = serde_json::to_vec(&canon).unwrap_or_default();
        hex::encode(Sha256::digest(&json))
    }
}

/// The model as hashed: each distinct country set is written once, and criteria refer to
/// it by index (listing 676 possible codes for each of 10,000 rules would dominate the
/// load time). Indexes follow first appearance, defaults first, then rules in order.
#[derive(Serialize)]
struct Canonical<'a> {
    sets: Vec<CountrySet>,
    name: &'a str,
    mode: Mode,
    description: Option<&'a str>,
    defaults: CanonCriteria<'a>,
    networks: &'a [NetworkSpec],
    rules: Vec<CanonRule<'a>>,
    tests: &'a [TestSpec],
}

#[derive(Serialize)]
struct CanonCriteria<'a> {
    allowed_locations: usize,
    allowed_operators: usize,
    unknown_location: UnknownLocation,
    unknown_operator: UnknownOperator,
    // Unset knobs are left out, so that policies written before them keep their version.
    #[serde(skip_serializing_if = "Option::is_none")]
    no_asn: Option<UnknownOperator>,
    #[serde(skip_serializing_if = "AnycastLocation::is_default")]
    anycast_location: AnycastLocation,
    #[serde(skip_serializing_if = "<[Arc<str>]>::is_empty")]
    required_qualifications: &'a [Arc<str>],
    ip_selection: IpSelection,
    allowed_ports: &'a [u16],
}

#[derive(Serialize)]
struct CanonRule<'a> {
    id: &'a str,
    action: Action,
    clients: &'a [IpNet],
    hosts: &'a [HostPattern],
    ports: &'a [u16],
    methods: &'a [Box<str>],
    paths: &'a [Box<str>],
    criteria: CanonCriteria<'a>,
    justification: Option<&'a str>,
    ticket: Option<&'a str>,
    #[serde(serialize_with = "iso_date_opt")]
    expires: Option<Date>,
    description: Option<&'a str>,
}

impl<'a> Canonical<'a> {
    fn new(model: &'a Model) -> Self {
        let mut sets: Vec<CountrySet> = Vec::new();
        let mut criteria = |c: &'a Criteria| {
            let mut index = |set: CountrySet| match sets.iter().position(|s| *s == set) {
                Some(i) => i,
                None => {
                    sets.push(set);
                    sets.len() - 1
                }
            };
            CanonCriteria {
                allowed_locations: index(c.allowed_locations),
                allowed_operators: index(c.allowed_operators),
                unknown_location: c.unknown_location,
                unknown_operator: c.unknown_operator,
                no_asn: c.no_asn,
                anycast_location: c.anycast_location,
                required_qualifications: &c.required_qualifications,
                ip_selection: c.ip_selection,
                allowed_ports: &c.allowed_ports,
            }
        };
        let defaults = criteria(&model.defaults);
        let rules = model
            .rules
            .iter()
            .map(|r| CanonRule {
                id: &r.id,
                action: r.action,
                clients: &r.clients,
                hosts: &r.hosts,
                ports: &r.ports,
                methods: &r.methods,
                paths: &r.paths,
                criteria: criteria(&r.criteria),
                justification: r.justification.as_deref(),
                ticket: r.ticket.as_deref(),
                expires: r.expires,
                description: r.description.as_deref(),
            })
            .collect();
        Canonical {
            sets,
            name: &model.name,
            mode: model.mode,
            description: model.description.as_deref(),
            defaults,
            networks: &model.networks,
            rules,
            tests: &model.tests,
        }
    }
}

/// Dates as `YYYY-MM-DD`, as they are written in the files (`time` would write a tuple).
pub(crate) fn iso_date<S: Serializer>(date: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

pub(crate) fn iso_date_opt<S: Serializer>(date: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
    match date {
        Some(d) => iso_date(d, s),
        None => s.serialize_none(),
    }
}
