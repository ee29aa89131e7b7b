//! Where deliveries may go. A callback is an `http` or `https` URL whose
//! host resolves only to public addresses, unless the operator's allow list
//! names the host or a network holding its addresses: loopback, private,
//! link-local (cloud metadata services live there), shared, multicast and
//! reserved addresses are refused by default. The check runs when a
//! subscription is made and again on every connection, on the addresses the
//! connection uses, so a name that later resolves elsewhere (DNS rebinding)
//! is refused too. Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The longest callback URL.
const MAX_URL_BYTES: usize = 2048;

/// Hosts and networks callbacks may reach besides public addresses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllowList {
    /// Host names allowed whatever they resolve to (lowercase).
    hosts: Vec<String>,
    /// Networks (address and prefix length) whose addresses are allowed.
    networks: Vec<(IpAddr, u8)>,
}

impl AllowList {
    /// Read comma-separated entries: `10.0.0.0/8`, `127.0.0.1`, `::1`,
    /// `hooks.internal`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut list = Self::default();
        for entry in text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let (address, prefix) = match entry.split_once('/') {
                Some((address, prefix)) => (address, Some(prefix)),
                None => (entry, None),
            };
            match (address.parse::<IpAddr>(), prefix) {
                (Ok(ip), prefix) => {
                    let most = if ip.is_ipv4() { 32 } else { 128 };
                    let bits = match prefix {
                        None => most,
                        Some(prefix) => prefix
                            .parse::<u8>()
                            .ok()
                            .filter(|bits| *bits <= most)
                            .ok_or_else(|| {
                                format!("{entry:?} has a prefix length that is not 0 to {most}")
                            })?,
                    };
                    list.networks.push((ip, bits));
                }
                (Err(_), None) if valid_host_name(address) => {
                    list.hosts.push(address.to_ascii_lowercase());
                }
                _ => {
                    return Err(format!(
                        "{entry:?} is not an IP address, a network (ADDRESS/BITS) or a host name"
                    ));
                }
            }
        }
        Ok(list)
    }

    /// Whether `host` (a name, lowercase) is allowed whatever it resolves to.
    fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|allowed| allowed == host)
    }

    /// Whether deliveries may connect to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip)
            || self
                .networks
                .iter()
                .any(|(network, bits)| contains(*network, *bits, ip))
    }
}

/// Check `text` as a callback URL: its form, and its host when that is an
/// address or a name that resolves now. The URL, normalised.
pub async fn check(text: &str, allow: &AllowList) -> Result<Url, String> {
    if text.len() > MAX_URL_BYTES {
        return Err(format!(
            "the callback URL is longer than {MAX_URL_BYTES} bytes"
        ));
    }
    let url = Url::parse(text).map_err(|error| format!("the callback is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the callback must be an http or https URL, not {}:",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the callback URL must not carry a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("the callback URL must not have a fragment (#...)".into());
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    if host.is_empty() {
        return Err("the callback URL has no host".into());
    }
    let port = url.port_or_known_default().unwrap_or(80);
    match literal_ip(&host) {
        Some(ip) if !allow.allows(ip) => Err(refused(&host, &[ip])),
        Some(_) => Ok(url),
        None if allow.allows_host(&host) => Ok(url),
        None => {
            resolve(&host, port, allow).await?;
            Ok(url)
        }
    }
}

/// The addresses of `host` deliveries may connect to; an error naming the
/// refused ones when none is allowed.
async fn resolve(host: &str, port: u16, allow: &AllowList) -> Result<Vec<SocketAddr>, String> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| format!("the callback host {host} does not resolve: {error}"))?
        .collect();
    if allow.allows_host(host) {
        return Ok(found);
    }
    let (allowed, refused_ips): (Vec<SocketAddr>, Vec<SocketAddr>) = found
        .into_iter()
        .partition(|address| allow.allows(address.ip()));
    if !refused_ips.is_empty() || allowed.is_empty() {
        let ips: Vec<IpAddr> = refused_ips.iter().map(SocketAddr::ip).collect();
        return Err(refused(host, &ips));
    }
    Ok(allowed)
}

fn refused(host: &str, ips: &[IpAddr]) -> String {
    let ips: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
    format!(
        "the callback host {host} is at a refused address ({}): loopback, private, link-local \
         and reserved addresses need the operator's webhook_allow setting",
        ips.join(", ")
    )
}

/// The address in `host` if it is one (`[::1]` included).
fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The HTTP client deliveries use: no redirects, `timeout` per request, and
/// a resolver that checks every address it connects to.
pub fn client(allow: &AllowList, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("rpcnode/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(Checked(allow.clone())))
        .build()
        .expect("the webhook HTTP client's settings are valid")
}

/// A resolver that hands the HTTP client only allowed addresses.
struct Checked(AllowList);

impl Resolve for Checked {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_ascii_lowercase();
            let addresses = resolve(&host, 0, &allow).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// Whether an address literal in a URL is allowed: the resolver only sees
/// names, so deliveries check literals themselves.
pub fn literal_allowed(url: &Url, allow: &AllowList) -> Result<(), String> {
    let host = url.host_str().unwrap_or_default();
    match literal_ip(host) {
        Some(ip) if !allow.allows(ip) => Err(refused(host, &[ip])),
        _ => Ok(()),
    }
}

fn valid_host_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// An IPv4 address carried in an IPv6 one (mapped `::ffff:a.b.c.d`, or
/// NAT64 `64:ff9b::a.b.c.d`) is judged as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let segments = v6.segments();
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// Whether `ip` is a public unicast address.
fn is_public(ip: IpAddr) -> bool {
    const REFUSED_V4: [(Ipv4Addr, u8); 13] = [
        (Ipv4Addr::new(0, 0, 0, 0), 8),       // this network
        (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
        (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared (carrier-grade NAT)
        (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
        (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, cloud metadata
        (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
        (Ipv4Addr::new(192, 0, 0, 0), 24),    // protocol assignments
        (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation
        (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
        (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
        (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation
        (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation
        (Ipv4Addr::new(224, 0, 0, 0), 3),     // multicast, reserved, broadcast
    ];
    const REFUSED_V6: [(Ipv6Addr, u8); 6] = [
        (Ipv6Addr::UNSPECIFIED, 127), // unspecified and loopback
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // discard
        (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
    ];
    match ip {
        IpAddr::V4(_) => !REFUSED_V4
            .iter()
            .any(|(network, bits)| contains(IpAddr::V4(*network), *bits, ip)),
        IpAddr::V6(_) => !REFUSED_V6
            .iter()
            .any(|(network, bits)| contains(IpAddr::V6(*network), *bits, ip)),
    }
}

/// Whether `network/bits` holds `ip`.
fn contains(network: IpAddr, bits: u8, ip: IpAddr) -> bool {
    let (network, ip, width) = match (canonical(network), ip) {
        (IpAddr::V4(network), IpAddr::V4(ip)) => {
            (u128::from(network.to_bits()), u128::from(ip.to_bits()), 32)
        }
        (IpAddr::V6(network), IpAddr::V6(ip)) => (network.to_bits(), ip.to_bits(), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    network >> shift == ip >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused_by_default() {
        let allow = AllowList::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!allow.allows(refused.parse().unwrap()), "{refused}");
        }
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(allow.allows(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn the_allow_list_opens_networks_and_hosts() {
        let allow = AllowList::parse("127.0.0.1, 10.0.0.0/8,::1,hooks.internal").unwrap();
        assert!(allow.allows("127.0.0.1".parse().unwrap()));
        assert!(!allow.allows("127.0.0.2".parse().unwrap()));
        assert!(allow.allows("10.200.0.1".parse().unwrap()));
        assert!(allow.allows("::1".parse().unwrap()));
        assert!(!allow.allows("192.168.0.1".parse().unwrap()));
        assert!(allow.allows_host("hooks.internal"));
        for bad in ["10.0.0.0/33", "::/129", "a b", "10.0.0.0/x", "-/8"] {
            assert!(AllowList::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn callback_urls_are_checked() {
        let allow = AllowList::parse("127.0.0.1").unwrap();
        assert!(check("http://127.0.0.1:9/hook", &allow).await.is_ok());
        for (url, why) in [
            ("ftp://127.0.0.1/", "http or https"),
            ("http://user:pw@127.0.0.1/", "user name or password"),
            ("http://127.0.0.1/#x", "fragment"),
            ("not a url", "not a URL"),
            ("http://10.0.0.1/", "refused address (10.0.0.1)"),
            ("http://[::1]:8080/", "refused address (::1)"),
        ] {
            let error = check(url, &allow).await.unwrap_err();
            assert!(error.contains(why), "{url}: {error}");
        }
    }

    #[tokio::test]
    async fn connections_resolve_only_to_allowed_addresses() {
        let name = |text: &str| text.parse::<Name>().unwrap();
        let strict = Checked(AllowList::default());
        let error = strict.resolve(name("localhost")).await.err().unwrap();
        assert!(error.to_string().contains("refused address"), "{error}");
        let open = Checked(AllowList::parse("127.0.0.0/8,::1").unwrap());
        let addresses: Vec<SocketAddr> = open.resolve(name("localhost")).await.unwrap().collect();
        assert!(!addresses.is_empty());
        assert!(addresses.iter().all(|address| address.ip().is_loopback()));
    }
}
