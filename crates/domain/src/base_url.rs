//! API base URLs for self-hosted platforms, and the rules that keep them from
//! pointing our credentials at places they must never go.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::Invalid;

/// What the operator allows a `baseUrl` to point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BaseUrlPolicy {
    /// Allow plain `http` and loopback or private-network hosts (for
    /// on-premises installs and tests). Link-local and cloud metadata
    /// addresses stay refused regardless.
    pub allow_private: bool,
}

/// An absolute `https` URL (or `http` where the policy allows) of a platform's
/// API, without user info, query or fragment, and without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl(String);

/// Long enough for any real host and path; short enough to keep out abuse.
const MAX_LEN: usize = 2048;

/// Host names that resolve to cloud metadata services.
const METADATA_HOSTS: [&str; 3] = ["metadata.google.internal", "metadata", "metadata.goog"];

impl BaseUrl {
    /// Parses and checks `raw` against `policy`. Checks the form and literal
    /// addresses only; host names are checked again when we connect.
    ///
    /// # Errors
    /// [`Invalid`] naming the rule broken.
    pub fn parse(raw: &str, policy: BaseUrlPolicy) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > MAX_LEN {
            return Err(Invalid::new(format!("must be a URL of 1 to {MAX_LEN} characters")));
        }
        let url =
            Url::parse(raw).map_err(|_| Invalid::new("must be an absolute URL such as https://gitlab.example.com"))?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_private => {}
            "http" => return Err(Invalid::new("must use https")),
            _ => return Err(Invalid::new("must be an https URL")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Invalid::new("must not contain a user name or password"));
        }
        if url.query().is_some() {
            return Err(Invalid::new("must not contain a query string"));
        }
        if url.fragment().is_some() {
            return Err(Invalid::new("must not contain a fragment"));
        }
        match url.host() {
            None => return Err(Invalid::new("must name a host")),
            Some(Host::Domain(domain)) => check_domain(domain, policy)?,
            Some(Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), policy)?,
            Some(Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), policy)?,
        }
        let text = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self(text))
    }

    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_domain(domain: &str, policy: BaseUrlPolicy) -> Result<(), Invalid> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if METADATA_HOSTS.contains(&domain.as_str()) {
        return Err(Invalid::new("must not point at a cloud metadata service"));
    }
    let is_localhost = domain == "localhost" || domain.ends_with(".localhost");
    if is_localhost && !policy.allow_private {
        return Err(Invalid::new("must not point at this machine (localhost)"));
    }
    Ok(())
}

/// The verdict on an address we might send credentials to. Shared by form
/// validation here and by the outbound connector, which checks every
/// resolved address (DNS answers too).
///
/// Only globally routable addresses pass; with the policy's
/// `allow_private`, loopback and private networks too. An IPv4 address
/// carried inside an IPv6 one (IPv4-mapped, IPv4-compatible, NAT64, 6to4,
/// Teredo) is judged as the IPv4 address it reaches.
///
/// ```
/// use std::net::IpAddr;
/// use sigsentry_domain::{BaseUrlPolicy, check_ip};
///
/// let strict = BaseUrlPolicy::default();
/// assert!(check_ip("140.82.112.3".parse::<IpAddr>().unwrap(), strict).is_ok());
/// // 127.0.0.1 behind NAT64 is still this machine.
/// assert!(check_ip("64:ff9b::7f00:1".parse::<IpAddr>().unwrap(), strict).is_err());
/// ```
///
/// # Errors
/// [`Invalid`] saying which kind of address it is.
pub fn check_ip(ip: IpAddr, policy: BaseUrlPolicy) -> Result<(), Invalid> {
    match classify_ip(ip) {
        Reach::Global => Ok(()),
        Reach::Private if policy.allow_private => Ok(()),
        Reach::Private => Err(Invalid::new("must not point at a loopback or private-network address")),
        Reach::Never(what) => Err(Invalid::new(format!("must not point at {what}"))),
    }
}

/// Where an address leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// The public internet.
    Global,
    /// This machine or a private network: only where the operator allows.
    Private,
    /// Never: link-local, metadata, reserved, documentation, multicast...
    Never(&'static str),
}

fn classify_ip(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

const LINK_LOCAL: &str = "a link-local, unspecified or cloud metadata address";
const RESERVED: &str = "a reserved, documentation or multicast address";

fn classify_v4(v4: Ipv4Addr) -> Reach {
    let [a, b, c, _] = v4.octets();
    if v4.is_link_local() || v4.is_unspecified() || v4 == Ipv4Addr::new(100, 100, 100, 200) {
        // 169.254.0.0/16 (169.254.169.254 included), 0.0.0.0, Alibaba Cloud's metadata.
        return Reach::Never(LINK_LOCAL);
    }
    if v4.is_loopback() || v4.is_private() || (a == 100 && (64..128).contains(&b)) {
        // 127/8, 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT).
        return Reach::Private;
    }
    let reserved = a == 0 // this network
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    if reserved { Reach::Never(RESERVED) } else { Reach::Global }
}

fn classify_v6(v6: Ipv6Addr) -> Reach {
    if let Some(v4) = embedded_v4(v6) {
        return v4;
    }
    let s = v6.segments();
    if v6.is_unspecified() || (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        // ::, fe80::/10 link-local, fec0::/10 site-local (deprecated, still routed inside sites).
        return Reach::Never(LINK_LOCAL);
    }
    if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Reach::Never(LINK_LOCAL); // AWS IMDS over IPv6
    }
    if v6.is_loopback() || (s[0] & 0xfe00) == 0xfc00 {
        return Reach::Private; // ::1, fc00::/7 unique local
    }
    let reserved = (s[0] & 0xe000) != 0x2000 // outside 2000::/3, the global unicast space
        || (s[0] == 0x2001 && s[1] < 0x0200) // 2001::/23 IETF protocol assignments
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] & 0xfff0) == 0x3ff0; // 3fff::/20 documentation
    if reserved { Reach::Never(RESERVED) } else { Reach::Global }
}

/// The verdict on an IPv4 address an IPv6 one carries, when it carries one:
/// traffic to it ends at that IPv4 address (or at a relay in front of it).
fn embedded_v4(v6: Ipv6Addr) -> Option<Reach> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let low = v4(s[6], s[7]);
    if let Some(mapped) = v6.to_ipv4_mapped() {
        return Some(classify_v4(mapped)); // ::ffff:a.b.c.d
    }
    if s[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback() {
        return Some(classify_v4(low)); // ::a.b.c.d, IPv4-compatible (deprecated)
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(classify_v4(low)); // 64:ff9b::/96, NAT64 well-known prefix
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        // 64:ff9b:1::/48, local-use NAT64: a private translator in front of any address.
        return Some(worst(Reach::Private, classify_v4(low)));
    }
    if s[0] == 0x2002 {
        return Some(classify_v4(v4(s[1], s[2]))); // 6to4
    }
    if s[0] == 0x2001 && s[1] == 0 {
        // Teredo: the server in bits 32..63, the client (inverted) in the last 32.
        return Some(worst(classify_v4(v4(s[2], s[3])), classify_v4(v4(!s[6], !s[7]))));
    }
    None
}

fn worst(a: Reach, b: Reach) -> Reach {
    match (a, b) {
        (Reach::Never(what), _) | (_, Reach::Never(what)) => Reach::Never(what),
        (Reach::Private, _) | (_, Reach::Private) => Reach::Private,
        _ => Reach::Global,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: BaseUrlPolicy = BaseUrlPolicy { allow_private: false };
    const LAX: BaseUrlPolicy = BaseUrlPolicy { allow_private: true };

    #[test]
    fn accepts_https_and_trims_slash() {
        let url = BaseUrl::parse("https://gitlab.company.com/", STRICT).unwrap();
        assert_eq!(url.as_str(), "https://gitlab.company.com");
        let url = BaseUrl::parse("https://github.example.com/api/v3", STRICT).unwrap();
        assert_eq!(url.as_str(), "https://github.example.com/api/v3");
    }

    #[test]
    fn refuses_bad_forms() {
        for bad in [
            "gitlab.company.com",
            "ftp://x.example",
            "http://x.example",
            "https://user:pw@x.example",
            "https://x.example/?a=1",
            "https://x.example/#f",
            "",
        ] {
            assert!(BaseUrl::parse(bad, STRICT).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_hosts_need_the_policy() {
        for host in [
            "https://127.0.0.1",
            "https://10.1.2.3",
            "https://192.168.0.1",
            "https://localhost:8443",
            "https://[::1]",
            "https://[fd12::1]",
        ] {
            assert!(BaseUrl::parse(host, STRICT).is_err(), "{host}");
            assert!(BaseUrl::parse(host, LAX).is_ok(), "{host}");
        }
        assert!(BaseUrl::parse("http://127.0.0.1:9000", LAX).is_ok());
    }

    #[test]
    fn ipv4_inside_ipv6_is_judged_as_the_ipv4_it_reaches() {
        for host in [
            "https://[::127.0.0.1]",
            "https://[::ffff:127.0.0.1]",
            "https://[64:ff9b::7f00:1]",
            "https://[2002:7f00:1::]",
            "https://[64:ff9b:1::808:808]",
        ] {
            assert!(BaseUrl::parse(host, STRICT).is_err(), "{host}");
        }
        for host in ["https://[::a9fe:a9fe]", "https://[2002:a9fe:a9fe::1]", "https://[64:ff9b::a9fe:a9fe]"] {
            assert!(BaseUrl::parse(host, LAX).is_err(), "{host}: metadata behind IPv6");
        }
        // Teredo: client 127.0.0.1 is stored inverted in the last 32 bits.
        assert!(BaseUrl::parse("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]", STRICT).is_err());
        // Public addresses behind the same embeddings stay public.
        for host in ["https://[64:ff9b::808:808]", "https://[2002:808:808::1]", "https://[::ffff:8.8.8.8]"] {
            assert!(BaseUrl::parse(host, STRICT).is_ok(), "{host}");
        }
    }

    #[test]
    fn only_globally_routable_addresses_pass() {
        for host in [
            "https://198.18.0.1",
            "https://240.0.0.1",
            "https://192.0.0.192",
            "https://192.0.2.10",
            "https://203.0.113.5",
            "https://224.0.0.1",
            "https://255.255.255.255",
            "https://0.1.2.3",
            "https://[fec0::1]",
            "https://[2001:db8::1]",
            "https://[100::1]",
            "https://[ff02::1]",
        ] {
            assert!(BaseUrl::parse(host, STRICT).is_err(), "{host}");
            assert!(BaseUrl::parse(host, LAX).is_err(), "{host}: not private, just never");
        }
        for host in ["https://140.82.112.3", "https://[2606:4700::6810:84e5]"] {
            assert!(BaseUrl::parse(host, STRICT).is_ok(), "{host}");
        }
    }

    #[test]
    fn metadata_and_link_local_are_never_allowed() {
        for host in [
            "https://169.254.169.254",
            "http://169.254.169.254/latest",
            "https://[fe80::1]",
            "https://[::ffff:169.254.169.254]",
            "https://metadata.google.internal",
            "https://0.0.0.0",
        ] {
            assert!(BaseUrl::parse(host, LAX).is_err(), "{host}");
        }
    }
}
