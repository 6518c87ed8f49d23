//! Plans and the repository quota they set.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use crate::Invalid;

/// A tenant's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plan {
    /// The free tier.
    Free,
    /// Small teams.
    Team,
    /// Companies.
    Business,
    /// Negotiated contracts.
    Enterprise,
}

impl Plan {
    /// Every plan.
    pub const ALL: [Plan; 4] = [Plan::Free, Plan::Team, Plan::Business, Plan::Enterprise];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Team => "team",
            Plan::Business => "business",
            Plan::Enterprise => "enterprise",
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Plan::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Invalid::new("must be one of free, team, business, enterprise"))
    }
}

/// Repositories allowed per project, by plan. Operators may change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaTable {
    /// Limit on the free plan.
    pub free: u32,
    /// Limit on the team plan.
    pub team: u32,
    /// Limit on the business plan.
    pub business: u32,
    /// Limit on the enterprise plan.
    pub enterprise: u32,
}

impl Default for QuotaTable {
    fn default() -> Self {
        Self { free: 5, team: 50, business: 250, enterprise: 2000 }
    }
}

impl QuotaTable {
    /// The repositories-per-project limit of `plan`.
    pub const fn repositories_per_project(&self, plan: Plan) -> u32 {
        match plan {
            Plan::Free => self.free,
            Plan::Team => self.team,
            Plan::Business => self.business,
            Plan::Enterprise => self.enterprise,
        }
    }

    /// Reads overrides such as `free=5,team=80`; plans left out keep their defaults.
    ///
    /// # Errors
    /// [`Invalid`] for an unknown plan or a number that does not parse.
    pub fn with_overrides(mut self, spec: &str) -> Result<Self, Invalid> {
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (plan, value) =
                part.split_once('=').ok_or_else(|| Invalid::new(format!("'{part}' is not plan=number")))?;
            let plan: Plan = plan.trim().parse()?;
            let value: u32 =
                value.trim().parse().map_err(|_| Invalid::new(format!("'{part}': limit must be a whole number")))?;
            match plan {
                Plan::Free => self.free = value,
                Plan::Team => self.team = value,
                Plan::Business => self.business = value,
                Plan::Enterprise => self.enterprise = value,
            }
        }
        Ok(self)
    }
}

/// A change would put a project over its repository quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the project may hold {limit} repositories; it holds {used} and the request adds {requested}")]
pub struct QuotaExceeded {
    /// The plan's limit.
    pub limit: u32,
    /// Repositories the project holds now.
    pub used: u32,
    /// Repositories the request would add.
    pub requested: u32,
}

impl QuotaExceeded {
    /// `Err` when `used + requested` passes `limit`.
    ///
    /// # Errors
    /// [`QuotaExceeded`] with the three figures.
    pub fn check(limit: u32, used: u32, requested: u32) -> Result<(), QuotaExceeded> {
        if requested > 0 && u64::from(used) + u64::from(requested) > u64::from(limit) {
            Err(QuotaExceeded { limit, used, requested })
        } else {
            Ok(())
        }
    }

    /// The check of a write that gives one connection the repositories keyed
    /// `after` in place of those keyed `before` (none for a new connection),
    /// in a project that holds `project_count` repositories over all its
    /// connections: the repositories the write drops free their slots, so
    /// swapping one repository for another at the limit is allowed, and only
    /// those it adds count as requested. Keys are `RepoName::key`s, each
    /// listed once per side.
    ///
    /// ```
    /// use sigsentry_domain::QuotaExceeded;
    /// // At the limit of 3, swapping a for c is allowed; adding c is not.
    /// assert!(QuotaExceeded::check_replacement(3, 3, &["a", "b"], &["b", "c"]).is_ok());
    /// let refused = QuotaExceeded::check_replacement(3, 3, &["a", "b"], &["a", "b", "c"]);
    /// assert_eq!(refused, Err(QuotaExceeded { limit: 3, used: 3, requested: 1 }));
    /// ```
    ///
    /// # Errors
    /// [`QuotaExceeded`] with the limit, the count without the dropped
    /// repositories, and the number added.
    pub fn check_replacement(
        limit: u32,
        project_count: u32,
        before: &[impl AsRef<str>],
        after: &[impl AsRef<str>],
    ) -> Result<(), QuotaExceeded> {
        let before: HashSet<&str> = before.iter().map(AsRef::as_ref).collect();
        let after: HashSet<&str> = after.iter().map(AsRef::as_ref).collect();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let removed = count(before.difference(&after).count());
        let added = count(after.difference(&before).count());
        Self::check(limit, project_count.saturating_sub(removed), added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_check() {
        assert!(QuotaExceeded::check(5, 3, 2).is_ok());
        assert_eq!(QuotaExceeded::check(5, 4, 2), Err(QuotaExceeded { limit: 5, used: 4, requested: 2 }));
        assert!(QuotaExceeded::check(5, 9, 0).is_ok(), "removing or keeping repos is never refused");
    }

    #[test]
    fn replacing_frees_the_dropped_and_counts_the_added() {
        let none: &[&str] = &[];
        assert!(QuotaExceeded::check_replacement(5, 3, none, &["a", "b"]).is_ok(), "a creation counts all");
        assert_eq!(
            QuotaExceeded::check_replacement(5, 4, none, &["a", "b"]),
            Err(QuotaExceeded { limit: 5, used: 4, requested: 2 })
        );
        assert!(QuotaExceeded::check_replacement(2, 2, &["a", "b"], &["a", "c"]).is_ok(), "a swap at the limit");
        assert_eq!(
            QuotaExceeded::check_replacement(2, 2, &["a"], &["a", "c"]),
            Err(QuotaExceeded { limit: 2, used: 2, requested: 1 })
        );
        assert!(QuotaExceeded::check_replacement(1, 9, &["a", "b"], &["a"]).is_ok(), "dropping is never refused");
        assert!(QuotaExceeded::check_replacement(1, 0, &["a"], &["b", "c"]).is_err(), "a count below the dropped");
    }

    #[test]
    fn overrides() {
        let table = QuotaTable::default().with_overrides("free=2, enterprise=10").unwrap();
        assert_eq!(table.repositories_per_project(Plan::Free), 2);
        assert_eq!(table.repositories_per_project(Plan::Team), 50);
        assert_eq!(table.repositories_per_project(Plan::Enterprise), 10);
        assert!(QuotaTable::default().with_overrides("gold=1").is_err());
        assert!(QuotaTable::default().with_overrides("free=x").is_err());
    }
}
