//! What each CLI command does, at the edge of the program: read files, call the library,
//! print for people (or JSON), and say how it went as an exit code.

pub mod audit;
pub mod check;
pub mod completions;
pub mod explain;
pub mod geodb;
pub mod ranges;
pub mod registry;
pub mod registry_audit;
pub mod test;

use std::path::Path;

use crate::config::Config;
use crate::diag::Errors;
use crate::state::State;

/// How a command ended; `main` turns it into the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything held.
    Success = 0,
    /// What was checked did not hold: a failed policy test, a broken audit chain, a
    /// `check` that found errors.
    Failed = 1,
    /// The command line names something that is not there (a mistyped path).
    Usage = 2,
    /// The configuration, policies or databases are invalid: nothing could be checked.
    Invalid = 3,
}

/// The config, policies, registry and databases are invalid (every error, located).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSetup(pub Errors);

/// Loads the config and the state it points at, or every error found on the way.
pub fn load(config_path: &Path) -> Result<(Config, State), InvalidSetup> {
    let config = Config::load(config_path).map_err(InvalidSetup)?;
    let state = State::load(&config).map_err(InvalidSetup)?;
    Ok((config, state))
}

/// Today in UTC: what exemption expiry dates are compared with.
pub fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}
