//! AWS `ip-ranges.json` (<https://ip-ranges.amazonaws.com/ip-ranges.json>): `prefixes[]` and
//! `ipv6_prefixes[]`, each with a `region` (`GLOBAL` for edge services); `createDate` is the
//! file's date (`2025-07-24-20-23-14`, UTC).

use serde::Deserialize;

use super::regions::AWS;
use super::source::{parse_net, ParsedFile};

#[derive(Deserialize)]
struct File {
    #[serde(rename = "syncToken")]
    sync_token: Option<String>,
    #[serde(rename = "createDate")]
    create_date: Option<String>,
    prefixes: Vec<V4>,
    #[serde(default)]
    ipv6_prefixes: Vec<V6>,
}

#[derive(Deserialize)]
struct V4 {
    ip_prefix: String,
    region: String,
}

#[derive(Deserialize)]
struct V6 {
    ipv6_prefix: String,
    region: String,
}

pub fn parse(text: &str) -> Result<ParsedFile, String> {
    let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = ParsedFile {
        date: file.create_date.as_deref().map(create_date),
        serial: file.sync_token,
        ..ParsedFile::default()
    };
    for p in &file.prefixes {
        out.push_region(parse_net(&p.ip_prefix)?, &p.region, AWS);
    }
    for p in &file.ipv6_prefixes {
        out.push_region(parse_net(&p.ipv6_prefix)?, &p.region, AWS);
    }
    Ok(out)
}

/// `2025-07-24-20-23-14` → `2025-07-24T20:23:14Z`; anything else is kept as written.
fn create_date(raw: &str) -> String {
    let parts: Vec<&str> = raw.split('-').collect();
    match parts.as_slice() {
        [y, mo, d, h, mi, s] => format!("{y}-{mo}-{d}T{h}:{mi}:{s}Z"),
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn regions_and_the_global_region() {
        let text = r#"{"syncToken":"1","createDate":"2025-07-24-20-23-14","prefixes":[
            {"ip_prefix":"15.236.0.0/15","region":"eu-west-3","service":"EC2","network_border_group":"eu-west-3"},
            {"ip_prefix":"13.32.0.0/15","region":"GLOBAL","service":"CLOUDFRONT","network_border_group":"GLOBAL"}],
            "ipv6_prefixes":[{"ipv6_prefix":"2600:1f14::/35","region":"eu-west-1","service":"EC2","network_border_group":"eu-west-1"}]}"#;
        let f = super::parse(text).unwrap();
        assert_eq!(f.date.as_deref(), Some("2025-07-24T20:23:14Z"));
        assert_eq!(f.ranges.len(), 3);
        assert_eq!(f.ranges[0].country.unwrap().as_str(), "FR");
        assert!(f.ranges[1].region.is_none() && f.ranges[1].country.is_none());
        assert_eq!(f.ranges[2].country.unwrap().as_str(), "IE");
        assert!(super::parse(r#"{"prefixes":[{"ip_prefix":"nope","region":"x"}]}"#).is_err());
    }
}
