//! Azure IP ranges and service tags, public cloud (Microsoft download centre,
//! `ServiceTags_Public_YYYYMMDD.json`): `values[]`, each a tag (`AzureCloud.francecentral`,
//! `Storage.WestEurope`, `ActionGroup`, …) with `properties.region` (empty for global tags)
//! and `properties.addressPrefixes`. The file carries a `changeNumber`, not a date.

use serde::Deserialize;

use super::regions::AZURE;
use super::source::{parse_net, ParsedFile};

#[derive(Deserialize)]
struct File {
    #[serde(rename = "changeNumber")]
    change_number: Option<u64>,
    values: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    properties: Properties,
}

#[derive(Deserialize)]
struct Properties {
    #[serde(default)]
    region: String,
    #[serde(rename = "addressPrefixes", default)]
    address_prefixes: Vec<String>,
}

pub fn parse(text: &str) -> Result<ParsedFile, String> {
    let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = ParsedFile {
        serial: file.change_number.map(|n| format!("changeNumber {n}")),
        ..ParsedFile::default()
    };
    for tag in &file.values {
        for prefix in &tag.properties.address_prefixes {
            out.push_region(parse_net(prefix)?, &tag.properties.region, AZURE);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn regional_and_global_tags() {
        let f = super::parse(
            r#"{"changeNumber":363,"cloud":"Public","values":[
            {"name":"AzureCloud.centralfrance","id":"x","properties":{"region":"centralfrance","addressPrefixes":["20.19.0.0/16"]}},
            {"name":"ActionGroup","id":"y","properties":{"region":"","addressPrefixes":["4.145.74.52/30"]}}]}"#,
        )
        .unwrap();
        assert_eq!(f.serial.as_deref(), Some("changeNumber 363"));
        assert!(f.date.is_none());
        assert_eq!(f.ranges[0].country.unwrap().as_str(), "FR");
        assert!(f.ranges[1].region.is_none());
        assert!(super::parse("[]").is_err());
    }
}
