//! The ASN database's records decoded once, at load: for each data record (keyed by its
//! offset in the data section, which every network pointing at it shares), the autonomous
//! system number and its organisation as one shared `Arc<str>`. A classification then
//! copies no string: it clones an `Arc` (the organisation goes on into the decision and the
//! audit record), where decoding per lookup allocated a `Box<str>` each time.

use std::sync::Arc;

use maxminddb::{Reader, WithinOptions};
use rustc_hash::FxHashMap;
use serde::Deserialize;

/// The two fields of an ASN record, borrowed from the database bytes.
#[derive(Deserialize)]
pub(super) struct AsnRecord<'a> {
    pub autonomous_system_number: Option<u32>,
    #[serde(borrow)]
    pub autonomous_system_organization: Option<&'a str>,
}

/// One record: the ASN and its organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsnEntry {
    pub asn: u32,
    pub org: Option<Arc<str>>,
}

/// Data offset → record, for every record the tree points at: 12 bytes a record in the map
/// (offset, ASN, index of the organisation), each distinct organisation once in `orgs`.
#[derive(Debug, Default)]
pub(super) struct AsnTable {
    by_offset: FxHashMap<u32, (u32, u32)>,
    orgs: Vec<Arc<str>>,
}

/// The organisation index of a record without one.
const NO_ORG: u32 = u32::MAX;

impl AsnTable {
    /// Walks every network of the database once. The walk yields every leaf of the tree
    /// (networks without data too), so that its work is bounded by what it yields: a valid
    /// tree has `node_count + 1` leaves, and a damaged one (a cycle, a tree that fans out
    /// into the same nodes) is cut at twice that, or at its first error. Records the walk
    /// did not reach are decoded per lookup instead ([`AsnTable::get`] is `None` for them).
    pub fn build(reader: &Reader<Vec<u8>>) -> AsnTable {
        let mut by_offset = FxHashMap::default();
        let mut orgs = Vec::new();
        let mut names: FxHashMap<&str, u32> = FxHashMap::default();
        let limit = (reader.metadata().node_count as usize + 1).saturating_mul(2);
        let options = WithinOptions::default().include_networks_without_data();
        let Ok(networks) = reader.networks(options) else {
            return AsnTable::default();
        };
        for item in networks.take(limit) {
            let Ok(result) = item else { break };
            // Past 4 GiB of data (no such ASN database exists), records are decoded per lookup.
            let Some(offset) = result.offset().and_then(|o| u32::try_from(o).ok()) else {
                continue;
            };
            if by_offset.contains_key(&offset) {
                continue;
            }
            let Ok(Some(record)) = result.decode::<AsnRecord<'_>>() else {
                continue;
            };
            let Some(asn) = record.autonomous_system_number else {
                continue;
            };
            let org = match record.autonomous_system_organization {
                None => NO_ORG,
                Some(s) => *names.entry(s).or_insert_with(|| {
                    orgs.push(Arc::from(s));
                    (orgs.len() - 1) as u32
                }),
            };
            by_offset.insert(offset, (asn, org));
        }
        by_offset.shrink_to_fit();
        orgs.shrink_to_fit();
        AsnTable { by_offset, orgs }
    }

    /// The record at `offset`, if the walk at load reached it.
    #[inline]
    pub fn get(&self, offset: usize) -> Option<AsnEntry> {
        let (asn, org) = *self.by_offset.get(&u32::try_from(offset).ok()?)?;
        Some(AsnEntry {
            asn,
            org: self.orgs.get(org as usize).cloned(),
        })
    }

    /// How many records were decoded at load.
    pub fn len(&self) -> usize {
        self.by_offset.len()
    }

    /// About how many heap bytes the table holds: the map (12 bytes and a control byte a
    /// slot), the organisations' list, and each name's allocation (two counters and the text,
    /// rounded up as the allocator does).
    pub fn heap_bytes(&self) -> usize {
        let map = self.by_offset.capacity() * 13;
        let list = self.orgs.capacity() * std::mem::size_of::<Arc<str>>();
        let names: usize = self
            .orgs
            .iter()
            .map(|s| (16 + s.len() + 8).div_ceil(16) * 16)
            .sum();
        map + list + names
    }
}
