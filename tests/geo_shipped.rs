//! The shipped data (`data/*.mmdb`, `policies/operators.toml`) answers the questions the
//! default policy depends on: AWS Paris is in France under US law, OVHcloud France is French.

use std::net::IpAddr;
use std::path::Path;

use douane::country::Country;
use douane::geo::{DbKind, Geo, LocalNetworks, Origin, Schema};

fn shipped() -> Geo {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Geo::load(
        Some(&root.join("data/country.mmdb")),
        Some(&root.join("data/asn.mmdb")),
        &root.join("policies/operators.toml"),
    )
    .expect("the shipped data loads")
}

fn cc(s: &str) -> Option<Country> {
    Country::parse(s).ok()
}

#[test]
fn shipped_databases_and_registry() {
    let geo = shipped();
    let country = &geo.country.as_ref().unwrap().info;
    let asn = &geo.asn.as_ref().unwrap().info;
    assert_eq!(
        (country.kind, country.schema),
        (DbKind::Country, Schema::CountryCode)
    );
    assert_eq!((asn.kind, asn.schema), (DbKind::Asn, Schema::GeoIp2));
    assert!(
        (8_000_000..14_000_000).contains(&asn.size),
        "asn.mmdb is {} bytes",
        asn.size
    );
    assert_eq!(asn.build_time.date().to_string(), "2026-06-17");
    assert!(geo.registry.len() >= 40, "{} operators", geo.registry.len());
}

#[test]
fn aws_paris_is_in_france_under_us_law() {
    let geo = shipped();
    let none = LocalNetworks::default();
    for ip in ["15.236.0.1", "35.180.0.1"] {
        let c = geo.classify(ip.parse().unwrap(), &none);
        assert_eq!(c.location, cc("FR"), "{c:?}");
        assert_eq!(c.asn, Some(16509), "{c:?}");
        assert_eq!(c.as_org.as_deref(), Some("Amazon.com, Inc."));
        assert_eq!(c.operator.as_deref(), Some("Amazon"));
        assert_eq!(c.jurisdiction, cc("US"));
        assert_eq!(
            (c.location_origin, c.operator_origin),
            (Origin::Database, Origin::Registry)
        );
    }
}

#[test]
fn ovhcloud_france_is_french() {
    let geo = shipped();
    let none = LocalNetworks::default();
    for ip in ["51.75.0.1", "51.68.0.1", "51.210.0.1"] {
        let c = geo.classify(ip.parse().unwrap(), &none);
        assert_eq!(c.location, cc("FR"), "{c:?}");
        assert_eq!(c.asn, Some(16276), "{c:?}");
        assert_eq!(c.operator.as_deref(), Some("OVHcloud"));
        assert_eq!(c.jurisdiction, cc("FR"));
    }
}

#[test]
fn other_operators_and_forms() {
    let geo = shipped();
    let none = LocalNetworks::default();
    let op = |ip: &str| {
        let c = geo.classify(ip.parse::<IpAddr>().unwrap(), &none);
        (c.operator.as_deref().map(str::to_owned), c.jurisdiction)
    };
    assert_eq!(op("1.1.1.1"), (Some("Cloudflare".into()), cc("US")));
    assert_eq!(op("::ffff:15.236.0.1"), (Some("Amazon".into()), cc("US")));
    assert_eq!(
        op("64:ff9b::fec:1"),
        (Some("Amazon".into()), cc("US")),
        "NAT64 of 15.236.0.1"
    );
    assert_eq!(op("2001:41d0::1"), (Some("OVHcloud".into()), cc("FR")));
    let private = geo.classify("10.0.0.1".parse().unwrap(), &none);
    assert!(private.special.is_some() && private.location.is_none());
}

/// The ASN records decoded once at load (shared organisation strings) answer exactly what
/// decoding the record at each lookup answers, over a spread of the address space.
#[test]
fn asn_records_decoded_at_load_match_the_database() {
    let geo = shipped();
    let db = geo.asn.as_ref().unwrap();
    assert!(
        db.decoded_asn_records() > 10_000,
        "{} records decoded at load",
        db.decoded_asn_records()
    );
    let none = LocalNetworks::default();
    let mut x: u32 = 0x9e37_79b9;
    let mut found = 0;
    for i in 0..20_000u32 {
        // xorshift: addresses all over IPv4, and IPv6 under the allocated 2000::/3.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let ip: IpAddr = if i % 4 == 0 {
            std::net::Ipv6Addr::new(
                0x2000 | (x >> 16) as u16 & 0x1fff,
                x as u16,
                0,
                0,
                0,
                0,
                0,
                1,
            )
            .into()
        } else {
            std::net::Ipv4Addr::from(x).into()
        };
        let decoded = db.asn(ip);
        let shared = db.autonomous_system(ip);
        assert_eq!(
            shared.as_ref().map(|e| (e.asn, e.org.as_deref())),
            decoded,
            "{ip}"
        );
        let c = geo.classify(ip, &none);
        if c.special.is_none() {
            assert_eq!(
                (c.asn, c.as_org.as_deref()),
                (decoded.map(|d| d.0), decoded.and_then(|d| d.1)),
                "{ip}"
            );
        }
        found += usize::from(decoded.is_some());
    }
    assert!(found > 5_000, "{found} of 20,000 addresses have an ASN");
}
