//! `douane registry gaps --audit LOG…`: the registry's gaps as real traffic meets them —
//! the autonomous systems of the addresses that requests went to (or were refused for)
//! that nothing attributed (no operator in the record) and that the registry loaded now
//! still does not list, by request count; and the requests to addresses with no ASN at all.
//!
//! Read-only use of the audit log: its chain is verified first (a broken chain is said, and
//! the records are counted anyway: this is a maintainer's statistic, not evidence). Only
//! what the log holds is counted: allowed requests only with `[audit] record_allowed`.

use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;
use std::path::PathBuf;

use crate::audit::{expand_paths, verify_files, StoredRecord};
use crate::geo::registry::OperatorRegistry;

/// One unattributed ASN met in the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TrafficGap {
    pub asn: u32,
    /// The ASN database's organisation, as recorded.
    pub org: String,
    /// Requests with at least one address of this ASN and no operator.
    pub requests: u64,
    /// Distinct addresses of this ASN seen.
    pub addresses: usize,
    /// Host names asked for (at most a few, for the maintainer's orientation).
    pub hosts: BTreeSet<String>,
}

/// What the log shows: the gaps, most requests first, and the counts around them.
#[derive(Debug, Default)]
pub struct TrafficGaps {
    pub gaps: Vec<TrafficGap>,
    /// Request records read.
    pub requests: u64,
    /// Requests with an address that has no ASN and no operator.
    pub no_asn_requests: u64,
    /// Lines that are not audit records (skipped).
    pub unreadable: u64,
    /// Whether any allowed request is in the log (else only blocks and the like were).
    pub saw_allowed: bool,
}

/// At most this many host names are kept per ASN.
const HOSTS_PER_GAP: usize = 3;

#[derive(Default)]
struct Acc {
    org: String,
    requests: u64,
    addresses: BTreeSet<String>,
    hosts: BTreeSet<String>,
}

/// Reads the records of `paths` (files or log directories) and gathers the gaps that
/// `registry` still has.
pub fn traffic_gaps(
    paths: &[PathBuf],
    registry: &OperatorRegistry,
) -> Result<TrafficGaps, crate::audit::VerifyError> {
    let files = expand_paths(paths)?;
    let mut out = TrafficGaps::default();
    let mut by_asn: HashMap<u32, Acc> = HashMap::new();
    for path in &files {
        let file = std::fs::File::open(path).map_err(|source| crate::audit::VerifyError::Io {
            path: path.clone(),
            source,
        })?;
        for line in std::io::BufReader::new(file).split(b'\n') {
            let line = line.map_err(|source| crate::audit::VerifyError::Io {
                path: path.clone(),
                source,
            })?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(record) = serde_json::from_slice::<StoredRecord>(&line) else {
                out.unreadable += 1;
                continue;
            };
            if !record.is_request() {
                continue; // a chain restart, or a request's end record (counted by its gate)
            }
            out.requests += 1;
            out.saw_allowed |= record.outcome.as_deref() == Some("allow");
            count(&record, registry, &mut by_asn, &mut out.no_asn_requests);
        }
    }
    let mut gaps: Vec<TrafficGap> = by_asn
        .into_iter()
        .map(|(asn, a)| TrafficGap {
            asn,
            org: a.org,
            requests: a.requests,
            addresses: a.addresses.len(),
            hosts: a.hosts,
        })
        .collect();
    gaps.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.asn.cmp(&b.asn)));
    out.gaps = gaps;
    Ok(out)
}

/// Counts one request: once per unattributed ASN among its addresses.
fn count(
    record: &StoredRecord,
    registry: &OperatorRegistry,
    by_asn: &mut HashMap<u32, Acc>,
    no_asn_requests: &mut u64,
) {
    let mut counted: Vec<u32> = Vec::new();
    let mut no_asn = false;
    for ip in &record.ips {
        if ip.operator.is_some() {
            continue;
        }
        let Some(asn) = ip.asn else {
            // A private or other special address has no ASN by nature.
            no_asn |= ip.special.is_none();
            continue;
        };
        if registry.by_asn(asn).is_some() {
            continue; // attributed since the request was recorded
        }
        let acc = by_asn.entry(asn).or_default();
        if acc.org.is_empty() {
            acc.org = ip.as_org.clone().unwrap_or_default();
        }
        acc.addresses.insert(ip.ip.clone());
        if let Some(host) = &record.host {
            if acc.hosts.len() < HOSTS_PER_GAP {
                acc.hosts.insert(host.to_ascii_lowercase());
            }
        }
        if !counted.contains(&asn) {
            counted.push(asn);
            acc.requests += 1;
        }
    }
    if no_asn {
        *no_asn_requests += 1;
    }
}

/// Prints the gaps (at most `top`) as `douane registry gaps --audit` shows them.
pub fn print(paths: &[PathBuf], registry: &OperatorRegistry, top: usize) -> anyhow::Result<()> {
    if let Err(e) = verify_files(paths) {
        eprintln!(
            "douane: warning: the audit chain does not verify ({e}); counting its records anyway"
        );
    }
    let found = traffic_gaps(paths, registry)?;
    println!(
        "{:>10}  {:>9}  {:>9}  organisation (ASN database, as recorded) — hosts",
        "asn", "requests", "addresses"
    );
    for g in found.gaps.iter().take(top) {
        let hosts: Vec<&str> = g.hosts.iter().map(String::as_str).collect();
        println!(
            "{:>10}  {:>9}  {:>9}  {} — {}",
            format!("AS{}", g.asn),
            g.requests,
            g.addresses,
            g.org,
            hosts.join(", ")
        );
    }
    println!(
        "{} ASNs in the traffic without a registry entry; {} of {} requests went to an address with no ASN at all",
        found.gaps.len(),
        found.no_asn_requests,
        found.requests
    );
    if found.unreadable > 0 {
        println!(
            "{} lines were not audit records (skipped)",
            found.unreadable
        );
    }
    if !found.saw_allowed && found.requests > 0 {
        println!(
            "note: no allowed request in the log: without `[audit] record_allowed = true`, only refused (or would-be refused) traffic is counted"
        );
    }
    Ok(())
}
