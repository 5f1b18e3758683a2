//! Which address a request comes from: the peer, or `X-Forwarded-For` when (and only when) the peer is a proxy we
//! trust. Anyone can send `X-Forwarded-For`; believing it from an untrusted peer would let a client pick its own
//! rate-limit key.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::{IpNet, Ipv6Net};

/// The proxies whose `X-Forwarded-For` is believed (`--trusted-proxies "10.0.0.0/8, 127.0.0.1"`). Empty by default:
/// the peer address is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// Why a trusted-proxies list was refused; the message names the bad entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid trusted proxy {entry:?}: expected an IP address or a CIDR range such as 10.0.0.0/8 or fd00::/8"
)]
pub struct TrustedProxiesError {
    entry: String,
}

impl TrustedProxies {
    /// No trusted proxy.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` (an IPv4-mapped IPv6 address counts as its IPv4 address) is in a trusted range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    fn push_entry(&mut self, entry: &str) -> Result<(), TrustedProxiesError> {
        let entry = entry.trim();
        let net = entry
            .parse::<IpNet>()
            .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| TrustedProxiesError {
                entry: entry.to_owned(),
            })?;
        // A mapped range ("::ffff:10.0.0.0/104") is kept as IPv4, as addresses are compared that way.
        let net = match net {
            IpNet::V6(v6) => match v6.network().to_ipv4_mapped() {
                Some(v4) if v6.prefix_len() >= 96 => {
                    IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).map_err(|_| {
                        TrustedProxiesError {
                            entry: entry.to_owned(),
                        }
                    })?
                }
                _ => IpNet::V6(v6),
            },
            v4 => v4,
        };
        self.0.push(net.trunc());
        Ok(())
    }
}

impl FromStr for TrustedProxies {
    type Err = TrustedProxiesError;

    /// A comma-separated list; a bare address is a /32 (IPv4) or /128 (IPv6). Empty text is an empty list.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut proxies = Self::default();
        if text.trim().is_empty() {
            return Ok(proxies);
        }
        for entry in text.split(',') {
            proxies.push_entry(entry)?;
        }
        Ok(proxies)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// From a string (`"10.0.0.0/8, 127.0.0.1"`) or a list of strings (`["10.0.0.0/8", "127.0.0.1"]`).
impl<'de> serde::Deserialize<'de> for TrustedProxies {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TrustedProxies;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a comma-separated string or a list of IP addresses / CIDR ranges")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                text.parse().map_err(E::custom)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut proxies = TrustedProxies::default();
                while let Some(entry) = seq.next_element::<String>()? {
                    // An element may itself be a comma-separated list, as in the string form.
                    for part in entry.split(',') {
                        proxies.push_entry(part).map_err(serde::de::Error::custom)?;
                    }
                }
                Ok(proxies)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, what a dual-stack socket reports) is the IPv4 client.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, tolerating the `[v6]` and `addr:port` forms some proxies write.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = entry.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

/// The client's address. The peer, unless the peer is a trusted proxy: then `X-Forwarded-For` (all its header lines,
/// in order, comma-separated) is walked from the right, skipping trusted hops; the first untrusted hop is the
/// client. A malformed entry stops the walk at the last good hop (the nearest trusted one), as anything to its left
/// was written by someone we cannot vouch for. If every hop is trusted, the leftmost.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = canonical(peer.ip());
    if !trusted.contains(peer) {
        return peer;
    }
    // Hops nearest to us come last; a header line that is not text is one malformed hop.
    let hops: Vec<Option<&str>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(text) => text.split(',').map(Some).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect();
    let mut nearest = peer;
    for hop in hops.into_iter().rev() {
        let Some(ip) = hop.and_then(parse_hop).map(canonical) else {
            return nearest;
        };
        if !trusted.contains(ip) {
            return ip;
        }
        nearest = ip;
    }
    nearest
}

/// The rate-limit key for a client address: IPv4 as is; IPv6 by its /64, as one subscriber usually gets a whole /64
/// and can rotate addresses within it at will.
pub fn rate_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match Ipv6Net::new(v6, 64) {
            Ok(net) => net.trunc().to_string(),
            // 64 is a valid IPv6 prefix length; this arm only keeps the function total.
            Err(_) => v6.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(text: &str) -> TrustedProxies {
        text.parse().unwrap()
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40_000)
    }

    fn xff(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_lists_of_addresses_and_ranges() {
        let p = proxies("10.0.0.0/8, 127.0.0.1,fd00::/8 , ::1");
        assert_eq!(p.to_string(), "10.0.0.0/8, 127.0.0.1/32, fd00::/8, ::1/128");
        assert!(p.contains(ip("10.200.3.4")));
        assert!(p.contains(ip("127.0.0.1")));
        assert!(!p.contains(ip("127.0.0.2")));
        assert!(p.contains(ip("fd12::9")));
        assert!(
            p.contains(ip("::ffff:10.1.1.1")),
            "mapped IPv4 compared as IPv4"
        );
        assert!(proxies("").is_empty());
        assert!(proxies("  ").is_empty());
        // A range written with host bits set means its network.
        assert_eq!(proxies("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(proxies("::ffff:10.0.0.0/104").to_string(), "10.0.0.0/8");
    }

    #[test]
    fn refuses_bad_entries_and_names_them() {
        for (text, bad) in [
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("10.0.0.1, proxy.local", "proxy.local"),
            ("10.0.0.1,,10.0.0.2", ""),
            ("300.1.1.1", "300.1.1.1"),
            ("10.0.0.0/8;", "10.0.0.0/8;"),
        ] {
            let err = text.parse::<TrustedProxies>().unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{text}: {err}");
        }
    }

    #[test]
    fn deserializes_from_a_string_or_a_list() {
        #[derive(serde::Deserialize)]
        struct T {
            trusted_proxies: TrustedProxies,
        }
        let a: T = toml::from_str(r#"trusted_proxies = "10.0.0.0/8, 127.0.0.1""#).unwrap();
        let b: T = toml::from_str(r#"trusted_proxies = ["10.0.0.0/8", "127.0.0.1"]"#).unwrap();
        assert_eq!(a.trusted_proxies, b.trusted_proxies);
        assert_eq!(a.trusted_proxies.to_string(), "10.0.0.0/8, 127.0.0.1/32");
        let err = toml::from_str::<T>(r#"trusted_proxies = ["10.0.0.0/8", "lb"]"#)
            .err()
            .unwrap();
        assert!(err.to_string().contains("\"lb\""), "{err}");
        assert!(toml::from_str::<T>("trusted_proxies = 10").is_err());
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let headers = xff(&["1.2.3.4"]);
        assert_eq!(
            client_ip(peer("203.0.113.9"), &headers, &proxies("10.0.0.0/8")),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(peer("203.0.113.9"), &headers, &TrustedProxies::none()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_peer_without_header_is_the_client() {
        assert_eq!(
            client_ip(peer("10.0.0.1"), &HeaderMap::new(), &proxies("10.0.0.0/8")),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn trusted_chain_is_walked_from_the_right() {
        let trusted = proxies("10.0.0.0/8");
        // The client claims 6.6.6.6 itself; our proxies appended 198.51.100.7 (what they saw) and 10.0.0.5.
        let headers = xff(&["6.6.6.6, 198.51.100.7, 10.0.0.5"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers, &trusted),
            ip("198.51.100.7")
        );
        // Several header lines are one list, in order.
        let headers = xff(&["6.6.6.6", "198.51.100.7", "10.0.0.5"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers, &trusted),
            ip("198.51.100.7")
        );
        let headers = xff(&["6.6.6.6, 198.51.100.7", "10.0.0.5,10.0.0.6"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn all_trusted_hops_give_the_leftmost() {
        let headers = xff(&["10.0.0.9, 10.0.0.8"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers, &proxies("10.0.0.0/8")),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn a_malformed_hop_stops_the_walk_at_the_nearest_trusted_one() {
        let trusted = proxies("10.0.0.0/8");
        let headers = xff(&["6.6.6.6, garbage, 10.0.0.5"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers, &trusted),
            ip("10.0.0.5")
        );
        let headers = xff(&["6.6.6.6, unknown"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers, &trusted),
            ip("10.0.0.1")
        );
        let headers = xff(&["6.6.6.6,,10.0.0.5"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers, &trusted),
            ip("10.0.0.5")
        );
        let mut headers = xff(&["6.6.6.6"]);
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers, &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn hops_with_ports_or_brackets_are_understood() {
        let trusted = proxies("10.0.0.0/8");
        let headers = xff(&["198.51.100.7:5555"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers, &trusted),
            ip("198.51.100.7")
        );
        let headers = xff(&["[2001:db8::1]:443"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers, &trusted),
            ip("2001:db8::1")
        );
        let headers = xff(&["[2001:db8::2]"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers, &trusted),
            ip("2001:db8::2")
        );
    }

    #[test]
    fn mapped_ipv4_is_ipv4() {
        let trusted = proxies("10.0.0.0/8");
        // A dual-stack listener reports an IPv4 proxy as ::ffff:10.0.0.1; it is still trusted.
        let headers = xff(&["::ffff:198.51.100.7"]);
        assert_eq!(
            client_ip(peer("::ffff:10.0.0.1"), &headers, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(peer("::ffff:203.0.113.1"), &headers, &trusted),
            ip("203.0.113.1")
        );
        assert_eq!(rate_key(ip("::ffff:203.0.113.1")), "203.0.113.1");
    }

    #[test]
    fn rate_keys_group_ipv6_by_64() {
        assert_eq!(rate_key(ip("203.0.113.1")), "203.0.113.1");
        assert_eq!(rate_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            rate_key(ip("2001:db8:1:2:ffff:1:2:3")),
            rate_key(ip("2001:db8:1:2::9"))
        );
        assert_ne!(
            rate_key(ip("2001:db8:1:2::1")),
            rate_key(ip("2001:db8:1:3::1"))
        );
    }
}
