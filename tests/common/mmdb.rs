//! `.mmdb` fixtures for tests: small country and ASN databases that place loopback addresses
//! (127.0.0.2, 127.0.0.3, …) in the countries and autonomous systems a test chooses, read
//! back by the real reader.
//!
//! Use from a test file with `#[path = "common/mmdb.rs"] mod mmdb;` (or `mod common;` with a
//! `common/mod.rs` that declares `pub mod mmdb;`).
#![allow(dead_code)]

use std::path::Path;

use douane::geo::Schema;
use ipnet::IpNet;
use mmdb_writer::{Value, Writer};

/// Writes a country database: `entries` are `(cidr, "FR")` pairs; `schema` picks the GeoIP2
/// layout (`country.iso_code`, type `GeoLite2-Country`) or the shipped data's
/// (`country_code`, type `geo-whois-asn-country`).
pub fn write_country_db(path: &Path, entries: &[(&str, &str)], schema: Schema) {
    std::fs::write(path, country_db_bytes(entries, schema)).expect("write country fixture");
}

pub fn country_db_bytes(entries: &[(&str, &str)], schema: Schema) -> Vec<u8> {
    let database_type = match schema {
        Schema::GeoIp2 => "GeoLite2-Country",
        Schema::CountryCode => "geo-whois-asn-country",
    };
    let mut writer = Writer::new(database_type);
    for (cidr, code) in entries {
        let record = match schema {
            Schema::GeoIp2 => Value::map([
                ("country", Value::map([("iso_code", Value::from(*code))])),
                (
                    "continent",
                    Value::map([
                        ("code", Value::from("EU")),
                        ("geoname_id", Value::from(1u32)),
                    ]),
                ),
            ]),
            Schema::CountryCode => Value::map([("country_code", Value::from(*code))]),
        };
        writer
            .insert_value(parse_net(cidr), record)
            .expect("insert country fixture");
    }
    writer.to_bytes().expect("serialise country fixture")
}

/// Writes a GeoLite2-ASN database: `entries` are `(cidr, asn, organisation)`; an empty
/// organisation is left out of the record.
pub fn write_asn_db(path: &Path, entries: &[(&str, u32, &str)]) {
    std::fs::write(path, asn_db_bytes(entries)).expect("write ASN fixture");
}

pub fn asn_db_bytes(entries: &[(&str, u32, &str)]) -> Vec<u8> {
    let mut writer = Writer::new("GeoLite2-ASN");
    for (cidr, asn, org) in entries {
        let mut fields = vec![("autonomous_system_number", Value::from(*asn))];
        if !org.is_empty() {
            fields.push(("autonomous_system_organization", Value::from(*org)));
        }
        writer
            .insert_value(parse_net(cidr), Value::map(fields))
            .expect("insert ASN fixture");
    }
    writer.to_bytes().expect("serialise ASN fixture")
}

fn parse_net(cidr: &str) -> IpNet {
    cidr.parse::<IpNet>()
        .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from))
        .unwrap_or_else(|_| panic!("fixture network `{cidr}` is not a CIDR or an address"))
}
