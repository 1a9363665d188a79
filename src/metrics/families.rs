//! Every metric douane exports: name, help, labels and buckets, registered in one registry.
//! Names follow Prometheus conventions: `douane_` prefix, base units, `_total` counters.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::resolve::DnsFailure;

/// Whole requests: from accept to the decided response (its headers, or the CONNECT answer).
const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// DNS lookups and upstream connects: cache hits are sub-millisecond, timeouts seconds.
const STEP_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The DNS failure kinds, in the order of [`dns_index`].
pub(crate) const DNS_FAILURES: [DnsFailure; 6] = [
    DnsFailure::NxDomain,
    DnsFailure::ServFail,
    DnsFailure::Timeout,
    DnsFailure::NoAddresses,
    DnsFailure::Refused,
    DnsFailure::Other,
];

pub(crate) fn dns_index(failure: DnsFailure) -> usize {
    match failure {
        DnsFailure::NxDomain => 0,
        DnsFailure::ServFail => 1,
        DnsFailure::Timeout => 2,
        DnsFailure::NoAddresses => 3,
        DnsFailure::Refused => 4,
        DnsFailure::Other => 5,
    }
}

/// The metric families. Handles into the labelled ones are cached per thread (see `local`),
/// so the hot path never takes the vectors' locks after the first request of a label set.
pub(crate) struct Families {
    pub registry: Registry,
    // Requests and decisions.
    pub decisions: IntCounterVec,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub destination_requests: IntCounterVec,
    pub exposure_requests: IntCounterVec,
    pub exposure_sent: IntCounterVec,
    pub exposure_received: IntCounterVec,
    pub jurisdiction_exposed: IntCounterVec,
    pub sent: IntCounterVec,
    pub received: IntCounterVec,
    // Resolution and upstreams.
    pub dns_duration: Histogram,
    pub dns_failures: [IntCounter; 6],
    pub connect_duration: Histogram,
    pub upstream_errors: IntCounterVec,
    pub refusals: IntCounterVec,
    // Connections.
    pub connections_active: IntGaugeVec,
    pub connections_refused: IntCounterVec,
    pub worker_connections: IntCounterVec,
    // What is loaded.
    pub policy_info: IntGaugeVec,
    pub policy_rules: IntGauge,
    pub database_build: IntGaugeVec,
    pub published_source_date: IntGaugeVec,
    pub operators: IntGauge,
    pub exemptions_active: IntGauge,
    pub exemption_expiry: IntGaugeVec,
    pub reloads: IntCounterVec,
    pub last_reload_ok: IntGauge,
    pub last_reload_success: IntGauge,
    pub state_loaded: IntGauge,
}

/// The audit log's health, registered once an audit log reports (none without one).
pub(crate) struct AuditFamilies {
    pub written: IntCounter,
    pub failures: IntCounter,
    pub ok: IntGauge,
}

/// The audit log's checkpoints and shipping, registered with the first report.
pub(crate) struct AuditTlogFamilies {
    pub checkpoint_size: IntGauge,
    pub ship_sent: IntCounter,
    pub ship_failures: IntCounter,
    pub ship_backlog: IntGauge,
}

impl Families {
    pub fn audit_tlog(&self) -> AuditTlogFamilies {
        let r = &self.registry;
        AuditTlogFamilies {
            checkpoint_size: gauge(
                r,
                "douane_audit_checkpoint_size",
                "Records covered by the latest signed audit checkpoint.",
            ),
            ship_sent: counter(
                r,
                "douane_audit_ship_sent_total",
                "Audit records shipped to the syslog collector.",
            ),
            ship_failures: counter(
                r,
                "douane_audit_ship_failures_total",
                "Failed connections or writes to the syslog collector.",
            ),
            ship_backlog: gauge(
                r,
                "douane_audit_ship_backlog_records",
                "Audit records in the log not yet shipped to the syslog collector.",
            ),
        }
    }

    pub fn new() -> Families {
        let registry = Registry::new();
        let r = &registry;
        let dns_failures_vec = counter_vec(
            r,
            "douane_dns_failures_total",
            "DNS resolutions that failed, by kind.",
            &["kind"],
        );
        let dns_failures = DNS_FAILURES.map(|f| dns_failures_vec.with_label_values(&[f.as_str()]));
        Families {
            decisions: counter_vec(
                r,
                "douane_decisions_total",
                "Policy decisions by outcome, reason and rule (rule=\"default\" for the policy defaults).",
                &["outcome", "reason", "rule"],
            ),
            requests: counter_vec(
                r,
                "douane_requests_total",
                "Decided requests by listener, route (empty for forward listeners) and outcome.",
                &["listener", "route", "outcome"],
            ),
            request_duration: histogram_vec(
                r,
                "douane_request_duration_seconds",
                "Time from accept to the decided response (its headers, or the CONNECT answer).",
                &["listener", "outcome"],
                REQUEST_BUCKETS,
            ),
            destination_requests: counter_vec(
                r,
                "douane_destination_requests_total",
                "Decided requests by the location and operator jurisdiction of their destination address (ISO 3166-1 code or unknown) and outcome.",
                &["location", "operator", "outcome"],
            ),
            exposure_requests: counter_vec(
                r,
                "douane_exposure_requests_total",
                "Requests to an address located (axis=location) or operated (axis=operator) under a jurisdiction outside the allowed set, by jurisdiction, axis and outcome.",
                &["jurisdiction", "axis", "outcome"],
            ),
            exposure_sent: counter_vec(
                r,
                "douane_exposure_sent_bytes_total",
                "Bytes sent to exposed destinations (tunnels and upgraded connections), by jurisdiction, axis and outcome.",
                &["jurisdiction", "axis", "outcome"],
            ),
            exposure_received: counter_vec(
                r,
                "douane_exposure_received_bytes_total",
                "Bytes received from exposed destinations (tunnels and upgraded connections), by jurisdiction, axis and outcome.",
                &["jurisdiction", "axis", "outcome"],
            ),
            jurisdiction_exposed: counter_vec(
                r,
                "douane_exposure_jurisdiction_requests_total",
                "Requests exposed to a jurisdiction on either axis, each request counted once per jurisdiction, by jurisdiction and outcome.",
                &["jurisdiction", "outcome"],
            ),
            sent: counter_vec(
                r,
                "douane_sent_bytes_total",
                "Bytes sent to destinations through tunnels and upgraded connections, by outcome.",
                &["outcome"],
            ),
            received: counter_vec(
                r,
                "douane_received_bytes_total",
                "Bytes received from destinations through tunnels and upgraded connections, by outcome.",
                &["outcome"],
            ),
            dns_duration: histogram(
                r,
                "douane_dns_resolution_duration_seconds",
                "Time to resolve a destination name (cache hits included), successful or not.",
                STEP_BUCKETS,
            ),
            dns_failures,
            connect_duration: histogram(
                r,
                "douane_upstream_connect_duration_seconds",
                "Time to get a connection to a checked upstream address (TCP, and TLS where used).",
                STEP_BUCKETS,
            ),
            upstream_errors: counter_vec(
                r,
                "douane_upstream_errors_total",
                "Upstream failures by kind (connect, connect_timeout, tls, tls_timeout, parent_proxy, http, response_timeout, per_address_cap).",
                &["kind"],
            ),
            refusals: counter_vec(
                r,
                "douane_refusals_total",
                "Requests refused before a decision, and client errors during an exchange, by kind (no_host, duplicate_host, framing_named_in_connection, ambiguous_framing, misdirected_request, no_route, bad_target, loop, malformed_body, tls_on_proxy_port).",
                &["kind"],
            ),
            connections_active: gauge_vec(
                r,
                "douane_connections_active",
                "Client connections open, by listener.",
                &["listener"],
            ),
            connections_refused: counter_vec(
                r,
                "douane_connections_refused_total",
                "Client connections closed at accept because the connection limit was reached, by listener.",
                &["listener"],
            ),
            worker_connections: counter_vec(
                r,
                "douane_worker_connections_total",
                "Client connections admitted, by worker thread (`--workers`): how evenly the kernel spreads them.",
                &["worker"],
            ),
            policy_info: gauge_vec(
                r,
                "douane_policy_info",
                "The loaded policy: always 1, with its name, version (SHA-256 of its content) and mode.",
                &["name", "version", "mode"],
            ),
            policy_rules: gauge(r, "douane_policy_rules", "Rules in the loaded policy."),
            database_build: gauge_vec(
                r,
                "douane_database_build_timestamp_seconds",
                "Build time of each loaded geolocation database (country, asn), Unix seconds.",
                &["database"],
            ),
            published_source_date: gauge_vec(
                r,
                "douane_published_ranges_source_timestamp_seconds",
                "Own date of each source file of the loaded published ranges, Unix seconds; the artifact version and build date are labels.",
                &["source", "publisher", "version", "built"],
            ),
            operators: gauge(
                r,
                "douane_operator_registry_operators",
                "Operators in the loaded operator registry.",
            ),
            exemptions_active: gauge(
                r,
                "douane_exemptions_active",
                "Exemptions (action = \"allow\" rules with an expiry) still in force now.",
            ),
            exemption_expiry: gauge_vec(
                r,
                "douane_exemption_expiry_timestamp_seconds",
                "When each exemption stops applying (the end of its expires day, UTC), Unix seconds, by rule id.",
                &["rule"],
            ),
            reloads: counter_vec(
                r,
                "douane_reloads_total",
                "Reload attempts by result (success, failure).",
                &["result"],
            ),
            last_reload_ok: gauge(
                r,
                "douane_last_reload_successful",
                "1 if the last reload attempt succeeded (or none was made), 0 if it failed and the previous state is kept.",
            ),
            last_reload_success: gauge(
                r,
                "douane_last_reload_success_timestamp_seconds",
                "When the running state was loaded (the start or the last good reload), Unix seconds.",
            ),
            state_loaded: gauge(
                r,
                "douane_state_loaded",
                "1 once a policy and its databases are loaded.",
            ),
            registry,
        }
    }

    pub fn audit(&self) -> AuditFamilies {
        let r = &self.registry;
        AuditFamilies {
            written: counter(
                r,
                "douane_audit_records_written_total",
                "Audit records written to the log.",
            ),
            failures: counter(
                r,
                "douane_audit_write_failures_total",
                "Failed audit log writes.",
            ),
            ok: gauge(
                r,
                "douane_audit_ok",
                "1 if the audit log is writable (the last write succeeded and the writer runs), else 0.",
            ),
        }
    }
}

// The definitions above are constants that no input reaches: building or registering one
// fails only on a programming error (a bad name, a duplicate), which every unit test that
// builds a `Metrics` would catch at once. Hence `expect` here and nowhere else.

const BAD: &str = "constant metric definition (checked by the unit tests)";

fn register<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone())).expect(BAD);
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        r,
        IntCounterVec::new(Opts::new(name, help), labels).expect(BAD),
    )
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        r,
        IntGaugeVec::new(Opts::new(name, help), labels).expect(BAD),
    )
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(r, HistogramVec::new(opts, labels).expect(BAD))
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(r, Histogram::with_opts(opts).expect(BAD))
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    register(r, IntCounter::new(name, help).expect(BAD))
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    register(r, IntGauge::new(name, help).expect(BAD))
}
