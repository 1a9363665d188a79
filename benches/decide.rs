//! A full decision on the shipped configuration, databases and policies, for a destination
//! whose resolution is cached (target: median under 1 µs): the cache lookup, the
//! classification of every address, the rule search and the verdicts.
//! Run with `cargo bench --bench decide`.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use douane::config::Config;
use douane::policy::{decide, HttpFacts, Request, Resolution};
use douane::resolve::{Destination, Host, Resolver};
use douane::state::State;

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(&root.join("douane.toml")).expect("the shipped config loads");
    let state = State::load(&config).expect("the shipped state loads");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The shipped overrides stand in for a warm cache: the same lookup path, no network.
    let resolver = runtime.block_on(async { Resolver::new(&config.resolver).unwrap() });
    let today = time::OffsetDateTime::now_utc().date();

    for (label, host) in [
        ("blocked (AWS Paris)", "aws-paris.example"),
        ("allowed (OVHcloud)", "ovh-roubaix.example"),
    ] {
        let destination = Destination {
            host: Host::parse(host).unwrap(),
            port: 443,
        };
        c.bench_function(&format!("decide/cached resolution, {label}"), |b| {
            b.iter(|| {
                let resolved = resolver.cached(&destination.host).expect("cached");
                let request = Request {
                    client: "10.1.2.3".parse().unwrap(),
                    destination: &destination,
                    http: Some(HttpFacts {
                        method: "GET",
                        path: "/login",
                    }),
                };
                black_box(decide(
                    &state,
                    &request,
                    Resolution::Addresses(&resolved.addresses),
                    today,
                ))
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
