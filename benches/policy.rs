//! Policy speed: compiling a generated policy of 10,000 rules (target: well under 100 ms)
//! and deciding against it (target: under 2 µs), host matching through the suffix index.
//! Run with `cargo bench --bench policy`.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, Criterion};
use douane::diag::SourceFile;
use douane::geo::Geo;
use douane::policy::{decide, load_sources, Policy, Provenance, Request, Resolution};
use douane::resolve::{Destination, Host};
use douane::state::State;
use time::macros::date;

const RULES: usize = 10_000;

/// A policy of `n` rules mixing exact hosts, suffixes, clients, ports, methods and
/// exemptions, as a large collectivité might accumulate.
fn generate(n: usize) -> String {
    let mut text = String::from(
        "[policy]\nname = \"bench\"\nallowed_locations = [\"EU\", \"EEA\"]\n\
         allowed_operators = [\"EU\", \"EEA\"]\nunknown_location = \"allow\"\nunknown_operator = \"allow\"\n",
    );
    for i in 0..n {
        text.push_str(&format!("\n[[rule]]\nid = \"r{i}\"\n"));
        match i % 5 {
            0 => text.push_str(&format!("hosts = [\"app{i}.tenant{}.example\"]\n", i % 97)),
            1 => text.push_str(&format!("hosts = [\"*.svc{i}.example\"]\nallowed_locations = [\"FR\"]\n")),
            2 => text.push_str(&format!(
                "hosts = [\"*.t{i}.example\", \"api{i}.example\"]\nclients = [\"10.{}.0.0/16\"]\n",
                i % 250
            )),
            3 => text.push_str(&format!(
                "hosts = [\"upload{i}.example\"]\nmethods = [\"PUT\", \"POST\"]\naction = \"block\"\n"
            )),
            _ => text.push_str(&format!(
                "hosts = [\"*.saas{i}.com\"]\naction = \"allow\"\njustification = \"bench\"\nexpires = 2030-01-01\n"
            )),
        }
    }
    text
}

fn state(policy: Policy) -> State {
    let provenance = std::sync::Arc::new(Provenance {
        policy_name: policy.name.clone(),
        policy_version: policy.version.clone(),
        country_db_built: None,
        asn_db_built: None,
        registry_version: "bench".into(),
        published: None,
    });
    State {
        policy,
        geo: Geo {
            country: None,
            asn: None,
            registry: Default::default(),
            published: None,
        },
        provenance,
    }
}

fn bench(c: &mut Criterion) {
    let text = generate(RULES);
    let source = SourceFile::new("bench.toml", text);
    let model = load_sources(vec![source.clone()]).expect("the generated policy is valid");

    c.bench_function("policy/load+validate+compile 10k rules", |b| {
        b.iter(|| Policy::from_sources(vec![black_box(source.clone())]))
    });
    c.bench_function("policy/compile 10k rules (validated model)", |b| {
        b.iter(|| Policy::compile(black_box(model.clone())))
    });

    let state = state(Policy::compile(model));
    let addrs: [IpAddr; 2] = ["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
    let today = date!(2026 - 05 - 01);
    let cases = [
        ("suffix match near the end", "a.b.svc9996.example"),
        ("exact match", "app9995.tenant7.example"),
        ("no rule matches", "www.unrelated.example.org"),
    ];
    for (label, host) in cases {
        let destination = Destination {
            host: Host::Name(host.into()),
            port: 443,
        };
        let req = Request {
            client: "10.20.0.1".parse().unwrap(),
            destination: &destination,
            http: None,
        };
        c.bench_function(&format!("policy/decide 10k rules, {label}"), |b| {
            b.iter(|| {
                decide(
                    black_box(&state),
                    black_box(&req),
                    Resolution::Addresses(&addrs),
                    today,
                )
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
