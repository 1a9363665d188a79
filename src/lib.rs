//! douane ("customs") is a data-residency policy enforcement proxy.
//!
//! For every outbound request it resolves the destination, places each address in a country
//! (location) and under the jurisdiction of the operator that runs its network, and blocks
//! with HTTP 451 whatever leaves the jurisdictions that the policy files allow.
//!
//! ```text
//! client ─► listener ─► destination ─► resolve ─► classify each IP ─► policy ─► decision
//!                       (resolve::)    (resolve::) (geo::)             (policy::)
//! ```
#![forbid(unsafe_code)]

pub mod audit;
pub mod country;
pub mod diag;
pub mod geo;
pub mod policy;
pub mod resolve;
pub mod state;
