//! A MaxMind-format database (country or ASN) read into memory, with its metadata.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// What kind of data a database holds and in which schema, read from its metadata.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseInfo {
    pub path: PathBuf,
    pub database_type: String,
    pub build_epoch: u64,
    pub size: u64,
}

#[derive(Debug)]
pub struct GeoDb {
    pub info: DatabaseInfo,
}

#[derive(Debug, thiserror::Error)]
pub enum GeoDbError {
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl GeoDb {
    pub fn open(path: &Path) -> Result<Self, GeoDbError> {
        Err(GeoDbError::Invalid {
            path: path.to_owned(),
            message: "not implemented".into(),
        })
    }
}
