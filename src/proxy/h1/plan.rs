//! Where a request on the direct path goes: a reverse route by `Host` and path (to a
//! plain-HTTP upstream, or an `https` one known to choose HTTP/1.1; the client's TLS name
//! agreeing), or a forward proxy's `http://` absolute-form
//! target; `None` hands the request to hyper's path.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::request::RequestShape;
use crate::config::UpstreamScheme;
use crate::proxy::context::Proxy;
use crate::proxy::forwarding::Forwarding;
use crate::proxy::headers;
use crate::proxy::reverse::{CompiledRoute, ReverseConnection};
use crate::resolve::{Destination, Scheme};

/// The listener a connection came to.
#[derive(Clone, Copy)]
pub enum Site<'a> {
    Reverse(&'a ReverseConnection),
    Forward(&'a ForwardConnection),
}

/// What a forward-proxy connection knows about itself.
pub struct ForwardConnection {
    pub listener: Arc<str>,
    pub peer: SocketAddr,
}

/// Where a request goes, who asks, and how its head is rewritten.
pub(super) struct Plan<'a> {
    pub(super) destination: Cow<'a, Destination>,
    pub(super) listener: &'a str,
    pub(super) route: Option<&'a str>,
    pub(super) client: IpAddr,
    /// The path that rules match (no query).
    pub(super) path: &'a str,
    pub(super) rewrite: Rewrite<'a>,
    /// The name an `https` upstream is verified against (and SNI); `None` for plain HTTP.
    pub(super) tls_name: Option<&'a Arc<str>>,
}

pub(super) enum Rewrite<'a> {
    /// A reverse route: the upstream's `Host`, forwarding headers.
    Reverse {
        route: &'a CompiledRoute,
        fwd: Forwarding,
    },
    /// A forward proxy request: origin-form target, `Host` from the absolute target, `Via`.
    Forward {
        authority: &'a str,
        origin: &'a str,
        /// The peer is trusted (its `X-Forwarded-Host` passes).
        trusted: bool,
    },
}

/// A reverse request's plan: its route (by `Host` and path), when that route goes to a
/// plain-HTTP upstream, or to an `https` one that is not known to choose h2 by ALPN (one
/// that does stays hyper's; see `Connector::connect_tls`), and the client's TLS name (if
/// any) agrees with `Host`.
pub(super) fn plan_reverse<'a>(
    proxy: &Proxy,
    conn: &'a ReverseConnection,
    target: &'a str,
    shape: &RequestShape<'a>,
    host_buf: &mut [u8; 256],
) -> Option<Plan<'a>> {
    if !target.starts_with('/') || shape.hosts != 1 {
        return None; // absolute-form, or no single Host: hyper's
    }
    let host = normalized_host(shape.host, host_buf)?;
    if conn.sni.as_deref().is_some_and(|sni| sni != host) {
        return None; // 421 from hyper
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let route = conn.routes.find(host, path)?; // else 404 from hyper
    let tls_name = match route.scheme {
        UpstreamScheme::Http => None,
        UpstreamScheme::Https => {
            let name = route.tls_name.as_ref()?;
            if proxy.connector.chose_h2(name, route.destination.port) {
                return None;
            }
            Some(name)
        }
    };
    let peer = conn.peer.ip();
    Some(Plan {
        destination: Cow::Borrowed(&route.destination),
        listener: &conn.listener,
        route: Some(&route.name),
        client: proxy.client_address(peer, shape.forwarded_for),
        path,
        rewrite: Rewrite::Reverse {
            route,
            fwd: Forwarding {
                peer,
                trusted: proxy.is_trusted(peer),
                tls: conn.tls,
            },
        },
        tls_name,
    })
}

/// A forward request's plan: an `http://` absolute-form target without userinfo, and no
/// `Via` yet (loop detection is hyper's path's, as are CONNECT and `https://`).
pub(super) fn plan_forward<'a>(
    proxy: &Proxy,
    conn: &'a ForwardConnection,
    target: &'a str,
    shape: &RequestShape<'a>,
) -> Option<Plan<'a>> {
    if shape.via || shape.hosts > 1 {
        return None;
    }
    let scheme = target.get(..7)?;
    if !scheme.eq_ignore_ascii_case("http://") {
        return None;
    }
    let rest = &target[7..];
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, origin) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') || !origin.starts_with('/') {
        return None;
    }
    let destination = Destination::with_default_port(authority, Scheme::Http).ok()?;
    let path = origin.split_once('?').map_or(origin, |(p, _)| p);
    Some(Plan {
        destination: Cow::Owned(destination),
        listener: &conn.listener,
        route: None,
        client: proxy.client_address(conn.peer.ip(), shape.forwarded_for),
        path,
        rewrite: Rewrite::Forward {
            authority,
            origin,
            trusted: proxy.is_trusted(conn.peer.ip()),
        },
        tls_name: None,
    })
}

/// The host of a `Host` value ([`headers::host_of`]), lowercase, in `buf`; `None`
/// when it is not plain ASCII or too long (hyper's path then decides what it is).
pub(super) fn normalized_host<'b>(value: &[u8], buf: &'b mut [u8; 256]) -> Option<&'b str> {
    let host = headers::host_of(value);
    if host.is_empty() || host.len() > buf.len() || !host.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    let out = &mut buf[..host.len()];
    out.copy_from_slice(host);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalised_like_hypers_path() {
        let mut buf = [0u8; 256];
        let mut norm = |v: &str| normalized_host(v.as_bytes(), &mut buf).map(str::to_owned);
        assert_eq!(norm("App.Example.:8443").as_deref(), Some("app.example"));
        assert_eq!(norm("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(norm("[::1]:8443").as_deref(), Some("[::1]"));
        assert_eq!(norm("[::1]").as_deref(), Some("[::1]"));
        assert_eq!(norm("").as_deref(), None);
        assert_eq!(norm("a b").as_deref(), None);
    }
}
