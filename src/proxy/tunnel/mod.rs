//! Inside a CONNECT tunnel, once it is answered `200`: the first bytes the client sends are
//! read and kept (a TLS ClientHello's server name, or a plain request's `Host`), and a name
//! other than the CONNECT's is decided too — host rules, exemption scopes — on the address
//! the tunnel is connected to, so an exemption for `*.outlook.com` carries no tunnel to
//! another name on the same addresses. A refused name closes the tunnel before the upstream
//! gets a byte of it: a TLS alert, the block page over plain HTTP, or the HTTPS block page
//! with `[local_ca]` (`super::intercept`). Allowed, the bytes read go upstream unchanged
//! and the tunnel is relayed.
//!
//! ```toml
//! [tunnel]
//! check_names = true            # decide the name inside a tunnel (default true)
//! first_bytes_timeout_ms = 1000 # the wait for the client's first bytes
//! unnamed = "allow"             # ECH, no ClientHello, another protocol: "allow" or "block"
//! ```
//!
//! One job a file: `first` reads and tells the first bytes, `judge` judges them (a name,
//! or none), `inside` makes the requests decided inside a tunnel (their records, their
//! refusal), `relay` moves the bytes and counts them.

mod first;
mod inside;
mod judge;
mod relay;

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use crate::policy::Decision;
use crate::resolve::Destination;

pub use first::{read_first, FirstBytes};
pub use inside::{refuse_inside, ACCESS_DENIED_ALERT};
pub use judge::{judge, Judged};
pub use relay::{connect_tunnel, copy_counted, relay_tcp, tunnel, tunnel_tcp, Moved};

/// `[tunnel]` in `douane.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TunnelConfig {
    /// Decide the name a tunnel's first bytes carry when it is not the CONNECT's.
    pub check_names: bool,
    /// How long to wait for the client's first bytes; a server that speaks first (SMTP,
    /// SSH) ends the wait at once.
    pub first_bytes_timeout_ms: u64,
    /// A tunnel whose first bytes name nothing that can be checked: a ClientHello with
    /// Encrypted Client Hello (its outer name is still decided) or without a server name,
    /// no bytes in time, a server that speaks first, another protocol. `allow` (default:
    /// the CONNECT authority was decided already) or `block`.
    pub unnamed: Unnamed,
}

impl Default for TunnelConfig {
    fn default() -> Self {
        TunnelConfig {
            check_names: true,
            first_bytes_timeout_ms: 1000,
            unnamed: Unnamed::Allow,
        }
    }
}

/// What becomes of a tunnel whose first bytes name nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unnamed {
    #[default]
    Allow,
    Block,
}

/// The CONNECT a tunnel was opened for, as decided and connected.
#[derive(Debug, Clone, Copy)]
pub struct Opened<'a> {
    /// The CONNECT's request id (its log line and audit record).
    pub request_id: &'a str,
    pub listener: &'a str,
    pub client: IpAddr,
    pub destination: &'a Destination,
    /// The checked address the tunnel is connected to.
    pub upstream: SocketAddr,
    /// The CONNECT's decision.
    pub decision: &'a Decision,
}

/// How a CONNECT's tunnel ended: what it moved each way (its first bytes included), to
/// its close or to the error that ended it, and why its first bytes named nothing that
/// could be checked, when they did not. What the CONNECT's end record carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelEnd {
    pub sent: u64,
    pub received: u64,
    pub first_bytes: Option<&'static str>,
}

impl TunnelEnd {
    /// A tunnel refused from inside: nothing was relayed.
    pub fn refused(judged: Judged) -> TunnelEnd {
        TunnelEnd {
            first_bytes: judged.first_bytes,
            ..TunnelEnd::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_check_names_and_let_unnamed_tunnels_pass() {
        let c: TunnelConfig = toml::from_str("").unwrap();
        assert_eq!(c, TunnelConfig::default());
        assert!(c.check_names);
        assert_eq!(c.unnamed, Unnamed::Allow);
        let c: TunnelConfig = toml::from_str("unnamed = \"block\"").unwrap();
        assert_eq!(c.unnamed, Unnamed::Block);
        assert!(toml::from_str::<TunnelConfig>("unnamed = \"maybe\"").is_err());
    }
}
