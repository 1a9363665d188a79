//! `Geo::load` + `classify` on generated `.mmdb` files in both schemas, read by the real
//! reader from real files.

#[path = "common/mmdb.rs"]
mod mmdb;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use douane::country::Country;
use douane::geo::{
    Classification, DbKind, Geo, GeoDb, GeoError, LocalNetwork, LocalNetworks, Origin, Schema,
    SpecialRange,
};

const REGISTRY: &str = r#"
[[operator]]
name = "OVHcloud"
jurisdiction = "FR"
asns = [16276]
source = "test"

[[operator]]
name = "Amazon"
jurisdiction = "US"
asns = [16509, 8987]
source = "test"

[[operator]]
name = "Google"
jurisdiction = "US"
asns = [15169]
source = "test"

[[operator]]
name = "S3NS"
jurisdiction = "FR"
cidrs = ["127.0.9.0/24"]
source = "test"
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    country: PathBuf,
    asn: PathBuf,
    registry: PathBuf,
}

fn fixture(schema: Schema) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let country = dir.path().join("country.mmdb");
    let asn = dir.path().join("asn.mmdb");
    let registry = dir.path().join("operators.toml");
    mmdb::write_country_db(
        &country,
        &[
            ("127.0.0.2/32", "FR"),
            ("127.0.0.3/32", "FR"),
            ("127.0.0.4/32", "US"),
            ("127.0.0.5/32", "DE"),
            ("127.0.9.0/24", "FR"),
            ("::1/128", "FR"),
        ],
        schema,
    );
    mmdb::write_asn_db(
        &asn,
        &[
            ("127.0.0.2/32", 16276, "OVH SAS"),
            ("127.0.0.3/32", 16509, "Amazon.com, Inc."),
            ("127.0.0.4/32", 8987, "Amazon Data Services Ireland Ltd"),
            ("127.0.0.5/32", 64512, "Private Use AS"),
            ("127.0.9.0/24", 15169, "Google LLC"),
        ],
    );
    std::fs::write(&registry, REGISTRY).unwrap();
    Fixture {
        _dir: dir,
        country,
        asn,
        registry,
    }
}

fn load(f: &Fixture) -> Geo {
    Geo::load(Some(&f.country), Some(&f.asn), &f.registry).unwrap()
}

fn loopback_named() -> LocalNetworks {
    // Loopback is special: databases place it only where the policy names it.
    LocalNetworks::new(vec![LocalNetwork {
        cidr: "127.0.0.0/8".parse().unwrap(),
        location: None,
        operator: None,
        label: "loopback-tests".into(),
    }])
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cc(s: &str) -> Option<Country> {
    Some(Country::parse(s).unwrap())
}

fn summary(c: &Classification) -> (Option<Country>, Option<&str>, Option<Country>, Origin) {
    (
        c.location,
        c.operator.as_deref(),
        c.jurisdiction,
        c.operator_origin,
    )
}

#[test]
fn classify_in_both_country_schemas() {
    for schema in [Schema::GeoIp2, Schema::CountryCode] {
        let f = fixture(schema);
        let geo = load(&f);
        assert_eq!(geo.country.as_ref().unwrap().info.schema, schema);
        assert_eq!(geo.asn.as_ref().unwrap().info.kind, DbKind::Asn);
        let nets = loopback_named();

        let ovh = geo.classify(ip("127.0.0.2"), &nets);
        assert_eq!(
            summary(&ovh),
            (cc("FR"), Some("OVHcloud"), cc("FR"), Origin::Registry),
            "{schema:?}"
        );
        assert_eq!(ovh.location_origin, Origin::Database);
        assert_eq!(
            (ovh.asn, ovh.as_org.as_deref()),
            (Some(16276), Some("OVH SAS"))
        );
        assert_eq!(ovh.special, Some(SpecialRange::Loopback));
        assert_eq!(ovh.network.as_deref(), Some("loopback-tests"));

        // Located in France, operated under US law.
        let aws = geo.classify(ip("127.0.0.3"), &nets);
        assert_eq!(
            summary(&aws),
            (cc("FR"), Some("Amazon"), cc("US"), Origin::Registry)
        );
        // An Irish-registered Amazon ASN is still Amazon, US.
        let aws_ie = geo.classify(ip("127.0.0.4"), &nets);
        assert_eq!(
            summary(&aws_ie),
            (cc("US"), Some("Amazon"), cc("US"), Origin::Registry)
        );

        // An ASN the registry does not list: operator unknown, ASN kept.
        let unknown = geo.classify(ip("127.0.0.5"), &nets);
        assert_eq!(summary(&unknown), (cc("DE"), None, None, Origin::Unknown));
        assert_eq!(unknown.asn, Some(64512));
        assert_eq!(unknown.as_org.as_deref(), Some("Private Use AS"));

        // A registry CIDR wins over the ASN it is announced under.
        let jv = geo.classify(ip("127.0.9.7"), &nets);
        assert_eq!(
            summary(&jv),
            (cc("FR"), Some("S3NS"), cc("FR"), Origin::Registry)
        );
        assert_eq!(jv.asn, Some(15169));

        // Nothing known at all.
        let none = geo.classify(ip("127.0.0.99"), &nets);
        assert_eq!(summary(&none), (None, None, None, Origin::Unknown));
        assert_eq!(none.location_origin, Origin::Unknown);
    }
}

#[test]
fn canonical_forms_are_classified_as_their_ipv4() {
    let f = fixture(Schema::CountryCode);
    let geo = load(&f);
    let nets = loopback_named();
    for form in ["::ffff:127.0.0.3", "64:ff9b::7f00:3"] {
        let c = geo.classify(ip(form), &nets);
        assert_eq!(c.ip, ip("127.0.0.3"), "{form}");
        assert_eq!(
            summary(&c),
            (cc("FR"), Some("Amazon"), cc("US"), Origin::Registry)
        );
    }
}

#[test]
fn special_addresses_stay_unplaced_unless_a_network_names_them() {
    let f = fixture(Schema::GeoIp2);
    let geo = load(&f);
    let none = LocalNetworks::default();
    let c = geo.classify(ip("127.0.0.3"), &none);
    assert_eq!(c.special, Some(SpecialRange::Loopback));
    assert_eq!(summary(&c), (None, None, None, Origin::Unknown));
    assert_eq!(c.asn, None, "no database consulted");
    let c = geo.classify(ip("::1"), &none);
    assert_eq!(
        (c.special, c.location),
        (Some(SpecialRange::Loopback), None)
    );
    let c = geo.classify(ip("64:ff9b::a9fe:a9fe"), &none);
    assert_eq!(c.ip, ip("169.254.169.254"));
    assert_eq!(c.special, Some(SpecialRange::LinkLocal));
}

#[test]
fn network_entries_win_over_databases() {
    let f = fixture(Schema::GeoIp2);
    let geo = load(&f);
    let nets = LocalNetworks::new(vec![
        LocalNetwork {
            cidr: "127.0.0.0/8".parse().unwrap(),
            location: None,
            operator: None,
            label: "loopback-tests".into(),
        },
        LocalNetwork {
            cidr: "127.0.0.3/32".parse().unwrap(),
            location: Country::parse("DE").ok(),
            operator: Country::parse("DE").ok(),
            label: "datacentre-partenaire".into(),
        },
        LocalNetwork {
            cidr: "127.0.0.4/32".parse().unwrap(),
            location: Country::parse("FR").ok(),
            operator: None,
            label: "location-only".into(),
        },
        LocalNetwork {
            cidr: "10.0.0.0/8".parse().unwrap(),
            location: Country::parse("FR").ok(),
            operator: Country::parse("FR").ok(),
            label: "datacentre-mairie".into(),
        },
    ]);
    let c = geo.classify(ip("127.0.0.3"), &nets);
    assert_eq!(
        summary(&c),
        (
            cc("DE"),
            Some("datacentre-partenaire"),
            cc("DE"),
            Origin::Network
        )
    );
    assert_eq!(c.location_origin, Origin::Network);
    assert_eq!(c.network.as_deref(), Some("datacentre-partenaire"));
    assert_eq!(c.asn, Some(16509), "the ASN is still reported");

    // The entry names the location only: the operator still comes from the registry.
    let c = geo.classify(ip("127.0.0.4"), &nets);
    assert_eq!(
        summary(&c),
        (cc("FR"), Some("Amazon"), cc("US"), Origin::Registry)
    );
    assert_eq!(c.location_origin, Origin::Network);

    let c = geo.classify(ip("10.1.2.3"), &nets);
    assert_eq!(c.special, Some(SpecialRange::Private));
    assert_eq!(
        summary(&c),
        (
            cc("FR"),
            Some("datacentre-mairie"),
            cc("FR"),
            Origin::Network
        )
    );
}

#[test]
fn databases_are_optional() {
    let f = fixture(Schema::GeoIp2);
    let geo = Geo::load(None, Some(&f.asn), &f.registry).unwrap();
    let c = geo.classify(ip("127.0.0.3"), &loopback_named());
    assert_eq!(
        summary(&c),
        (None, Some("Amazon"), cc("US"), Origin::Registry)
    );
    let geo = Geo::load(Some(&f.country), None, &f.registry).unwrap();
    let c = geo.classify(ip("127.0.0.3"), &loopback_named());
    assert_eq!(summary(&c), (cc("FR"), None, None, Origin::Unknown));
}

#[test]
fn damaged_or_swapped_files_are_errors_not_panics() {
    let f = fixture(Schema::GeoIp2);
    let dir = f.country.parent().unwrap().to_owned();

    let err = Geo::load(Some(&f.asn), Some(&f.country), &f.registry).unwrap_err();
    assert!(matches!(err, GeoError::WrongKind { .. }), "{err}");
    assert!(err.to_string().contains("asn.mmdb"), "{err}");

    let good = std::fs::read(&f.country).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.mmdb", Vec::new()),
        ("garbage.mmdb", b"GIF89a not a database".repeat(50)),
        ("truncated.mmdb", good[..good.len() * 2 / 3].to_vec()),
        ("no-metadata.mmdb", good[..good.len() - 40].to_vec()),
    ];
    for (name, bytes) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = GeoDb::open(&path).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        let err = Geo::load(Some(&path), None, &f.registry).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
    let missing = Path::new("/nonexistent/country.mmdb");
    assert!(Geo::load(Some(missing), None, &f.registry).is_err());

    let bad_registry = dir.join("bad.toml");
    std::fs::write(
        &bad_registry,
        "[[operator]]\nname = \"X\"\njurisdiction = \"XX\"\n",
    )
    .unwrap();
    let err = Geo::load(None, None, &bad_registry)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.toml:3:16"), "{err}");
    assert!(err.contains("no `source`"), "{err}");
}
