//! Resolver configuration and the answers that need no network.

use super::*;

fn parse(toml_text: &str) -> Result<ResolverConfig, toml::de::Error> {
    toml::from_str(toml_text)
}

/// A config whose name server is a closed loopback port: nothing here reaches it.
fn offline() -> ResolverConfig {
    ResolverConfig {
        nameservers: vec!["127.0.0.1:9".parse().unwrap()],
        ..ResolverConfig::default()
    }
}

#[test]
fn defaults() {
    let c = parse("").unwrap();
    assert_eq!(c, ResolverConfig::default());
    assert_eq!((c.timeout, c.attempts), (2000, 2));
    assert_eq!((c.min_ttl, c.max_ttl, c.negative_ttl), (5, 300, 30));
    assert_eq!(c.cache_size, 10_000);
    assert!(c.ipv6 && c.nameservers.is_empty() && c.overrides.is_empty());
    assert!(c.validate().is_empty());
}

#[test]
fn full_table() {
    let c = parse(
        r#"
        nameservers = ["192.0.2.53", "192.0.2.54:5353", "[2001:db8::53]:53"]
        timeout = 500
        attempts = 3
        min_ttl = 1
        max_ttl = 60
        negative_ttl = 10
        cache_size = 100
        ipv6 = false
        [overrides]
        "CRM.example." = ["127.0.0.2", "::1"]
        "#,
    )
    .unwrap();
    assert_eq!(
        c.nameservers,
        vec![
            "192.0.2.53:53".parse().unwrap(),
            "192.0.2.54:5353".parse().unwrap(),
            "[2001:db8::53]:53".parse().unwrap()
        ]
    );
    assert_eq!(c.overrides["CRM.example."].len(), 2);
    assert!(c.validate().is_empty(), "{:?}", c.validate());
}

#[test]
fn unknown_keys_and_bad_nameservers_are_refused() {
    let e = parse("timeout_ms = 5").unwrap_err().to_string();
    assert!(e.contains("timeout_ms"), "{e}");
    let e = parse(r#"nameservers = ["dns.example"]"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid nameserver `dns.example`"), "{e}");
}

#[test]
fn validate_lists_every_problem() {
    let c = parse(
        r#"
        nameservers = ["0.0.0.0"]
        timeout = 0
        attempts = 0
        min_ttl = 600
        max_ttl = 300
        [overrides]
        "bad name" = ["127.0.0.2"]
        "127.0.0.1" = ["127.0.0.2"]
        "empty.example" = []
        "dup.example" = ["127.0.0.2"]
        "DUP.example." = ["127.0.0.3"]
        "#,
    )
    .unwrap();
    let problems: Vec<String> = c.validate().iter().map(ToString::to_string).collect();
    let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(has("resolver.timeout"), "{problems:?}");
    assert!(has("resolver.attempts"), "{problems:?}");
    assert!(
        has("resolver.min_ttl: 600 is above max_ttl (300)"),
        "{problems:?}"
    );
    assert!(has("resolver.nameservers: `0.0.0.0:53`"), "{problems:?}");
    assert!(
        has(r#"resolver.overrides."bad name": invalid character ' '"#),
        "{problems:?}"
    );
    assert!(
        has(r#"resolver.overrides."127.0.0.1": is an IP address"#),
        "{problems:?}"
    );
    assert!(
        has(r#"resolver.overrides."empty.example": has no addresses"#),
        "{problems:?}"
    );
    assert!(has("is the same name as"), "{problems:?}");
    assert_eq!(problems.len(), 8, "{problems:?}");

    let err = Resolver::new(&c).unwrap_err().to_string();
    assert!(
        err.starts_with("invalid [resolver] configuration: resolver."),
        "{err}"
    );
}

#[tokio::test]
async fn literals_and_overrides_need_no_network() {
    let mut c = offline();
    c.overrides
        .insert("CRM.Example.".into(), vec!["127.0.0.2".parse().unwrap()]);
    let r = Resolver::new(&c).unwrap();

    let host = Host::parse("crm.example").unwrap();
    let got = r.resolve(&host).await.unwrap();
    assert_eq!(got.source, Source::Override);
    assert_eq!(&*got.addresses, &["127.0.0.2".parse::<IpAddr>().unwrap()]);
    assert_eq!(got.ttl, None);
    assert_eq!(r.cached(&host), Some(got));

    let ip = Host::parse("0x7f.1").unwrap();
    let got = r.resolve(&ip).await.unwrap();
    assert_eq!(got.source, Source::Literal);
    assert_eq!(&*got.addresses, &["127.0.0.1".parse::<IpAddr>().unwrap()]);

    assert_eq!(r.cached(&Host::parse("other.example").unwrap()), None);
}

#[test]
fn failure_labels_are_stable() {
    let all = [
        DnsFailure::NxDomain,
        DnsFailure::ServFail,
        DnsFailure::Timeout,
        DnsFailure::NoAddresses,
        DnsFailure::Refused,
        DnsFailure::Other,
    ];
    let labels: Vec<&str> = all.iter().map(|f| f.as_str()).collect();
    assert_eq!(
        labels,
        [
            "nxdomain",
            "servfail",
            "timeout",
            "no_addresses",
            "refused",
            "other"
        ]
    );
    for f in all {
        assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
    }
}
