//! From what a client asked for to the addresses to check: destination parsing and
//! normalisation, then DNS with a TTL-honouring cache and static overrides.

pub mod destination;
pub mod dns;

pub use destination::{Destination, DestinationError, Host};
pub use dns::{DnsFailure, Resolved, Resolver, ResolverConfig};
