//! The network model of the edge: who may connect (the allow-list) and who the client is behind proxies.
//!
//! Hand-written on purpose. Crates that read `X-Forwarded-For` (tower-http has none; `axum-client-ip` and
//! `real-ip` style extractors) take the leftmost entry or trust every hop, which lets a client choose its own
//! address. Here the header is believed only when the TCP peer is a configured trusted proxy, and read from the
//! right: the first entry that is not a trusted proxy is the client, and an unparsable entry there fails closed.
//! IPv4-mapped IPv6 addresses are judged as IPv4. This module depends on nothing else in the crate, so the
//! settings ([`crate::state::Settings`]) hold it and [`crate::edge`] uses it without a cycle.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The edge's settings, from `[network]` and `[limits]`.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Who may reach the portal at all.
    pub allow: Vec<IpNet>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `/auth/login` and `/auth/callback` per truncated client IP per minute.
    pub sign_in_per_ip_per_minute: u32,
    /// API requests per agent per minute.
    pub api_per_agent_per_minute: u32,
    /// Largest request body.
    pub body_limit_bytes: usize,
    /// Time allowed to produce a response.
    pub request_timeout: Duration,
}

/// Loopback and the private ranges: an internal tool is not on the internet unless someone says so.
const DEFAULT_ALLOW: [&str; 6] = [
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
];

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            allow: DEFAULT_ALLOW
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
            trusted_proxies: Vec::new(),
            sign_in_per_ip_per_minute: 30,
            api_per_agent_per_minute: 120,
            body_limit_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl EdgeSettings {
    /// Whether `ip` is on the allow-list.
    #[must_use]
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allow.iter().any(|n| n.contains(&ip))
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }

    /// The client address: the TCP peer, or, when the peer is a trusted proxy, the first address in
    /// `X-Forwarded-For` that is not a trusted proxy, reading from the right (the entries to its left were
    /// written by the client and prove nothing). `None` when the proxy chain holds an unparsable entry where the
    /// client should be.
    #[must_use]
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.to_canonical();
        if !self.trusted(peer) {
            return Some(peer);
        }
        // Every X-Forwarded-For line, in order, as one list.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let ip = parse_hop(hop)?.to_canonical();
            client = ip;
            if !self.trusted(ip) {
                return Some(ip);
            }
        }
        // Only trusted hops: the leftmost one is the best we know.
        Some(client)
    }
}

/// One `X-Forwarded-For` entry: an address, `v4:port` or `[v6]:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if hop.len() > 64 {
        return None;
    }
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The client address the edge resolved, for handlers and the audit context.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Parses CIDRs (a bare address is a /32 or /128).
///
/// # Errors
/// The first entry that is neither a CIDR nor an address, in words.
pub fn parse_cidrs(v: &[String]) -> Result<Vec<IpNet>, String> {
    v.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("{s:?} is not a CIDR (e.g. 10.0.0.0/8, 2001:db8::/32) or an address")
                })
        })
        .collect()
}

/// Plain HTTP is for loopback, or behind a TLS-terminating proxy whose address is trusted.
///
/// # Errors
/// What to set, in words.
pub fn check_transport(
    listen: SocketAddr,
    tls: bool,
    behind_tls_proxy: bool,
    has_trusted_proxies: bool,
) -> Result<(), String> {
    if behind_tls_proxy && !has_trusted_proxies {
        return Err("server.behind_tls_proxy = true needs network.trusted_proxies (the proxy's addresses): \
             without it the allow-list and the per-IP limits would see only the proxy"
            .into());
    }
    if tls || behind_tls_proxy || listen.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "refusing plain HTTP on {listen}: add a [tls] section (cert_file, key_file), set \
         server.behind_tls_proxy = true when a TLS-terminating proxy is in front, or listen on loopback"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn settings(trusted: &[&str]) -> EdgeSettings {
        EdgeSettings {
            trusted_proxies: parse_cidrs(
                &trusted.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            )
            .unwrap(),
            ..EdgeSettings::default()
        }
    }

    fn xff(v: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for x in v {
            h.append("x-forwarded-for", HeaderValue::from_str(x).unwrap());
        }
        h
    }

    #[test]
    fn xff_from_an_untrusted_peer_is_ignored() {
        let s = settings(&["10.0.0.5"]);
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(s.client_ip(peer, &xff(&["10.1.1.1"])), Some(peer));
    }

    #[test]
    fn xff_is_read_from_the_right_skipping_trusted_hops() {
        let s = settings(&["10.0.0.0/29"]);
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let h = xff(&["10.9.9.9, 198.51.100.7", "10.0.0.2"]);
        assert_eq!(s.client_ip(peer, &h), Some("198.51.100.7".parse().unwrap()));
        let h = xff(&["garbage, 198.51.100.7:4444"]);
        assert_eq!(s.client_ip(peer, &h), Some("198.51.100.7".parse().unwrap()));
        assert_eq!(s.client_ip(peer, &xff(&["not-an-ip"])), None);
        assert_eq!(s.client_ip(peer, &HeaderMap::new()), Some(peer));
    }

    #[test]
    fn mapped_ipv6_is_its_ipv4_address() {
        let s = EdgeSettings::default();
        assert!(s.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!s.allows("::ffff:8.8.8.8".parse().unwrap()));
        assert!(s.allows("fd00::1".parse().unwrap()));
        assert!(!s.allows("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn plain_http_only_on_loopback_or_behind_a_trusted_proxy() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(check_transport(lo, false, false, false).is_ok());
        assert!(check_transport(any, false, false, false).is_err());
        assert!(check_transport(any, true, false, false).is_ok());
        assert!(check_transport(any, false, true, true).is_ok());
        assert!(check_transport(any, false, true, false).is_err());
    }

    #[test]
    fn cidrs_parse_or_name_the_bad_entry() {
        assert!(
            parse_cidrs(&[
                "10.0.0.0/8".into(),
                "2001:db8::/32".into(),
                "192.0.2.1".into()
            ])
            .is_ok()
        );
        let e = parse_cidrs(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(e.contains("10.0.0.0/33"), "{e}");
    }
}
