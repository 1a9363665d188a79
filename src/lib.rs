//! douane ("customs") is a data-residency policy enforcement proxy.
//!
//! For every outbound request it resolves the destination, places each address in a country
//! (location) and under the jurisdiction of the operator that runs its network, and blocks
//! with HTTP 451 whatever leaves the jurisdictions that the policy files allow.
//!
//! ```text
//! client ─► listener ─► destination ─► resolve ─► classify each IP ─► policy ─► decision
//!           (proxy::)   (resolve::)    (resolve::) (geo::)             (policy::)    │
//!                                                                                    ├─► block: audit record, 451
//!                                                                                    └─► allow: connect to a checked IP
//! ```
//!
//! One module, one job: `config` (douane.toml), `policy` (policy files and `decide`), `geo`
//! (databases, operator registry, `classify`), `resolve` (destinations, DNS), `proxy`
//! (listeners and upstreams), `tls`, `audit` (the hash-chained log), `metrics`, `admin`,
//! `reload`, `state` (the snapshot every request is decided against), and `app` (wiring).
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod audit;
pub mod block_page;
pub mod cli;
pub mod client_hello;
pub mod commands;
pub mod config;
pub mod country;
pub mod country_names;
pub mod diag;
pub mod geo;
mod html;
pub mod metrics;
pub mod mint;
pub mod notify;
pub mod pac;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod resolve;
pub mod startup;
pub mod state;
pub mod tls;
pub mod update;
pub mod workers;
