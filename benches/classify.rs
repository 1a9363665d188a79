//! `Geo::classify` on the shipped databases, registry and published ranges (target: median
//! under 300 ns); the import of every shared provider file (target: under 5 s); the memory
//! the published ranges add (printed: target under 20 MB).
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
    .with_published(Some(
        Geo::load_published(&root.join("data/published.bin")).expect("the shipped ranges load"),
    ))
}

/// Resident set size of this process, from /proc (Linux), in bytes.
fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn classify(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let before = rss();
    let ranges = Geo::load_published(&root.join("data/published.bin")).unwrap();
    let after = rss();
    if let (Some(a), Some(b)) = (before, after) {
        println!(
            "published ranges: resident memory +{:.1} MB (lookup tables {:.1} MB), {} prefixes",
            b.saturating_sub(a) as f64 / 1e6,
            ranges.heap_bytes() as f64 / 1e6,
            ranges.prefix_count()
        );
    }
    drop(ranges);
    // The ASN database with its records decoded at load (the organisations shared, so that a
    // classification copies no string): what that costs at load, in time and memory.
    for file in ["data/country.mmdb", "data/asn.mmdb"] {
        let before = rss();
        let start = std::time::Instant::now();
        let db = douane::geo::GeoDb::open(&root.join(file)).unwrap();
        let took = start.elapsed();
        let after = rss();
        if let (Some(a), Some(b)) = (before, after) {
            println!(
                "{file}: opened in {:.0} ms, resident memory +{:.1} MB ({:.1} MB file); {} ASN records decoded ({:.1} MB)",
                took.as_secs_f64() * 1e3,
                b.saturating_sub(a) as f64 / 1e6,
                db.info.size as f64 / 1e6,
                db.decoded_asn_records(),
                db.decoded_asn_bytes() as f64 / 1e6
            );
        }
        drop(db);
    }
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
    let plain = Geo::load(
        Some(&root.join("data/country.mmdb")),
        Some(&root.join("data/asn.mmdb")),
        &root.join("policies/operators.toml"),
    )
    .unwrap();
    c.bench_function("classify/mix_without_published", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % ips.len();
            black_box(plain.classify(black_box(ips[i]), &networks))
        })
    });
    c.bench_function("classify/aws_paris", |b| {
        let ip = ips[0];
        b.iter(|| black_box(geo.classify(black_box(ip), &networks)))
    });
    c.bench_function("classify/azure_france_central", |b| {
        let ip: IpAddr = "20.19.0.1".parse().unwrap();
        b.iter(|| black_box(geo.classify(black_box(ip), &networks)))
    });

    let shared = [
        root.join("../shared/data/providers"),
        root.join("../../shared/data/providers"),
    ]
    .into_iter()
    .find(|p| p.is_dir());
    if let Some(dir) = shared {
        let mut group = c.benchmark_group("ranges");
        group.sample_size(10);
        group.bench_function("import_all_shared_provider_files", |b| {
            b.iter(|| {
                let files = douane::geo::published::files_in(&dir).unwrap();
                let report =
                    douane::geo::published::compile_files(&files, Some("2025-07-25"), "bench")
                        .unwrap();
                black_box(report.compiled.encode())
            })
        });
        group.bench_function("load_artifact", |b| {
            b.iter(|| black_box(Geo::load_published(&root.join("data/published.bin")).unwrap()))
        });
        group.finish();
    }
}

criterion_group!(benches, classify);
criterion_main!(benches);
