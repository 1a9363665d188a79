//! The measurement behind the shipped `unknown_operator` / `no_asn` defaults (README,
//! "Unknown is not one thing"): on the shipped data, the share of the addresses that the US
//! providers publish for their EU regions that the shipped policy blocks, and the share of
//! French ISP and RENATER addresses it allows, for each choice of the two knobs.
//!
//! `cargo test --release --test geo_measure -- --nocapture` prints the table.
//!
//! Method: every prefix the US providers (AWS, Azure, Google Cloud, Oracle) publish for a
//! region whose country is in the EU; every network of the shipped ASN database announced
//! by a French ISP or RENATER ASN (Orange 3215/5511, SFR 15557/208157, Free 12322/51207,
//! Bouygues 5410, RENATER 2200/2187). From each prefix, up to 16 evenly spaced addresses
//! are decided by the shipped policy's defaults (as `douane explain` would decide a request
//! to the address); each address stands for its share of the prefix. IPv4 is weighted by
//! address count, IPv6 by /64s; both families are reported apart and both must hold.

use std::net::IpAddr;
use std::path::Path;

use douane::config::Config;
use douane::country::{Country, Group};
use douane::geo::{Geo, PublishedRanges};
use douane::policy::decide::{decide, Request, Resolution};
use douane::policy::{Policy, UnknownOperator};
use douane::resolve::Destination;
use douane::state::State;
use ipnet::IpNet;

const US_PROVIDERS: [&str; 4] = ["aws", "azure", "google-cloud", "oracle-cloud"];
const FRENCH_ISPS: [u32; 9] = [3215, 5511, 15557, 208157, 12322, 51207, 5410, 2200, 2187];

#[derive(Default, Clone, Copy)]
struct Share {
    v4_hit: f64,
    v4_all: f64,
    v6_hit: f64,
    v6_all: f64,
}

impl Share {
    fn add(&mut self, ip: IpAddr, weight: f64, hit: bool) {
        let (h, a) = match ip {
            IpAddr::V4(_) => (&mut self.v4_hit, &mut self.v4_all),
            IpAddr::V6(_) => (&mut self.v6_hit, &mut self.v6_all),
        };
        *a += weight;
        if hit {
            *h += weight;
        }
    }
    fn v4(&self) -> f64 {
        100.0 * self.v4_hit / self.v4_all.max(1.0)
    }
    fn v6(&self) -> f64 {
        100.0 * self.v6_hit / self.v6_all.max(1.0)
    }
}

/// Up to 16 addresses spread over a prefix, each with the weight it stands for.
fn samples(net: IpNet) -> Vec<(IpAddr, f64)> {
    let (first, bits, unit_bits): (u128, u32, u32) = match net {
        IpNet::V4(n) => (
            u128::from(u32::from(n.network())),
            32 - u32::from(n.prefix_len()),
            0,
        ),
        IpNet::V6(n) => (u128::from(n.network()), 128 - u32::from(n.prefix_len()), 64),
    };
    let size = if bits >= 127 {
        u128::MAX
    } else {
        1u128 << bits
    };
    let k: u128 = size.min(16);
    let weight = 2f64.powi(bits.saturating_sub(unit_bits) as i32) / k as f64;
    (0..k)
        .map(|i| {
            let offset = (size / k) * i + (size / k) / 2;
            let a = first + offset;
            let ip = match net {
                IpNet::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(a as u32)),
                IpNet::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(a)),
            };
            (ip, weight)
        })
        .collect()
}

fn blocked(state: &State, ip: IpAddr) -> bool {
    let destination = Destination::parse_authority(&match ip {
        IpAddr::V4(a) => format!("{a}:443"),
        IpAddr::V6(a) => format!("[{a}]:443"),
    })
    .unwrap();
    let req = Request {
        client: "127.0.0.1".parse().unwrap(),
        destination: &destination,
        http: None,
    };
    let today = time::OffsetDateTime::now_utc().date();
    !decide(state, &req, Resolution::Addresses(&[]), today)
        .outcome
        .lets_through()
}

struct Sets {
    eu_published: Vec<IpNet>,
    french: Vec<IpNet>,
}

fn sets(geo: &Geo, ranges: &PublishedRanges) -> Sets {
    let eu = Group::Eu.members();
    let eu_published = ranges
        .prefixes()
        .filter(|(_, f)| {
            let facts = ranges.fact(*f).unwrap();
            US_PROVIDERS.contains(&&*facts.publisher)
                && facts.country.is_some_and(|c: Country| eu.contains(c))
        })
        .map(|(n, _)| n)
        .collect();
    let mut french = Vec::new();
    geo.asn
        .as_ref()
        .unwrap()
        .for_each_asn_block(|ip, len, asn, _| {
            if FRENCH_ISPS.contains(&asn) {
                french.push(IpNet::new(ip, len).unwrap());
            }
        })
        .unwrap();
    Sets {
        eu_published,
        french,
    }
}

fn measure(state: &State, sets: &Sets) -> (Share, Share) {
    let mut eu = Share::default();
    for net in &sets.eu_published {
        for (ip, w) in samples(*net) {
            eu.add(ip, w, blocked(state, ip));
        }
    }
    let mut fr = Share::default();
    for net in &sets.french {
        for (ip, w) in samples(*net) {
            fr.add(ip, w, !blocked(state, ip));
        }
    }
    (eu, fr)
}

#[test]
fn shipped_defaults_block_us_eu_regions_and_allow_french_isps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(&root.join("douane.toml")).unwrap();
    let shipped = State::load(&config).expect("the shipped state loads");
    let ranges = shipped.geo.published.as_ref().unwrap().ranges.clone();
    let sets = sets(&shipped.geo, &ranges);
    assert!(sets.eu_published.len() > 1000 && sets.french.len() > 100);

    let policy = |unknown: UnknownOperator, no_asn: Option<UnknownOperator>| {
        let mut p = Policy::load_dir(&config.policy_dir, &["operators.toml"]).unwrap();
        p.defaults.unknown_operator = unknown;
        p.defaults.no_asn = no_asn;
        p
    };
    let geo = |published: bool| {
        Geo::load(
            config.geo.country.as_deref(),
            config.geo.asn.as_deref(),
            &config.operators,
        )
        .unwrap()
        .with_published(published.then(|| ranges.clone()))
    };
    use UnknownOperator::{Block, Location};
    println!(
        "{} EU-region prefixes of US providers, {} French ISP/RENATER networks",
        sets.eu_published.len(),
        sets.french.len()
    );
    println!("published  unknown_operator  no_asn    | US EU regions blocked v4 / v6 | French ISPs allowed v4 / v6");
    for published in [false, true] {
        for (unknown, no_asn) in [
            (Location, None),
            (Location, Some(Block)),
            (Block, Some(Block)),
        ] {
            let state = State::new(policy(unknown, no_asn), geo(published));
            let (eu, fr) = measure(&state, &sets);
            println!(
                "{:<10} {:<17} {:<9} | {:>8.3} % / {:>8.3} %          | {:>7.3} % / {:>7.3} %",
                published,
                format!("{unknown:?}").to_lowercase(),
                no_asn.map_or("(as uo)".into(), |k| format!("{k:?}").to_lowercase()),
                eu.v4(),
                eu.v6(),
                fr.v4(),
                fr.v6()
            );
        }
    }
    // The shipped state itself: its own policy files, its own data.
    let (eu, fr) = measure(&shipped, &sets);
    println!(
        "shipped: US EU regions blocked {:.3} % (v4) / {:.3} % (v6); French ISPs allowed {:.3} % (v4) / {:.3} % (v6)",
        eu.v4(),
        eu.v6(),
        fr.v4(),
        fr.v6()
    );
    assert!(eu.v4() >= 99.9 && eu.v6() >= 99.9, "US EU regions blocked");
    assert!(fr.v4() >= 98.0 && fr.v6() >= 98.0, "French ISPs allowed");
}
