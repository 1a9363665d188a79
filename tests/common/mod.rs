//! Shared test fixtures.
pub mod dns;
