//! Prometheus metrics: what the proxy decided and moved, how long it took, and what is
//! loaded. `Metrics` owns its registry (no globals) and is shared as an `Arc`.
//!
//! Recording a request takes no lock shared by all requests: each thread keeps cloned handles
//! of the counters it has used (see `local`), so a request costs a few lookups in
//! thread-owned maps and one atomic add per counter. The state, reload and audit metrics are
//! set rarely and read at scrape time, under one mutex that requests never take.
//!
//! Label values are bounded whatever the traffic: outcomes, reasons and error kinds are
//! enums; jurisdictions are ISO 3166-1 codes or `unknown`; rule ids, listener and route names
//! come from the operator's files. Host names, paths and client addresses never become labels.

mod exposure;
mod families;
mod local;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use prometheus::{IntGauge, Registry, TextEncoder};
use time::OffsetDateTime;

use crate::audit::AuditHealth;
use crate::policy::Decision;
use crate::resolve::DnsFailure;
use crate::state::State;
use exposure::{exposures, first_considered, Judge};
use families::{dns_index, AuditFamilies, Families};
use local::{country_key, with_local};

/// The rule label of decisions that no rule made (the policy defaults applied).
pub const DEFAULT_RULE: &str = "default";

/// Ids that tell `Metrics` instances apart in the per-thread handle caches.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub struct Metrics {
    id: u64,
    f: Families,
    /// The allowed sets of the loaded policy, to judge exposure on both axes.
    judge: ArcSwapOption<Judge>,
    /// Set at start, on reloads and at scrape time; never on the request path.
    status: Mutex<Status>,
}

#[derive(Default)]
struct Status {
    /// Each exemption's end, Unix seconds: the active count is taken at scrape time.
    exemptions: Vec<i64>,
    audit: Option<AuditFamilies>,
    audit_tlog: Option<families::AuditTlogFamilies>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("id", &self.id).finish()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Decrements the active-connections gauge when dropped.
#[derive(Debug)]
pub struct ConnectionGauge(IntGauge);

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let f = Families::new();
        // Both results exist from the start, so rates and alerts have a series to read.
        for result in ["success", "failure"] {
            f.reloads.with_label_values(&[result]);
        }
        for kind in crate::proxy::upstream::UpstreamError::KINDS {
            f.upstream_errors.with_label_values(&[kind]);
        }
        for kind in crate::proxy::exchange::Refusal::KINDS {
            f.refusals.with_label_values(&[kind]);
        }
        f.last_reload_ok.set(1);
        Metrics {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            f,
            judge: ArcSwapOption::empty(),
            status: Mutex::new(Status::default()),
        }
    }

    /// The registry, for a caller that wants to add its own collectors.
    pub fn registry(&self) -> &Registry {
        &self.f.registry
    }

    /// One decided request, from `finish()`: its decision, its listener and route, and the
    /// time from accept to the decided response.
    pub fn observe_request(
        &self,
        listener: &str,
        route: Option<&str>,
        decision: &Decision,
        elapsed: Duration,
    ) {
        let judge = self.judge.load();
        let exposed = exposures(judge.as_deref(), decision);
        let outcome = decision.outcome;
        let rule = decision.rule.as_deref().unwrap_or(DEFAULT_RULE);
        let (location, operator) = first_considered(decision).map_or((0, 0), |v| {
            (
                country_key(v.class.location),
                country_key(v.class.jurisdiction),
            )
        });
        let f = &self.f;
        with_local(self.id, |l| {
            l.decision(f, outcome, decision.reason, rule);
            l.request(
                f,
                listener,
                route.unwrap_or(""),
                outcome,
                elapsed.as_secs_f64(),
            );
            l.destination(f, location, operator, outcome);
            for &(jurisdiction, axis) in exposed.pairs() {
                l.exposure(f, jurisdiction, axis, outcome, None);
            }
            for jurisdiction in exposed.jurisdictions() {
                l.exposed_to(f, jurisdiction, outcome);
            }
        });
    }

    /// One name resolution, successful or not.
    pub fn observe_dns(&self, elapsed: Duration, failure: Option<DnsFailure>) {
        self.f.dns_duration.observe(elapsed.as_secs_f64());
        if let Some(failure) = failure {
            self.f.dns_failures[dns_index(failure)].inc();
        }
    }

    /// One connection to a checked upstream address, once it is usable.
    pub fn observe_connect(&self, elapsed: Duration) {
        self.f.connect_duration.observe(elapsed.as_secs_f64());
    }

    /// The bytes of a tunnel or upgraded connection, once it ends: `sent` from the client to
    /// the destination, `received` back. Counted by outcome, and as exposure bytes by
    /// jurisdiction and axis when the destination is exposed.
    pub fn observe_bytes(&self, decision: &Decision, sent: u64, received: u64) {
        let judge = self.judge.load();
        let exposed = exposures(judge.as_deref(), decision);
        let outcome = decision.outcome;
        let f = &self.f;
        with_local(self.id, |l| {
            l.bytes(f, outcome, sent, received);
            for &(jurisdiction, axis) in exposed.pairs() {
                l.exposure(f, jurisdiction, axis, outcome, Some((sent, received)));
            }
        });
    }

    /// An upstream failure; `kind` is one of `UpstreamError::kind()`'s bounded values.
    pub fn upstream_error(&self, kind: &str) {
        with_local(self.id, |l| l.upstream_error(&self.f, kind));
    }

    /// A request refused before a decision, or a client error; `kind` is one of
    /// `Refusal::kind()`'s bounded values. Not on the path of a served request: the
    /// family's own lookup is enough.
    pub fn refusal(&self, kind: &str) {
        self.f.refusals.with_label_values(&[kind]).inc();
    }

    /// A client connection accepted on `listener`: counted until the guard is dropped.
    pub fn connection_opened(&self, listener: &str) -> ConnectionGauge {
        let gauge = with_local(self.id, |l| {
            l.worker_accepted(&self.f);
            l.active(&self.f, listener)
        });
        gauge.inc();
        ConnectionGauge(gauge)
    }

    /// A client connection closed at accept because every slot was taken.
    pub fn connection_refused(&self, listener: &str) {
        with_local(self.id, |l| l.refused(&self.f, listener));
    }

    /// What is loaded: call at start and after each good reload. Replaces the previous
    /// state's series (policy info, databases, exemptions), so none outlives its state.
    pub fn set_state(&self, state: &State) {
        self.judge.store(Some(Arc::new(Judge::new(&state.policy))));
        let f = &self.f;
        let mut status = self.status();
        let policy = &state.policy;
        f.policy_info.reset();
        f.policy_info
            .with_label_values(&[&*policy.name, &*policy.version, policy.mode.as_str()])
            .set(1);
        f.policy_rules.set(gauge_value(policy.rules.len()));
        f.database_build.reset();
        for (name, db) in [("country", &state.geo.country), ("asn", &state.geo.asn)] {
            if let Some(db) = db {
                f.database_build
                    .with_label_values(&[name])
                    .set(i64::try_from(db.info.build_epoch).unwrap_or(i64::MAX));
            }
        }
        f.published_source_date.reset();
        if let Some(p) = &state.geo.published {
            let r = &p.ranges;
            let version = r.version.get(..12).unwrap_or(&r.version);
            for s in &r.sources {
                if let Some(t) = crate::geo::published::date_epoch(&s.date) {
                    f.published_source_date
                        .with_label_values(&[&*s.file, &*s.publisher, version, &*r.built])
                        .set(t);
                }
            }
        }
        f.operators.set(gauge_value(state.geo.registry.len()));
        f.exemption_expiry.reset();
        status.exemptions.clear();
        for e in policy.exemptions() {
            let end = end_of_day(e.expires);
            f.exemption_expiry.with_label_values(&[&*e.id]).set(end);
            status.exemptions.push(end);
        }
        f.last_reload_success.set(now());
        f.state_loaded.set(1);
    }

    /// A reload attempt's result. A failed one keeps the previous state (and its metrics).
    pub fn reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.f.reloads.with_label_values(&[result]).inc();
        self.f.last_reload_ok.set(i64::from(ok));
        if ok {
            self.f.last_reload_success.set(now());
        }
    }

    /// The audit log's health, read from `AuditLog::health()` (lock-free) before each
    /// render. The audit metrics appear with the first call: none without an audit log.
    pub fn set_audit(&self, health: &AuditHealth) {
        let mut status = self.status();
        let audit = status.audit.get_or_insert_with(|| self.f.audit());
        // The log counts; these counters follow it.
        let written = health.records_written.saturating_sub(audit.written.get());
        audit.written.inc_by(written);
        let failures = health.write_failures.saturating_sub(audit.failures.get());
        audit.failures.inc_by(failures);
        audit.ok.set(i64::from(health.ok));
    }

    /// The audit log's checkpoint and shipping, read before each render (no shipping
    /// figures without `[audit.ship]`: they stay 0).
    pub fn set_audit_tlog(&self, t: &crate::audit::TlogStatus) {
        let mut status = self.status();
        let f = status.audit_tlog.get_or_insert_with(|| self.f.audit_tlog());
        f.checkpoint_size
            .set(i64::try_from(t.checkpoint_size).unwrap_or(i64::MAX));
        f.ship_sent
            .inc_by(t.ship_sent.saturating_sub(f.ship_sent.get()));
        f.ship_failures
            .inc_by(t.ship_failures.saturating_sub(f.ship_failures.get()));
        f.ship_backlog
            .set(i64::try_from(t.ship_backlog).unwrap_or(i64::MAX));
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let families = {
            let status = self.status();
            let now = now();
            let active = status.exemptions.iter().filter(|end| **end > now).count();
            self.f.exemptions_active.set(gauge_value(active));
            self.f.registry.gather()
        };
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode_utf8(&families, &mut out) {
            tracing::warn!(error = %e, "metrics could not be rendered");
        }
        out
    }

    fn status(&self) -> MutexGuard<'_, Status> {
        // A panic elsewhere while holding it leaves plain numbers: still usable.
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// An exemption applies up to and including its `expires` day (UTC): it ends at the next
/// midnight.
fn end_of_day(date: time::Date) -> i64 {
    date.midnight().assume_utc().unix_timestamp() + 86_400
}
