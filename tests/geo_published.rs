//! Published ranges: the importers against the real provider files (read from
//! `<repo>/../shared/data`, never copied), the most specific prefix, precedence over the
//! databases, anycast, the two unknown reasons, a corrupt artifact refused; MaxMind's own
//! test databases answering as MaxMind's JSON sources say.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use douane::diag::SourceFile;
use douane::geo::published::{compile_files, files_in, Compiled, PublishedRanges};
use douane::geo::{Geo, LocalNetwork, LocalNetworks, Origin};
use douane::policy::decide::{decide, Request, Resolution};
use douane::policy::{Outcome, Policy, Reason};
use douane::resolve::Destination;
use douane::state::State;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `<repo>/../shared/data` (a fresh clone beside shared/), or two levels up for a worktree.
fn shared() -> PathBuf {
    let r = root();
    [r.join("../shared/data"), r.join("../../shared/data")]
        .into_iter()
        .find(|p| p.join("providers").is_dir())
        .expect("../shared/data beside the repository")
}

fn compiled_shared() -> PublishedRanges {
    let files = files_in(&shared().join("providers")).unwrap();
    let report = compile_files(&files, Some("2025-07-25"), "2026-12-01").unwrap();
    let bytes = report.compiled.encode();
    let (c, version) = Compiled::decode(&bytes).unwrap();
    PublishedRanges::new(c, version, "mem".into())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn shipped_geo(published: Option<Arc<PublishedRanges>>) -> Geo {
    let r = root();
    Geo::load(
        Some(&r.join("data/country.mmdb")),
        Some(&r.join("data/asn.mmdb")),
        &r.join("policies/operators.toml"),
    )
    .unwrap()
    .with_published(published)
}

#[test]
fn every_shared_provider_file_is_read_with_its_own_date() {
    let r = compiled_shared();
    let files: Vec<&str> = r.sources.iter().map(|s| s.file.as_str()).collect();
    assert_eq!(files.len(), 13, "{files:?}");
    let date = |f: &str| {
        r.sources
            .iter()
            .find(|s| s.file == f)
            .map(|s| s.date.clone())
            .unwrap()
    };
    assert_eq!(date("aws-ip-ranges.json"), "2025-07-24T20:23:14Z");
    assert_eq!(date("google-cloud-ip-ranges.json"), "2025-07-24T19:16:28Z");
    assert_eq!(date("oracle-cloud-ip-ranges.json"), "2025-07-21T07:13:25Z");
    assert_eq!(date("linode.txt"), "2025-07-24T10:00:06");
    assert_eq!(date("microsoft-azure-ip-ranges.json"), "2025-07-25");
    // One address of each format, with its publisher, region and country.
    let cases = [
        ("15.236.0.1", "aws", Some("eu-west-3"), Some("FR")),
        ("20.19.0.1", "azure", Some("centralfrance"), Some("FR")),
        (
            "34.155.0.1",
            "google-cloud",
            Some("europe-west9"),
            Some("FR"),
        ),
        ("104.16.0.1", "cloudflare", None, None),
        ("2606:4700::1", "cloudflare", None, None),
        ("151.101.0.1", "fastly", None, None),
        ("23.32.0.1", "akamai", None, None),
        ("165.225.0.1", "zscaler", None, None),
        ("5.101.96.1", "digitalocean", Some("NL-NH"), Some("NL")),
        ("2a01:7e01::1", "linode", Some("DE-HE"), Some("DE")),
    ];
    for (addr, publisher, region, country) in cases {
        let (_, f) = r.lookup(ip(addr)).unwrap_or_else(|| panic!("{addr}"));
        let f = r.fact(f).unwrap();
        assert_eq!(&*f.publisher, publisher, "{addr}");
        assert_eq!(f.region.as_deref(), region, "{addr}");
        assert_eq!(
            f.country.map(|c| c.to_string()).as_deref(),
            country,
            "{addr}"
        );
    }
    let oracle = r
        .prefixes()
        .find(|(_, f)| r.fact(*f).unwrap().region.as_deref() == Some("eu-paris-1"))
        .unwrap();
    assert_eq!(r.fact(oracle.1).unwrap().country.unwrap().as_str(), "FR");
    let github = r
        .prefixes()
        .find(|(_, f)| &*r.fact(*f).unwrap().publisher == "github");
    assert!(github.is_some());
}

#[test]
fn the_most_specific_published_prefix_wins_over_aws_supersets() {
    let r = compiled_shared();
    // Every published prefix: its own first address must resolve to a prefix at least as
    // specific, and a nested prefix of another region must win over its superset.
    let all: Vec<_> = r.prefixes().collect();
    let mut nested_other_region = 0;
    for (net, fact) in &all {
        let (found, found_fact) = r.lookup(net.network()).unwrap();
        assert!(found.prefix_len() >= net.prefix_len(), "{net} → {found}");
        if found == *net {
            assert_eq!(found_fact, *fact);
        }
    }
    for (outer, of) in all.iter().filter(|(n, _)| n.prefix_len() == 16) {
        let outer_region = &r.fact(*of).unwrap().region;
        for (inner, inf) in all.iter().filter(|(n, _)| outer.contains(n) && n != outer) {
            let inner_region = &r.fact(*inf).unwrap().region;
            if inner_region != outer_region && inner_region.is_some() {
                let (found, f) = r.lookup(inner.network()).unwrap();
                assert!(inner.contains(&found));
                if found == *inner {
                    assert_eq!(&r.fact(f).unwrap().region, inner_region);
                }
                nested_other_region += 1;
            }
        }
        if nested_other_region > 50 {
            break;
        }
    }
    assert!(
        nested_other_region > 0,
        "AWS publishes /16 supersets over other regions"
    );
}

#[test]
fn a_truncated_or_corrupt_artifact_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(root().join("data/published.bin")).unwrap();
    let path = dir.path().join("published.bin");
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let err = PublishedRanges::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("truncated") && err.contains("published.bin"),
        "{err}"
    );
    let mut flipped = good.clone();
    let at = flipped.len() - 10;
    flipped[at] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    let err = PublishedRanges::open(&path).unwrap_err().to_string();
    assert!(err.contains("corrupt"), "{err}");
    std::fs::write(&path, b"not at all").unwrap();
    assert!(PublishedRanges::open(&path)
        .unwrap_err()
        .to_string()
        .contains("not a douane published-ranges file"));
    // The shipped one loads and is the shared files' compilation.
    let shipped = PublishedRanges::open(&root().join("data/published.bin")).unwrap();
    assert_eq!(shipped.prefix_count(), compiled_shared().prefix_count());
}

#[test]
fn precedence_networks_then_published_then_databases() {
    let ranges = Arc::new(PublishedRanges::open(&root().join("data/published.bin")).unwrap());
    let geo = shipped_geo(Some(ranges.clone()));
    let none = LocalNetworks::default();
    // Published: location from the region, operator from the publisher.
    let mut c = geo.classify(ip("15.236.0.1"), &none);
    assert!(
        c.published.as_ref().unwrap().database_location.is_none(),
        "the published region answers: the country database is not asked"
    );
    geo.with_database_location(&mut c);
    assert_eq!(c.location_origin, Origin::Published);
    assert_eq!(c.operator_origin, Origin::Published);
    assert_eq!(c.operator.as_deref(), Some("Amazon"));
    let p = c.published.as_ref().unwrap();
    assert_eq!(p.prefix.to_string(), "15.236.0.0/15");
    assert_eq!(&*p.facts.source_file, "aws-ip-ranges.json");
    assert!(
        p.database_location.is_some(),
        "the database's answer is kept"
    );
    // A [[network]] entry wins over the published range.
    let nets = LocalNetworks::new(vec![LocalNetwork {
        cidr: "15.236.0.0/24".parse().unwrap(),
        location: "FR".parse().ok(),
        operator: "FR".parse().ok(),
        label: "contrat-local".into(),
    }]);
    let c = geo.classify(ip("15.236.0.1"), &nets);
    assert_eq!(
        (c.location_origin, c.operator_origin),
        (Origin::Network, Origin::Network)
    );
    // Where the published region and the country database disagree, both are kept and
    // the published one is used.
    let disagreement = ranges
        .prefixes()
        .filter(|(_, f)| &*ranges.fact(*f).unwrap().publisher == "aws")
        .map(|(n, _)| {
            let mut c = geo.classify(n.network(), &none);
            geo.with_database_location(&mut c);
            c
        })
        .find(|c| {
            c.published.as_ref().is_some_and(|p| {
                p.facts.country.is_some()
                    && p.database_location.is_some()
                    && p.database_location != p.facts.country
            })
        })
        .expect("some AWS prefix the country database places elsewhere");
    assert_eq!(disagreement.location_origin, Origin::Published);
    assert_eq!(
        disagreement.location,
        disagreement.published.as_ref().unwrap().facts.country
    );
    // Without published ranges, the databases and the registry as before.
    let plain = shipped_geo(None);
    let c = plain.classify(ip("15.236.0.1"), &none);
    assert_eq!(
        (c.location_origin, c.operator_origin),
        (Origin::Database, Origin::Registry)
    );
    assert!(c.published.is_none());
    // AWS China and the European Sovereign Cloud: deliberate registry entries by region.
    let cn = ranges
        .prefixes()
        .find(|(_, f)| ranges.fact(*f).unwrap().region.as_deref() == Some("cn-north-1"))
        .unwrap();
    let c = geo.classify(cn.0.network(), &none);
    assert_eq!(
        c.operator.as_deref(),
        Some("AWS China Beijing region (Sinnet)")
    );
    assert_eq!(c.jurisdiction.unwrap().as_str(), "CN");
}

fn policy(extra: &str) -> Policy {
    let text = format!(
        "[policy]\nname = \"t\"\nallowed_locations = [\"EU\"]\nallowed_operators = [\"EU\", \"US\"]\n{extra}\n"
    );
    Policy::from_sources(vec![SourceFile::new("p.toml", text)]).unwrap()
}

fn reason(geo: Geo, p: Policy, addr: &str) -> (Outcome, Reason) {
    let state = State::new(p, geo);
    let d = Destination::parse_authority(&format!("{addr}:443")).unwrap();
    let req = Request {
        client: ip("127.0.0.1"),
        destination: &d,
        http: None,
    };
    let today = time::OffsetDateTime::now_utc().date();
    let decision = decide(&state, &req, Resolution::Addresses(&[]), today);
    (decision.outcome, decision.reason)
}

#[test]
fn anycast_locations_are_judged_as_the_knob_says() {
    let ranges = Arc::new(PublishedRanges::open(&root().join("data/published.bin")).unwrap());
    let geo = || shipped_geo(Some(ranges.clone()));
    // 104.16.0.1: Cloudflare, published without a region; the country database says US.
    let c = geo().classify(ip("104.16.0.1"), &LocalNetworks::default());
    assert!(c.anycast() && c.published.as_ref().unwrap().anycast);
    // operator (default): the location is not judged; US operators are allowed here.
    assert_eq!(
        reason(geo(), policy(""), "104.16.0.1"),
        (Outcome::Allow, Reason::Compliant)
    );
    assert_eq!(
        reason(
            geo(),
            policy("anycast_location = \"database\""),
            "104.16.0.1"
        ),
        (Outcome::Block, Reason::LocationNotAllowed)
    );
    assert_eq!(
        reason(
            geo(),
            policy("anycast_location = \"unknown\""),
            "104.16.0.1"
        ),
        (Outcome::Block, Reason::UnknownLocation)
    );
}

#[test]
fn no_asn_and_an_asn_unknown_to_the_registry_are_two_reasons() {
    let geo = || shipped_geo(None);
    let allow_us = |extra: &str| {
        let text = format!(
            "[policy]\nname = \"t\"\nallowed_locations = [\"EU\", \"US\"]\nallowed_operators = [\"EU\"]\n{extra}\n"
        );
        Policy::from_sources(vec![SourceFile::new("p.toml", text)]).unwrap()
    };
    // 15.230.0.1: no ASN in the shipped data (located in US); 80.67.169.12: AS20766, which
    // the registry does not list (located in FR).
    let c = geo().classify(ip("15.230.0.1"), &LocalNetworks::default());
    assert!(c.no_asn());
    let c = geo().classify(ip("80.67.169.12"), &LocalNetworks::default());
    assert!(c.asn.is_some() && c.jurisdiction.is_none());
    let strict = "unknown_operator = \"block\"\nno_asn = \"block\"";
    assert_eq!(
        reason(geo(), allow_us(strict), "15.230.0.1"),
        (Outcome::Block, Reason::NoAsn)
    );
    assert_eq!(
        reason(geo(), allow_us(strict), "80.67.169.12"),
        (Outcome::Block, Reason::UnknownOperator)
    );
    // Distinct knobs: no_asn blocks, unknown_operator judges by location.
    let split = "unknown_operator = \"location\"\nno_asn = \"block\"";
    assert_eq!(
        reason(geo(), allow_us(split), "15.230.0.1"),
        (Outcome::Block, Reason::NoAsn)
    );
    assert_eq!(
        reason(geo(), allow_us(split), "80.67.169.12"),
        (Outcome::Allow, Reason::Compliant)
    );
    let other = "unknown_operator = \"block\"\nno_asn = \"location\"";
    assert_eq!(
        reason(geo(), allow_us(other), "15.230.0.1"),
        (Outcome::Allow, Reason::Compliant)
    );
    assert_eq!(
        reason(geo(), allow_us(other), "80.67.169.12"),
        (Outcome::Block, Reason::UnknownOperator)
    );
    // Unset no_asn follows unknown_operator, as before the split.
    assert_eq!(
        reason(
            geo(),
            allow_us("unknown_operator = \"block\""),
            "15.230.0.1"
        ),
        (Outcome::Block, Reason::NoAsn)
    );
}

#[test]
fn maxmind_test_databases_answer_as_maxminds_sources() {
    let dir = shared().join("maxmind-test");
    let registry = root().join("policies/operators.toml");
    for (country, asn) in [
        ("GeoIP2-Country-Test", "GeoLite2-ASN-Test"),
        ("GeoLite2-Country-Test", "GeoLite2-ASN-Test"),
    ] {
        let geo = Geo::load(
            Some(&dir.join(format!("{country}.mmdb"))),
            Some(&dir.join(format!("{asn}.mmdb"))),
            &registry,
        )
        .unwrap();
        let none = LocalNetworks::default();
        let mut checked = 0;
        let source = |name: &str| -> Vec<serde_json::Value> {
            let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
            serde_json::from_str(&text).unwrap()
        };
        // GeoLite2-Country-Test has no JSON of its own: GeoIP2-Country-Test's is the source
        // of both (same networks).
        for entry in source("GeoIP2-Country-Test") {
            for (net, record) in entry.as_object().unwrap() {
                let net: ipnet::IpNet = net.parse().unwrap();
                let Some(code) = record.pointer("/country/iso_code").and_then(|v| v.as_str())
                else {
                    continue;
                };
                let c = geo.classify(net.network(), &none);
                if c.special.is_some() || country.starts_with("GeoLite2") {
                    continue;
                }
                assert_eq!(
                    c.location.map(|l| l.to_string()).as_deref(),
                    Some(code),
                    "{net}"
                );
                checked += 1;
            }
        }
        for entry in source(asn) {
            for (net, record) in entry.as_object().unwrap() {
                let net: ipnet::IpNet = net.parse().unwrap();
                let c = geo.classify(net.network(), &none);
                if c.special.is_some() {
                    continue;
                }
                let want = record["autonomous_system_number"]
                    .as_u64()
                    .map(|n| n as u32);
                assert_eq!(c.asn, want, "{net}");
                assert_eq!(
                    c.as_org.as_deref(),
                    record["autonomous_system_organization"].as_str(),
                    "{net}"
                );
                checked += 1;
            }
        }
        assert!(checked > 20, "{country}: {checked}");
    }
}

#[test]
fn a_rule_requires_an_unexpired_qualification() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("operators.toml");
    std::fs::write(
        &registry,
        r#"[[operator]]
name = "OVHcloud"
jurisdiction = "FR"
asns = [16276]
source = "test"
qualifications = [{ name = "SecNumCloud", offer = "Hosted Private Cloud", source = "test", expires = 2027-06-30, cidrs = ["51.75.0.0/24"] }]
"#,
    )
    .unwrap();
    let r = root();
    let geo = || {
        Geo::load(
            Some(&r.join("data/country.mmdb")),
            Some(&r.join("data/asn.mmdb")),
            &registry,
        )
        .unwrap()
    };
    let text = "[policy]\nname = \"t\"\nallowed_locations = [\"EU\"]\nallowed_operators = [\"EU\"]\n\n[[rule]]\nid = \"sensible\"\nrequired_qualifications = [\"SecNumCloud\"]\n";
    let p = || Policy::from_sources(vec![SourceFile::new("p.toml", text)]).unwrap();
    let at = |addr: &str, day: time::Date| {
        let state = State::new(p(), geo());
        let d = Destination::parse_authority(&format!("{addr}:443")).unwrap();
        let req = Request {
            client: ip("127.0.0.1"),
            destination: &d,
            http: None,
        };
        let decision = decide(&state, &req, Resolution::Addresses(&[]), day);
        (decision.outcome, decision.reason)
    };
    let day =
        |y, m, d| time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
    // 51.75.0.1: OVHcloud, in the qualified offer's addresses.
    assert_eq!(
        at("51.75.0.1", day(2027, 6, 30)),
        (Outcome::Allow, Reason::Compliant)
    );
    assert_eq!(
        at("51.75.0.1", day(2027, 7, 1)),
        (Outcome::Block, Reason::QualificationMissing),
        "expired: no longer counts"
    );
    // Another OVHcloud address: same operator, same jurisdiction, not the qualified offer.
    assert_eq!(
        at("51.75.1.1", day(2026, 12, 1)),
        (Outcome::Block, Reason::QualificationMissing)
    );
}
