//! `Metrics::observe_request`, what `finish()` records for every request (target: median
//! under 1 µs, no lock shared by all requests). Run with `cargo bench --bench metrics`.
//!
//! `observe_request/*` times one call on one thread once its handles are cached (the steady
//! state); `observe_request/2-threads` runs two threads at once on the same `Metrics`, each
//! iteration being one call on each thread, to show that they do not serialise.

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use douane::country::Country;
use douane::diag::SourceFile;
use douane::geo::{Classification, Geo, OperatorRegistry, Origin};
use douane::metrics::Metrics;
use douane::policy::{Decision, IpVerdict, Mode, Outcome, Policy, Reason, Violation};
use douane::state::State;

const POLICY: &str = r#"
[policy]
name = "bench"
allowed_locations = ["EU", "EEA"]
allowed_operators = ["EU", "EEA"]

[[rule]]
id = "sante"
hosts = ["*.sante.example"]
allowed_locations = ["FR"]
allowed_operators = ["FR"]

[[rule]]
id = "messagerie"
hosts = ["*.outlook.com"]
action = "allow"
justification = "marché en cours"
ticket = "DSI-1234"
expires = 2099-06-30
"#;

fn state() -> State {
    let policy = Policy::from_sources(vec![SourceFile::new("bench.toml", POLICY)])
        .expect("the bench policy loads");
    let geo = Geo {
        country: None,
        asn: None,
        registry: OperatorRegistry::from_operators(Vec::new()),
        published: None,
    };
    State::new(policy, geo)
}

fn verdict(ip: &str, location: &str, operator: &str, violation: Option<Violation>) -> IpVerdict {
    IpVerdict {
        class: Classification {
            ip: ip.parse().unwrap(),
            special: None,
            network: None,
            location: Country::parse(location).ok(),
            location_origin: Origin::Database,
            asn: Some(16509),
            as_org: Some("AMAZON-02".into()),
            operator: Some("Amazon".into()),
            jurisdiction: Country::parse(operator).ok(),
            operator_origin: Origin::Registry,
            published: None,
        },
        violation,
    }
}

fn decisions(state: &State) -> Vec<(&'static str, Decision)> {
    let p = state.provenance.clone();
    let make =
        |outcome, reason, rule: Option<&str>, ips: Vec<IpVerdict>, connect: &[&str]| Decision {
            outcome,
            reason,
            rule: rule.map(Arc::from),
            mode: Mode::Enforce,
            ips,
            connect: connect
                .iter()
                .map(|s| s.parse::<IpAddr>().unwrap())
                .collect(),
            notes: Vec::new(),
            provenance: p.clone(),
        };
    let us = Country::parse("US").unwrap();
    vec![
        (
            "allow",
            make(
                Outcome::Allow,
                Reason::Compliant,
                None,
                vec![verdict("192.0.2.1", "FR", "FR", None)],
                &["192.0.2.1"],
            ),
        ),
        (
            "block",
            make(
                Outcome::Block,
                Reason::LocationNotAllowed,
                Some("sante"),
                vec![
                    verdict(
                        "198.51.100.1",
                        "US",
                        "US",
                        Some(Violation::LocationNotAllowed { location: us }),
                    ),
                    verdict(
                        "198.51.100.2",
                        "US",
                        "US",
                        Some(Violation::LocationNotAllowed { location: us }),
                    ),
                ],
                &[],
            ),
        ),
        (
            "exempt",
            make(
                Outcome::Exempt,
                Reason::Exemption,
                Some("messagerie"),
                vec![
                    verdict("203.0.113.1", "IE", "US", None),
                    verdict("203.0.113.2", "NL", "US", None),
                    verdict("203.0.113.3", "US", "US", None),
                    verdict("203.0.113.4", "DE", "US", None),
                ],
                &["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"],
            ),
        ),
    ]
}

fn observe_request(c: &mut Criterion) {
    let state = state();
    let metrics = Arc::new(Metrics::new());
    metrics.set_state(&state);
    let decisions = decisions(&state);
    let elapsed = Duration::from_micros(1_234);
    for (name, d) in &decisions {
        c.bench_function(&format!("observe_request/{name}"), |b| {
            b.iter(|| metrics.observe_request(black_box("forward"), None, black_box(d), elapsed))
        });
    }
    c.bench_function("observe_request/mix", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % decisions.len();
            metrics.observe_request(
                black_box("forward"),
                Some("api"),
                black_box(&decisions[i].1),
                elapsed,
            )
        })
    });
    c.bench_function("observe_request/2-threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    let (metrics, decisions) = (&metrics, &decisions);
                    s.spawn(move || {
                        for i in 0..iters {
                            let d = &decisions[i as usize % decisions.len()].1;
                            metrics.observe_request("forward", None, black_box(d), elapsed);
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    c.bench_function("observe_bytes/exempt", |b| {
        b.iter(|| metrics.observe_bytes(black_box(&decisions[2].1), 1_500, 64_000))
    });
}

criterion_group!(benches, observe_request);
criterion_main!(benches);
