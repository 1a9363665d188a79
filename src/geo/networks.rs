//! The collectivité's own networks (`[[network]]` in policy files), placed before any database.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Serialize;

use crate::country::Country;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalNetwork {
    pub cidr: IpNet,
    /// Where the network is; `None` leaves the location to the databases.
    pub location: Option<Country>,
    /// The jurisdiction of whoever runs it; `None` leaves the operator to the databases and
    /// the registry.
    pub operator: Option<Country>,
    pub label: Arc<str>,
}

/// Longest-prefix lookup over the local networks.
///
/// Entries are kept per address family, sorted by prefix length (longest first), so a lookup
/// is a scan that stops at the first match: a policy holds tens of networks, not thousands,
/// and a short contiguous scan of masks beats a trie at that size.
#[derive(Debug, Clone, Default)]
pub struct LocalNetworks {
    entries: Vec<LocalNetwork>,
    /// `(network, mask, index into entries)`, longest prefix first.
    v4: Vec<(u32, u32, usize)>,
    v6: Vec<(u128, u128, usize)>,
}

impl LocalNetworks {
    pub fn new(entries: Vec<LocalNetwork>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (i, n) in entries.iter().enumerate() {
            match n.cidr.trunc() {
                IpNet::V4(net) => v4.push((u32::from(net.network()), u32::from(net.netmask()), i)),
                IpNet::V6(net) => {
                    v6.push((u128::from(net.network()), u128::from(net.netmask()), i))
                }
            }
        }
        // Stable sort: among equal prefixes the first declared entry wins.
        v4.sort_by_key(|&(_, mask, _)| std::cmp::Reverse(mask.count_ones()));
        v6.sort_by_key(|&(_, mask, _)| std::cmp::Reverse(mask.count_ones()));
        LocalNetworks { entries, v4, v6 }
    }

    pub fn entries(&self) -> &[LocalNetwork] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most specific entry containing `ip` (pass the canonical form: an IPv4-mapped
    /// address is only matched by IPv6 entries).
    pub fn lookup(&self, ip: IpAddr) -> Option<&LocalNetwork> {
        let index = match ip {
            IpAddr::V4(v4) => {
                let n = u32::from(v4);
                self.v4
                    .iter()
                    .find(|&&(net, mask, _)| n & mask == net)
                    .map(|e| e.2)
            }
            IpAddr::V6(v6) => {
                let n = u128::from(v6);
                self.v6
                    .iter()
                    .find(|&&(net, mask, _)| n & mask == net)
                    .map(|e| e.2)
            }
        }?;
        self.entries.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(cidr: &str, label: &str, location: Option<&str>) -> LocalNetwork {
        LocalNetwork {
            cidr: cidr.parse().unwrap(),
            location: location.map(|c| Country::parse(c).unwrap()),
            operator: None,
            label: label.into(),
        }
    }

    #[test]
    fn longest_prefix_wins_whatever_the_order() {
        let nets = LocalNetworks::new(vec![
            net("10.0.0.0/8", "wide", Some("FR")),
            net("10.20.0.0/16", "sante", Some("FR")),
            net("10.20.30.0/24", "labo", Some("DE")),
            net("0.0.0.0/0", "everything", None),
            net("fd00::/8", "ula", Some("FR")),
            net("fd00:1::/32", "ula-1", Some("FR")),
        ]);
        let label = |ip: &str| nets.lookup(ip.parse().unwrap()).map(|n| &*n.label);
        assert_eq!(label("10.20.30.4"), Some("labo"));
        assert_eq!(label("10.20.31.4"), Some("sante"));
        assert_eq!(label("10.1.1.1"), Some("wide"));
        assert_eq!(label("8.8.8.8"), Some("everything"));
        assert_eq!(label("fd00:1::5"), Some("ula-1"));
        assert_eq!(label("fd00:2::5"), Some("ula"));
        assert_eq!(label("2a01::1"), None, "no IPv6 default route");
    }

    #[test]
    fn host_bits_in_the_cidr_are_ignored_and_ties_keep_declaration_order() {
        let nets = LocalNetworks::new(vec![
            net("192.168.1.77/24", "first", None),
            net("192.168.1.0/24", "second", None),
        ]);
        let hit = nets.lookup("192.168.1.200".parse().unwrap()).unwrap();
        assert_eq!(&*hit.label, "first");
        assert!(LocalNetworks::default()
            .lookup("1.1.1.1".parse().unwrap())
            .is_none());
    }
}
