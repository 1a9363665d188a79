//! The PAC file (`/proxy.pac`, `/wpad.dat`) that sends browsers to douane: the
//! collectivité's own networks (the policy's `[[network]]` entries and `[pac]
//! direct_networks`) and its intranet suffixes go `DIRECT`, everything else to douane's
//! replicas in order. Generated from the config, served as
//! `application/x-ns-proxy-autoconfig`.
//!
//! Networks are matched only when the URL's host is an address literal: a PAC that
//! resolves every host name (`isInNet(host, …)` on a name) makes the browser wait for DNS
//! before each request and asks the resolver about every site visited.
//!
//! ```toml
//! [pac]
//! proxies = ["douane-1.mairie.example:3128", "douane-2.mairie.example:3128"]
//! intranet_suffixes = ["mairie.example", "intra"]
//! direct_networks = ["192.168.0.0/16"]
//! ```

use std::fmt::Write as _;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Response, StatusCode};
use ipnet::IpNet;
use serde::Deserialize;

/// The media type of a PAC file.
pub const CONTENT_TYPE_PAC: &str = "application/x-ns-proxy-autoconfig";

/// The paths browsers fetch a PAC file at (WPAD looks for `/wpad.dat`).
pub const PATHS: [&str; 2] = ["/proxy.pac", "/wpad.dat"];

/// `[pac]` in `douane.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacConfig {
    /// douane as browsers reach it, `host:port`, in order: the first that answers is used.
    pub proxies: Vec<String>,
    /// DNS suffixes of the intranet (`mairie.example` covers `mairie.example` and every
    /// name under it).
    #[serde(default)]
    pub intranet_suffixes: Vec<String>,
    /// Networks that go `DIRECT` besides the policy's `[[network]]` entries.
    #[serde(default)]
    pub direct_networks: Vec<IpNet>,
    /// Whether the policy's `[[network]]` entries go `DIRECT` (default true).
    #[serde(default = "yes")]
    pub own_networks: bool,
    /// Names without a dot (`intranet`, `printer`) go `DIRECT` (default true).
    #[serde(default = "yes")]
    pub plain_hostnames_direct: bool,
    /// When every proxy is down, go `DIRECT` rather than fail (default false: a proxy that
    /// is down must not turn into a way around the policy).
    #[serde(default)]
    pub direct_if_all_down: bool,
    /// `Cache-Control: max-age` of the PAC file, in seconds (default 300).
    #[serde(default = "default_max_age")]
    pub max_age_secs: u32,
}

fn yes() -> bool {
    true
}

fn default_max_age() -> u32 {
    300
}

/// Why a `[pac]` table is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacError {
    #[error("[pac] proxies is empty: give douane's address as browsers reach it, e.g. [\"douane.mairie.example:3128\"]")]
    NoProxy,
    #[error("[pac] proxies: `{0}` is not host:port (e.g. \"douane.mairie.example:3128\")")]
    BadProxy(String),
    #[error("[pac] intranet_suffixes: `{0}` is not a DNS suffix (letters, digits, `-` and `.`, e.g. \"mairie.example\")")]
    BadSuffix(String),
}

fn is_dns_text(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

impl PacConfig {
    /// Checks every proxy and suffix; the first error.
    pub fn validate(&self) -> Result<(), PacError> {
        if self.proxies.is_empty() {
            return Err(PacError::NoProxy);
        }
        for p in &self.proxies {
            let ok = match p.rsplit_once(':') {
                Some((host, port)) => {
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    (is_dns_text(host) || host.parse::<std::net::Ipv6Addr>().is_ok())
                        && port.parse::<u16>().is_ok_and(|p| p > 0)
                }
                None => false,
            };
            if !ok {
                return Err(PacError::BadProxy(p.clone()));
            }
        }
        for s in &self.intranet_suffixes {
            if !is_dns_text(s.trim_start_matches('.')) {
                return Err(PacError::BadSuffix(s.clone()));
            }
        }
        Ok(())
    }
}

/// A generated PAC file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pac {
    text: String,
    max_age_secs: u32,
}

/// A JavaScript string literal (the inputs are validated, this is the second belt).
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl Pac {
    /// Generates the PAC file from `[pac]` and the policy's own networks.
    pub fn build<'a>(config: &PacConfig, own: impl IntoIterator<Item = &'a IpNet>) -> Pac {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let own: Vec<&IpNet> = if config.own_networks {
            own.into_iter().collect()
        } else {
            Vec::new()
        };
        for net in own.into_iter().chain(&config.direct_networks) {
            match net {
                IpNet::V4(n) => v4.push(format!(
                    "[{}, {}]",
                    js(&n.network().to_string()),
                    js(&n.netmask().to_string())
                )),
                IpNet::V6(n) => v6.push(js(&n.trunc().to_string())),
            }
        }
        let suffixes: Vec<String> = config
            .intranet_suffixes
            .iter()
            .map(|s| js(&s.trim_start_matches('.').to_ascii_lowercase()))
            .collect();
        let mut route: Vec<String> = config
            .proxies
            .iter()
            .map(|p| format!("PROXY {p}"))
            .collect();
        if config.direct_if_all_down {
            route.push("DIRECT".into());
        }
        let mut t = String::with_capacity(1024);
        t.push_str("// Generated by douane from its configuration: own networks and intranet go DIRECT,\n// everything else through douane.\n");
        let _ = writeln!(t, "var douaneProxies = {};", js(&route.join("; ")));
        let _ = writeln!(t, "var douaneSuffixes = [{}];", suffixes.join(", "));
        let _ = writeln!(t, "var douaneNets4 = [{}];", v4.join(", "));
        let _ = writeln!(t, "var douaneNets6 = [{}];", v6.join(", "));
        let _ = writeln!(
            t,
            "var douanePlainDirect = {};",
            config.plain_hostnames_direct
        );
        t.push_str(PAC_BODY);
        Pac {
            text: t,
            max_age_secs: config.max_age_secs,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The HTTP answer to `GET /proxy.pac` or `GET /wpad.dat`.
    pub fn response(&self) -> Response<Bytes> {
        let mut r = Response::new(Bytes::from(self.text.clone()));
        *r.status_mut() = StatusCode::OK;
        let h = r.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_PAC));
        if let Ok(v) = HeaderValue::from_str(&format!("max-age={}", self.max_age_secs)) {
            h.insert(CACHE_CONTROL, v);
        }
        r
    }
}

/// The PAC answer for a config and the state's policy: what the forward listener (and the
/// admin listener) serve at [`PATHS`].
pub fn response(config: &PacConfig, state: &crate::state::State) -> Response<Bytes> {
    Pac::build(
        config,
        state.policy.networks.entries().iter().map(|n| &n.cidr),
    )
    .response()
}

/// Whether a request path asks for the PAC file.
pub fn is_pac_path(path: &str) -> bool {
    PATHS.contains(&path)
}

/// The fixed part: plain ES5, only the standard PAC functions (`isPlainHostName`,
/// `dnsDomainIs`, `isInNet`; `isInNetEx` for IPv6 where the browser has it).
const PAC_BODY: &str = r#"
function douaneIsV4(h) {
  return /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function FindProxyForURL(url, host) {
  var h = host.toLowerCase();
  if (h.charAt(h.length - 1) == ".") h = h.substring(0, h.length - 1);
  if (h.charAt(0) == "[") h = h.substring(1, h.length - 1);
  if (douanePlainDirect && h.indexOf(".") < 0 && h.indexOf(":") < 0) return "DIRECT";
  for (var i = 0; i < douaneSuffixes.length; i++) {
    var s = douaneSuffixes[i];
    if (h == s || dnsDomainIs(h, "." + s)) return "DIRECT";
  }
  if (douaneIsV4(h)) {
    for (var j = 0; j < douaneNets4.length; j++) {
      if (isInNet(h, douaneNets4[j][0], douaneNets4[j][1])) return "DIRECT";
    }
  } else if (h.indexOf(":") >= 0 && typeof isInNetEx == "function") {
    for (var k = 0; k < douaneNets6.length; k++) {
      if (isInNetEx(h, douaneNets6[k])) return "DIRECT";
    }
  }
  return douaneProxies;
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn config() -> PacConfig {
        PacConfig {
            proxies: vec![
                "douane-1.mairie.example:3128".into(),
                "10.0.0.9:3128".into(),
            ],
            intranet_suffixes: vec![".mairie.example".into(), "intra".into()],
            direct_networks: vec!["192.168.0.0/16".parse().expect("net")],
            own_networks: true,
            plain_hostnames_direct: true,
            direct_if_all_down: false,
            max_age_secs: 300,
        }
    }

    #[test]
    fn the_file_names_every_network_suffix_and_proxy() {
        let own: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().expect("net"),
            "2001:db8:10::/48".parse().expect("net"),
        ];
        let pac = Pac::build(&config(), &own);
        let t = pac.text();
        assert!(
            t.contains(
                r#"var douaneProxies = "PROXY douane-1.mairie.example:3128; PROXY 10.0.0.9:3128";"#
            ),
            "{t}"
        );
        assert!(t.contains(r#"["10.0.0.0", "255.0.0.0"]"#), "{t}");
        assert!(t.contains(r#"["192.168.0.0", "255.255.0.0"]"#), "{t}");
        assert!(t.contains(r#""2001:db8:10::/48""#), "{t}");
        assert!(
            t.contains(r#"var douaneSuffixes = ["mairie.example", "intra"];"#),
            "{t}"
        );
        let proxies = t.lines().find(|l| l.starts_with("var douaneProxies"));
        assert!(
            proxies.is_some_and(|l| !l.contains("DIRECT")),
            "no DIRECT fallback unless asked: {t}"
        );
        let r = pac.response();
        assert_eq!(r.headers()[CONTENT_TYPE], CONTENT_TYPE_PAC);
        assert_eq!(r.headers()[CACHE_CONTROL], "max-age=300");
    }

    #[test]
    fn own_networks_can_be_left_to_douane_and_direct_added_as_last_resort() {
        let own: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let pac = Pac::build(
            &PacConfig {
                own_networks: false,
                direct_if_all_down: true,
                ..config()
            },
            &own,
        );
        assert!(!pac.text().contains("10.0.0.0"));
        assert!(pac.text().contains("PROXY 10.0.0.9:3128; DIRECT\";"));
    }

    #[test]
    fn validation_names_the_bad_value() {
        assert_eq!(config().validate(), Ok(()));
        let bad = |c: PacConfig| c.validate().expect_err("bad").to_string();
        assert!(bad(PacConfig {
            proxies: vec![],
            ..config()
        })
        .contains("proxies is empty"));
        assert!(bad(PacConfig {
            proxies: vec!["douane".into()],
            ..config()
        })
        .contains("`douane`"));
        assert!(bad(PacConfig {
            proxies: vec!["x\";alert(1);//:80".into()],
            ..config()
        })
        .contains("host:port"));
        assert!(bad(PacConfig {
            intranet_suffixes: vec!["a b".into()],
            ..config()
        })
        .contains("`a b`"));
        assert!(PacConfig {
            proxies: vec!["[::1]:3128".into()],
            ..config()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn pac_paths() {
        assert!(is_pac_path("/proxy.pac") && is_pac_path("/wpad.dat"));
        assert!(!is_pac_path("/proxy.pac/x"));
    }
}
