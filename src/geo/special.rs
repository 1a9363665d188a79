//! Special-purpose address ranges (RFC 6890 and friends) and canonical address forms.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecialRange {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    Documentation,
    Multicast,
    Broadcast,
    Reserved,
}
