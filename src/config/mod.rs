//! The daemon file, `douane.toml`: listeners, routes, TLS, resolver, geo, audit, admin.
//!
//! Loading goes through a `&str` (so tests feed text and error positions are exact), into
//! the raw serde structs of [`raw`], then `validate` into an immutable [`Config`]. Every
//! error names file, line and column; all of them are reported at once.

pub mod diff;
pub mod messages;
mod parent;
pub mod raw;
pub mod update;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde_spanned::Spanned;

use crate::audit::AuditConfig;
use crate::diag::{Errors, Located, SourceFile};
use crate::resolve::ResolverConfig;

pub use raw::LogFormat;
pub use update::{DataSource, SourceFormat, UpdateSettings};

/// Where a value was written in `douane.toml`, for errors found after loading (a port in
/// use, a certificate that does not read): `path:line:column`. Line 0: not written (a
/// default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Place {
    /// An error at this place.
    pub fn error(&self, message: impl Into<String>) -> Located {
        Located {
            path: self.path.clone(),
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }
}

/// The validated daemon configuration. Relative paths are resolved against the directory
/// of the config file.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub policy_dir: PathBuf,
    pub operators: PathBuf,
    pub geo: GeoPaths,
    pub resolver: ResolverConfig,
    pub forward: Option<ForwardListener>,
    pub reverse: Vec<ReverseListener>,
    pub routes: Vec<Route>,
    pub admin: Option<AdminListener>,
    /// The audit log; none when the config has no `[audit]` table.
    pub audit: Option<AuditConfig>,
    pub upstream: UpstreamSettings,
    pub limits: Limits,
    pub trusted_proxies: Vec<IpNet>,
    pub log: LogSettings,
    pub block_page: BlockPage,
    pub reload: ReloadSettings,
    /// `[pac]`: the PAC file browsers are pointed at; none without the table.
    pub pac: Option<crate::pac::PacConfig>,
    /// `[local_ca]`: the CA that mints certificates for the HTTPS block page (paths
    /// resolved); none without the table, and blocked tunnels stay as they are.
    pub local_ca: Option<crate::mint::LocalCaConfig>,
    /// `[tunnel]`: the names checked inside CONNECT tunnels.
    pub tunnel: crate::proxy::tunnel::TunnelConfig,
}

#[derive(Debug, Clone)]
pub struct GeoPaths {
    pub country: Option<PathBuf>,
    pub asn: Option<PathBuf>,
    pub max_age_days: u32,
    /// `[geo.update]`: the sources of `douane geodb update`.
    pub update: UpdateSettings,
    /// The published-ranges artifact (`douane ranges import`), optional.
    pub published: Option<PathBuf>,
    pub published_max_age_days: u32,
}

#[derive(Debug, Clone)]
pub struct ForwardListener {
    pub name: String,
    pub listen: SocketAddr,
    pub listen_at: Place,
    /// Plain `http://` requests on douane's direct path, hyper's for the rest.
    pub direct_http1: bool,
}

#[derive(Debug, Clone)]
pub struct ReverseListener {
    pub name: String,
    pub listen: SocketAddr,
    pub listen_at: Place,
    /// Empty: plain HTTP.
    pub certificates: Vec<CertificatePaths>,
    /// HTTP/1.1 requests on douane's direct path, hyper's for the rest.
    pub direct_http1: bool,
}

#[derive(Debug, Clone)]
pub struct CertificatePaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub generate_if_missing: bool,
    /// Where the `cert = …` of this certificate is written.
    pub at: Place,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamScheme {
    Http,
    Https,
}

impl UpstreamScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamScheme::Http => "http",
            UpstreamScheme::Https => "https",
        }
    }
}

/// A reverse route: requests for `host` (and under `path_prefix`) go to `upstream`.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub listener: String,
    /// Lowercase host name the route answers for.
    pub host: String,
    pub path_prefix: String,
    pub upstream: UpstreamUrl,
}

#[derive(Debug, Clone)]
pub struct UpstreamUrl {
    pub scheme: UpstreamScheme,
    /// The host as written (normalised by the resolver at request time).
    pub host: String,
    pub port: u16,
    /// A path prefix prepended to the request path ("" for none).
    pub base_path: String,
}

#[derive(Debug, Clone)]
pub struct AdminListener {
    pub listen: SocketAddr,
    pub listen_at: Place,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub ca_file: Option<PathBuf>,
    pub system_roots: bool,
    /// `host:port` of a parent proxy.
    pub parent_proxy: Option<String>,
    /// `Basic …` for the parent's `Proxy-Authorization`, from `http://user:pass@host:port`.
    pub parent_proxy_authorization: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub connect_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub upstream_response_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// A write to a client that makes no progress this long closes the connection.
    pub client_send_timeout: Duration,
    /// A request body that sends nothing this long fails the request (408).
    pub request_body_timeout: Duration,
    /// Upstream connections open at once per checked address; 0: no cap.
    pub max_upstream_connections_per_address: usize,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct BlockPage {
    pub link: Option<String>,
    pub contact: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ReloadSettings {
    pub watch: bool,
    pub poll_interval: Duration,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, Errors> {
        let file = SourceFile::read(path)?;
        Config::parse(&file)
    }

    /// Validates config text; `file.path` names it in errors and anchors relative paths.
    pub fn parse(file: &SourceFile) -> Result<Config, Errors> {
        let raw: raw::FileConfig =
            toml::from_str(&file.text).map_err(|e| messages::toml_errors(file, &e))?;
        Validator {
            file,
            base: file
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            errors: Vec::new(),
        }
        .validate(raw)
    }
}

struct Validator<'a> {
    file: &'a SourceFile,
    base: PathBuf,
    errors: Vec<Located>,
}

impl Validator<'_> {
    fn error<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        let span = at.span();
        let span = (span.end > 0).then_some(span);
        self.errors.push(self.file.error_at(span, message));
    }

    fn place<T>(&self, at: &Spanned<T>) -> Place {
        let span = at.span();
        let (line, column) = if span.end > 0 {
            self.file.line_col(span.start)
        } else {
            (0, 0)
        };
        Place {
            path: self.file.path.clone(),
            line,
            column,
        }
    }

    fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() || self.base.as_os_str().is_empty() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn validate(mut self, raw: raw::FileConfig) -> Result<Config, Errors> {
        let mut reverse = Vec::new();
        for r in &raw.reverse {
            if reverse
                .iter()
                .any(|l: &ReverseListener| l.name == *r.name.get_ref())
            {
                self.error(
                    &r.name,
                    format!("duplicate reverse listener `{}`", r.name.get_ref()),
                );
            }
            reverse.push(ReverseListener {
                name: r.name.get_ref().clone(),
                listen: *r.listen.get_ref(),
                listen_at: self.place(&r.listen),
                certificates: r
                    .tls
                    .iter()
                    .map(|c| CertificatePaths {
                        cert: self.path(c.cert.get_ref()),
                        key: self.path(c.key.get_ref()),
                        generate_if_missing: c.generate_if_missing,
                        at: self.place(&c.cert),
                    })
                    .collect(),
                direct_http1: r.direct_http1,
            });
        }

        let mut routes: Vec<Route> = Vec::new();
        for r in &raw.route {
            let listener = match (&r.listener, reverse.as_slice()) {
                (Some(name), _) => {
                    if !reverse.iter().any(|l| l.name == *name.get_ref()) {
                        self.error(
                            name,
                            format!("no [[reverse]] listener is named `{}`", name.get_ref()),
                        );
                    }
                    name.get_ref().clone()
                }
                (None, [only]) => only.name.clone(),
                (None, []) => {
                    self.error(&r.name, "a [[route]] needs a [[reverse]] listener");
                    String::new()
                }
                (None, _) => {
                    self.error(
                        &r.name,
                        "several [[reverse]] listeners exist: say which with `listener = \"…\"`",
                    );
                    String::new()
                }
            };
            let host = r.host.get_ref().trim_end_matches('.').to_ascii_lowercase();
            if host.is_empty() || host.contains(['/', ':', ' ']) {
                self.error(
                    &r.host,
                    format!("`{}` is not a host name", r.host.get_ref()),
                );
            }
            let prefix = r.path_prefix.get_ref().clone();
            if !prefix.starts_with('/') {
                self.error(&r.path_prefix, "a path prefix starts with `/`");
            }
            if routes.iter().any(|o| o.name == *r.name.get_ref()) {
                self.error(&r.name, format!("duplicate route `{}`", r.name.get_ref()));
            }
            if routes
                .iter()
                .any(|o| o.listener == listener && o.host == host && o.path_prefix == prefix)
            {
                self.error(
                    &r.host,
                    format!("another route already serves `{host}` under `{prefix}`"),
                );
            }
            let upstream = match parse_upstream(r.upstream.get_ref()) {
                Ok(u) => u,
                Err(msg) => {
                    self.error(&r.upstream, msg);
                    continue;
                }
            };
            routes.push(Route {
                name: r.name.get_ref().clone(),
                listener,
                host,
                path_prefix: prefix,
                upstream,
            });
        }

        let admin = raw.admin.as_ref().map(|a| {
            let listen = *a.listen.get_ref();
            if !listen.ip().is_loopback() && a.token_file.is_none() {
                self.error(
                    &a.listen,
                    "an admin listener off loopback needs `token_file` (a bearer token)",
                );
            }
            AdminListener {
                listen,
                listen_at: self.place(&a.listen),
                token_file: a.token_file.as_ref().map(|p| self.path(p.get_ref())),
            }
        });

        let mut trusted_proxies = Vec::new();
        for t in &raw.trust.forwarded_from {
            match raw::parse_net(t.get_ref()) {
                Some(net) => trusted_proxies.push(net),
                None => self.error(t, format!("`{}` is not a CIDR or address", t.get_ref())),
            }
        }

        let (parent_proxy, parent_proxy_authorization) = match raw.upstream.parent_proxy.as_ref() {
            None => (None, None),
            Some(p) => match parent::parse(p.get_ref()) {
                Ok((authority, authorization)) => (Some(authority), authorization),
                Err(message) => {
                    self.error(p, message);
                    (None, None)
                }
            },
        };
        let update = update::validate(
            &raw.geo.update,
            |at, message| {
                let span = (at.end > 0).then_some(at);
                self.errors.push(self.file.error_at(span, message));
            },
            &self.base,
        );

        let resolver_at = self.file.text.find("[resolver]").map(|i| i..i + 1);
        for r in raw.resolver.validate() {
            self.errors
                .push(self.file.error_at(resolver_at.clone(), r.to_string()));
        }
        let audit = raw.audit.as_ref().map(|a| {
            let mut a = a.clone();
            a.path = self.path(&a.path);
            a.hmac_key_file = a.hmac_key_file.as_ref().map(|p| self.path(p));
            a
        });
        if let Some(a) = &audit {
            if let Err(e) = a.validate() {
                let at = self.file.text.find("[audit]").map(|i| i..i + 1);
                self.errors.push(self.file.error_at(at, e.to_string()));
            }
        }

        if let Some(Err(e)) = raw.pac.as_ref().map(crate::pac::PacConfig::validate) {
            let at = self.file.text.find("[pac]").map(|i| i..i + 1);
            self.errors.push(self.file.error_at(at, e.to_string()));
        }
        let local_ca = raw.local_ca.as_ref().map(|ca| crate::mint::LocalCaConfig {
            cert: self.path(&ca.cert),
            key: self.path(&ca.key),
            ..ca.clone()
        });

        let limits = &raw.limits;
        let ms = Duration::from_millis;
        let config = Config {
            path: self.file.path.clone(),
            policy_dir: self.path(raw.policy.dir.get_ref()),
            operators: self.path(raw.policy.operators.get_ref()),
            geo: GeoPaths {
                country: raw.geo.country.as_ref().map(|p| self.path(p.get_ref())),
                asn: raw.geo.asn.as_ref().map(|p| self.path(p.get_ref())),
                max_age_days: raw.geo.max_age_days,
                update,
                published: raw.geo.published.as_ref().map(|p| self.path(p.get_ref())),
                published_max_age_days: raw.geo.published_max_age_days,
            },
            resolver: raw.resolver.clone(),
            forward: raw.forward.as_ref().map(|f| ForwardListener {
                name: f.name.clone(),
                listen: *f.listen.get_ref(),
                listen_at: self.place(&f.listen),
                direct_http1: f.direct_http1,
            }),
            reverse,
            routes,
            admin,
            audit,
            upstream: UpstreamSettings {
                ca_file: raw
                    .upstream
                    .ca_file
                    .as_ref()
                    .map(|p| self.path(p.get_ref())),
                system_roots: raw.upstream.system_roots,
                parent_proxy,
                parent_proxy_authorization,
            },
            limits: Limits {
                connect_timeout: ms(limits.connect_timeout_ms),
                tls_handshake_timeout: ms(limits.tls_handshake_timeout_ms),
                header_read_timeout: ms(limits.header_read_timeout_ms),
                idle_timeout: ms(limits.idle_timeout_ms),
                upstream_response_timeout: ms(limits.upstream_response_timeout_ms),
                max_header_bytes: limits.max_header_bytes,
                max_headers: limits.max_headers,
                max_connections: limits.max_connections,
                shutdown_grace: ms(limits.shutdown_grace_ms),
                client_send_timeout: ms(limits.client_send_timeout_ms),
                request_body_timeout: ms(limits.request_body_timeout_ms),
                max_upstream_connections_per_address: limits.max_upstream_connections_per_address,
            },
            trusted_proxies,
            log: LogSettings {
                format: raw.log.format,
                level: raw.log.level.clone(),
            },
            block_page: BlockPage {
                // No default: the page links only where the collectivité says.
                link: raw.block_page.link.clone(),
                contact: raw.block_page.contact.clone(),
            },
            reload: ReloadSettings {
                watch: raw.reload.watch,
                poll_interval: ms(raw.reload.poll_interval_ms.max(100)),
            },
            pac: raw.pac.clone(),
            local_ca,
            tunnel: raw.tunnel.clone(),
        };
        if self.errors.is_empty() {
            Ok(config)
        } else {
            Err(Errors(self.errors))
        }
    }
}

/// Parses `https://host[:port][/base]` for a route's upstream.
fn parse_upstream(text: &str) -> Result<UpstreamUrl, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    let scheme = match uri.scheme_str() {
        Some("https") => UpstreamScheme::Https,
        Some("http") => UpstreamScheme::Http,
        _ => {
            return Err(format!(
                "`{text}`: an upstream URL starts with https:// or http://"
            ))
        }
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("`{text}` has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "`{text}`: credentials do not belong in an upstream URL"
        ));
    }
    let port = authority.port_u16().unwrap_or(match scheme {
        UpstreamScheme::Https => 443,
        UpstreamScheme::Http => 80,
    });
    if uri.query().is_some() {
        return Err(format!("`{text}`: an upstream URL has no query"));
    }
    Ok(UpstreamUrl {
        scheme,
        host: authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
        port,
        base_path: uri.path().trim_end_matches('/').to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Errors> {
        Config::parse(&SourceFile::new("/etc/douane/douane.toml", text))
    }

    #[test]
    fn empty_config_has_sane_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.policy_dir, Path::new("/etc/douane/policies"));
        assert_eq!(
            c.operators,
            Path::new("/etc/douane/policies/operators.toml")
        );
        assert!(c.forward.is_none() && c.admin.is_none() && c.reverse.is_empty());
        assert_eq!(c.limits.connect_timeout, Duration::from_secs(5));
        assert!(
            c.upstream.system_roots,
            "an absent [upstream] trusts the system roots"
        );
        assert!(c.reload.watch);
        // Absent tables take the same defaults as present but empty ones.
        let explicit = parse("[geo]\n[log]\n[upstream]\n[reload]\n[limits]\n").unwrap();
        assert_eq!(c.geo.max_age_days, 30, "the shipped alert's threshold");
        assert_eq!(c.geo.max_age_days, explicit.geo.max_age_days);
        assert_eq!(c.log.level, "info");
        assert_eq!(c.log.level, explicit.log.level);
        assert_eq!(c.upstream.system_roots, explicit.upstream.system_roots);
        assert_eq!(c.reload.poll_interval, explicit.reload.poll_interval);
    }

    #[test]
    fn unknown_key_is_located() {
        let err = parse("[geo]\ncountry = \"a.mmdb\"\ncontry = \"b\"\n").unwrap_err();
        let e = &err.0[0];
        assert_eq!((e.line, e.column), (3, 1), "{err}");
        assert!(e.message.contains("unknown field `contry`"), "{err}");
        assert!(err.to_string().starts_with("/etc/douane/douane.toml:3:1:"));
    }

    #[test]
    fn bad_listen_address_is_located() {
        let err = parse("[forward]\nlisten = \"127.0.0.1\"\n").unwrap_err();
        assert_eq!(err.0[0].line, 2, "{err}");
    }

    #[test]
    fn routes_are_validated_all_at_once() {
        let text = r#"
[[reverse]]
name = "tls"
listen = "127.0.0.1:8443"

[[route]]
name = "crm"
host = "crm.localhost"
upstream = "ftp://crm.example"

[[route]]
name = "erp"
host = "erp.localhost"
path_prefix = "api"
upstream = "https://erp.example:8443/base/"

[[route]]
name = "x"
listener = "nope"
host = "x.localhost"
upstream = "http://x.example"
"#;
        let err = parse(text).unwrap_err();
        let lines: Vec<usize> = err.0.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![9, 14, 19], "{err}");
    }

    #[test]
    fn upstream_url_parts() {
        let u = parse_upstream("https://ERP.example:8443/base/").unwrap();
        assert_eq!(u.scheme, UpstreamScheme::Https);
        assert_eq!((u.host.as_str(), u.port), ("erp.example", 8443));
        assert_eq!(u.base_path, "/base");
        let u = parse_upstream("http://[::1]").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.base_path.as_str()),
            ("::1", 80, "")
        );
        assert!(parse_upstream("https://user:pw@x.example").is_err());
    }

    #[test]
    fn admin_off_loopback_needs_a_token() {
        let err = parse("[admin]\nlisten = \"0.0.0.0:9480\"\n").unwrap_err();
        assert!(err.0[0].message.contains("token_file"), "{err}");
        assert!(parse("[admin]\nlisten = \"127.0.0.1:9480\"\n").is_ok());
    }
}
