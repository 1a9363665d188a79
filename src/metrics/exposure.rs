//! Extraterritorial exposure: which jurisdictions a decided request reaches outside the
//! allowed set, on which axis (where the address is, or whose law governs its operator).
//!
//! The policy judges an address on one axis at a time (location first) and not at all under
//! an exemption or a block rule, so its violations undercount: an address in the US run by
//! a US company is only "located outside". The metrics therefore judge both axes of every
//! address again, against the allowed sets of the rule that applied (those of the policy
//! defaults when no rule applied, or when the rule was an exemption or a block rule, which
//! carry no allowed sets of their own). Unknown locations or operators are not exposure (they
//! are counted as `unknown` in `douane_destination_requests_total`).
//!
//! When the decision was made against another policy version than the one loaded here (a
//! reload in between, or no `set_state` yet), the policy's violations are used as they are.

use std::sync::Arc;

use super::local::{country_key, Axis, CountryKey, FxMap};
use crate::country::CountrySet;
use crate::policy::{Action, Criteria, Decision, IpVerdict, Policy, Violation};

#[derive(Debug, Clone, Copy)]
struct Allowed {
    locations: CountrySet,
    operators: CountrySet,
}

impl From<&Criteria> for Allowed {
    fn from(c: &Criteria) -> Self {
        Allowed {
            locations: c.allowed_locations,
            operators: c.allowed_operators,
        }
    }
}

/// The allowed sets of one policy version, by rule id.
#[derive(Debug)]
pub(crate) struct Judge {
    version: Arc<str>,
    defaults: Allowed,
    /// Rules with `action = "enforce"` only: the others are judged by the defaults.
    rules: FxMap<Box<str>, Allowed>,
}

impl Judge {
    pub fn new(policy: &Policy) -> Judge {
        let rules = policy
            .rules
            .iter()
            .filter(|r| r.action == Action::Enforce)
            .map(|r| (Box::<str>::from(&*r.id), Allowed::from(&r.criteria)))
            .collect();
        Judge {
            version: policy.version.clone(),
            defaults: Allowed::from(&policy.defaults),
            rules,
        }
    }

    fn allowed(&self, d: &Decision) -> Option<Allowed> {
        if *d.provenance.policy_version != *self.version {
            return None;
        }
        Some(match &d.rule {
            Some(id) => self.rules.get(&**id).copied().unwrap_or(self.defaults),
            None => self.defaults,
        })
    }
}

/// The addresses a decision exposes its request to: those it may connect to when it lets
/// the request through (with `ip_selection = "pin"`, the skipped ones are not reached), every
/// address otherwise (a block is exposure that enforcement removed).
pub(crate) fn considered(d: &Decision) -> impl Iterator<Item = &IpVerdict> {
    let all = d.connect.is_empty();
    d.ips
        .iter()
        .filter(move |v| all || d.connect.contains(&v.class.ip))
}

/// The address whose jurisdictions label the request in `douane_destination_requests_total`.
pub(crate) fn first_considered(d: &Decision) -> Option<&IpVerdict> {
    considered(d).next()
}

const MAX_PAIRS: usize = 16;

/// The distinct (jurisdiction, axis) pairs of one request, without allocating.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exposures {
    pairs: [(CountryKey, Axis); MAX_PAIRS],
    len: usize,
}

impl Exposures {
    fn push(&mut self, jurisdiction: CountryKey, axis: Axis) {
        let pair = (jurisdiction, axis);
        if self.len < MAX_PAIRS && !self.pairs[..self.len].contains(&pair) {
            self.pairs[self.len] = pair;
            self.len += 1;
        }
    }

    pub fn pairs(&self) -> &[(CountryKey, Axis)] {
        &self.pairs[..self.len]
    }

    /// Each jurisdiction once, whatever the axis.
    pub fn jurisdictions(&self) -> impl Iterator<Item = CountryKey> + '_ {
        let pairs = self.pairs();
        pairs
            .iter()
            .enumerate()
            .filter(move |(i, (j, _))| !pairs[..*i].iter().any(|(k, _)| k == j))
            .map(|(_, (j, _))| *j)
    }
}

pub(crate) fn exposures(judge: Option<&Judge>, d: &Decision) -> Exposures {
    let mut out = Exposures {
        pairs: [(0, Axis::Location); MAX_PAIRS],
        len: 0,
    };
    let allowed = judge.and_then(|j| j.allowed(d));
    for v in considered(d) {
        let c = &v.class;
        // A special-purpose address no network entry claims is nobody's jurisdiction.
        if c.special.is_some() && c.network.is_none() {
            continue;
        }
        match allowed {
            Some(a) => {
                if let Some(l) = c.location.filter(|l| !a.locations.contains(*l)) {
                    out.push(country_key(Some(l)), Axis::Location);
                }
                if let Some(j) = c.jurisdiction.filter(|j| !a.operators.contains(*j)) {
                    out.push(country_key(Some(j)), Axis::Operator);
                }
            }
            None => match v.violation {
                Some(Violation::LocationNotAllowed { location }) => {
                    out.push(country_key(Some(location)), Axis::Location)
                }
                Some(Violation::OperatorNotAllowed { jurisdiction }) => {
                    out.push(country_key(Some(jurisdiction)), Axis::Operator)
                }
                _ => {}
            },
        }
    }
    out
}
