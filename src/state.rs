//! The running state: policy, geolocation databases and operator registry, as one immutable
//! value. A request takes a snapshot at its start and is decided against it to the end.

use std::sync::Arc;

use crate::geo::Geo;
use crate::policy::{Policy, Provenance};

#[derive(Debug)]
pub struct State {
    pub policy: Policy,
    pub geo: Geo,
    /// What every decision made against this state was made against.
    pub provenance: Arc<Provenance>,
}
