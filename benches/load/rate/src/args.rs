//! The command line, parsed by hand: `rate --url URL --rate R --duration S --connections N [--proxy URL]`.

use std::time::Duration;

pub const USAGE: &str = "usage: rate --url URL --rate REQ_PER_S --duration 10s --connections N [--proxy http://host:port]";

/// Where requests go: scheme, authority and path of a URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Url {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// `host` or `host:port`, as written: the Host header.
    pub authority: String,
    pub path: String,
}

#[derive(Debug)]
pub struct Args {
    pub url: Url,
    /// Requests per second over all connections.
    pub rate: f64,
    pub duration: Duration,
    pub connections: usize,
    /// Forward proxy to connect to instead; requests then carry absolute-form targets.
    pub proxy: Option<Url>,
}

pub fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut url, mut rate, mut duration, mut connections, mut proxy) =
        (None, None, None, None, None);
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => url = Some(parse_url(&value)?),
            "--rate" => rate = Some(parse_rate(&value)?),
            "--duration" => duration = Some(parse_duration(&value)?),
            "--connections" => connections = Some(parse_connections(&value)?),
            "--proxy" => proxy = Some(parse_url(&value)?),
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let proxy: Option<Url> = proxy;
    if let Some(p) = &proxy {
        if p.tls || url.tls {
            return Err("--proxy takes http:// only, and only for an http:// --url".into());
        }
    }
    Ok(Args {
        url,
        rate: rate.ok_or("--rate is required")?,
        duration: duration.ok_or("--duration is required")?,
        connections: connections.ok_or("--connections is required")?,
        proxy,
    })
}

pub fn parse_url(s: &str) -> Result<Url, String> {
    let (tls, rest) = if let Some(rest) = s.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = s.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err(format!("url {s:?} must start with http:// or https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let default_port = if tls { 443 } else { 80 };
    // A port is what follows the last ':' outside IPv6 brackets.
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => {
            let port = p
                .parse()
                .map_err(|_| format!("port {p:?} in url {s:?} is not a number"))?;
            (h, port)
        }
        _ => (authority, default_port),
    };
    if host.is_empty() {
        return Err(format!("url {s:?} has no host"));
    }
    Ok(Url {
        tls,
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
        authority: authority.to_string(),
        path: path.to_string(),
    })
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "--rate {s:?} must be a positive number of requests per second"
        )),
    }
}

fn parse_connections(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("--connections {s:?} must be a positive integer")),
    }
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    match number.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Duration::from_secs_f64(v * scale)),
        _ => Err(format!("--duration {s:?} must be like 10s, 500ms or 2m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://127.0.0.1:18180/ok").unwrap();
        assert_eq!(
            (
                u.tls,
                u.host.as_str(),
                u.port,
                u.authority.as_str(),
                u.path.as_str()
            ),
            (false, "127.0.0.1", 18180, "127.0.0.1:18180", "/ok")
        );
        let u = parse_url("https://localhost").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 443, "/"));
        let u = parse_url("http://[::1]:8080/x?y").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 8080, "/x?y")
        );
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("http://x:y/").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn flags() {
        let argv = [
            "--url",
            "http://127.0.0.1:1/ok",
            "--rate",
            "100",
            "--duration",
            "2s",
            "--connections",
            "4",
        ];
        let a = parse(argv.iter().map(|s| s.to_string())).unwrap();
        assert_eq!((a.rate, a.connections), (100.0, 4));
        assert!(parse(["--url"].iter().map(|s| s.to_string())).is_err());
        assert!(parse(["--rate", "1"].iter().map(|s| s.to_string())).is_err());
    }
}
