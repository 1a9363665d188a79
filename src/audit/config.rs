//! The `[audit]` table of douane.toml: raw serde struct with named defaults, checked by
//! [`AuditConfig::validate`] before the log starts.

use std::path::PathBuf;

use serde::Deserialize;

use crate::policy::decision::Outcome;

use super::AuditError;

/// When the written lines are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// `fsync` before `record()` resolves: no decided request is lost on power loss.
    EveryRecord,
    /// `fsync` at most every `sync_interval_ms`; a line is in the OS before `record()`
    /// resolves, so a crash of douane loses nothing, a power loss up to one interval.
    #[default]
    Interval,
}

/// What the proxy does with a request that needs a record when the record cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Refuse it with 503: no unrecorded decision.
    #[default]
    Block,
    /// Let the decision stand without its record.
    Continue,
}

/// How the client address is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClientMode {
    #[default]
    AsIs,
    /// HMAC-SHA256 of the address (canonical text) under the key in `hmac_key_file`, hex.
    Pseudonymise,
}

/// How the request path is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PathMode {
    #[default]
    AsIs,
    /// Only the path, without query string or fragment.
    Redact,
    /// No path at all (`null`).
    Drop,
}

/// The `[audit]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The file base (`audit/douane-audit.jsonl` → `audit/douane-audit.<date>.<n>.jsonl`),
    /// or an existing directory (files `douane-audit.<date>.<n>.jsonl` in it), or an existing
    /// device or pipe (`/dev/stdout`), written to directly without rotation.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// Record allowed (and failed) requests too. Blocks, would-blocks and exemption uses are
    /// always recorded.
    #[serde(default)]
    pub record_allowed: bool,
    #[serde(default)]
    pub sync: SyncMode,
    #[serde(default = "default_sync_interval_ms")]
    pub sync_interval_ms: u64,
    #[serde(default = "default_rotate_size_bytes")]
    pub rotate_size_bytes: u64,
    #[serde(default = "default_true")]
    pub rotate_daily: bool,
    #[serde(default)]
    pub on_failure: OnFailure,
    #[serde(default)]
    pub client: ClientMode,
    /// The HMAC key for `client = "pseudonymise"`: the file's bytes, a trailing newline
    /// removed, at least 16 bytes.
    #[serde(default)]
    pub hmac_key_file: Option<PathBuf>,
    #[serde(default)]
    pub path_mode: PathMode,
    /// Longer untrusted values (host, path, method, AS organisation, …) are cut at a
    /// character boundary and marked `…[truncated N bytes]`.
    #[serde(default = "default_max_field_bytes")]
    pub max_field_bytes: usize,
    /// The log's name in its signed checkpoints (first line) and its key's name; default
    /// `<host name>/douane-audit`. No spaces, no `+`.
    #[serde(default)]
    pub origin: Option<String>,
    /// A checkpoint is signed when records were added, at most this often (and at rotation
    /// and shutdown).
    #[serde(default = "default_checkpoint_interval_ms")]
    pub checkpoint_interval_ms: u64,
    /// The Ed25519 signing key (C2SP note private key); default `<stem>.tlog/key` beside the log,
    /// generated (0600) on first start.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// `[audit.ship]`: records shipped to a syslog collector over TLS.
    #[serde(default)]
    pub ship: Option<super::ship::ShipConfig>,
    /// Allowed (and failed) requests' records keep their content this many days, then are
    /// pruned (see `prune.rs`); none: forever.
    #[serde(default)]
    pub retention_allowed_days: Option<u32>,
    /// Blocks', would-blocks' and exemption uses' records keep their content this many days
    /// (CNIL: 6 to 12 months); none: forever.
    #[serde(default)]
    pub retention_blocks_days: Option<u32>,
    /// With a retention set, douane prunes the rotated files at start and this often.
    #[serde(default = "default_prune_interval_s")]
    pub prune_interval_s: u64,
}

fn default_path() -> PathBuf {
    PathBuf::from("audit/douane-audit.jsonl")
}
fn default_sync_interval_ms() -> u64 {
    1000
}
fn default_rotate_size_bytes() -> u64 {
    100 * 1024 * 1024
}
fn default_true() -> bool {
    true
}
fn default_max_field_bytes() -> usize {
    2048
}
fn default_checkpoint_interval_ms() -> u64 {
    5000
}
fn default_prune_interval_s() -> u64 {
    3600
}

/// Below this a rotated file could not hold a few records.
pub const MIN_ROTATE_SIZE_BYTES: u64 = 4096;
/// Below this a host name or an address would be cut.
pub const MIN_FIELD_BYTES: usize = 64;

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            path: default_path(),
            record_allowed: false,
            sync: SyncMode::default(),
            sync_interval_ms: default_sync_interval_ms(),
            rotate_size_bytes: default_rotate_size_bytes(),
            rotate_daily: true,
            on_failure: OnFailure::default(),
            client: ClientMode::default(),
            hmac_key_file: None,
            path_mode: PathMode::default(),
            max_field_bytes: default_max_field_bytes(),
            origin: None,
            checkpoint_interval_ms: default_checkpoint_interval_ms(),
            signing_key_file: None,
            ship: None,
            retention_allowed_days: None,
            retention_blocks_days: None,
            prune_interval_s: default_prune_interval_s(),
        }
    }
}

impl AuditConfig {
    /// Checks what serde cannot: ranges and the key file that pseudonymisation needs.
    pub fn validate(&self) -> Result<(), AuditError> {
        let bad = |detail: String| Err(AuditError::Config { detail });
        if self.path.as_os_str().is_empty() {
            return bad(
                "audit.path is empty: give a file base such as \"audit/douane-audit.jsonl\"".into(),
            );
        }
        if self.sync == SyncMode::Interval && self.sync_interval_ms == 0 {
            return bad(
                "audit.sync_interval_ms = 0: give at least 1, or sync = \"every_record\"".into(),
            );
        }
        if self.rotate_size_bytes < MIN_ROTATE_SIZE_BYTES {
            return bad(format!(
                "audit.rotate_size_bytes = {} is too small: give at least {MIN_ROTATE_SIZE_BYTES}",
                self.rotate_size_bytes
            ));
        }
        if self.max_field_bytes < MIN_FIELD_BYTES {
            return bad(format!(
                "audit.max_field_bytes = {} is too small: give at least {MIN_FIELD_BYTES}",
                self.max_field_bytes
            ));
        }
        if let Some(o) = &self.origin {
            if o.is_empty() || o.contains('+') || o.chars().any(char::is_whitespace) {
                return bad(format!(
                    "audit.origin = {o:?}: give a name without spaces or '+', such as \"mairie.example/douane-audit\""
                ));
            }
        }
        if self.checkpoint_interval_ms == 0 {
            return bad("audit.checkpoint_interval_ms = 0: give at least 1".into());
        }
        for (key, days) in [
            ("retention_allowed_days", self.retention_allowed_days),
            ("retention_blocks_days", self.retention_blocks_days),
        ] {
            if days == Some(0) {
                return bad(format!(
                    "audit.{key} = 0 would prune every record: give at least 1 (CNIL: 180 to 365), or leave it out to keep records"
                ));
            }
        }
        if self.prune_interval_s == 0 {
            return bad("audit.prune_interval_s = 0: give at least 1".into());
        }
        match (self.client, &self.hmac_key_file) {
            (ClientMode::Pseudonymise, None) => {
                bad("audit.client = \"pseudonymise\" needs audit.hmac_key_file".into())
            }
            (ClientMode::AsIs, Some(f)) => bad(format!(
                "audit.hmac_key_file = {:?} is set but audit.client = \"as_is\": set client = \"pseudonymise\" or remove the key file",
                f.display().to_string()
            )),
            _ => Ok(()),
        }
    }

    /// The retention the config sets, if any.
    pub fn retention(&self) -> Option<super::prune::Retention> {
        let days = |d: Option<u32>| d.map(|d| time::Duration::days(i64::from(d)));
        let r = super::prune::Retention {
            allowed: days(self.retention_allowed_days),
            blocks: days(self.retention_blocks_days),
        };
        (r.allowed.is_some() || r.blocks.is_some()).then_some(r)
    }

    /// Whether a decision with this outcome must be recorded.
    pub fn needs_record(&self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Block | Outcome::WouldBlock | Outcome::Exempt => true,
            Outcome::Allow | Outcome::Failed => self.record_allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keys_read_and_a_zero_retention_is_refused() {
        let c: AuditConfig =
            toml::from_str("retention_allowed_days = 180\nretention_blocks_days = 365\n")
                .expect("parse");
        let r = c.retention().expect("a retention");
        assert_eq!(r.allowed, Some(time::Duration::days(180)));
        assert_eq!(r.blocks, Some(time::Duration::days(365)));
        assert_eq!(c.prune_interval_s, 3600);
        assert!(AuditConfig::default().retention().is_none());
        let zero = AuditConfig {
            retention_blocks_days: Some(0),
            ..AuditConfig::default()
        };
        let err = zero.validate().expect_err("0 days").to_string();
        assert!(err.contains("retention_blocks_days = 0"), "{err}");
    }

    #[test]
    fn defaults_from_an_empty_table() {
        let c: AuditConfig = toml::from_str("").expect("empty table");
        assert_eq!(c, AuditConfig::default());
        assert_eq!(c.rotate_size_bytes, 100 * 1024 * 1024);
        assert_eq!(c.on_failure, OnFailure::Block);
        assert!(c.rotate_daily && !c.record_allowed);
        c.validate().expect("defaults are valid");
    }

    #[test]
    fn every_key_parses() {
        let c: AuditConfig = toml::from_str(
            r#"
            path = "/var/log/douane/audit.jsonl"
            record_allowed = true
            sync = "every_record"
            sync_interval_ms = 250
            rotate_size_bytes = 1048576
            rotate_daily = false
            on_failure = "continue"
            client = "pseudonymise"
            hmac_key_file = "/etc/douane/audit.key"
            path_mode = "redact"
            max_field_bytes = 512
            "#,
        )
        .expect("full table");
        assert_eq!(c.sync, SyncMode::EveryRecord);
        assert_eq!(c.client, ClientMode::Pseudonymise);
        assert_eq!(c.path_mode, PathMode::Redact);
        assert_eq!(c.on_failure, OnFailure::Continue);
        c.validate().expect("valid");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<AuditConfig>("rotate_sise_bytes = 1").is_err());
        assert!(toml::from_str::<AuditConfig>("sync = \"sometimes\"").is_err());
        let c: AuditConfig = toml::from_str("client = \"pseudonymise\"").expect("parses");
        let err = c.validate().expect_err("no key file").to_string();
        assert!(err.contains("hmac_key_file"), "{err}");
        let c = AuditConfig {
            max_field_bytes: 3,
            ..AuditConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn what_is_always_recorded() {
        let c = AuditConfig::default();
        assert!(c.needs_record(Outcome::Block));
        assert!(c.needs_record(Outcome::WouldBlock));
        assert!(c.needs_record(Outcome::Exempt));
        assert!(!c.needs_record(Outcome::Allow));
        let c = AuditConfig {
            record_allowed: true,
            ..c
        };
        assert!(c.needs_record(Outcome::Allow));
    }
}
