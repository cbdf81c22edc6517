//! Who the client is, as an address: the connection's peer, unless the peer
//! is a proxy this deployment trusts (`SHOP_TRUSTED_PROXIES`), in which case
//! the right-most address of `X-Forwarded-For` that is not a trusted proxy
//! itself. Addresses to the left of that were written by the client and
//! prove nothing; with no trusted proxy configured the header is ignored.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::settings::SettingsError;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma list of CIDRs (a bare address is a /32 or /128).
    pub fn parse(list: &str) -> Result<Self, SettingsError> {
        let mut nets = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = part
                .parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    SettingsError::Invalid(format!(
                        "SHOP_TRUSTED_PROXIES: `{part}` is not an address or CIDR"
                    ))
                })?;
            nets.push(net);
        }
        Ok(Self(nets))
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client's address, for a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        forwarded
            .iter()
            .rev()
            .filter_map(|addr| addr.parse::<IpAddr>().ok())
            .find(|addr| !self.trusts(*addr))
            .unwrap_or(peer)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::TrustedProxies;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            forwarded.parse().expect("a header value"),
        );
        headers
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::parse("").expect("empty");
        let peer = "203.0.113.9".parse().expect("ip");
        assert_eq!(none.client(peer, &headers("198.51.100.1")), peer);
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_client() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.7").expect("list");
        let peer = "10.1.2.3".parse().expect("ip");
        // The client claimed 1.1.1.1; the proxies appended what they saw.
        let client = proxies.client(peer, &headers("1.1.1.1, 198.51.100.20, 192.0.2.7"));
        assert_eq!(
            client,
            "198.51.100.20".parse::<std::net::IpAddr>().expect("ip")
        );
    }

    #[test]
    fn a_peer_that_is_not_trusted_is_the_client_whatever_it_forwards() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").expect("list");
        let peer = "203.0.113.9".parse().expect("ip");
        assert_eq!(proxies.client(peer, &headers("10.0.0.1")), peer);
    }

    #[test]
    fn nonsense_is_refused() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.example").is_err());
    }
}
