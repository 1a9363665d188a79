//! `douane registry gaps`: the autonomous systems that hold the most address space in the
//! ASN database and that nothing attributes — no registry entry, and (for that space) no
//! published range — so that a maintainer sees what is unattributed. With `--audit`, the
//! ranking is by the traffic of audit logs instead ([`super::registry_audit`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{load, Exit};

#[derive(Default)]
struct Gap {
    org: String,
    v4_addresses: u64,
    v6_48s: u128,
}

pub fn gaps(config_path: &Path, top: usize, audit: &[PathBuf]) -> anyhow::Result<Exit> {
    let (_, state) = load(config_path)?;
    let geo = &state.geo;
    if !audit.is_empty() {
        super::registry_audit::print(audit, &geo.registry, top)?;
        return Ok(Exit::Success);
    }
    let Some(asn_db) = &geo.asn else {
        anyhow::bail!("no ASN database configured ([geo] asn): nothing to list");
    };
    let mut gaps: HashMap<u32, Gap> = HashMap::new();
    let mut attributed_v4: u64 = 0;
    let mut total_v4: u64 = 0;
    asn_db.for_each_asn_block(|ip, prefix, asn, org| {
        let v4 = matches!(ip, IpAddr::V4(_));
        let size_v4 = if v4 {
            1u64 << (32 - u32::from(prefix.min(32)))
        } else {
            0
        };
        total_v4 += size_v4;
        if geo.registry.by_asn(asn).is_some()
            || geo
                .published
                .as_ref()
                .is_some_and(|p| p.ranges.lookup(ip).is_some())
        {
            attributed_v4 += size_v4;
            return;
        }
        let g = gaps.entry(asn).or_default();
        if g.org.is_empty() {
            g.org = org.unwrap_or("").to_owned();
        }
        if v4 {
            g.v4_addresses += size_v4;
        } else if prefix <= 48 {
            g.v6_48s += 1u128 << (48 - u32::from(prefix));
        }
    })?;
    let mut list: Vec<(u32, Gap)> = gaps.into_iter().collect();
    list.sort_by(|a, b| {
        b.1.v4_addresses
            .cmp(&a.1.v4_addresses)
            .then(b.1.v6_48s.cmp(&a.1.v6_48s))
            .then(a.0.cmp(&b.0))
    });
    println!(
        "{:>10}  {:>12}  {:>14}  organisation (ASN database)",
        "asn", "IPv4 addrs", "IPv6 /48s"
    );
    for (asn, g) in list.iter().take(top) {
        println!(
            "{:>10}  {:>12}  {:>14}  {}",
            format!("AS{asn}"),
            g.v4_addresses,
            g.v6_48s,
            g.org
        );
    }
    let unattributed: u64 = list.iter().map(|(_, g)| g.v4_addresses).sum();
    println!(
        "{} ASNs without a registry entry; IPv4 attributed by registry or published ranges: {:.1} % of {} addresses in the ASN database ({} unattributed)",
        list.len(),
        100.0 * attributed_v4 as f64 / total_v4.max(1) as f64,
        total_v4,
        unattributed
    );
    Ok(Exit::Success)
}
