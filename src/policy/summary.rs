//! What `douane check` and the admin `/policy` endpoint show of a policy.

use std::sync::Arc;

use serde::Serialize;
use time::Date;

use crate::policy::compile::Policy;
use crate::policy::decision::Mode;
use crate::policy::model::Action;
use crate::policy::normal::{Criteria, NetworkSpec, Origin, RuleSpec};

/// An exemption (`action = "allow"`) and what it was granted on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exemption {
    pub id: Arc<str>,
    #[serde(serialize_with = "crate::policy::normal::iso_date")]
    pub expires: Date,
    pub justification: Option<Arc<str>>,
    pub ticket: Option<Arc<str>>,
    pub origin: Origin,
}

/// The policy as `/policy` serves it: everything but the compiled index.
#[derive(Debug, Clone, Serialize)]
pub struct PolicySummary<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub mode: Mode,
    pub description: Option<&'a str>,
    pub defaults: &'a Criteria,
    pub networks: Vec<NetworkSpec>,
    pub rules: &'a [RuleSpec],
    pub tests: usize,
    pub sources: Vec<String>,
}

impl Policy {
    /// Every exemption, in rule order.
    pub fn exemptions(&self) -> Vec<Exemption> {
        self.rules
            .iter()
            .filter(|r| r.action == Action::Allow)
            .filter_map(|r| {
                Some(Exemption {
                    id: r.id.clone(),
                    expires: r.expires?,
                    justification: r.justification.clone(),
                    ticket: r.ticket.clone(),
                    origin: r.origin.clone(),
                })
            })
            .collect()
    }

    /// The exemptions still in force that stop applying within `days` days: their last
    /// day is between `today` and `today + days` (inclusive).
    pub fn expiring_within(&self, today: Date, days: u32) -> Vec<Exemption> {
        let horizon = today.saturating_add(time::Duration::days(i64::from(days)));
        self.exemptions()
            .into_iter()
            .filter(|e| e.expires >= today && e.expires <= horizon)
            .collect()
    }

    /// The exemptions that no longer apply on `today`.
    pub fn expired(&self, today: Date) -> Vec<Exemption> {
        self.exemptions()
            .into_iter()
            .filter(|e| e.expires < today)
            .collect()
    }

    pub fn summary(&self) -> PolicySummary<'_> {
        PolicySummary {
            name: &self.name,
            version: &self.version,
            mode: self.mode,
            description: self.description.as_deref(),
            defaults: &self.defaults,
            networks: self
                .networks
                .entries()
                .iter()
                .map(|n| NetworkSpec {
                    cidr: n.cidr,
                    location: n.location,
                    operator: n.operator,
                    label: n.label.clone(),
                })
                .collect(),
            rules: &self.rules,
            tests: self.tests.len(),
            sources: self
                .sources
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        }
    }
}
