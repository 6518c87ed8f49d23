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
/// resolved address.
pub fn check_ip(ip: IpAddr, policy: BaseUrlPolicy) -> Result<(), Invalid> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    if is_never_allowed(ip) {
        return Err(Invalid::new("must not point at a link-local, unspecified or cloud metadata address"));
    }
    if is_private(ip) && !policy.allow_private {
        return Err(Invalid::new("must not point at a loopback or private-network address"));
    }
    Ok(())
}

fn is_never_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_link_local() // 169.254.0.0/16, includes 169.254.169.254
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4 == Ipv4Addr::new(100, 100, 100, 200) // Alibaba Cloud metadata
        }
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS IMDS over IPv6
        }
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10 carrier-grade NAT
                || a == 0
        }
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00, // fc00::/7
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
