//! Oracle Cloud `public_ip_ranges.json` (<https://docs.oracle.com/iaas/tools/public_ip_ranges.json>):
//! `regions[]`, each a `region` (`eu-paris-1`) with `cidrs[]`; `last_updated_timestamp`.

use serde::Deserialize;

use super::regions::ORACLE;
use super::source::{parse_net, ParsedFile};

#[derive(Deserialize)]
struct File {
    last_updated_timestamp: Option<String>,
    regions: Vec<Region>,
}

#[derive(Deserialize)]
struct Region {
    region: String,
    cidrs: Vec<Cidr>,
}

#[derive(Deserialize)]
struct Cidr {
    cidr: String,
}

pub fn parse(text: &str) -> Result<ParsedFile, String> {
    let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = ParsedFile {
        date: file
            .last_updated_timestamp
            .map(|t| match t.split_once('.') {
                Some((s, _)) => format!("{s}Z"),
                None => t,
            }),
        ..ParsedFile::default()
    };
    for region in &file.regions {
        for c in &region.cidrs {
            out.push_region(parse_net(&c.cidr)?, &region.region, ORACLE);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn regions() {
        let f = super::parse(
            r#"{"last_updated_timestamp":"2025-07-21T07:13:25.457838","regions":[
            {"region":"eu-paris-1","cidrs":[{"cidr":"192.29.0.0/16","tags":["OCI"]}]}]}"#,
        )
        .unwrap();
        assert_eq!(f.date.as_deref(), Some("2025-07-21T07:13:25Z"));
        assert_eq!(f.ranges[0].country.unwrap().as_str(), "FR");
    }
}
