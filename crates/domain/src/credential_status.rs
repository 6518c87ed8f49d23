//! Whether a connection's credentials still work, and for how long: what a
//! team needs to fix before a sync breaks.
//!
//! The store keeps facts (the known expiry, the outcome of the last use and
//! when it was); the status is computed from them against the clock, so an
//! `expiring` credential becomes `expired` without anything being written.

use chrono::{DateTime, TimeDelta, Utc};

use crate::Invalid;

/// How far ahead an expiry makes credentials `expiring`.
pub const EXPIRING_WITHIN: TimeDelta = TimeDelta::days(7);

/// The outcome of the last use of the credentials with their platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialUse {
    /// Not used since they were set.
    Unused,
    /// The platform accepted them.
    Accepted,
    /// The platform refused them: revoked, a refused refresh, an App
    /// installation removed or suspended.
    Refused,
}

impl CredentialUse {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialUse::Unused => "unused",
            CredentialUse::Accepted => "accepted",
            CredentialUse::Refused => "refused",
        }
    }

    /// Reads a stored name back.
    ///
    /// # Errors
    /// [`Invalid`] for an unknown name.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "unused" => Ok(Self::Unused),
            "accepted" => Ok(Self::Accepted),
            "refused" => Ok(Self::Refused),
            _ => Err(Invalid::new("unknown credential use")),
        }
    }
}

/// What is known of the credentials' life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialHealth {
    /// When the credentials the user gave stop working, if known. `None`
    /// while the service renews them by itself.
    pub expires_at: Option<DateTime<Utc>>,
    /// The outcome of the last use.
    pub last_use: CredentialUse,
    /// When that outcome was seen (`None` while unused).
    pub last_use_at: Option<DateTime<Utc>>,
}

impl CredentialHealth {
    /// Credentials just set: nothing known yet.
    pub const UNKNOWN: Self = Self { expires_at: None, last_use: CredentialUse::Unused, last_use_at: None };

    /// The status at `now`, the first that applies: `Rejected` (refused
    /// before any known expiry), `Expired`, `Expiring` (within
    /// [`EXPIRING_WITHIN`]), `Valid` (the last use worked), `Unknown`.
    ///
    /// ```
    /// use chrono::{TimeDelta, Utc};
    /// use sigsentry_domain::{CredentialHealth, CredentialStatus, CredentialUse};
    ///
    /// let now = Utc::now();
    /// let health = CredentialHealth {
    ///     expires_at: Some(now + TimeDelta::days(3)),
    ///     last_use: CredentialUse::Accepted,
    ///     last_use_at: Some(now),
    /// };
    /// assert_eq!(health.status(now), CredentialStatus::Expiring);
    /// assert_eq!(health.status(now + TimeDelta::days(4)), CredentialStatus::Expired);
    /// ```
    pub fn status(&self, now: DateTime<Utc>) -> CredentialStatus {
        let refused_before_expiry = self.last_use == CredentialUse::Refused
            && match (self.expires_at, self.last_use_at) {
                (Some(expires_at), Some(refused_at)) => refused_at < expires_at,
                _ => true,
            };
        if refused_before_expiry {
            return CredentialStatus::Rejected;
        }
        match self.expires_at {
            Some(expires_at) if expires_at <= now => return CredentialStatus::Expired,
            Some(expires_at) if expires_at - EXPIRING_WITHIN <= now => return CredentialStatus::Expiring,
            _ => {}
        }
        match self.last_use {
            CredentialUse::Accepted => CredentialStatus::Valid,
            // Refused after its known expiry: that expiry is why, and it
            // has passed, so `Expired` applied above.
            CredentialUse::Refused => CredentialStatus::Expired,
            CredentialUse::Unused => CredentialStatus::Unknown,
        }
    }
}

/// Whether credentials work, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialStatus {
    /// The last use worked and no expiry is near.
    Valid,
    /// They expire within seven days.
    Expiring,
    /// Their known expiry has passed.
    Expired,
    /// The platform refused them before any known expiry.
    Rejected,
    /// Not used yet.
    Unknown,
}

impl CredentialStatus {
    /// Every status, in the order the API documents them.
    pub const ALL: [Self; 5] = [Self::Valid, Self::Expiring, Self::Expired, Self::Rejected, Self::Unknown];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Expiring => "expiring",
            Self::Expired => "expired",
            Self::Rejected => "rejected",
            Self::Unknown => "unknown",
        }
    }

    /// Reads a wire name back.
    ///
    /// # Errors
    /// [`Invalid`] for an unknown name, listing the known ones.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        Self::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| {
            Invalid::new(format!(
                "'{s}' is not a credential status (known: {})",
                Self::ALL.map(Self::as_str).join(", ")
            ))
        })
    }

    /// A comma-separated list of statuses (`expiring,expired,rejected`),
    /// each once, in the order given.
    ///
    /// # Errors
    /// [`Invalid`] for an empty list or an unknown name.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, Invalid> {
        if s.is_empty() {
            return Err(Invalid::new("must list one or more of valid, expiring, expired, rejected, unknown"));
        }
        let mut statuses = Vec::new();
        for part in s.split(',') {
            let status = Self::parse(part)?;
            if !statuses.contains(&status) {
                statuses.push(status);
            }
        }
        Ok(statuses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(days)
    }

    fn health(expires: Option<i64>, last_use: CredentialUse, used: Option<i64>) -> CredentialHealth {
        CredentialHealth { expires_at: expires.map(at), last_use, last_use_at: used.map(at) }
    }

    #[test]
    fn the_first_rule_that_applies_wins() {
        use CredentialStatus as S;
        use CredentialUse as U;
        let now = at(100);
        assert_eq!(CredentialHealth::UNKNOWN.status(now), S::Unknown);
        assert_eq!(health(None, U::Accepted, Some(99)).status(now), S::Valid);
        assert_eq!(health(Some(200), U::Accepted, Some(99)).status(now), S::Valid);
        assert_eq!(health(Some(107), U::Accepted, Some(99)).status(now), S::Expiring);
        assert_eq!(health(Some(108), U::Unused, None).status(now), S::Unknown);
        assert_eq!(health(Some(107), U::Unused, None).status(now), S::Expiring);
        assert_eq!(health(Some(100), U::Accepted, Some(99)).status(now), S::Expired);
        // Refused before its expiry: revoked, whatever the expiry says.
        assert_eq!(health(Some(101), U::Refused, Some(99)).status(now), S::Rejected);
        assert_eq!(health(Some(90), U::Refused, Some(80)).status(now), S::Rejected);
        assert_eq!(health(None, U::Refused, Some(99)).status(now), S::Rejected);
        // Refused because it had expired.
        assert_eq!(health(Some(90), U::Refused, Some(95)).status(now), S::Expired);
    }

    #[test]
    fn lists_parse_and_name_unknown_values() {
        assert_eq!(
            CredentialStatus::parse_list("expiring,expired,rejected,expired").unwrap(),
            [CredentialStatus::Expiring, CredentialStatus::Expired, CredentialStatus::Rejected]
        );
        let error = CredentialStatus::parse_list("expiring,stale").unwrap_err();
        assert!(error.0.contains("'stale'") && error.0.contains("rejected"), "{error}");
        assert!(CredentialStatus::parse_list("").is_err());
        assert!(CredentialStatus::parse_list("valid,").is_err());
    }
}
