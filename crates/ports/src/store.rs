//! The store: tenants, projects, API keys, connections, idempotency records.
//!
//! Each write that must hold under concurrency (quota, uniqueness of a
//! repository or service name in a project, one creation per idempotency
//! key) is one method, so the adapter can make it one transaction.

use std::future::Future;

use chrono::{DateTime, Utc};
use sigsentry_domain::{
    ApiKeyId, BaseUrl, ConnectionId, CredentialKind, CredentialStatus, IdempotencyKey, InstallationId, LookbackDays,
    PermissionSet, Plan, Platform, ProjectId, QuotaExceeded, RepoConnection, RepoName, ServiceMapping, ServiceName,
    TenantId,
};

use crate::SealedSecret;

/// A failure of the store itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or timed out. Maps to 503.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupt row. Maps to 500. The text is for logs only.
    #[error("unexpected store failure: {0}")]
    Unexpected(String),
}

/// A customer account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// The plan that sets its quotas.
    pub plan: Plan,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A project of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Its id.
    pub id: ProjectId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// An API key to store. Only the hash of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// Its id.
    pub id: ApiKeyId,
    /// The tenant it acts for.
    pub tenant_id: TenantId,
    /// The one project it is limited to, if any.
    pub project_id: Option<ProjectId>,
    /// A label for people.
    pub name: String,
    /// SHA-256 of the full key text, lowercase hex.
    pub key_hash: String,
    /// What it may do.
    pub permissions: PermissionSet,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A stored API key (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Its id.
    pub id: ApiKeyId,
    /// The tenant it acts for.
    pub tenant_id: TenantId,
    /// The one project it is limited to, if any.
    pub project_id: Option<ProjectId>,
    /// A label for people.
    pub name: String,
    /// What it may do.
    pub permissions: PermissionSet,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A live key found by its hash, with its tenant's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyGrant {
    /// The key.
    pub key: ApiKeyRecord,
    /// The plan of the key's tenant.
    pub plan: Plan,
}

/// Credentials to store: the sealed secret and the redacted summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredentials {
    /// How it authenticates.
    pub kind: CredentialKind,
    /// Redacted hint of the secret.
    pub hint: Option<String>,
    /// The self-hosted API root, `None` for the cloud.
    pub base_url: Option<BaseUrl>,
    /// The sealed secret parts.
    pub sealed: SealedSecret,
    /// The GitHub App installation of `githubApp` credentials, kept in clear
    /// beside the sealed value so that the App's webhooks find the connection.
    pub installation_id: Option<InstallationId>,
}

/// A connection to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConnection {
    /// Its id.
    pub id: ConnectionId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The owning project.
    pub project_id: ProjectId,
    /// The platform.
    pub platform: Platform,
    /// The credentials.
    pub credentials: NewCredentials,
    /// The repositories, each starting `pending`.
    pub repositories: Vec<RepoName>,
    /// The mappings.
    pub service_mappings: Vec<ServiceMapping>,
    /// The lookback window.
    pub lookback_days: LookbackDays,
    /// The sealed webhook secret (stored with the connection, in its transaction).
    pub webhook_secret: SealedSecret,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A checked change to apply to a stored connection, if it is still at
/// `expected_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionChange {
    /// The connection.
    pub id: ConnectionId,
    /// Its project.
    pub project_id: ProjectId,
    /// The version the change was computed from.
    pub expected_version: i64,
    /// New credentials, if any.
    pub credentials: Option<NewCredentials>,
    /// The full repository list after the change.
    pub repositories: Vec<RepoName>,
    /// The full mapping list after the change.
    pub service_mappings: Vec<ServiceMapping>,
    /// The window after the change.
    pub lookback_days: LookbackDays,
    /// Active after the change.
    pub is_active: bool,
    /// A new sealed webhook secret replacing the old one (or the first, for
    /// a connection made before webhooks), if the change rotates it.
    pub webhook_secret: Option<SealedSecret>,
    /// Every repository goes back to `pending` (new credentials or window);
    /// otherwise only added ones start `pending` and kept ones keep their state.
    pub resync_all: bool,
    /// Time of the change.
    pub at: DateTime<Utc>,
}

/// A write the store refused: rules only the store can check atomically
/// (the project's quota, names other connections of the project hold).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteRefused {
    /// The project would pass its repository quota.
    #[error(transparent)]
    Quota(QuotaExceeded),
    /// A repository is attached to another connection of the project.
    #[error("repository {repository} is already attached to connection {connection_id}")]
    RepositoryTaken {
        /// The repository, as the request named it.
        repository: RepoName,
        /// The connection that holds it.
        connection_id: ConnectionId,
    },
    /// A service name is mapped by another connection of the project.
    #[error("service {service_name} is already mapped by connection {connection_id}")]
    ServiceNameTaken {
        /// The service name.
        service_name: ServiceName,
        /// The connection that maps it.
        connection_id: ConnectionId,
    },
}

/// Why a connection write failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteConnectionError {
    /// The store refused it.
    #[error(transparent)]
    Refused(#[from] WriteRefused),
    /// The connection is gone (update only).
    #[error("no such connection")]
    NotFound,
    /// The connection changed since it was read (update only): read again and retry.
    #[error("the connection changed concurrently")]
    VersionConflict,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<QuotaExceeded> for WriteConnectionError {
    fn from(error: QuotaExceeded) -> Self {
        Self::Refused(WriteRefused::Quota(error))
    }
}

/// Filter and page of a connection listing. Rows come in id order (creation
/// order, as ids are UUIDv7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this platform.
    pub platform: Option<Platform>,
    /// Only active (`true`) or paused (`false`) connections.
    pub is_active: Option<bool>,
    /// Only connections whose credentials have one of these statuses at
    /// `now` (empty: any).
    pub credential_status: Vec<CredentialStatus>,
    /// The time the statuses are computed at.
    pub now: DateTime<Utc>,
    /// Rows after this id.
    pub after: Option<ConnectionId>,
    /// At most this many rows.
    pub limit: u32,
}

/// A response kept for replay under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// The body, as sent.
    pub body: String,
    /// The `Location` header, if any.
    pub location: Option<String>,
}

/// The response to keep, written in the same transaction as the creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyCompletion {
    /// The key claimed by [`IdempotencyStore::begin`].
    pub key: IdempotencyKey,
    /// The response to replay.
    pub response: StoredResponse,
}

/// The outcome of claiming an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key was free (or its earlier claim expired or was abandoned): go on.
    Claimed,
    /// The same request completed before: send this again.
    Replay(StoredResponse),
    /// The key was used with another request body.
    Mismatch,
    /// The first request with this key is still running.
    InFlight {
        /// Seconds after which a retry may find it done.
        retry_after_secs: u32,
    },
}

/// A sealed credential as stored, for re-encryption and for the sync worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCredentialsRow {
    /// The connection.
    pub connection_id: ConnectionId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its project.
    pub project_id: ProjectId,
    /// Its platform (bound into the sealed value).
    pub platform: Platform,
    /// How the credentials authenticate (bound in).
    pub credential_kind: CredentialKind,
    /// Where they are sent, when not the cloud (bound in).
    pub base_url: Option<BaseUrl>,
    /// The sealed value.
    pub sealed: SealedSecret,
}

impl SealedCredentialsRow {
    /// What the sealed value is bound to: its row's ids, platform,
    /// credential kind and `baseUrl`.
    pub fn aad(&self) -> crate::Aad {
        crate::Aad {
            tenant_id: self.tenant_id,
            project_id: self.project_id,
            connection_id: self.connection_id,
            platform: self.platform,
            credential_kind: self.credential_kind,
            base_url: self.base_url.clone(),
        }
    }
}

/// Tenants, projects and keys.
pub trait AccountStore: Clone + Send + Sync + 'static {
    /// Stores a tenant.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn create_tenant(&self, tenant: Tenant) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads a tenant.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn get_tenant(&self, id: TenantId) -> impl Future<Output = Result<Option<Tenant>, StoreError>> + Send;

    /// Stores a project of an existing tenant.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails (including an unknown tenant).
    fn create_project(&self, project: Project) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads a project.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn get_project(&self, id: ProjectId) -> impl Future<Output = Result<Option<Project>, StoreError>> + Send;

    /// Stores a key.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn create_api_key(&self, key: NewApiKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Revokes a key; `false` when no such key exists. Revoking twice is fine.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn revoke_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Finds a live (not revoked) key by the hash of its secret.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn find_api_key(&self, key_hash: &str) -> impl Future<Output = Result<Option<ApiKeyGrant>, StoreError>> + Send;

    /// Whether no tenant exists yet (first run).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn has_no_tenants(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Repo connections.
pub trait ConnectionStore: Clone + Send + Sync + 'static {
    /// Creates a connection in one transaction: checks the project's quota
    /// (`limit` repositories over all its connections), that no repository or
    /// service name is taken in the project, inserts, and when `completion`
    /// is given, stores the response under its idempotency key.
    ///
    /// # Errors
    /// [`WriteConnectionError::Refused`] (quota, a taken repository or
    /// service name), or `Store`.
    fn create_connection(
        &self,
        new: NewConnection,
        limit: u32,
        completion: Option<IdempotencyCompletion>,
    ) -> impl Future<Output = Result<(), WriteConnectionError>> + Send;

    /// Reads one connection of a project; `None` when it does not exist there.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn get_connection(
        &self,
        project: ProjectId,
        id: ConnectionId,
    ) -> impl Future<Output = Result<Option<RepoConnection>, StoreError>> + Send;

    /// Lists connections of a project, filtered and paged.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn list_connections(
        &self,
        project: ProjectId,
        query: ListQuery,
    ) -> impl Future<Output = Result<Vec<RepoConnection>, StoreError>> + Send;

    /// Applies a change in one transaction, if the connection is still at the
    /// expected version: the quota check counts the repositories it adds
    /// and frees those it drops (`QuotaExceeded::check_replacement`).
    ///
    /// # Errors
    /// `NotFound`, `VersionConflict`, `Refused`, or `Store`.
    fn update_connection(
        &self,
        change: ConnectionChange,
        limit: u32,
    ) -> impl Future<Output = Result<(), WriteConnectionError>> + Send;

    /// Deletes a connection and everything cached for it; `false` when it
    /// does not exist in the project.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn delete_connection(
        &self,
        project: ProjectId,
        id: ConnectionId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Wipes the cache of a connection and puts each repository back to
    /// `pending`; `false` when it does not exist in the project.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn invalidate_cache(
        &self,
        project: ProjectId,
        id: ConnectionId,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Up to `limit` sealed credentials not sealed with `active_key_id`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn credentials_not_under(
        &self,
        active_key_id: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SealedCredentialsRow>, StoreError>> + Send;

    /// Up to `limit` sealed credentials of connections whose id is after
    /// `after` (all, from the first, when `None`), in id order: every row
    /// once, whatever it is sealed with.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn credentials_after(
        &self,
        after: Option<ConnectionId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SealedCredentialsRow>, StoreError>> + Send;

    /// The ids of the master keys stored credentials are sealed with, each once.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn credential_key_ids(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Replaces a sealed credential if it is still the one read (`old`), so a
    /// concurrent rotation by a user is never overwritten. `false` when it changed.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn reseal_credentials(
        &self,
        connection_id: ConnectionId,
        old: &SealedSecret,
        new: SealedSecret,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Idempotency records of POST requests.
pub trait IdempotencyStore: Clone + Send + Sync + 'static {
    /// Claims `key` in `project` for a request with `fingerprint`. A claim
    /// older than `lease_secs` that never completed counts as abandoned; a
    /// completed record older than `retention_secs` counts as gone.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn begin(
        &self,
        project: ProjectId,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: DateTime<Utc>,
        lease_secs: u32,
        retention_secs: u32,
    ) -> impl Future<Output = Result<IdempotencyBegin, StoreError>> + Send;

    /// Drops an uncompleted claim, so a failed request may be retried with its key.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn release(&self, project: ProjectId, key: &IdempotencyKey) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Whether the store answers.
pub trait HealthCheck: Clone + Send + Sync + 'static {
    /// Runs a trivial query.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database does not answer.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Everything the service needs of a store.
pub trait Store:
    AccountStore
    + ConnectionStore
    + IdempotencyStore
    + HealthCheck
    + crate::SyncStore
    + crate::CodeIndexStore
    + crate::WebhookStore
    + crate::CredentialStore
{
}

impl<T> Store for T where
    T: AccountStore
        + ConnectionStore
        + IdempotencyStore
        + HealthCheck
        + crate::SyncStore
        + crate::CodeIndexStore
        + crate::WebhookStore
        + crate::CredentialStore
{
}
