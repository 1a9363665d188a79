//! Google Cloud `cloud.json` (<https://www.gstatic.com/ipranges/cloud.json>): `prefixes[]`
//! with `ipv4Prefix` or `ipv6Prefix` and a `scope` (region, or `global`); `creationTime`.

use serde::Deserialize;

use super::regions::GOOGLE;
use super::source::{parse_net, ParsedFile};

#[derive(Deserialize)]
struct File {
    #[serde(rename = "syncToken")]
    sync_token: Option<String>,
    #[serde(rename = "creationTime")]
    creation_time: Option<String>,
    prefixes: Vec<Prefix>,
}

#[derive(Deserialize)]
struct Prefix {
    #[serde(rename = "ipv4Prefix")]
    v4: Option<String>,
    #[serde(rename = "ipv6Prefix")]
    v6: Option<String>,
    #[serde(default)]
    scope: String,
}

pub fn parse(text: &str) -> Result<ParsedFile, String> {
    let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = ParsedFile {
        // Google writes local time without an offset; it is UTC.
        date: file.creation_time.map(|t| match t.split_once('.') {
            Some((s, _)) => format!("{s}Z"),
            None => t,
        }),
        serial: file.sync_token,
        ..ParsedFile::default()
    };
    for p in &file.prefixes {
        let Some(net) = p.v4.as_deref().or(p.v6.as_deref()) else {
            return Err("a prefix with neither ipv4Prefix nor ipv6Prefix".into());
        };
        out.push_region(parse_net(net)?, &p.scope, GOOGLE);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn scopes() {
        let f = super::parse(
            r#"{"syncToken":"1","creationTime":"2025-07-24T19:16:28.780563","prefixes":[
            {"ipv4Prefix":"34.155.0.0/16","service":"Google Cloud","scope":"europe-west9"},
            {"ipv6Prefix":"2600:1900:4180::/44","service":"Google Cloud","scope":"global"}]}"#,
        )
        .unwrap();
        assert_eq!(f.date.as_deref(), Some("2025-07-24T19:16:28Z"));
        assert_eq!(f.ranges[0].country.unwrap().as_str(), "FR");
        assert!(f.ranges[1].region.is_none());
    }
}
