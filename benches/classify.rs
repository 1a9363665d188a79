//! `Geo::classify` on the shipped databases and registry (target: median under 300 ns).
//! Run with `cargo bench --bench classify`.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use douane::geo::{Geo, LocalNetwork, LocalNetworks};

fn shipped() -> Geo {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Geo::load(
        Some(&root.join("data/country.mmdb")),
        Some(&root.join("data/asn.mmdb")),
        &root.join("policies/operators.toml"),
    )
    .expect("the shipped data loads")
}

fn classify(c: &mut Criterion) {
    let geo = shipped();
    let networks = LocalNetworks::new(vec![
        LocalNetwork {
            cidr: "10.0.0.0/8".parse().unwrap(),
            location: "FR".parse().ok(),
            operator: "FR".parse().ok(),
            label: "datacentre-mairie".into(),
        },
        LocalNetwork {
            cidr: "192.168.0.0/16".parse().unwrap(),
            location: "FR".parse().ok(),
            operator: "FR".parse().ok(),
            label: "site-annexe".into(),
        },
    ]);
    // AWS Paris, OVHcloud, Cloudflare, Google, an unlisted ASN, IPv6, IPv4-mapped, private.
    let ips: Vec<IpAddr> = [
        "15.236.0.1",
        "51.75.0.1",
        "1.1.1.1",
        "8.8.8.8",
        "193.51.224.1",
        "2001:41d0::1",
        "2a00:1450:4007:80e::200e",
        "::ffff:35.180.0.1",
        "10.1.2.3",
        "203.0.113.7",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();

    c.bench_function("classify/mix", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % ips.len();
            black_box(geo.classify(black_box(ips[i]), &networks))
        })
    });
    c.bench_function("classify/aws_paris", |b| {
        let ip = ips[0];
        b.iter(|| black_box(geo.classify(black_box(ip), &networks)))
    });
}

criterion_group!(benches, classify);
criterion_main!(benches);
