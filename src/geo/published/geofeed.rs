//! RFC 8805 self-published geofeeds (DigitalOcean, Linode/Akamai Connected Cloud, …):
//! `prefix,country,region,city,postal`, `#` comments. The country column places the prefix;
//! the region column (ISO 3166-2) is kept as the region. A `# Last modified: …` comment, when
//! present, is the file's date.

use super::source::{parse_net, ParsedFile, RawRange};
use crate::country::Country;

pub fn parse(text: &str) -> Result<ParsedFile, (usize, String)> {
    let mut out = ParsedFile::default();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(comment) = trimmed.strip_prefix('#') {
            if let Some(date) = comment.trim().strip_prefix("Last modified:") {
                let date = date.trim();
                let date = date.split_once('.').map_or(date, |(s, _)| s);
                out.date = Some(date.replacen(' ', "T", 1));
            }
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        let mut cols = trimmed.split(',');
        let net = parse_net(cols.next().unwrap_or("")).map_err(|e| (i + 1, e))?;
        let country_col = cols.next().unwrap_or("").trim();
        let country = if country_col.is_empty() {
            None
        } else {
            Some(Country::from_database(country_col).ok_or((
                i + 1,
                format!("`{country_col}` is not an ISO 3166-1 alpha-2 country code"),
            ))?)
        };
        let region = cols
            .next()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        match country {
            Some(country) => out.ranges.push(RawRange {
                net,
                region: Some(region.unwrap_or_else(|| country.as_str().to_owned())),
                country: Some(country),
            }),
            None => out.push_anycast(net),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_and_comments() {
        let f = super::parse("# Last modified: 2025-07-24 10:00:06.5\n# ip_prefix, alpha2code\n5.101.96.0/21,NL,NL-NH,Amsterdam,1098 XH\n2a01:7e01::/32,DE,DE-HE,Frankfurt,\n").unwrap();
        assert_eq!(f.date.as_deref(), Some("2025-07-24T10:00:06"));
        assert_eq!(f.ranges.len(), 2);
        assert_eq!(f.ranges[0].country.unwrap().as_str(), "NL");
        assert_eq!(f.ranges[0].region.as_deref(), Some("NL-NH"));
        assert_eq!(super::parse("1.2.3.0/24,QQ,,\n").unwrap_err().0, 1);
    }
}
