//! From what a client asked for to the addresses to check: destination parsing and
//! normalisation, then DNS with a TTL-honouring cache and static overrides.

mod cache;
pub mod destination;
pub mod dns;

pub use destination::{Destination, DestinationError, Host, Scheme, Target};
pub use dns::{
    ConfigProblem, DnsFailure, ResolveError, Resolved, Resolver, ResolverConfig, Source,
};
