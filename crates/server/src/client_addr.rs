//! Who the client is. Behind a reverse proxy every connection comes from the proxy, so
//! per-address limits would lock out everyone or no one; the proxy names the client in
//! `Forwarded` (RFC 7239) or `X-Forwarded-For`. Those headers are believed only when
//! the peer is a listed proxy (`[http] trusted_proxies`), and only as far back as the
//! chain runs through listed proxies: the first address from the right that is not a
//! trusted proxy is the client, whatever the client itself put further left.

use crate::config::ConfigError;
use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// The proxies whose forwarding headers count.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Addresses (`10.0.0.5`, `::1`) and networks (`10.0.0.0/8`).
    pub fn parse(items: &[String]) -> Result<Self, ConfigError> {
        items
            .iter()
            .map(|item| {
                let item = item.trim();
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        ConfigError(format!(
                            "http.trusted_proxies: {item:?} is neither an IP address nor a \
                             network (such as 10.0.0.0/8)"
                        ))
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: `peer`, or, when `peer` is a trusted proxy, the last
    /// address the chain of trusted proxies forwarded for.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_for(headers);
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop {
                Some(ip) => {
                    client = *ip;
                    if !self.trusts(*ip) {
                        break;
                    }
                }
                // An obfuscated or unknown hop: nothing further left can be believed.
                None => break,
            }
        }
        client
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:10.0.0.1`, as a dual-stack listener
/// reports) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The `for` addresses, oldest first: from `Forwarded` if the request has one, else from
/// `X-Forwarded-For`. `None` stands for a hop that names no address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| node_address(v.trim()))
            })
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .map(|v| node_address(v))
        .collect()
}

/// The address in a node name: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`,
/// `2001:db8::1`; `None` for `unknown`, `_hidden` and anything else.
fn node_address(node: &str) -> Option<IpAddr> {
    let node = node.trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = node.strip_prefix('[') {
        let inner = rest.split(']').next()?;
        return inner.parse::<IpAddr>().ok().map(canonical);
    }
    let (host, port) = node.rsplit_once(':')?;
    if port.chars().all(|c| c.is_ascii_digit()) {
        host.parse::<IpAddr>().ok().map(canonical)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_count_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.9".into()]).unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(proxies.client(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        assert_eq!(proxies.client(ip("10.1.2.3"), &h), ip("203.0.113.7"));
        assert_eq!(proxies.client(ip("192.0.2.9"), &h), ip("203.0.113.7"));
        // No proxies: nobody's headers count.
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("10.1.2.3"), &h), ip("10.1.2.3"));
    }

    #[test]
    fn a_client_cannot_forge_its_place_in_the_chain() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        // The client wrote "1.2.3.4" itself; the proxy appended the real peer.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("203.0.113.7"));
        // Several headers are one list.
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.8"),
        ]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("203.0.113.8"));
        // An unknown hop stops the walk at the last believable address.
        let h = headers(&[("x-forwarded-for", "203.0.113.7, unknown")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_wins_and_is_parsed_per_rfc_7239() {
        let proxies = TrustedProxies::parse(&["::1".into(), "127.0.0.1".into()]).unwrap();
        let h = headers(&[
            (
                "forwarded",
                r#"for="[2001:db8::7]:4711";proto=https, for=127.0.0.1"#,
            ),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(proxies.client(ip("::1"), &h), ip("2001:db8::7"));
        let h = headers(&[("forwarded", "for=192.0.2.60:80;by=203.0.113.43")]);
        assert_eq!(proxies.client(ip("127.0.0.1"), &h), ip("192.0.2.60"));
        let h = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(proxies.client(ip("127.0.0.1"), &h), ip("127.0.0.1"));
        // A v4 peer seen through a dual-stack socket is the v4 address.
        let h = headers(&[("x-forwarded-for", "203.0.113.1")]);
        assert_eq!(
            proxies.client(ip("::ffff:127.0.0.1"), &h),
            ip("203.0.113.1")
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.example.com".into()]).is_err());
        assert!(TrustedProxies::parse(&[" 10.0.0.1 ".into()]).is_ok());
    }
}
