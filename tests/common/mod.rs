//! Shared test fixtures: a DNS server, `.mmdb` writers, a test CA, upstream servers, the
//! douane process and clients.
#![allow(dead_code)]
pub mod client;
pub mod decisions;
pub mod dns;
pub mod mmdb;
pub mod parent;
pub mod pki;
pub mod proxy;
pub mod raw;
pub mod tools;
pub mod upstream;
