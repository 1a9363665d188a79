//! What a reload changes: the differences between the config the process runs with and the
//! one on disk. [`needs_restart`] lists those a reload cannot apply in place (listeners,
//! `[upstream]` settings, limits, the audit log, the resolver, logging); [`route_changes`]
//! lists the routes a reload applies (added, removed, or with another host, path or
//! upstream). Policies, databases, the operator registry and TLS certificates reload in
//! place and are listed by neither.

use std::fmt;

use super::Config;

/// One change that a reload saw and could not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// A stable label for the metrics: `listener`, `upstream`, `limits`, `audit`,
    /// `resolver`, `log`, `trust`, `block_page`, `pac`, `local_ca`, `tunnel`, `reload`,
    /// `admin`; `route` for
    /// [`route_changes`].
    pub kind: &'static str,
    /// What changed, for the log line.
    pub detail: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// How a section of the config is compared: its debug text.
type Show = fn(&Config) -> String;

/// Every change from `running` to `new` that needs a restart, in a stable order.
pub fn needs_restart(running: &Config, new: &Config) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut push = |kind: &'static str, detail: String| changes.push(Change { kind, detail });

    match (&running.forward, &new.forward) {
        (None, Some(f)) => push(
            "listener",
            format!("forward listener added on {}", f.listen),
        ),
        (Some(f), None) => push(
            "listener",
            format!("forward listener on {} removed", f.listen),
        ),
        (Some(a), Some(b)) if a.listen != b.listen => push(
            "listener",
            format!("forward listener moved from {} to {}", a.listen, b.listen),
        ),
        (Some(a), Some(b)) if a.direct_http1 != b.direct_http1 || a.name != b.name => push(
            "listener",
            format!("forward listener `{}` settings changed", b.name),
        ),
        _ => {}
    }
    for old in &running.reverse {
        match new.reverse.iter().find(|l| l.name == old.name) {
            None => push(
                "listener",
                format!("reverse listener `{}` on {} removed", old.name, old.listen),
            ),
            Some(l) if l.listen != old.listen => push(
                "listener",
                format!(
                    "reverse listener `{}` moved from {} to {}",
                    old.name, old.listen, l.listen
                ),
            ),
            Some(l) if l.certificates.is_empty() != old.certificates.is_empty() => push(
                "listener",
                format!(
                    "reverse listener `{}` switched TLS {}",
                    old.name,
                    if l.certificates.is_empty() {
                        "off"
                    } else {
                        "on"
                    }
                ),
            ),
            Some(l) if l.direct_http1 != old.direct_http1 => push(
                "listener",
                format!("reverse listener `{}`: direct_http1 changed", old.name),
            ),
            Some(_) => {}
        }
    }
    for l in &new.reverse {
        if !running.reverse.iter().any(|o| o.name == l.name) {
            push(
                "listener",
                format!("reverse listener `{}` added on {}", l.name, l.listen),
            );
        }
    }
    let admin = |c: &Config| c.admin.as_ref().map(|a| (a.listen, a.token_file.clone()));
    if admin(running) != admin(new) {
        push(
            "admin",
            "the admin listener or its token file changed".into(),
        );
    }

    // The rest compares whole sections: any difference is one change of that section.
    let sections: [(&'static str, Show); 10] = [
        ("upstream", |c| format!("{:?}", c.upstream)),
        ("limits", |c| format!("{:?}", c.limits)),
        ("audit", |c| format!("{:?}", c.audit)),
        ("resolver", |c| format!("{:?}", c.resolver)),
        ("log", |c| format!("{:?}", c.log)),
        ("trust", |c| format!("{:?}", c.trusted_proxies)),
        ("block_page", |c| format!("{:?}", c.block_page)),
        ("pac", |c| format!("{:?}", c.pac)),
        ("local_ca", |c| format!("{:?}", c.local_ca)),
        ("tunnel", |c| format!("{:?}", c.tunnel)),
    ];
    for (kind, show) in sections {
        if show(running) != show(new) {
            push(kind, format!("[{kind}] changed"));
        }
    }
    let reload = |c: &Config| (c.reload.watch, c.reload.poll_interval);
    if reload(running) != reload(new) {
        push("reload", "[reload] changed".into());
    }
    changes
}

/// Every route added, removed or changed from `running` to `new` (by route name), in a
/// stable order: what a reload applies to the running listeners' route tables.
pub fn route_changes(running: &Config, new: &Config) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut push = |kind: &'static str, detail: String| changes.push(Change { kind, detail });
    let route = |r: &super::Route| {
        format!(
            "{} {}{} -> {}://{}:{}{}",
            r.listener,
            r.host,
            r.path_prefix,
            r.upstream.scheme.as_str(),
            r.upstream.host,
            r.upstream.port,
            r.upstream.base_path
        )
    };
    for old in &running.routes {
        match new.routes.iter().find(|r| r.name == old.name) {
            None => push("route", format!("route `{}` removed", old.name)),
            Some(r) if route(r) != route(old) => push(
                "route",
                format!(
                    "route `{}` changed: {} (was {})",
                    old.name,
                    route(r),
                    route(old)
                ),
            ),
            Some(_) => {}
        }
    }
    for r in &new.routes {
        if !running.routes.iter().any(|o| o.name == r.name) {
            push("route", format!("route `{}` added: {}", r.name, route(r)));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::SourceFile;

    fn config(text: &str) -> Config {
        Config::parse(&SourceFile::new("/etc/douane/douane.toml", text)).unwrap()
    }

    const BASE: &str = r#"
[forward]
listen = "127.0.0.1:3128"
[[reverse]]
name = "web"
listen = "127.0.0.1:8443"
[[route]]
name = "crm"
host = "crm.localhost"
upstream = "https://crm.example"
"#;

    #[test]
    fn the_same_config_needs_nothing() {
        assert!(needs_restart(&config(BASE), &config(BASE)).is_empty());
        // The policy and geo files reload in place, comments change nothing.
        let commented = format!("# a comment\n{BASE}\n[geo]\nmax_age_days = 10\n");
        assert!(needs_restart(&config(BASE), &config(&commented)).is_empty());
    }

    #[test]
    fn listeners_and_routes_are_named() {
        let moved = BASE
            .replace("127.0.0.1:3128", "127.0.0.1:3129")
            .replace("https://crm.example", "https://crm2.example");
        let changes = needs_restart(&config(BASE), &config(&moved));
        let kinds: Vec<_> = changes.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, ["listener"], "{changes:?}");
        assert_eq!(
            changes[0].detail,
            "forward listener moved from 127.0.0.1:3128 to 127.0.0.1:3129"
        );
        let routes = route_changes(&config(BASE), &config(&moved));
        assert_eq!(routes.len(), 1, "{routes:?}");
        assert!(routes[0].detail.contains("crm2.example"), "{routes:?}");

        let added = format!("{BASE}\n[[reverse]]\nname = \"two\"\nlisten = \"127.0.0.1:9443\"\n[limits]\nmax_connections = 5\n");
        let added = added.replace(
            "upstream = \"https://crm.example\"",
            "listener = \"web\"\nupstream = \"https://crm.example\"",
        );
        let changes = needs_restart(&config(BASE), &config(&added));
        let details: Vec<_> = changes.iter().map(|c| c.detail.as_str()).collect();
        assert_eq!(
            details,
            [
                "reverse listener `two` added on 127.0.0.1:9443",
                "[limits] changed"
            ]
        );
    }

    #[test]
    fn the_tunnel_pac_and_local_ca_sections_are_announced() {
        let changed = format!(
            "{BASE}\n[tunnel]\nunnamed = \"block\"\n[pac]\nproxies = [\"douane.local:3128\"]\n"
        );
        let kinds: Vec<_> = needs_restart(&config(BASE), &config(&changed))
            .iter()
            .map(|c| c.kind)
            .collect();
        assert_eq!(kinds, ["pac", "tunnel"]);
    }

    #[test]
    fn routes_added_removed_changed() {
        let other = BASE
            .replace("name = \"crm\"", "name = \"crm2\"")
            .replace("https://crm.example", "https://crm.example:8443");
        let changes = route_changes(&config(BASE), &config(&other));
        let details: Vec<_> = changes.iter().map(|c| c.detail.as_str()).collect();
        assert_eq!(
            details,
            [
                "route `crm` removed",
                "route `crm2` added: web crm.localhost/ -> https://crm.example:8443"
            ]
        );
        assert!(route_changes(&config(BASE), &config(BASE)).is_empty());
        assert!(needs_restart(&config(BASE), &config(&other)).is_empty());
    }
}
