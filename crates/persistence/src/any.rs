//! The store chosen at start-up from `DATABASE_URL`'s scheme.

use chrono::{DateTime, Utc};
use sigsentry_domain::{ApiKeyId, ConnectionId, IdempotencyKey, ProjectId, RepoConnection, TenantId};
use sigsentry_ports::{
    AccountStore, ApiKeyGrant, CachedPullRequest, ConnectionChange, ConnectionStore, HealthCheck, IdempotencyBegin,
    IdempotencyCompletion, IdempotencyStore, ListQuery, NewApiKey, NewConnection, Project, PullRequestQuery,
    SealedCredentialsRow, SealedSecret, StoreError, SyncFailure, SyncJob, SyncStore, SyncSuccess, Tenant,
    WriteConnectionError,
};

use crate::{OpenError, PgStore, SqliteStore};

/// Either store, picked by [`AnyStore::open`] from the URL's scheme. An enum
/// rather than a trait object: the port traits return `impl Future`, which
/// is not object-safe, and two variants cost one `match` per call.
#[derive(Clone, Debug)]
pub enum AnyStore {
    /// Embedded SQLite (`sqlite:` URLs).
    Sqlite(SqliteStore),
    /// PostgreSQL (`postgres://` and `postgresql://` URLs).
    Postgres(PgStore),
}

/// The backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of(url: &str) -> Result<Self, OpenError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            // Only the scheme is echoed: the rest of the URL may hold a password.
            let scheme = url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
            Err(OpenError::InvalidUrl(format!(
                "expected sqlite://PATH (embedded) or postgres://USER@HOST/DATABASE, got a URL of scheme '{scheme}'"
            )))
        }
    }
}

impl AnyStore {
    /// Opens (and migrates) the store `database_url` names: `sqlite:` →
    /// [`SqliteStore`], `postgres://` or `postgresql://` → [`PgStore`].
    ///
    /// # Errors
    /// [`OpenError::InvalidUrl`] for any other scheme; otherwise as
    /// [`SqliteStore::open`] or [`PgStore::open`].
    pub async fn open(database_url: &str) -> Result<AnyStore, OpenError> {
        Ok(match Backend::of(database_url)? {
            Backend::Sqlite => Self::Sqlite(SqliteStore::open(database_url).await?),
            Backend::Postgres => Self::Postgres(PgStore::open(database_url).await?),
        })
    }

    /// Applies pending migrations to the database `database_url` names,
    /// without opening a pool (a `migrate` command).
    ///
    /// # Errors
    /// As [`AnyStore::open`].
    pub async fn migrate(database_url: &str) -> Result<(), OpenError> {
        match Backend::of(database_url)? {
            Backend::Sqlite => crate::migrate(database_url).await,
            Backend::Postgres => crate::migrate_postgres(database_url).await,
        }
    }

    /// Whether the data lives in a file of this process's host (SQLite)
    /// rather than on a database server: such a deployment must run as one
    /// replica on one host.
    pub fn is_embedded(&self) -> bool {
        matches!(self, Self::Sqlite(_))
    }
}

/// Calls the same method on whichever store is inside.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($store) => $call.await,
            AnyStore::Postgres($store) => $call.await,
        }
    };
}

impl AccountStore for AnyStore {
    async fn create_tenant(&self, tenant: Tenant) -> Result<(), StoreError> {
        delegate!(self, s => s.create_tenant(tenant))
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        delegate!(self, s => s.get_tenant(id))
    }

    async fn create_project(&self, project: Project) -> Result<(), StoreError> {
        delegate!(self, s => s.create_project(project))
    }

    async fn get_project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        delegate!(self, s => s.get_project(id))
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<(), StoreError> {
        delegate!(self, s => s.create_api_key(key))
    }

    async fn revoke_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> Result<bool, StoreError> {
        delegate!(self, s => s.revoke_api_key(id, at))
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyGrant>, StoreError> {
        delegate!(self, s => s.find_api_key(key_hash))
    }

    async fn has_no_tenants(&self) -> Result<bool, StoreError> {
        delegate!(self, s => s.has_no_tenants())
    }
}

impl ConnectionStore for AnyStore {
    async fn create_connection(
        &self,
        new: NewConnection,
        limit: u32,
        completion: Option<IdempotencyCompletion>,
    ) -> Result<(), WriteConnectionError> {
        delegate!(self, s => s.create_connection(new, limit, completion))
    }

    async fn get_connection(&self, project: ProjectId, id: ConnectionId) -> Result<Option<RepoConnection>, StoreError> {
        delegate!(self, s => s.get_connection(project, id))
    }

    async fn list_connections(&self, project: ProjectId, query: ListQuery) -> Result<Vec<RepoConnection>, StoreError> {
        delegate!(self, s => s.list_connections(project, query))
    }

    async fn update_connection(&self, change: ConnectionChange, limit: u32) -> Result<(), WriteConnectionError> {
        delegate!(self, s => s.update_connection(change, limit))
    }

    async fn delete_connection(&self, project: ProjectId, id: ConnectionId) -> Result<bool, StoreError> {
        delegate!(self, s => s.delete_connection(project, id))
    }

    async fn invalidate_cache(
        &self,
        project: ProjectId,
        id: ConnectionId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.invalidate_cache(project, id, at))
    }

    async fn credentials_not_under(
        &self,
        active_key_id: &str,
        limit: u32,
    ) -> Result<Vec<SealedCredentialsRow>, StoreError> {
        delegate!(self, s => s.credentials_not_under(active_key_id, limit))
    }

    async fn reseal_credentials(
        &self,
        connection_id: ConnectionId,
        old: &SealedSecret,
        new: SealedSecret,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.reseal_credentials(connection_id, old, new))
    }
}

impl IdempotencyStore for AnyStore {
    async fn begin(
        &self,
        project: ProjectId,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: DateTime<Utc>,
        lease_secs: u32,
        retention_secs: u32,
    ) -> Result<IdempotencyBegin, StoreError> {
        delegate!(self, s => s.begin(project, key, fingerprint, now, lease_secs, retention_secs))
    }

    async fn release(&self, project: ProjectId, key: &IdempotencyKey) -> Result<(), StoreError> {
        delegate!(self, s => s.release(project, key))
    }
}

impl SyncStore for AnyStore {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        refresh_before: DateTime<Utc>,
        lease_secs: u32,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        delegate!(self, s => s.claim_due(now, refresh_before, lease_secs, limit))
    }

    async fn complete_sync(&self, job: &SyncJob, success: SyncSuccess) -> Result<bool, StoreError> {
        delegate!(self, s => s.complete_sync(job, success))
    }

    async fn fail_sync(&self, job: &SyncJob, failure: SyncFailure) -> Result<bool, StoreError> {
        delegate!(self, s => s.fail_sync(job, failure))
    }

    async fn request_sync(&self, project: ProjectId, id: ConnectionId) -> Result<bool, StoreError> {
        delegate!(self, s => s.request_sync(project, id))
    }

    async fn list_pull_requests(
        &self,
        project: ProjectId,
        id: ConnectionId,
        query: PullRequestQuery,
    ) -> Result<Option<Vec<CachedPullRequest>>, StoreError> {
        delegate!(self, s => s.list_pull_requests(project, id, query))
    }

    async fn next_due(&self, refresh_interval_secs: u32) -> Result<Option<DateTime<Utc>>, StoreError> {
        delegate!(self, s => s.next_due(refresh_interval_secs))
    }
}

impl HealthCheck for AnyStore {
    async fn ping(&self) -> Result<(), StoreError> {
        delegate!(self, s => s.ping())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_backend() {
        assert_eq!(Backend::of("sqlite://data/x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(Backend::of("sqlite:x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(Backend::of("postgres://u@h/db").ok(), Some(Backend::Postgres));
        assert_eq!(Backend::of("postgresql://u@h/db").ok(), Some(Backend::Postgres));
        let Err(OpenError::InvalidUrl(message)) = Backend::of("mysql://root:hunter2@h/db") else {
            panic!("mysql is not a backend");
        };
        assert!(message.contains("'mysql'") && !message.contains("hunter2"), "{message}");
        assert!(Backend::of("data/x.db").is_err(), "a bare path is ambiguous: say sqlite://");
    }
}
