//! Policy files: model, validation, compilation into a fast matcher, the decision, and the
//! policy's own test cases.
//!
//! ```text
//! *.toml ─► model (raw serde) ─► parse (validate, merge) ─► normal::Model ─► compile::Policy
//!                                                                              │
//!                       Request + resolved addresses ─► decide() ─► Decision ◄─┘
//! ```

pub mod cases;
pub mod compile;
pub mod decide;
pub mod decision;
pub mod model;
pub mod normal;
pub mod parse;
mod summary;
mod values;

#[cfg(test)]
mod tests;

pub use cases::{run_cases, CaseResult, Expected};
pub use compile::{MatchInput, Matched, Policy};
pub use decide::{decide, HttpFacts, Request, Resolution};
pub use decision::{Decision, IpVerdict, Mode, Note, Outcome, Provenance, Reason, Violation};
pub use model::{Action, AnycastLocation, Expect, IpSelection, UnknownLocation, UnknownOperator};
pub use normal::{Criteria, HostPattern, Model, NetworkSpec, Origin, RuleSpec, TestSpec};
pub use parse::{load_dir, load_sources, REGISTRY_FILE};
pub use summary::{Exemption, PolicySummary};

use std::path::Path;

use crate::diag::{Errors, SourceFile};

impl Policy {
    /// Loads, validates and compiles the policy files of a directory (see [`load_dir`]).
    pub fn load_dir(dir: &Path, exclude: &[&str]) -> Result<Policy, Errors> {
        load_dir(dir, exclude).map(Policy::compile)
    }

    /// Loads, validates and compiles policy files given as text, in merge order.
    pub fn from_sources(files: Vec<SourceFile>) -> Result<Policy, Errors> {
        load_sources(files).map(Policy::compile)
    }
}
