//! The compiled policy: the validated model plus a host index, so that finding the rule of a
//! request costs a few hash lookups whatever the number of rules.

use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use time::Date;

use crate::geo::{LocalNetwork, LocalNetworks};
use crate::policy::decision::{Mode, Note};
use crate::policy::model::Action;
use crate::policy::normal::{Criteria, HostPattern, Model, RuleSpec, TestSpec};
use crate::resolve::{Destination, Host};

/// A policy ready to decide: immutable once built.
#[derive(Debug)]
pub struct Policy {
    pub name: Arc<str>,
    /// SHA-256 (hex) of the canonical content, see [`Model::version`].
    pub version: Arc<str>,
    pub mode: Mode,
    pub description: Option<Arc<str>>,
    /// What applies when no rule matches.
    pub defaults: Criteria,
    /// The `[[network]]` entries, for `Geo::classify`.
    pub networks: LocalNetworks,
    /// In merge order; a rule's index is its precedence.
    pub rules: Vec<RuleSpec>,
    pub tests: Vec<TestSpec>,
    /// The files it was read from, in merge order.
    pub sources: Vec<PathBuf>,
    index: HostIndex,
}

/// Rule indexes by host pattern, each list ascending. Fx-hashed: built once from the
/// policy, then only read, so a requested host cannot make the tables degrade.
#[derive(Debug, Default)]
struct HostIndex {
    exact: FxHashMap<Box<str>, Vec<u32>>,
    /// Keyed by the suffix without `*.`: `a.b.example` looks up `b.example` and `example`.
    suffix: FxHashMap<Box<str>, Vec<u32>>,
    ip: FxHashMap<IpAddr, Vec<u32>>,
    /// Rules without `hosts`: candidates for every destination.
    any_host: Vec<u32>,
}

/// The request facts a rule matches on.
#[derive(Debug, Clone, Copy)]
pub struct MatchInput<'a> {
    pub client: IpAddr,
    pub destination: &'a Destination,
    /// `(method, path)` when HTTP is visible; `None` for a CONNECT tunnel.
    pub http: Option<(&'a str, &'a str)>,
}

/// The rule that applies to a request, and the expired exemptions that would have.
#[derive(Debug, Default)]
pub struct Matched<'p> {
    pub rule: Option<&'p RuleSpec>,
    pub notes: Vec<Note>,
}

impl Policy {
    /// Builds the index; the model is already valid, so this cannot fail.
    pub fn compile(model: Model) -> Policy {
        let version = model.version();
        let mut index = HostIndex::default();
        for (i, rule) in model.rules.iter().enumerate() {
            // More than u32::MAX rules cannot be written in a file that fits in memory.
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            if rule.hosts.is_empty() {
                index.any_host.push(i);
            }
            for pattern in &rule.hosts {
                let list = match pattern {
                    HostPattern::Exact(h) => index.exact.entry(h.clone()).or_default(),
                    HostPattern::Suffix(s) => index.suffix.entry(s.clone()).or_default(),
                    HostPattern::Ip(ip) => index.ip.entry(*ip).or_default(),
                };
                // Patterns of a rule are deduplicated, so `i` is pushed at most once per key.
                list.push(i);
            }
        }
        let networks = model
            .networks
            .iter()
            .map(|n| LocalNetwork {
                cidr: n.cidr,
                location: n.location,
                operator: n.operator,
                label: n.label.clone(),
            })
            .collect();
        Policy {
            name: model.name,
            version: version.into(),
            mode: model.mode,
            description: model.description,
            defaults: model.defaults,
            networks: LocalNetworks::new(networks),
            rules: model.rules,
            tests: model.tests,
            sources: model.sources,
            index,
        }
    }

    /// The first rule, in merge order, whose conditions all hold; exemptions expired before
    /// `today` are skipped, each leaving a note if it comes before the rule that applies.
    pub fn find_rule(&self, input: &MatchInput<'_>, today: Date) -> Matched<'_> {
        let client = canonical_ip(input.client);
        let mut best = u32::MAX;
        let mut expired: Vec<u32> = Vec::new();
        let mut scan = |list: &[u32], best: &mut u32| {
            for &i in list {
                if i >= *best {
                    break;
                }
                let Some(rule) = self.rules.get(i as usize) else {
                    break;
                };
                if !conditions_hold(rule, client, input) {
                    continue;
                }
                if is_expired(rule, today) {
                    expired.push(i);
                    continue;
                }
                *best = i;
                break;
            }
        };
        match &input.destination.host {
            Host::Name(name) => {
                if let Some(list) = self.index.exact.get(&**name) {
                    scan(list, &mut best);
                }
                // Every proper suffix: `a.b.example` → `b.example`, `example`.
                let mut rest: &str = name;
                while let Some(dot) = rest.find('.') {
                    rest = &rest[dot + 1..];
                    if let Some(list) = self.index.suffix.get(rest) {
                        scan(list, &mut best);
                    }
                }
            }
            Host::Ip(ip) => {
                if let Some(list) = self.index.ip.get(&canonical_ip(*ip)) {
                    scan(list, &mut best);
                }
            }
        }
        scan(&self.index.any_host, &mut best);

        let rule = self.rules.get(best as usize);
        let mut notes = Vec::new();
        if !expired.is_empty() {
            expired.sort_unstable();
            expired.dedup();
            for i in expired.into_iter().filter(|&i| i < best) {
                if let Some(r) = self.rules.get(i as usize) {
                    if let Some(date) = r.expires {
                        notes.push(Note::ExemptionExpired {
                            rule: r.id.clone(),
                            expired: date,
                        });
                    }
                }
            }
        }
        Matched { rule, notes }
    }
}

/// An exemption applies up to and including its `expires` day.
pub(crate) fn is_expired(rule: &RuleSpec, today: Date) -> bool {
    rule.action == Action::Allow && rule.expires.is_some_and(|d| today > d)
}

/// Client, port, method and path conditions (the host was matched by the index).
fn conditions_hold(rule: &RuleSpec, client: IpAddr, input: &MatchInput<'_>) -> bool {
    if !rule.clients.is_empty() && !rule.clients.iter().any(|n| n.contains(&client)) {
        return false;
    }
    if !rule.ports.is_empty() && rule.ports.binary_search(&input.destination.port).is_err() {
        return false;
    }
    if rule.methods.is_empty() && rule.paths.is_empty() {
        return true;
    }
    // Methods and paths can only be seen when HTTP is: never for a CONNECT tunnel.
    let Some((method, path)) = input.http else {
        return false;
    };
    if !rule.methods.is_empty() && !rule.methods.iter().any(|m| **m == *method) {
        return false;
    }
    if !rule.paths.is_empty() {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        if !rule.paths.iter().any(|p| path.starts_with(&**p)) {
            return false;
        }
    }
    true
}

/// IPv4-mapped IPv6 addresses are the IPv4 they carry.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Default for Policy {
    /// A policy that allows no location or operator: what a state has before one is loaded.
    fn default() -> Self {
        Policy::compile(Model {
            name: "".into(),
            mode: Mode::Enforce,
            description: None,
            defaults: Criteria {
                allowed_locations: Default::default(),
                allowed_operators: Default::default(),
                unknown_location: Default::default(),
                unknown_operator: Default::default(),
                no_asn: None,
                anycast_location: Default::default(),
                required_qualifications: Vec::new(),
                ip_selection: Default::default(),
                allowed_ports: crate::policy::parse::DEFAULT_PORTS.to_vec(),
            },
            networks: Vec::new(),
            rules: Vec::new(),
            tests: Vec::new(),
            sources: Vec::new(),
        })
    }
}
