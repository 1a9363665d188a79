//! The decision the audit tests record: one US-run address (198.51.100.20, AS8075, operated
//! by Microsoft under US law) placed in `location`, decided by policy "collectivite"
//! version 7, in enforce mode and by no rule. Tests change what their case needs.

use std::sync::Arc;

use douane::country::Country;
use douane::geo::{Classification, Origin};
use douane::policy::{Decision, IpVerdict, Mode, Outcome, Provenance, Reason, Violation};

pub fn us_operated(
    outcome: Outcome,
    location: Country,
    reason: Reason,
    violation: Option<Violation>,
) -> Decision {
    let us = Country::parse("US").expect("US");
    Decision {
        outcome,
        reason,
        rule: None,
        mode: Mode::Enforce,
        ips: vec![IpVerdict {
            class: Classification {
                ip: "198.51.100.20".parse().expect("ip"),
                special: None,
                network: None,
                location: Some(location),
                location_origin: Origin::Database,
                asn: Some(8075),
                as_org: Some("MICROSOFT-CORP".into()),
                operator: Some(Arc::from("Microsoft")),
                jurisdiction: Some(us),
                operator_origin: Origin::Registry,
                published: None,
            },
            violation,
        }],
        connect: vec![],
        notes: vec![],
        provenance: Arc::new(Provenance {
            policy_name: Arc::from("collectivite"),
            policy_version: Arc::from("7"),
            country_db_built: None,
            asn_db_built: None,
            registry_version: Arc::from("1"),
            published: None,
        }),
    }
}

/// Placed in the US: refused (or not) for its location.
pub fn located_in_us(outcome: Outcome) -> Decision {
    let us = Country::parse("US").expect("US");
    us_operated(
        outcome,
        us,
        Reason::LocationNotAllowed,
        Some(Violation::LocationNotAllowed { location: us }),
    )
}
