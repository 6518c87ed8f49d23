//! Sync state of each repository of a connection.

use chrono::{DateTime, Utc};

use crate::{Invalid, RepoName};

/// Where a repository's cache stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncState {
    /// Not yet synced, or invalidated since.
    Pending,
    /// A worker holds it now.
    Syncing,
    /// The cache is current.
    Ready,
    /// The last sync failed; see the error.
    Error,
}

impl SyncState {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SyncState::Pending => "pending",
            SyncState::Syncing => "syncing",
            SyncState::Ready => "ready",
            SyncState::Error => "error",
        }
    }

    /// Reads a wire name back.
    ///
    /// # Errors
    /// [`Invalid`] for an unknown name.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "pending" => Ok(Self::Pending),
            "syncing" => Ok(Self::Syncing),
            "ready" => Ok(Self::Ready),
            "error" => Ok(Self::Error),
            _ => Err(Invalid::new("unknown sync state")),
        }
    }
}

/// The sync status of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSyncStatus {
    /// The repository.
    pub repository: RepoName,
    /// Its state.
    pub state: SyncState,
    /// When it was last synced successfully.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// A human-readable reason when `state` is `Error`.
    pub error: Option<String>,
    /// The repository's own default branch, as learned at the last sync.
    pub default_branch: Option<String>,
}

impl RepoSyncStatus {
    /// A repository nobody has synced yet.
    pub fn pending(repository: RepoName) -> Self {
        Self { repository, state: SyncState::Pending, last_synced_at: None, error: None, default_branch: None }
    }
}

/// When a repository whose sync failed `attempts` times in a row may be
/// tried again: exponential backoff from 30 seconds, doubling, capped at one
/// hour, stretched by `jitter` (0.0..1.0, up to +25%) so that many
/// repositories failing together do not retry together; never before a
/// platform's own `retry_not_before` (its rate-limit reset).
pub fn next_attempt_at(
    now: DateTime<Utc>,
    attempts: u32,
    jitter: f64,
    retry_not_before: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    const BASE_SECS: i64 = 30;
    const MAX_SECS: i64 = 3600;
    let exponent = attempts.saturating_sub(1).min(16);
    let backoff = (BASE_SECS << exponent).min(MAX_SECS);
    let jitter = jitter.clamp(0.0, 1.0);
    // Bounded: at most 3600 * 0.25.
    let extra = (backoff as f64 * 0.25 * jitter) as i64;
    let backoff_until = now + chrono::TimeDelta::seconds(backoff + extra);
    match retry_not_before {
        Some(until) if until > backoff_until => until,
        _ => backoff_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_respects_the_platform() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let secs = |t: DateTime<Utc>| (t - now).num_seconds();
        assert_eq!(secs(next_attempt_at(now, 1, 0.0, None)), 30);
        assert_eq!(secs(next_attempt_at(now, 2, 0.0, None)), 60);
        assert_eq!(secs(next_attempt_at(now, 3, 0.0, None)), 120);
        assert_eq!(secs(next_attempt_at(now, 30, 0.0, None)), 3600);
        assert_eq!(secs(next_attempt_at(now, 1, 1.0, None)), 37);
        let reset = now + chrono::TimeDelta::seconds(900);
        assert_eq!(next_attempt_at(now, 1, 0.0, Some(reset)), reset);
        assert_eq!(secs(next_attempt_at(now, 1, 0.0, Some(now))), 30);
    }
}
