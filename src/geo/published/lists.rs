//! Providers that publish plain lists of prefixes without regions (anycast or global
//! services): GitHub `meta` (lists by service), Fastly `public-ip-list` (`addresses`,
//! `ipv6_addresses`), Zscaler (`hubPrefixes`), and one CIDR a line (Cloudflare, Akamai).

use std::collections::BTreeSet;

use serde_json::Value;

use super::source::{parse_net, ParsedFile};

/// GitHub `meta`: every array of strings that parse as prefixes (hooks, web, api, git,
/// actions, …). Other arrays (ssh keys, domains) are skipped. Prefixes listed under several
/// services are kept once.
pub fn github(text: &str) -> Result<ParsedFile, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let mut seen = BTreeSet::new();
    let mut out = ParsedFile::default();
    for (key, list) in object {
        let Some(items) = list.as_array() else {
            continue;
        };
        if key.starts_with("ssh") {
            continue;
        }
        for item in items.iter().filter_map(Value::as_str) {
            if let Ok(net) = parse_net(item) {
                if seen.insert(net) {
                    out.push_anycast(net);
                }
            }
        }
    }
    Ok(out)
}

/// Fastly `public-ip-list`.
pub fn fastly(text: &str) -> Result<ParsedFile, String> {
    json_lists(text, &["addresses", "ipv6_addresses"])
}

/// Zscaler's published ranges.
pub fn zscaler(text: &str) -> Result<ParsedFile, String> {
    json_lists(text, &["hubPrefixes", "prefixes"])
}

fn json_lists(text: &str, keys: &[&str]) -> Result<ParsedFile, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = ParsedFile::default();
    let mut found = false;
    for key in keys {
        let Some(list) = value.get(key) else {
            continue;
        };
        found = true;
        let items = list.as_array().ok_or(format!("`{key}` is not an array"))?;
        for item in items {
            let s = item.as_str().ok_or(format!("`{key}` holds a non-string"))?;
            out.push_anycast(parse_net(s)?);
        }
    }
    if !found {
        return Err(format!("none of the keys {} is present", keys.join(", ")));
    }
    Ok(out)
}

/// One CIDR a line; blank lines and `#` comments skipped. Errors name the line.
pub fn cidr_lines(text: &str) -> Result<ParsedFile, (usize, String)> {
    let mut out = ParsedFile::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        out.push_anycast(parse_net(line).map_err(|e| (i + 1, e))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists() {
        let f = super::fastly(
            r#"{"addresses":["151.101.0.0/16"],"ipv6_addresses":["2a04:4e40::/32"]}"#,
        )
        .unwrap();
        assert_eq!(f.ranges.len(), 2);
        assert!(f.ranges.iter().all(|r| r.region.is_none()));
        let g = super::github(r#"{"ssh_keys":["ssh-ed25519 AAAA"],"web":["140.82.112.0/20"],"api":["140.82.112.0/20","192.30.252.0/22"],"domains":{"website":["github.com"]}}"#).unwrap();
        assert_eq!(g.ranges.len(), 2);
        let c = super::cidr_lines("173.245.48.0/20\n\n# x\n2400:cb00::/32\t\n").unwrap();
        assert_eq!(c.ranges.len(), 2);
        assert_eq!(
            super::cidr_lines("1.2.3.0/24\nnot a prefix\n")
                .unwrap_err()
                .0,
            2
        );
        assert!(super::zscaler(r#"{"cloudName":"x"}"#).is_err());
    }
}
