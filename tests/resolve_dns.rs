//! The resolver against a real DNS server on loopback (hickory-server in this process).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::dns::{start_silent_server, DnsServer, Reply};
use douane::resolve::{DnsFailure, Host, Resolver, ResolverConfig, Source};

fn config(ns: SocketAddr) -> ResolverConfig {
    ResolverConfig {
        nameservers: vec![ns],
        timeout: 1000,
        attempts: 1,
        ..ResolverConfig::default()
    }
}

fn host(s: &str) -> Host {
    Host::parse(s).unwrap()
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn zone() -> Vec<(&'static str, Reply)> {
    vec![
        (
            "dual.test",
            Reply::addresses(["127.0.0.2", "127.0.0.3", "::1"]),
        ),
        ("v4.test", Reply::addresses(["127.0.0.4"])),
        ("v6.test", Reply::addresses(["::1"])),
        (
            "empty.test",
            Reply::Addresses {
                ips: vec![],
                ttl: 60,
            },
        ),
        (
            "alias.test",
            Reply::Cname {
                target: "v4.test".into(),
                ttl: 120,
            },
        ),
        ("broken.test", Reply::ServFail),
        ("closed.test", Reply::Refused),
        ("_svc.under_score.test", Reply::addresses(["127.0.0.7"])),
    ]
}

#[tokio::test]
async fn a_and_aaaa_answers_then_the_cache() {
    let server = DnsServer::start(zone()).await;
    let r = Resolver::new(&config(server.addr)).unwrap();

    let got = r.resolve(&host("Dual.Test.")).await.unwrap();
    assert_eq!(got.source, Source::Dns);
    assert_eq!(
        got.addresses.to_vec(),
        ips(&["127.0.0.2", "127.0.0.3", "::1"])
    );
    assert_eq!(got.ttl, Some(Duration::from_secs(300)));
    assert_eq!(server.queries("dual.test"), 2, "one A and one AAAA query");

    let again = r.resolve(&host("dual.test")).await.unwrap();
    assert_eq!(again.source, Source::Cache);
    assert_eq!(again.addresses, got.addresses);
    assert!(again.ttl.unwrap() <= Duration::from_secs(300));
    assert_eq!(server.queries("dual.test"), 2, "answered from the cache");
    assert_eq!(
        r.cached(&host("dual.test")).unwrap().addresses,
        got.addresses
    );

    let underscore = r.resolve(&host("_svc.under_score.test")).await.unwrap();
    assert_eq!(underscore.addresses.to_vec(), ips(&["127.0.0.7"]));

    let v6 = r.resolve(&host("v6.test")).await.unwrap();
    assert_eq!(v6.addresses.to_vec(), ips(&["::1"]));

    let alias = r.resolve(&host("alias.test")).await.unwrap();
    assert_eq!(alias.addresses.to_vec(), ips(&["127.0.0.4"]));
    assert_eq!(
        alias.ttl,
        Some(Duration::from_secs(120)),
        "the CNAME's TTL counts"
    );
}

#[tokio::test]
async fn ipv6_off_queries_a_only() {
    let server = DnsServer::start(zone()).await;
    let r = Resolver::new(&ResolverConfig {
        ipv6: false,
        ..config(server.addr)
    })
    .unwrap();
    let got = r.resolve(&host("dual.test")).await.unwrap();
    assert_eq!(got.addresses.to_vec(), ips(&["127.0.0.2", "127.0.0.3"]));
    assert_eq!(server.queries("dual.test"), 1);
    assert_eq!(
        r.resolve(&host("v6.test")).await.unwrap_err(),
        DnsFailure::NoAddresses
    );
}

#[tokio::test]
async fn negative_answers_are_distinct_and_cached() {
    let server = DnsServer::start(zone()).await;
    let r = Resolver::new(&config(server.addr)).unwrap();

    assert_eq!(
        r.resolve(&host("missing.test")).await,
        Err(DnsFailure::NxDomain)
    );
    let asked = server.queries("missing.test");
    assert!(asked >= 1);
    assert_eq!(
        r.resolve(&host("missing.test")).await,
        Err(DnsFailure::NxDomain)
    );
    assert_eq!(server.queries("missing.test"), asked, "nxdomain is cached");
    assert_eq!(
        r.try_cached(&host("missing.test")),
        Some(Err(DnsFailure::NxDomain))
    );
    assert_eq!(r.cached(&host("missing.test")), None);

    assert_eq!(
        r.resolve(&host("empty.test")).await,
        Err(DnsFailure::NoAddresses)
    );
    let asked = server.queries("empty.test");
    assert_eq!(
        r.resolve(&host("empty.test")).await,
        Err(DnsFailure::NoAddresses)
    );
    assert_eq!(server.queries("empty.test"), asked, "no-data is cached");
}

#[tokio::test]
async fn servfail_and_refused_are_distinct_and_not_cached() {
    let server = DnsServer::start(zone()).await;
    let r = Resolver::new(&config(server.addr)).unwrap();

    assert_eq!(
        r.resolve(&host("broken.test")).await,
        Err(DnsFailure::ServFail)
    );
    let asked = server.queries("broken.test");
    assert_eq!(
        r.resolve(&host("broken.test")).await,
        Err(DnsFailure::ServFail)
    );
    assert!(
        server.queries("broken.test") > asked,
        "servfail is asked again"
    );

    assert_eq!(
        r.resolve(&host("closed.test")).await,
        Err(DnsFailure::Refused)
    );
}

#[tokio::test]
async fn a_silent_server_times_out_quickly() {
    let silent = start_silent_server().await;
    let r = Resolver::new(&ResolverConfig {
        timeout: 200,
        ..config(silent)
    })
    .unwrap();
    let start = Instant::now();
    assert_eq!(r.resolve(&host("any.test")).await, Err(DnsFailure::Timeout));
    // Hickory's own per-query timeout fires, well before the resolver's overall deadline.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_millis(650),
        "{took:?}"
    );
    assert_eq!(
        r.try_cached(&host("any.test")),
        None,
        "timeouts are not cached"
    );
}

#[tokio::test]
async fn ttl_below_min_ttl_stays_cached() {
    let server = DnsServer::start([("short.test", Reply::with_ttl(["127.0.0.5"], 1))]).await;
    let r = Resolver::new(&ResolverConfig {
        min_ttl: 3,
        ..config(server.addr)
    })
    .unwrap();
    let first = r.resolve(&host("short.test")).await.unwrap();
    assert_eq!(
        first.ttl,
        Some(Duration::from_secs(3)),
        "clamped up to min_ttl"
    );
    let asked = server.queries("short.test");
    tokio::time::sleep(Duration::from_millis(1500)).await; // past the record's own TTL
    let again = r.resolve(&host("short.test")).await.unwrap();
    assert_eq!(again.source, Source::Cache);
    assert_eq!(server.queries("short.test"), asked);
}

#[tokio::test]
async fn ttl_above_max_ttl_expires_at_max_ttl() {
    let server = DnsServer::start([("long.test", Reply::with_ttl(["127.0.0.6"], 3600))]).await;
    let r = Resolver::new(&ResolverConfig {
        min_ttl: 1,
        max_ttl: 1,
        ..config(server.addr)
    })
    .unwrap();
    let first = r.resolve(&host("long.test")).await.unwrap();
    assert_eq!(
        first.ttl,
        Some(Duration::from_secs(1)),
        "clamped down to max_ttl"
    );
    let asked = server.queries("long.test");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let again = r.resolve(&host("long.test")).await.unwrap();
    assert_eq!(again.source, Source::Dns, "expired, asked again");
    assert!(server.queries("long.test") > asked);
}

#[tokio::test]
async fn overrides_answer_before_dns() {
    let server = DnsServer::start(zone()).await;
    let mut c = config(server.addr);
    c.overrides.insert("V4.test.".into(), ips(&["127.0.0.9"]));
    c.overrides
        .insert("bücher.test".into(), ips(&["127.0.0.10"]));
    let r = Resolver::new(&c).unwrap();

    let got = r.resolve(&host("v4.test")).await.unwrap();
    assert_eq!(
        (got.source, got.addresses.to_vec()),
        (Source::Override, ips(&["127.0.0.9"]))
    );
    let got = r.resolve(&host("xn--bcher-kva.test")).await.unwrap();
    assert_eq!(got.addresses.to_vec(), ips(&["127.0.0.10"]));
    assert_eq!(server.queries("v4.test"), 0);
}

#[tokio::test]
async fn concurrent_lookups_share_one_query() {
    let server = DnsServer::start(zone()).await;
    let r = std::sync::Arc::new(Resolver::new(&config(server.addr)).unwrap());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let r = r.clone();
            tokio::spawn(async move { r.resolve(&host("v4.test")).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(
            t.await.unwrap().unwrap().addresses.to_vec(),
            ips(&["127.0.0.4"])
        );
    }
    assert_eq!(
        server.queries("v4.test"),
        2,
        "one A and one AAAA query for 20 lookups"
    );
}

#[tokio::test]
async fn tcp_works_too() {
    // The server listens on TCP on the same port; a TCP-only client proves it.
    let server = DnsServer::start(zone()).await;
    let stream = tokio::net::TcpStream::connect(server.addr).await;
    assert!(stream.is_ok(), "tcp listener on {}", server.addr);
}
