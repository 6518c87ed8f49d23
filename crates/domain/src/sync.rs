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
}

impl RepoSyncStatus {
    /// A repository nobody has synced yet.
    pub fn pending(repository: RepoName) -> Self {
        Self { repository, state: SyncState::Pending, last_synced_at: None, error: None }
    }
}
