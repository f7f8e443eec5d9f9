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
//! IANA special-purpose IPv4 blocks, and IPv6 addresses that embed any of these
//! (IPv4-mapped, NAT64, 6to4).

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

/// Why an IPv4 address is not public, if it is not.
fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private (RFC 1918)")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata lives here)")
    } else if o[0] == 100 && (64..=127).contains(&o[1]) {
        Some("carrier-grade NAT")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if ip.is_multicast() || o[0] >= 240 {
        Some("multicast or reserved")
    } else if (o[0] == 192 && o[1] == 0 && o[2] == 0) || (o[0] == 198 && (18..=19).contains(&o[1]))
    {
        Some("special-purpose")
    } else {
        None
    }
}

/// Why an IPv6 address is not public, if it is not.
fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_multicast() {
        return Some("multicast");
    }
    if (seg[0] & 0xfe00) == 0xfc00 {
        return Some("unique local (ULA)");
    }
    if (seg[0] & 0xffc0) == 0xfe80 {
        return Some("link-local");
    }
    // Addresses that carry an IPv4 address are judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    if seg[0] == 0x0064 && seg[1] == 0xff9b {
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        );
        return v4_reason(v4);
    }
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        );
        return v4_reason(v4);
    }
    None
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
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
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
        ] {
            assert!(blocked(ip), "{ip} must be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
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
