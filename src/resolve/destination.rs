//! Destinations: a normalised host (name or IP literal) and a port.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// A destination host, normalised: a lowercase ASCII (punycode) name without trailing dot,
/// or an IP address in canonical form. An IP literal is never treated as a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(Box<str>),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Serialize for Host {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Destination {
    pub host: Host,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("invalid destination `{0}`")]
    Invalid(String),
}
