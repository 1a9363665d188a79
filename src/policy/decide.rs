//! `decide()`: the decision for one request, a pure function of the state snapshot, the
//! request and the resolved addresses. The precedence it implements is written down in
//! the README, "How a request is decided (precedence)".

use std::net::IpAddr;
use std::sync::Arc;

use time::Date;

use crate::geo::{Classification, OperatorRegistry};
use crate::policy::compile::{MatchInput, Policy};
use crate::policy::decision::{Decision, IpVerdict, Mode, Outcome, Provenance, Reason, Violation};
use crate::policy::model::{
    Action, AnycastLocation, IpSelection, UnknownLocation, UnknownOperator,
};
use crate::policy::normal::Criteria;
use crate::resolve::{Destination, DnsFailure, Host};
use crate::state::State;

/// What is known of a request when it is decided.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub client: IpAddr,
    pub destination: &'a Destination,
    /// `None` for a CONNECT tunnel: rules with `methods` or `paths` do not match it.
    pub http: Option<HttpFacts<'a>>,
}

/// The method and path of a request whose HTTP is visible.
#[derive(Debug, Clone, Copy)]
pub struct HttpFacts<'a> {
    pub method: &'a str,
    /// The request target's path (a query after `?` is ignored for matching).
    pub path: &'a str,
}

/// What resolving the destination gave.
#[derive(Debug, Clone, Copy)]
pub enum Resolution<'a> {
    Addresses(&'a [IpAddr]),
    Failed(DnsFailure),
}

/// Decides a request against one state snapshot. An IP-literal destination is its own
/// single address: `resolution` is not consulted for it.
pub fn decide(
    state: &State,
    req: &Request<'_>,
    resolution: Resolution<'_>,
    today: Date,
) -> Decision {
    let policy = &state.policy;
    let addrs = match (&req.destination.host, resolution) {
        (Host::Ip(ip), _) => Ok(std::slice::from_ref(ip)),
        (Host::Name(_), Resolution::Failed(failure)) => Err(failure),
        (Host::Name(_), Resolution::Addresses([])) => Err(DnsFailure::NoAddresses),
        (Host::Name(_), Resolution::Addresses(addrs)) => Ok(addrs),
    };
    // Classified as the verdicts are built: no list of classifications in between.
    let classes = addrs.map(|addrs| {
        addrs
            .iter()
            .map(|ip| state.geo.classify(*ip, &policy.networks))
    });
    policy.evaluate(
        req,
        classes,
        today,
        &state.provenance,
        Some(&state.geo.registry),
    )
}

impl Policy {
    /// The decision for classified addresses, without any database: what `decide` does
    /// once every address is classified (and what unit tests call with hand-made ones).
    pub fn judge(
        &self,
        req: &Request<'_>,
        classes: Vec<Classification>,
        today: Date,
        provenance: &Arc<Provenance>,
    ) -> Decision {
        self.evaluate(req, Ok(classes.into_iter()), today, provenance, None)
    }

    fn evaluate(
        &self,
        req: &Request<'_>,
        classes: Result<impl Iterator<Item = Classification>, DnsFailure>,
        today: Date,
        provenance: &Arc<Provenance>,
        registry: Option<&OperatorRegistry>,
    ) -> Decision {
        let input = MatchInput {
            client: req.client,
            destination: req.destination,
            http: req.http.map(|h| (h.method, h.path)),
        };
        // 1. The rule: first match in merge order, expired exemptions skipped.
        let matched = self.find_rule(&input, today);
        let rule = matched.rule;
        let criteria = rule.map_or(&self.defaults, |r| &r.criteria);
        let action = rule.map_or(Action::Enforce, |r| r.action);
        let mut d = Decision {
            outcome: Outcome::Block,
            reason: Reason::PortNotAllowed,
            rule: rule.map(|r| r.id.clone()),
            mode: self.mode,
            ips: Vec::new(),
            connect: Vec::new(),
            notes: matched.notes,
            provenance: provenance.clone(),
        };

        // 2. DNS failure: nothing to judge the addresses on.
        let classes = match classes {
            Ok(c) => c,
            Err(failure) => {
                // A port that no rule allows is refused before any lookup matters.
                if !criteria.allows_port(req.destination.port) {
                    return d;
                }
                d.outcome = Outcome::Failed;
                d.reason = Reason::from_dns(failure);
                return d;
            }
        };
        d.ips = classes
            .into_iter()
            .map(|class| {
                let violation = violation(&class, criteria, action)
                    .or_else(|| missing_qualification(&class, criteria, action, registry, today));
                IpVerdict { class, violation }
            })
            .collect();

        // 3. The port: a security block, in monitor mode too.
        if !criteria.allows_port(req.destination.port) {
            return d;
        }

        // 4. Special-purpose addresses: a security block, in monitor mode and for exemptions
        // too. `all` refuses the request; `pin` skips them like any non-compliant address.
        let is_special = |v: &IpVerdict| matches!(v.violation, Some(Violation::Special { .. }));
        let pin = criteria.ip_selection == IpSelection::Pin;
        if d.ips.iter().any(is_special) && (!pin || d.ips.iter().all(is_special)) {
            d.reason = Reason::SpecialAddress;
            return d;
        }
        let candidates = || d.ips.iter().filter(|v| !is_special(v)).map(|v| v.class.ip);

        // 5. The action.
        match action {
            Action::Block => {
                d.reason = Reason::RuleBlock;
                if self.mode == Mode::Monitor {
                    d.outcome = Outcome::WouldBlock;
                    d.connect = candidates().collect();
                }
            }
            Action::Allow => {
                d.outcome = Outcome::Exempt;
                d.reason = Reason::Exemption;
                d.connect = candidates().collect();
            }
            Action::Enforce => {
                let first_violation = d.ips.iter().find_map(|v| v.violation);
                let compliant: Vec<IpAddr> = d
                    .ips
                    .iter()
                    .filter(|v| v.violation.is_none())
                    .map(|v| v.class.ip)
                    .collect();
                let allowed = match criteria.ip_selection {
                    IpSelection::All => first_violation.is_none(),
                    IpSelection::Pin => !compliant.is_empty(),
                };
                if allowed {
                    d.outcome = Outcome::Allow;
                    d.reason = Reason::Compliant;
                    d.connect = compliant;
                } else {
                    // With pin, specials were skipped: the reason is the first other violation.
                    let reason = d
                        .ips
                        .iter()
                        .filter(|v| !is_special(v))
                        .find_map(IpVerdict::reason)
                        .unwrap_or(Reason::Compliant);
                    d.reason = reason;
                    if self.mode == Mode::Monitor {
                        d.outcome = Outcome::WouldBlock;
                        d.connect = candidates().collect();
                    }
                }
            }
        }
        d
    }
}

/// A rule's `required_qualifications`: each must be held, unexpired on `today`, by the
/// address's operator for that address (the registry's `qualifications`). Without a
/// registry (`Policy::judge`), none is held.
fn missing_qualification(
    class: &Classification,
    criteria: &Criteria,
    action: Action,
    registry: Option<&OperatorRegistry>,
    today: Date,
) -> Option<Violation> {
    if action != Action::Enforce || criteria.required_qualifications.is_empty() {
        return None;
    }
    let held = |q: &Arc<str>| match (registry, class.operator.as_deref()) {
        (Some(r), Some(op)) => r.qualified(op, q, class.ip, today),
        _ => false,
    };
    (!criteria.required_qualifications.iter().all(held)).then_some(Violation::QualificationMissing)
}

/// Why one address does not comply, if it does not. Special-purpose addresses that no
/// `[[network]]` entry names are always a violation; jurisdictions are judged only when the
/// action is `enforce`.
///
/// An anycast address (published without a region) is judged on its location as
/// `anycast_location` says: not at all (`operator`, the default), by the country database
/// (`database`), or as an unknown location (`unknown`). An unknown operator is judged by
/// `no_asn` when the address has no ASN at all, by `unknown_operator` when its ASN is one the
/// registry does not know.
fn violation(class: &Classification, criteria: &Criteria, action: Action) -> Option<Violation> {
    if let (Some(range), None) = (class.special, &class.network) {
        return Some(Violation::Special { range });
    }
    if action != Action::Enforce {
        return None;
    }
    // `None`: the location is not judged; `Some(None)`: judged, and unknown.
    let judged = match (class.anycast(), criteria.anycast_location) {
        (true, AnycastLocation::Operator) => None,
        (true, AnycastLocation::Unknown) => Some(None),
        _ => Some(class.location),
    };
    match judged {
        Some(Some(location)) if !criteria.allowed_locations.contains(location) => {
            return Some(Violation::LocationNotAllowed { location });
        }
        Some(None) if criteria.unknown_location == UnknownLocation::Block => {
            return Some(Violation::UnknownLocation);
        }
        _ => {}
    }
    match class.jurisdiction {
        Some(jurisdiction) if !criteria.allowed_operators.contains(jurisdiction) => {
            Some(Violation::OperatorNotAllowed { jurisdiction })
        }
        Some(_) => None,
        None => {
            let knob = match class.asn {
                None => criteria.no_asn.unwrap_or(criteria.unknown_operator),
                Some(_) => criteria.unknown_operator,
            };
            match knob {
                UnknownOperator::Allow => None,
                UnknownOperator::Block => Some(Violation::UnknownOperator),
                // Judged by location alone, which needs a location to judge by.
                UnknownOperator::Location if !matches!(judged, Some(Some(_))) => {
                    Some(Violation::UnknownOperator)
                }
                UnknownOperator::Location => None,
            }
        }
    }
}
