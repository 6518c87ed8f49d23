//! API keys and the permissions they carry.

use std::fmt;
use std::str::FromStr;

use crate::Invalid;

/// Every API key starts with this.
pub const KEY_PREFIX: &str = "ss_secret_";
/// Random base62 characters after the prefix, at the least.
const KEY_MIN_RANDOM: usize = 32;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Read repo connections.
    ConfigRead,
    /// Create, change and delete repo connections (implies read).
    ConfigWrite,
    /// Read analyses.
    AnalysesRead,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 3] = [Permission::ConfigRead, Permission::ConfigWrite, Permission::AnalysesRead];

    /// The wire name, such as `config:read`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::ConfigRead => "config:read",
            Permission::ConfigWrite => "config:write",
            Permission::AnalysesRead => "analyses:read",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            Invalid::new(format!("unknown permission '{s}' (known: config:read, config:write, analyses:read)"))
        })
    }
}

/// The permissions of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet(Vec<Permission>);

impl PermissionSet {
    /// A set of these permissions (duplicates dropped).
    pub fn new(permissions: impl IntoIterator<Item = Permission>) -> Self {
        let mut list: Vec<Permission> = permissions.into_iter().collect();
        list.sort();
        list.dedup();
        Self(list)
    }

    /// Parses `config:read,config:write`.
    ///
    /// # Errors
    /// [`Invalid`] for an unknown permission or an empty list.
    pub fn parse_list(s: &str) -> Result<Self, Invalid> {
        let set = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Permission>, _>>()?;
        if set.is_empty() {
            return Err(Invalid::new("name at least one permission"));
        }
        Ok(Self::new(set))
    }

    /// Whether a key with this set may do what `needed` guards.
    /// `config:write` implies `config:read`.
    pub fn allows(&self, needed: Permission) -> bool {
        self.0.contains(&needed) || (needed == Permission::ConfigRead && self.0.contains(&Permission::ConfigWrite))
    }

    /// The permissions, sorted.
    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.0.iter().copied()
    }

    /// `config:read,config:write`, the form stored and shown.
    pub fn to_list(&self) -> String {
        self.0.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
    }
}

/// The secret of an API key as presented by a client: `ss_secret_` and at
/// least 32 base62 characters. Checking the form first spares the store a
/// lookup for text that can never be a key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// Checks the form of `presented`.
    ///
    /// # Errors
    /// [`Invalid`] when it cannot be a key of ours.
    pub fn parse(presented: &str) -> Result<Self, Invalid> {
        let random = presented.strip_prefix(KEY_PREFIX).ok_or_else(|| Invalid::new("not a SigSentry API key"))?;
        if random.len() < KEY_MIN_RANDOM || random.len() > 256 || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Invalid::new("not a SigSentry API key"));
        }
        Ok(Self(presented.to_owned()))
    }

    /// The full key text. Hash it; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_implies_read() {
        let set = PermissionSet::parse_list("config:write").unwrap();
        assert!(set.allows(Permission::ConfigRead));
        assert!(set.allows(Permission::ConfigWrite));
        assert!(!set.allows(Permission::AnalysesRead));
        let read = PermissionSet::parse_list("config:read").unwrap();
        assert!(!read.allows(Permission::ConfigWrite));
    }

    #[test]
    fn parse_list_refuses_unknown_and_empty() {
        assert!(PermissionSet::parse_list("config:read,admin").is_err());
        assert!(PermissionSet::parse_list(" , ").is_err());
        assert_eq!(
            PermissionSet::parse_list("config:write, config:read").unwrap().to_list(),
            "config:read,config:write"
        );
    }

    #[test]
    fn key_form() {
        let good = format!("{KEY_PREFIX}{}", "a1B2".repeat(8));
        assert!(ApiKeySecret::parse(&good).is_ok());
        assert!(ApiKeySecret::parse("ss_secret_short").is_err());
        assert!(ApiKeySecret::parse(&format!("sk_{}", "a".repeat(40))).is_err());
        assert!(ApiKeySecret::parse(&format!("{KEY_PREFIX}{}-", "a".repeat(40))).is_err());
        assert!(!format!("{:?}", ApiKeySecret::parse(&good).unwrap()).contains("a1B2"));
    }
}
