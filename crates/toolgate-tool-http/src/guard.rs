//! The SSRF guard: which addresses an `http` tool may connect to.
//!
//! Every address a host name resolves to is checked, and the connection goes to
//! exactly the addresses that were checked (the guard is the client's resolver, so
//! there is no second lookup to race). IP literals, which skip resolution, are
//! checked before the request, and so is every redirect target.
//!
//! Refused unless a tool's `allow_private` lists the network: loopback, RFC 1918,
//! link-local (which holds the cloud metadata address 169.254.169.254), CGNAT,
//! unique-local IPv6, multicast, unspecified and broadcast addresses, the other
//! blocks of IANA's IPv4 and IPv6 special-purpose registries that are not globally
//! reachable (documentation TEST-NETs, benchmarking, 6to4 relay anycast, Teredo,
//! discard-only, SRv6...), and every IPv6 form that embeds an IPv4 address
//! (IPv4-compatible `::/96`, IPv4-mapped, IPv4-translated, NAT64, 6to4), which is
//! judged by that IPv4 address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A destination the guard refused.
#[derive(Debug, Clone)]
pub struct Blocked(pub String);

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Blocked {}

/// Whether `ip` is in `net`/`prefix`.
fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

/// Whether `ip` is in `net`/`prefix`.
fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    (u128::from(ip) & mask) == (u128::from(Ipv6Addr::from(net)) & mask)
}

/// The IPv4 blocks of IANA's special-purpose registry that are not globally
/// reachable (plus multicast and the deprecated 6to4 relay anycast), with why.
const V4_BLOCKS: &[([u8; 4], u32, &str)] = &[
    ([0, 0, 0, 0], 8, "unspecified (this network)"),
    ([10, 0, 0, 0], 8, "private (RFC 1918)"),
    ([100, 64, 0, 0], 10, "carrier-grade NAT"),
    ([127, 0, 0, 0], 8, "loopback"),
    (
        [169, 254, 0, 0],
        16,
        "link-local (cloud metadata lives here)",
    ),
    ([172, 16, 0, 0], 12, "private (RFC 1918)"),
    (
        [192, 0, 0, 0],
        24,
        "special-purpose (IETF protocol assignments)",
    ),
    ([192, 0, 2, 0], 24, "documentation (TEST-NET-1)"),
    ([192, 88, 99, 0], 24, "special-purpose (6to4 relay anycast)"),
    ([192, 168, 0, 0], 16, "private (RFC 1918)"),
    ([198, 18, 0, 0], 15, "special-purpose (benchmarking)"),
    ([198, 51, 100, 0], 24, "documentation (TEST-NET-2)"),
    ([203, 0, 113, 0], 24, "documentation (TEST-NET-3)"),
    ([224, 0, 0, 0], 4, "multicast"),
    ([240, 0, 0, 0], 4, "reserved"),
];

/// Why an IPv4 address is not public, if it is not.
fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_broadcast() {
        return Some("broadcast");
    }
    V4_BLOCKS
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

/// The IPv6 blocks refused outright (IANA's special-purpose registry, not globally
/// reachable), with why. Blocks that embed an IPv4 address are judged by it instead.
const V6_BLOCKS: &[([u16; 8], u32, &str)] = &[
    ([0x0064, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "local-use NAT64"),
    ([0x0100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only"),
    ([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32, "documentation"),
    (
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "special-purpose (IETF protocol assignments, Teredo)",
    ),
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation"),
    ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, "segment routing (SRv6)"),
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique local (ULA)"),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local"),
    ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "site-local (deprecated)"),
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
];

/// The IPv4 address in the last 32 bits of `ip`.
fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::try_from(u128::from(ip) & u128::from(u32::MAX)).unwrap_or(0))
}

/// The IPv4 address an IPv6 address carries, for the forms that carry one:
/// IPv4-compatible (`::/96`), IPv4-mapped (`::ffff:0:0/96`), IPv4-translated
/// (`::ffff:0:0:0/96`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    if in_v6(ip, [0; 8], 96)
        || in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0, 0, 0, 0, 0xffff, 0, 0, 0], 96)
        || in_v6(ip, [0x0064, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return Some(low_v4(ip));
    }
    if seg[0] == 0x2002 {
        let [a, b] = seg[1].to_be_bytes();
        let [c, d] = seg[2].to_be_bytes();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    None
}

/// Why an IPv6 address is not public, if it is not.
fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    // Addresses that carry an IPv4 address are judged by that address.
    if let Some(v4) = embedded_v4(ip) {
        return v4_reason(v4);
    }
    V6_BLOCKS
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

/// Why `ip` is not public, if it is not.
#[must_use]
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

/// The guard of one tool: public addresses, plus its allow-list.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Vec<IpNet>,
}

impl Guard {
    /// A guard allowing `allow_private` (CIDRs, or single addresses).
    ///
    /// # Errors
    /// An entry that is not a network or an address.
    pub fn new(allow_private: &[String]) -> Result<Self, String> {
        let allow = allow_private
            .iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("allow_private: {s:?} is not a network (CIDR) or address"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allow })
    }

    /// Whether a connection to `ip` is allowed.
    ///
    /// # Errors
    /// [`Blocked`] naming the address and why.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        let canonical = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        match non_public_reason(ip) {
            None => Ok(()),
            Some(_)
                if self
                    .allow
                    .iter()
                    .any(|n| n.contains(&ip) || n.contains(&canonical)) =>
            {
                Ok(())
            }
            Some(reason) => Err(Blocked(format!(
                "the destination {ip} is {reason}; list it in allow_private to reach it"
            ))),
        }
    }
}

/// The client's resolver: resolves, then checks every address.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    guard: Arc<Guard>,
}

impl GuardedResolver {
    /// A resolver enforcing `guard`.
    #[must_use]
    pub fn new(guard: Arc<Guard>) -> Self {
        Self { guard }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = Arc::clone(&self.guard);
        Box::pin(async move {
            let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
            // `localhost` and its subdomains are loopback whatever DNS says (RFC 6761).
            let addrs: Vec<SocketAddr> = if host == "localhost" || host.ends_with(".localhost") {
                vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))]
            } else {
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect()
            };
            // One refused address refuses the name: a host that resolves to both a
            // public and a private address is exactly what a rebinding attack looks like.
            for a in &addrs {
                guard
                    .check(a.ip())
                    .map_err(|b| Blocked(format!("{host}: {b}")))?;
            }
            let out: Addrs = Box::new(addrs.into_iter());
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(s: &str) -> bool {
        Guard::default()
            .check(s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
            .is_err()
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "::7f00:2",
            "::127.0.0.1",
            "::a00:1",
            "::ffff:0:7f00:1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.88.99.1",
            "198.18.0.1",
            "192.0.0.8",
            "240.0.0.1",
            "2001:db8::1",
            "3fff::1",
            "2001::1",
            "100::1",
            "64:ff9b:1::1",
            "fec0::1",
        ] {
            assert!(blocked(ip), "{ip} must be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "::808:808",
            "64:ff9b::808:808",
            "2002:808:808::",
            "192.0.3.1",
        ] {
            assert!(!blocked(ip), "{ip} is public");
        }
    }

    #[test]
    fn the_allow_list_opens_exactly_its_networks() {
        let g = Guard::new(&["127.0.0.0/8".into(), "10.0.0.5".into()]).unwrap_or_default();
        assert!(
            g.check(
                "127.0.0.1"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            )
            .is_ok()
        );
        assert!(
            g.check(
                "::ffff:127.0.0.1"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            )
            .is_ok()
        );
        assert!(
            g.check(
                "10.0.0.5"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            )
            .is_ok()
        );
        assert!(
            g.check(
                "10.0.0.6"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            )
            .is_err()
        );
        assert!(Guard::new(&["nope".into()]).is_err());
    }
}
