//! Unit tests of the policy module: parser errors, matching, the decision, versions.

mod decide;
mod matching;
mod parse;

use std::net::IpAddr;
use std::sync::Arc;

use time::macros::date;
use time::Date;

use crate::country::Country;
use crate::diag::{Errors, SourceFile};
use crate::geo::{Classification, Origin as GeoOrigin, SpecialRange};
use crate::policy::{Policy, Provenance};
use crate::resolve::{Destination, Host};

pub(super) const TODAY: Date = date!(2026 - 05 - 01);

pub(super) const BASE: &str = r#"
[policy]
name = "mairie"
allowed_locations = ["EU", "EEA"]
allowed_operators = ["EU", "EEA"]
"#;

pub(super) fn load(files: &[(&str, &str)]) -> Result<Policy, Errors> {
    Policy::from_sources(
        files
            .iter()
            .map(|(path, text)| SourceFile::new(*path, *text))
            .collect(),
    )
}

pub(super) fn policy(text: &str) -> Policy {
    match load(&[("p.toml", text)]) {
        Ok(p) => p,
        Err(e) => panic!("policy should load:\n{e}"),
    }
}

/// The errors of a policy that must not load, one `path:line:col: message` each.
pub(super) fn errors(files: &[(&str, &str)]) -> Vec<String> {
    match load(files) {
        Ok(_) => panic!("policy should not load"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(super) fn c(code: &str) -> Country {
    Country::parse(code).unwrap()
}

pub(super) fn name(host: &str, port: u16) -> Destination {
    Destination {
        host: Host::Name(host.into()),
        port,
    }
}

/// A classification as geo would give it.
pub(super) fn class(
    addr: &str,
    location: Option<&str>,
    jurisdiction: Option<&str>,
) -> Classification {
    Classification {
        ip: ip(addr),
        special: None,
        network: None,
        location: location.map(c),
        location_origin: if location.is_some() {
            GeoOrigin::Database
        } else {
            GeoOrigin::Unknown
        },
        // An ASN the registry does not know: "no ASN at all" is tested on its own.
        asn: Some(64512),
        as_org: None,
        operator: None,
        jurisdiction: jurisdiction.map(c),
        operator_origin: if jurisdiction.is_some() {
            GeoOrigin::Registry
        } else {
            GeoOrigin::Unknown
        },
        published: None,
    }
}

pub(super) fn special(addr: &str, range: SpecialRange, network: Option<&str>) -> Classification {
    let mut cl = class(addr, None, None);
    cl.special = Some(range);
    if let Some(label) = network {
        cl.network = Some(label.into());
        cl.location = Some(c("FR"));
        cl.jurisdiction = Some(c("FR"));
    }
    cl
}

pub(super) fn provenance(p: &Policy) -> Arc<Provenance> {
    Arc::new(Provenance {
        policy_name: p.name.clone(),
        policy_version: p.version.clone(),
        country_db_built: None,
        asn_db_built: None,
        registry_version: "test".into(),
        published: None,
    })
}
