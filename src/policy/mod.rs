//! Policy files: model, validation, compilation into a fast matcher, and the decision.

pub mod decision;

pub use decision::{Decision, IpVerdict, Mode, Note, Outcome, Provenance, Reason, Violation};

/// A compiled policy (placeholder until the policy module lands).
#[derive(Debug, Default)]
pub struct Policy {}
