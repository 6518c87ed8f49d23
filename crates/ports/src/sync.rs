//! The repo cache and the sync worker's claims on it.

use std::future::Future;

use chrono::{DateTime, Utc};
use sigsentry_domain::{BaseUrl, ConnectionId, CredentialKind, LookbackDays, Platform, ProjectId, RepoName, TenantId};
use uuid::Uuid;

use crate::{MergedPullRequest, SealedSecret, StoreError, TreeSnapshot};

/// One repository claimed by a worker, with what it needs to sync it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncJob {
    /// The claim: results are accepted only while the repository still
    /// holds this token (a deleted connection, an invalidated cache, new
    /// credentials or a newer claim void it).
    pub lease: Uuid,
    /// The connection.
    pub connection_id: ConnectionId,
    /// Its tenant (associated data of the sealed credentials).
    pub tenant_id: TenantId,
    /// Its project.
    pub project_id: ProjectId,
    /// The platform.
    pub platform: Platform,
    /// The repository to sync.
    pub repository: RepoName,
    /// How the credentials authenticate.
    pub credential_kind: CredentialKind,
    /// The self-hosted API root, if any.
    pub base_url: Option<BaseUrl>,
    /// The sealed credentials.
    pub sealed: SealedSecret,
    /// When a user last set them: what the sync learns of them is recorded
    /// only while they are still these.
    pub credentials_set_at: DateTime<Utc>,
    /// The connection's window.
    pub lookback_days: LookbackDays,
    /// High-water mark of PR updates already cached (incremental sync);
    /// `None` after invalidation or for a first sync.
    pub updated_since: Option<DateTime<Utc>>,
    /// The revision of the repository's stored file list (the `revision` of
    /// the last [`TreeSnapshot::Listed`] stored for it): the sync lists the
    /// files again only when the default branch moved off it. `None` when no
    /// list is stored (a first sync, after invalidation), which always lists.
    pub known_tree_revision: Option<String>,
    /// Failed attempts in a row before this one.
    pub attempts: u32,
}

impl SyncJob {
    /// What its stored credentials are bound to: its row's ids, platform,
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

/// A successful sync of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSuccess {
    /// The repository's default branch.
    pub default_branch: Option<String>,
    /// The repository's files at its default branch:
    /// - `Some(`[`TreeSnapshot::Unchanged`]`)`: the branch is still at
    ///   [`SyncJob::known_tree_revision`]; keep the stored list;
    /// - `Some(`[`TreeSnapshot::Listed`]`)`: replace the stored list with
    ///   these paths, and remember their revision;
    /// - `None`: the repository has no default branch (it is empty), so no
    ///   files and no revision.
    pub file_tree: Option<TreeSnapshot>,
    /// PRs merged in the window and updated since the last sync (upserted).
    pub pull_requests: Vec<MergedPullRequest>,
    /// PRs merged before this are dropped from the cache (the window moved).
    pub window_start: DateTime<Utc>,
    /// The new high-water mark of PR updates.
    pub updated_since: Option<DateTime<Utc>>,
    /// When the sync finished.
    pub synced_at: DateTime<Utc>,
}

/// A failed sync of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFailure {
    /// What to show the user (never a secret).
    pub message: String,
    /// No new attempt before this time (backoff or the platform's rate limit).
    pub next_attempt_at: DateTime<Utc>,
    /// Failed attempts in a row, this one included.
    pub attempts: u32,
    /// When it failed.
    pub failed_at: DateTime<Utc>,
}

/// What [`SyncStore::renew_lease`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    /// The lease holds and was extended: go on.
    Renewed,
    /// The lease holds but the connection was paused: stop, and give the
    /// claim back ([`SyncStore::release_lease`]).
    Paused,
    /// The lease is gone: the connection or repository was deleted, the
    /// cache invalidated, the credentials or window changed, a sync asked
    /// for again, or another worker took it over. Stop; record nothing.
    Voided,
}

/// A cached PR/MR as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPullRequest {
    /// The repository.
    pub repository: RepoName,
    /// The PR/MR and its files.
    pub pull_request: MergedPullRequest,
}

/// Which cached PRs to list. Newest merge first, then repository and number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestQuery {
    /// Only this repository, by its key ([`RepoName::key`]: compared without case).
    pub repository_key: Option<String>,
    /// Only PRs that touched a path starting with this.
    pub path_prefix: Option<String>,
    /// Rows after this position (merged_at, repository key, number), from a cursor.
    pub after: Option<(DateTime<Utc>, String, u64)>,
    /// At most this many rows.
    pub limit: u32,
}

/// The repo cache and sync bookkeeping.
pub trait SyncStore: Clone + Send + Sync + 'static {
    /// Claims up to `limit` repositories that are due, so that several
    /// workers (several processes) never sync the same one at once. Due:
    /// the connection is active; the repository is `pending`, or `ready`
    /// and last synced before `refresh_before`, or `error` with its next
    /// attempt time passed; and no live lease holds it (an expired lease
    /// counts as free). Each claimed repository becomes `syncing` with a
    /// fresh lease until `now + lease_secs`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        refresh_before: DateTime<Utc>,
        lease_secs: u32,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SyncJob>, StoreError>> + Send;

    /// As [`SyncStore::claim_due`], passing over the repositories of the
    /// tenants in `except_tenants` (those that already have as many syncs
    /// running in this worker as one tenant may), so that one tenant's
    /// backlog cannot take every slot.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn claim_due_except(
        &self,
        now: DateTime<Utc>,
        refresh_before: DateTime<Utc>,
        lease_secs: u32,
        limit: u32,
        except_tenants: &[TenantId],
    ) -> impl Future<Output = Result<Vec<SyncJob>, StoreError>> + Send;

    /// Records a success if `job.lease` still holds: upserts the PRs and
    /// their files, drops PRs merged before the window, stores the default
    /// branch, replaces the repository's file list when
    /// [`SyncSuccess::file_tree`] brings a new one, and makes the repository
    /// `ready`. `false` when the lease was
    /// voided (then nothing is written).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn complete_sync(
        &self,
        job: &SyncJob,
        success: SyncSuccess,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records a failure if `job.lease` still holds: the repository becomes
    /// `error` with the message and the next attempt time. `false` when the
    /// lease was voided.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn fail_sync(&self, job: &SyncJob, failure: SyncFailure) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Asks for a sync now: every repository of the connection becomes
    /// `pending` (the cache stays). Repeated requests are absorbed: a pending
    /// repository stays as it is, and a running sync goes on and is followed
    /// by exactly one more, however many requests came meanwhile. `false`
    /// when the connection is not in the project.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn request_sync(
        &self,
        project: ProjectId,
        id: ConnectionId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Lists cached PRs of a connection of the project; `None` when the
    /// connection is not in the project.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn list_pull_requests(
        &self,
        project: ProjectId,
        id: ConnectionId,
        query: PullRequestQuery,
    ) -> impl Future<Output = Result<Option<Vec<CachedPullRequest>>, StoreError>> + Send;

    /// Extends a running job's lease to `until`, if `job.lease` still holds
    /// and its connection is still active. Called every second or so while
    /// the job runs: the answer says whether to go on.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn renew_lease(
        &self,
        job: &SyncJob,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<LeaseStatus, StoreError>> + Send;

    /// Gives a claim back unfinished, if `job.lease` still holds: the
    /// repository becomes `pending` again (its cache, backoff and attempts
    /// untouched), so it is claimed at once once its connection is active.
    /// `false` when the lease was voided.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn release_lease(&self, job: &SyncJob) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The earliest time a repository becomes due (a pending one: now), so
    /// an idle worker sleeps until then instead of polling. `None` when
    /// nothing is scheduled.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn next_due(
        &self,
        refresh_interval_secs: u32,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;
}
