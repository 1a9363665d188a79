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

/// Data offset → record, for every record the tree points at.
#[derive(Debug, Default)]
pub(super) struct AsnTable {
    by_offset: FxHashMap<usize, AsnEntry>,
}

impl AsnTable {
    /// Walks every network of the database once. The walk yields every leaf of the tree
    /// (networks without data too), so that its work is bounded by what it yields: a valid
    /// tree has `node_count + 1` leaves, and a damaged one (a cycle, a tree that fans out
    /// into the same nodes) is cut at twice that, or at its first error. Records the walk
    /// did not reach are decoded per lookup instead ([`AsnTable::get`] is `None` for them).
    pub fn build(reader: &Reader<Vec<u8>>) -> AsnTable {
        let mut by_offset = FxHashMap::default();
        let mut names: FxHashMap<&str, Arc<str>> = FxHashMap::default();
        let limit = (reader.metadata().node_count as usize + 1).saturating_mul(2);
        let options = WithinOptions::default().include_networks_without_data();
        let Ok(networks) = reader.networks(options) else {
            return AsnTable::default();
        };
        for item in networks.take(limit) {
            let Ok(result) = item else { break };
            let Some(offset) = result.offset() else {
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
            let org = record
                .autonomous_system_organization
                .map(|s| names.entry(s).or_insert_with(|| Arc::from(s)).clone());
            by_offset.insert(offset, AsnEntry { asn, org });
        }
        by_offset.shrink_to_fit();
        AsnTable { by_offset }
    }

    /// The record at `offset`, if the walk at load reached it.
    #[inline]
    pub fn get(&self, offset: usize) -> Option<&AsnEntry> {
        self.by_offset.get(&offset)
    }

    /// How many records were decoded at load.
    pub fn len(&self) -> usize {
        self.by_offset.len()
    }
}
