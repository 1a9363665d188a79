//! Appending one audit record with the synchronous writer (serialise, hash, one write(2)),
//! no per-record fsync. Target: median under 5 µs.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use douane::audit::{AuditConfig, AuditEvent, AuditWriter};
use douane::country::Country;
use douane::geo::{Classification, Origin};
use douane::policy::{Decision, IpVerdict, Mode, Outcome, Provenance, Reason, Violation};

fn decision() -> Decision {
    let us = Country::parse("US").unwrap_or_else(|e| panic!("{e}"));
    let fr = Country::parse("FR").unwrap_or_else(|e| panic!("{e}"));
    let ip = |s: &str| s.parse().unwrap_or_else(|e| panic!("{e}"));
    let verdict = |addr: &str| IpVerdict {
        class: Classification {
            ip: ip(addr),
            special: None,
            network: None,
            location: Some(fr),
            location_origin: Origin::Database,
            asn: Some(16509),
            as_org: Some("AMAZON-02".into()),
            operator: Some(Arc::from("Amazon")),
            jurisdiction: Some(us),
            operator_origin: Origin::Registry,
            published: None,
        },
        violation: Some(Violation::OperatorNotAllowed { jurisdiction: us }),
    };
    Decision {
        outcome: Outcome::Block,
        reason: Reason::OperatorNotAllowed,
        rule: Some(Arc::from("default")),
        mode: Mode::Enforce,
        ips: vec![verdict("203.0.113.10"), verdict("203.0.113.11")],
        connect: vec![],
        notes: vec![],
        provenance: Arc::new(Provenance {
            policy_name: Arc::from("collectivite"),
            policy_version: Arc::from("2026-03-01"),
            country_db_built: None,
            asn_db_built: None,
            registry_version: Arc::from("1"),
            published: None,
        }),
    }
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = AuditConfig {
        path: dir.path().join("bench.jsonl"),
        // No fsync inside the measured loop.
        sync_interval_ms: 3_600_000,
        ..AuditConfig::default()
    };
    let mut writer = AuditWriter::open(&config).unwrap_or_else(|e| panic!("{e}"));
    let d = decision();
    let event = AuditEvent {
        request_id: "01J9Z8Q4M2W6T3R5Y7U9I1O3P5",
        listener: "forward",
        client: "192.0.2.7".parse().unwrap_or_else(|e| panic!("{e}")),
        method: Some("GET"),
        scheme: "https",
        host: "crm.example.com",
        port: 443,
        path: Some("/api/v1/contacts?page=2"),
        upstream_via: None,
        decision: &d,
    };
    c.bench_function("audit_append_record", |b| {
        b.iter(|| {
            writer
                .append(black_box(&event))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
}

criterion_group!(benches, append);
criterion_main!(benches);
