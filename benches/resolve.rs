//! Destination parsing and a resolution answered from the cache (overrides and cache path).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use douane::resolve::{Destination, Host, Resolver, ResolverConfig};

#[path = "../tests/common/dns.rs"]
mod dns;

fn parse(c: &mut Criterion) {
    c.bench_function("host_parse_ascii", |b| {
        b.iter(|| Host::parse(black_box("login.microsoftonline.com")))
    });
    c.bench_function("host_parse_mixed_case_trailing_dot", |b| {
        b.iter(|| Host::parse(black_box("Login.MicrosoftOnline.com.")))
    });
    c.bench_function("host_parse_idna", |b| {
        b.iter(|| Host::parse(black_box("bücher.example")))
    });
    c.bench_function("host_parse_ipv4_short", |b| {
        b.iter(|| Host::parse(black_box("0x7f.1")))
    });
    c.bench_function("authority_parse", |b| {
        b.iter(|| Destination::parse_authority(black_box("crm.example:443")))
    });
}

fn cached(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    // A real DNS server on loopback answers once; every iteration is then a cache hit.
    let server = runtime.block_on(dns::DnsServer::start([(
        "crm.example",
        dns::Reply::addresses(["127.0.0.2", "::1"]),
    )]));
    let mut config = ResolverConfig {
        nameservers: vec![server.addr],
        ..ResolverConfig::default()
    };
    config.overrides.insert(
        "static.example".into(),
        vec!["127.0.0.3".parse().expect("ip")],
    );
    let resolver = runtime
        .block_on(async { Resolver::new(&config) })
        .expect("resolver");
    let host = Host::parse("crm.example").expect("host");
    runtime
        .block_on(resolver.resolve(&host))
        .expect("warm the cache");

    c.bench_function("resolve_cached_sync", |b| {
        b.iter(|| resolver.cached(black_box(&host)))
    });
    c.bench_function("resolve_cached_async", |b| {
        b.iter(|| runtime.block_on(resolver.resolve(black_box(&host))))
    });
    let fixed = Host::parse("static.example").expect("host");
    c.bench_function("resolve_override_sync", |b| {
        b.iter(|| resolver.cached(black_box(&fixed)))
    });
}

criterion_group!(benches, parse, cached);
criterion_main!(benches);
