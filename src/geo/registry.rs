//! The operator registry (`policies/operators.toml`): autonomous systems and CIDRs mapped to
//! the operator that runs them and the jurisdiction of its parent company.

use std::sync::Arc;

use crate::country::Country;

#[derive(Debug, Clone, PartialEq)]
pub struct Operator {
    pub name: Arc<str>,
    pub jurisdiction: Country,
}

#[derive(Debug, Default)]
pub struct OperatorRegistry {
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Located(#[from] crate::diag::Errors),
}
