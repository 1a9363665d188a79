//! The hot path's handles: each thread keeps its own map from label values to cloned metric
//! handles, so recording a request is a few hash lookups in memory no other thread touches
//! and one atomic add per counter. `with_label_values` (a read lock on the shared vector,
//! an allocation per call) runs only the first time a thread meets a label set.

use std::cell::RefCell;

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};

use super::families::Families;
use crate::country::Country;
use crate::policy::{Outcome, Reason};

/// Maps keyed by label values the operator bounds (rule ids, listener names, country
/// codes), never attacker-chosen strings: a fast non-cryptographic hash will do.
pub(crate) type FxMap<K, V> = rustc_hash::FxHashMap<K, V>;

#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const OUTCOMES: [Outcome; 5] = [
    Outcome::Allow,
    Outcome::Exempt,
    Outcome::WouldBlock,
    Outcome::Block,
    Outcome::Failed,
];

/// Exhaustive: a new outcome is a compile error here, not an index out of bounds.
#[inline]
pub(crate) fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Allow => 0,
        Outcome::Exempt => 1,
        Outcome::WouldBlock => 2,
        Outcome::Block => 3,
        Outcome::Failed => 4,
    }
}

pub(crate) const REASONS: [Reason; 19] = Reason::ALL;

#[inline]
pub(crate) fn reason_index(r: Reason) -> usize {
    match r {
        Reason::Compliant => 0,
        Reason::Exemption => 1,
        Reason::RuleBlock => 2,
        Reason::LocationNotAllowed => 3,
        Reason::OperatorNotAllowed => 4,
        Reason::UnknownLocation => 5,
        Reason::UnknownOperator => 6,
        Reason::SpecialAddress => 7,
        Reason::PortNotAllowed => 8,
        Reason::OwnListener => 9,
        Reason::DnsNxDomain => 10,
        Reason::DnsServFail => 11,
        Reason::DnsTimeout => 12,
        Reason::DnsNoAddresses => 13,
        Reason::DnsRefused => 14,
        Reason::DnsError => 15,
        Reason::NoAsn => 16,
        Reason::QualificationMissing => 17,
        Reason::TunnelUnnamed => 18,
    }
}

/// Which of a destination's two jurisdictions is outside the allowed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    Location = 0,
    Operator = 1,
}

impl Axis {
    pub fn as_str(self) -> &'static str {
        match self {
            Axis::Location => "location",
            Axis::Operator => "operator",
        }
    }
}

/// A country as a map key; 0 is `unknown`.
pub(crate) type CountryKey = u16;

#[inline]
pub(crate) fn country_key(c: Option<Country>) -> CountryKey {
    match c {
        Some(c) => match c.as_str().as_bytes() {
            [a, b] => (u16::from(*a) << 8) | u16::from(*b),
            _ => 0,
        },
        None => 0,
    }
}

/// The label value of a [`CountryKey`]: the ISO code, or `unknown`. No allocation.
#[derive(Clone, Copy)]
pub(crate) struct CountryLabel([u8; 2]);

pub(crate) fn country_label(key: CountryKey) -> CountryLabel {
    CountryLabel(key.to_be_bytes())
}

impl CountryLabel {
    pub fn as_str(&self) -> &str {
        match std::str::from_utf8(&self.0) {
            Ok(code) if self.0 != [0, 0] => code,
            _ => "unknown",
        }
    }
}

type PerOutcome<T> = [Option<T>; 5];

/// One thread's handles for one `Metrics` instance.
#[derive(Default)]
pub(crate) struct Local {
    /// rule → [outcome × reason].
    decisions: FxMap<Box<str>, DecisionRow>,
    listeners: FxMap<Box<str>, ListenerLocal>,
    destinations: FxMap<(CountryKey, CountryKey), PerOutcome<IntCounter>>,
    exposure: FxMap<CountryKey, ExposureLocal>,
    sent: PerOutcome<IntCounter>,
    received: PerOutcome<IntCounter>,
    upstream_errors: FxMap<Box<str>, Option<IntCounter>>,
    /// This thread's worker's accepted connections (a thread runs one worker).
    worker_connections: Option<IntCounter>,
}

#[derive(Default)]
struct ListenerLocal {
    /// route ("" for none) → requests by outcome.
    routes: FxMap<Box<str>, PerOutcome<IntCounter>>,
    duration: PerOutcome<Histogram>,
    active: Option<IntGauge>,
    refused: Option<IntCounter>,
}

#[derive(Default)]
struct ExposureLocal {
    requests: [PerOutcome<IntCounter>; 2],
    sent: [PerOutcome<IntCounter>; 2],
    received: [PerOutcome<IntCounter>; 2],
    any: PerOutcome<IntCounter>,
}

/// Fills `slot` from the vector on first use, then hands out the cached handle.
#[inline]
fn cached<'a>(
    slot: &'a mut Option<IntCounter>,
    vec: &IntCounterVec,
    labels: &[&str],
) -> &'a IntCounter {
    slot.get_or_insert_with(|| vec.with_label_values(labels))
}

/// Runs `f` on the entry of `key`, made on first use. One lookup when it exists, and no
/// allocation: the key is copied only to insert.
#[inline]
fn with_entry<V: Default, R>(
    map: &mut FxMap<Box<str>, V>,
    key: &str,
    f: impl FnOnce(&mut V) -> R,
) -> R {
    if let Some(v) = map.get_mut(key) {
        return f(v);
    }
    f(map.entry(key.into()).or_default())
}

/// Decision counters of one rule, by outcome × reason.
struct DecisionRow(Box<[Option<IntCounter>; OUTCOMES.len() * REASONS.len()]>);

impl Default for DecisionRow {
    fn default() -> Self {
        DecisionRow(Box::new([const { None }; OUTCOMES.len() * REASONS.len()]))
    }
}

impl Local {
    pub fn decision(&mut self, f: &Families, outcome: Outcome, reason: Reason, rule: &str) {
        let i = outcome_index(outcome) * REASONS.len() + reason_index(reason);
        with_entry(&mut self.decisions, rule, |row| {
            cached(
                &mut row.0[i],
                &f.decisions,
                &[outcome.as_str(), reason.as_str(), rule],
            )
            .inc()
        });
    }

    /// Counts the request and observes its duration.
    pub fn request(
        &mut self,
        f: &Families,
        listener: &str,
        route: &str,
        outcome: Outcome,
        seconds: f64,
    ) {
        let o = outcome_index(outcome);
        with_entry(&mut self.listeners, listener, |l| {
            l.duration[o]
                .get_or_insert_with(|| {
                    f.request_duration
                        .with_label_values(&[listener, outcome.as_str()])
                })
                .observe(seconds);
            with_entry(&mut l.routes, route, |per_route| {
                cached(
                    &mut per_route[o],
                    &f.requests,
                    &[listener, route, outcome.as_str()],
                )
                .inc()
            });
        });
    }

    pub fn destination(
        &mut self,
        f: &Families,
        location: CountryKey,
        operator: CountryKey,
        outcome: Outcome,
    ) {
        let per = self.destinations.entry((location, operator)).or_default();
        let slot = &mut per[outcome_index(outcome)];
        if slot.is_none() {
            let (l, op) = (country_label(location), country_label(operator));
            *slot = Some(f.destination_requests.with_label_values(&[
                l.as_str(),
                op.as_str(),
                outcome.as_str(),
            ]));
        }
        if let Some(c) = slot {
            c.inc();
        }
    }

    /// One exposure of a request on one axis: the request counter, and the bytes if any.
    pub fn exposure(
        &mut self,
        f: &Families,
        jurisdiction: CountryKey,
        axis: Axis,
        outcome: Outcome,
        bytes: Option<(u64, u64)>,
    ) {
        let e = self.exposure.entry(jurisdiction).or_default();
        let (a, o) = (axis as usize, outcome_index(outcome));
        let code = country_label(jurisdiction);
        let labels = [code.as_str(), axis.as_str(), outcome.as_str()];
        match bytes {
            None => cached(&mut e.requests[a][o], &f.exposure_requests, &labels).inc(),
            Some((sent, received)) => {
                if sent > 0 {
                    cached(&mut e.sent[a][o], &f.exposure_sent, &labels).inc_by(sent);
                }
                if received > 0 {
                    cached(&mut e.received[a][o], &f.exposure_received, &labels).inc_by(received);
                }
            }
        }
    }

    /// A request exposed to `jurisdiction` on either axis (counted once per jurisdiction).
    pub fn exposed_to(&mut self, f: &Families, jurisdiction: CountryKey, outcome: Outcome) {
        let e = self.exposure.entry(jurisdiction).or_default();
        let slot = &mut e.any[outcome_index(outcome)];
        if slot.is_none() {
            let code = country_label(jurisdiction);
            *slot = Some(
                f.jurisdiction_exposed
                    .with_label_values(&[code.as_str(), outcome.as_str()]),
            );
        }
        if let Some(c) = slot {
            c.inc();
        }
    }

    pub fn bytes(&mut self, f: &Families, outcome: Outcome, sent: u64, received: u64) {
        let o = outcome_index(outcome);
        if sent > 0 {
            cached(&mut self.sent[o], &f.sent, &[outcome.as_str()]).inc_by(sent);
        }
        if received > 0 {
            cached(&mut self.received[o], &f.received, &[outcome.as_str()]).inc_by(received);
        }
    }

    pub fn upstream_error(&mut self, f: &Families, kind: &str) {
        with_entry(&mut self.upstream_errors, kind, |c| {
            c.get_or_insert_with(|| f.upstream_errors.with_label_values(&[kind]))
                .inc()
        });
    }

    pub fn active(&mut self, f: &Families, listener: &str) -> IntGauge {
        with_entry(&mut self.listeners, listener, |l| {
            // The refused counter appears (at 0) with the listener's first connection.
            l.refused
                .get_or_insert_with(|| f.connections_refused.with_label_values(&[listener]));
            l.active
                .get_or_insert_with(|| f.connections_active.with_label_values(&[listener]))
                .clone()
        })
    }

    pub fn worker_accepted(&mut self, f: &Families) {
        self.worker_connections
            .get_or_insert_with(|| {
                let worker = crate::workers::current().to_string();
                f.worker_connections.with_label_values(&[&*worker])
            })
            .inc();
    }

    pub fn refused(&mut self, f: &Families, listener: &str) {
        with_entry(&mut self.listeners, listener, |l| {
            l.refused
                .get_or_insert_with(|| f.connections_refused.with_label_values(&[listener]))
                .inc()
        });
    }
}

/// How many `Metrics` instances a thread keeps handles for; past this the oldest go (only
/// tests make more than one).
const MAX_INSTANCES: usize = 8;

thread_local! {
    static LOCAL: RefCell<Vec<(u64, Box<Local>)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's handles for instance `id`. During thread teardown, when the
/// thread-local is gone, `f` runs on a fresh, throwaway set (slow, still counted).
pub(crate) fn with_local<R>(id: u64, f: impl FnOnce(&mut Local) -> R) -> R {
    let mut f = Some(f);
    let ran = LOCAL.try_with(|cell| {
        let mut all = cell.try_borrow_mut().ok()?;
        let pos = match all.iter().position(|(i, _)| *i == id) {
            Some(p) => p,
            None => {
                if all.len() >= MAX_INSTANCES {
                    all.remove(0);
                }
                all.push((id, Box::default()));
                all.len() - 1
            }
        };
        let f = f.take()?;
        Some(f(&mut all[pos].1))
    });
    match (ran, f) {
        (Ok(Some(r)), _) => r,
        (_, Some(f)) => f(&mut Local::default()),
        // `f` is taken only just before it runs, and then the result is `Some`.
        (_, None) => unreachable!("with_local: the closure ran without a result"),
    }
}
