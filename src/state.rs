//! The running state: policy, geolocation databases and operator registry, as one immutable
//! value. A request takes a snapshot at its start and is decided against it to the end; a
//! reload builds a whole new value aside and swaps it in, or keeps the old one.

use std::sync::Arc;

use crate::config::Config;
use crate::diag::{Errors, Located};
use crate::geo::{Geo, GeoError};
use crate::policy::{Policy, Provenance};

#[derive(Debug)]
pub struct State {
    pub policy: Policy,
    pub geo: Geo,
    /// What every decision made against this state was made against.
    pub provenance: Arc<Provenance>,
}

impl State {
    /// Loads the policies, the operator registry and the databases that the config names,
    /// reporting every error found (all policy errors, then the geolocation one).
    pub fn load(config: &Config) -> Result<State, Errors> {
        let mut errors = Vec::new();
        // The registry may live among the policy files; it is not a policy file.
        let registry_name = config
            .operators
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(crate::policy::REGISTRY_FILE)
            .to_owned();
        let policy = Policy::load_dir(&config.policy_dir, &[registry_name.as_str()])
            .map_err(|e| errors.extend(e.0))
            .ok();
        let geo = Geo::load(
            config.geo.country.as_deref(),
            config.geo.asn.as_deref(),
            &config.operators,
        )
        .and_then(|geo| {
            let published = config
                .geo
                .published
                .as_deref()
                .map(Geo::load_published)
                .transpose()?;
            Ok(geo.with_published(published))
        })
        .map_err(|e| errors.extend(geo_errors(e)))
        .ok();
        match (policy, geo) {
            (Some(policy), Some(geo)) if errors.is_empty() => Ok(State::new(policy, geo)),
            _ => Err(Errors(errors)),
        }
    }

    /// Puts a policy and geolocation state together with their provenance.
    pub fn new(policy: Policy, geo: Geo) -> State {
        let built = |db: &Option<crate::geo::GeoDb>| {
            db.as_ref().and_then(|db| {
                db.info
                    .build_time
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok()
                    .map(Arc::<str>::from)
            })
        };
        let provenance = Arc::new(Provenance {
            policy_name: policy.name.clone(),
            policy_version: policy.version.clone(),
            country_db_built: built(&geo.country),
            asn_db_built: built(&geo.asn),
            registry_version: geo.registry.version().into(),
            published: geo.published.as_ref().map(|p| Arc::new(p.ranges.summary())),
        });
        State {
            policy,
            geo,
            provenance,
        }
    }
}

fn geo_errors(e: GeoError) -> Vec<Located> {
    match e {
        GeoError::Registry(errors) => errors.0,
        // These messages name their file themselves.
        other => vec![Located::message(other.to_string())],
    }
}
