//! Special-purpose address ranges (RFC 6890 and friends) and canonical address forms.
//!
//! Every address is classified in canonical form: an IPv4-mapped IPv6 address
//! (`::ffff:a.b.c.d`) or a NAT64 address of the well-known prefix (`64:ff9b::/96`, RFC 6052)
//! reaches the IPv4 host it carries, so it is judged as that IPv4 address. Rust's
//! `is_loopback()` is false for `::ffff:127.0.0.1`; [`canonical`] is what makes it true.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// A range that is not a public unicast destination. The policy blocks these unless a
/// `[[network]]` entry names them (a security block, not a jurisdiction one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecialRange {
    /// `0.0.0.0`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16` (RFC 1918), `fc00::/7` (unique local, RFC 4193).
    Private,
    /// `169.254/16` (including the cloud metadata address 169.254.169.254), `fe80::/10`.
    LinkLocal,
    /// `100.64/10`, carrier-grade NAT (RFC 6598).
    SharedCgnat,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24` (RFC 5737), `2001:db8::/32` (RFC 3849),
    /// `3fff::/20` (RFC 9637).
    Documentation,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Everything else that is not public unicast: see [`special_range`] for the list.
    Reserved,
}

impl SpecialRange {
    /// A stable label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecialRange::Unspecified => "unspecified",
            SpecialRange::Loopback => "loopback",
            SpecialRange::Private => "private",
            SpecialRange::LinkLocal => "link_local",
            SpecialRange::SharedCgnat => "shared_cgnat",
            SpecialRange::Documentation => "documentation",
            SpecialRange::Multicast => "multicast",
            SpecialRange::Broadcast => "broadcast",
            SpecialRange::Reserved => "reserved",
        }
    }
}

impl std::fmt::Display for SpecialRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The address a connection to `ip` really reaches: IPv4-mapped (`::ffff:0:0/96`) and NAT64
/// well-known-prefix (`64:ff9b::/96`) addresses become the IPv4 they embed; anything else is
/// returned unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return IpAddr::V4(embedded_v4(&v6));
            }
            ip
        }
    }
}

fn embedded_v4(v6: &Ipv6Addr) -> Ipv4Addr {
    let o = v6.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

/// The special-purpose range `ip` (taken in canonical form) belongs to, or `None` for a
/// public unicast address.
///
/// Reserved, besides the named kinds: IPv4 `0/8` (but `0.0.0.0`, unspecified), `192.0.0/24`
/// (IETF protocol assignments), `192.88.99/24` (deprecated 6to4 relay anycast), `198.18/15`
/// (benchmarking), `240/4` (future use, but the broadcast address); IPv6 `::/96`
/// (deprecated IPv4-compatible), `64:ff9b:1::/48` (local-use NAT64, whose embedding is
/// local), `100::/64` (discard-only), `2001::/23` (IETF protocol assignments, including
/// Teredo `2001::/32`, whose IPv4 is obfuscated), `2002::/16` (6to4: the real host is an
/// IPv4 that the policy never sees), `5f00::/16` (SRv6 SIDs). 6to4 and Teredo are refused
/// rather than decoded because they tunnel to an IPv4 relay chosen by routing, not by the
/// address.
pub fn special_range(ip: IpAddr) -> Option<SpecialRange> {
    match canonical(ip) {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn in_v4(ip: u32, net: [u8; 4], len: u32) -> bool {
    let net = u32::from_be_bytes(net);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    ip & mask == net
}

fn special_v4(ip: Ipv4Addr) -> Option<SpecialRange> {
    use SpecialRange::*;
    let n = u32::from(ip);
    let range = if n == 0 {
        Unspecified
    } else if n == u32::MAX {
        Broadcast
    } else if in_v4(n, [127, 0, 0, 0], 8) {
        Loopback
    } else if in_v4(n, [10, 0, 0, 0], 8)
        || in_v4(n, [172, 16, 0, 0], 12)
        || in_v4(n, [192, 168, 0, 0], 16)
    {
        Private
    } else if in_v4(n, [169, 254, 0, 0], 16) {
        LinkLocal
    } else if in_v4(n, [100, 64, 0, 0], 10) {
        SharedCgnat
    } else if in_v4(n, [192, 0, 2, 0], 24)
        || in_v4(n, [198, 51, 100, 0], 24)
        || in_v4(n, [203, 0, 113, 0], 24)
    {
        Documentation
    } else if in_v4(n, [224, 0, 0, 0], 4) {
        Multicast
    } else if in_v4(n, [0, 0, 0, 0], 8)
        || in_v4(n, [192, 0, 0, 0], 24)
        || in_v4(n, [192, 88, 99, 0], 24)
        || in_v4(n, [198, 18, 0, 0], 15)
        || in_v4(n, [240, 0, 0, 0], 4)
    {
        Reserved
    } else {
        return None;
    };
    Some(range)
}

fn in_v6(ip: u128, net: [u16; 8], len: u32) -> bool {
    let net = u128::from(Ipv6Addr::from(net));
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    ip & mask == net
}

fn special_v6(ip: Ipv6Addr) -> Option<SpecialRange> {
    use SpecialRange::*;
    let n = u128::from(ip);
    let range = if n == 0 {
        Unspecified
    } else if n == 1 {
        Loopback
    } else if in_v6(n, [0xfc00, 0, 0, 0, 0, 0, 0, 0], 7) {
        Private
    } else if in_v6(n, [0xfe80, 0, 0, 0, 0, 0, 0, 0], 10) {
        LinkLocal
    } else if in_v6(n, [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32)
        || in_v6(n, [0x3fff, 0, 0, 0, 0, 0, 0, 0], 20)
    {
        Documentation
    } else if in_v6(n, [0xff00, 0, 0, 0, 0, 0, 0, 0], 8) {
        Multicast
    } else if in_v6(n, [0, 0, 0, 0, 0, 0, 0, 0], 96)
        || in_v6(n, [0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48)
        || in_v6(n, [0x100, 0, 0, 0, 0, 0, 0, 0], 64)
        || in_v6(n, [0x2001, 0, 0, 0, 0, 0, 0, 0], 23)
        || in_v6(n, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16)
        || in_v6(n, [0x5f00, 0, 0, 0, 0, 0, 0, 0], 16)
    {
        Reserved
    } else {
        return None;
    };
    Some(range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SpecialRange::*;

    fn sr(s: &str) -> Option<SpecialRange> {
        special_range(s.parse().unwrap())
    }

    #[test]
    fn canonical_forms() {
        let c = |s: &str| canonical(s.parse().unwrap()).to_string();
        assert_eq!(c("::ffff:127.0.0.1"), "127.0.0.1");
        assert_eq!(c("::ffff:8.8.8.8"), "8.8.8.8");
        assert_eq!(c("64:ff9b::a9fe:a9fe"), "169.254.169.254");
        assert_eq!(c("64:ff9b::fec:1"), "15.236.0.1");
        assert_eq!(c("2a01:4f8::1"), "2a01:4f8::1");
        assert_eq!(
            c("64:ff9b:1::a9fe:a9fe"),
            "64:ff9b:1::a9fe:a9fe",
            "local-use prefix"
        );
        assert_eq!(c("1.2.3.4"), "1.2.3.4");
    }

    #[test]
    fn ipv4_kinds() {
        assert_eq!(sr("0.0.0.0"), Some(Unspecified));
        assert_eq!(sr("127.0.0.1"), Some(Loopback));
        assert_eq!(sr("127.255.255.254"), Some(Loopback));
        assert_eq!(sr("10.1.2.3"), Some(Private));
        assert_eq!(sr("172.16.0.1"), Some(Private));
        assert_eq!(sr("172.31.255.255"), Some(Private));
        assert_eq!(sr("172.32.0.1"), None);
        assert_eq!(sr("192.168.1.1"), Some(Private));
        assert_eq!(sr("169.254.169.254"), Some(LinkLocal));
        assert_eq!(sr("100.64.0.1"), Some(SharedCgnat));
        assert_eq!(sr("100.127.255.255"), Some(SharedCgnat));
        assert_eq!(sr("100.128.0.1"), None);
        assert_eq!(sr("192.0.2.10"), Some(Documentation));
        assert_eq!(sr("198.51.100.1"), Some(Documentation));
        assert_eq!(sr("203.0.113.10"), Some(Documentation));
        assert_eq!(sr("224.0.0.251"), Some(Multicast));
        assert_eq!(sr("239.255.255.250"), Some(Multicast));
        assert_eq!(sr("255.255.255.255"), Some(Broadcast));
        assert_eq!(sr("0.1.2.3"), Some(Reserved));
        assert_eq!(sr("192.0.0.8"), Some(Reserved));
        assert_eq!(sr("198.18.0.1"), Some(Reserved));
        assert_eq!(sr("198.19.255.255"), Some(Reserved));
        assert_eq!(sr("240.0.0.1"), Some(Reserved));
        assert_eq!(sr("192.88.99.1"), Some(Reserved));
        for public in [
            "8.8.8.8",
            "15.236.0.1",
            "51.75.1.1",
            "1.1.1.1",
            "223.255.255.255",
        ] {
            assert_eq!(sr(public), None, "{public}");
        }
    }

    #[test]
    fn ipv6_kinds() {
        assert_eq!(sr("::"), Some(Unspecified));
        assert_eq!(sr("::1"), Some(Loopback));
        assert_eq!(sr("fd00::1"), Some(Private));
        assert_eq!(sr("fc00::1"), Some(Private));
        assert_eq!(sr("fe80::1"), Some(LinkLocal));
        assert_eq!(sr("febf::1"), Some(LinkLocal));
        assert_eq!(sr("2001:db8::1"), Some(Documentation));
        assert_eq!(sr("3fff::1"), Some(Documentation));
        assert_eq!(sr("ff02::1"), Some(Multicast));
        assert_eq!(
            sr("::1.2.3.4"),
            Some(Reserved),
            "IPv4-compatible, deprecated"
        );
        assert_eq!(sr("2001::1"), Some(Reserved), "Teredo");
        assert_eq!(sr("2002:c000:0204::1"), Some(Reserved), "6to4");
        assert_eq!(sr("100::1"), Some(Reserved));
        assert_eq!(sr("64:ff9b:1::1"), Some(Reserved));
        assert_eq!(sr("2a01:4f8::1"), None);
        assert_eq!(
            sr("2001:4860:4860::8888"),
            None,
            "2001:4860 is outside 2001::/23"
        );
    }

    #[test]
    fn embedded_ipv4_is_judged_as_ipv4() {
        assert_eq!(sr("::ffff:127.0.0.1"), Some(Loopback));
        assert_eq!(sr("::ffff:10.0.0.1"), Some(Private));
        assert_eq!(sr("::ffff:169.254.169.254"), Some(LinkLocal));
        assert_eq!(sr("64:ff9b::a9fe:a9fe"), Some(LinkLocal));
        assert_eq!(sr("64:ff9b::7f00:1"), Some(Loopback));
        assert_eq!(sr("64:ff9b::808:808"), None);
        assert_eq!(sr("::ffff:0.0.0.0"), Some(Unspecified));
    }

    #[test]
    fn labels_are_stable() {
        assert_eq!(LinkLocal.as_str(), "link_local");
        assert_eq!(SharedCgnat.to_string(), "shared_cgnat");
        assert_eq!(
            serde_json::to_string(&SharedCgnat).unwrap(),
            "\"shared_cgnat\""
        );
    }
}
