//! Rows as stored, one model for both dialects (ids and times are typed
//! through `sql_types`), and how domain values become rows. Reading rows
//! back into domain values is `decode`'s job.
//!
//! `treat_none_as_default_value = false`: a `None` is inserted as NULL (what the column's
//! default is anyway), which lets diesel bind `Option<DbId>` and
//! `Option<DbTime>` through its own impls for `Nullable`.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use sigsentry_domain::correlation::{LineRange, PathIndex};
use sigsentry_domain::{CredentialUse, RepoName, ServiceMapping, SyncState};
use sigsentry_ports::{
    ChangedFile, MergedPullRequest, NewApiKey, NewConnection, Project, SealedSecret, StoreError, Tenant,
};

use crate::cache::stored_number;
use crate::schema::{
    api_keys, connection_repositories, connection_webhooks, credential_states, projects, pull_request_files,
    pull_requests, repo_connections, repository_files, service_mappings, tenants, webhook_deliveries,
};
use crate::sql_types::{DbId, DbTime};

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants, check_for_backend(Sqlite, Pg))]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct TenantRow {
    pub id: DbId,
    pub name: String,
    pub plan: String,
    pub created_at: DbTime,
}

impl TenantRow {
    pub(crate) fn from_domain(tenant: &Tenant) -> Self {
        Self {
            id: tenant.id.into(),
            name: tenant.name.clone(),
            plan: tenant.plan.as_str().to_owned(),
            created_at: tenant.created_at.into(),
        }
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = projects, check_for_backend(Sqlite, Pg))]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct ProjectRow {
    pub id: DbId,
    pub tenant_id: DbId,
    pub name: String,
    pub created_at: DbTime,
}

impl ProjectRow {
    pub(crate) fn from_domain(project: &Project) -> Self {
        Self {
            id: project.id.into(),
            tenant_id: project.tenant_id.into(),
            name: project.name.clone(),
            created_at: project.created_at.into(),
        }
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys, check_for_backend(Sqlite, Pg))]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct ApiKeyRow {
    pub id: DbId,
    pub tenant_id: DbId,
    pub project_id: Option<DbId>,
    pub name: String,
    pub key_hash: String,
    pub permissions: String,
    pub created_at: DbTime,
    pub revoked_at: Option<DbTime>,
}

impl ApiKeyRow {
    pub(crate) fn from_domain(key: NewApiKey) -> Self {
        Self {
            id: key.id.into(),
            tenant_id: key.tenant_id.into(),
            project_id: key.project_id.map(DbId::from),
            name: key.name,
            key_hash: key.key_hash,
            permissions: key.permissions.to_list(),
            created_at: key.created_at.into(),
            revoked_at: None,
        }
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = repo_connections, check_for_backend(Sqlite, Pg))]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct ConnectionRow {
    pub id: DbId,
    pub tenant_id: DbId,
    pub project_id: DbId,
    pub platform: String,
    pub credential_kind: String,
    pub credential_hint: Option<String>,
    pub base_url: Option<String>,
    pub credential_key_id: String,
    pub credential_ciphertext: Vec<u8>,
    pub credentials_updated_at: DbTime,
    pub lookback_days: i32,
    pub is_active: bool,
    pub version: i64,
    pub created_at: DbTime,
    pub updated_at: DbTime,
    pub github_installation_id: Option<i64>,
}

impl ConnectionRow {
    /// The row of a new connection, at version 1.
    pub(crate) fn from_domain(new: &NewConnection) -> Self {
        let creds = &new.credentials;
        Self {
            id: new.id.into(),
            tenant_id: new.tenant_id.into(),
            project_id: new.project_id.into(),
            platform: new.platform.as_str().to_owned(),
            credential_kind: creds.kind.as_str().to_owned(),
            credential_hint: creds.hint.clone(),
            base_url: creds.base_url.as_ref().map(|u| u.as_str().to_owned()),
            credential_key_id: creds.sealed.key_id.clone(),
            credential_ciphertext: creds.sealed.ciphertext.clone(),
            credentials_updated_at: new.created_at.into(),
            lookback_days: i32::from(new.lookback_days.get()),
            is_active: true,
            version: 1,
            created_at: new.created_at.into(),
            updated_at: new.created_at.into(),
            github_installation_id: creds.installation_id.map(i64::from),
        }
    }
}

/// What is known of a connection's credentials (see the migration
/// `credential_health`), and the claim on renewing them.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = credential_states, check_for_backend(Sqlite, Pg))]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct CredentialStateRow {
    pub connection_id: DbId,
    pub expires_at: Option<DbTime>,
    pub last_use: String,
    pub last_use_at: Option<DbTime>,
    pub renewal_holder: Option<DbId>,
    pub renewal_until: Option<DbTime>,
}

impl CredentialStateRow {
    /// The state of credentials just set: nothing known, no claim.
    pub(crate) fn fresh(connection_id: DbId) -> Self {
        Self {
            connection_id,
            expires_at: None,
            last_use: CredentialUse::Unused.as_str().to_owned(),
            last_use_at: None,
            renewal_holder: None,
            renewal_until: None,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = connection_repositories, check_for_backend(Sqlite, Pg))]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct RepoRow {
    pub connection_id: DbId,
    pub project_id: DbId,
    pub position: i32,
    pub name: String,
    pub name_key: String,
    pub sync_state: String,
    pub last_synced_at: Option<DbTime>,
    pub sync_error: Option<String>,
    pub default_branch: Option<String>,
    pub lease_token: Option<DbId>,
    pub lease_until: Option<DbTime>,
    pub next_attempt_at: Option<DbTime>,
    pub attempts: i32,
    pub updated_since: Option<DbTime>,
    pub tree_revision: Option<String>,
    pub sync_again: bool,
}

impl RepoRow {
    /// A repository that nobody has synced yet.
    pub(crate) fn pending(connection_id: DbId, project_id: DbId, position: usize, repo: &RepoName) -> Self {
        Self {
            connection_id,
            project_id,
            position: position_value(position),
            name: repo.as_str().to_owned(),
            name_key: repo.key(),
            sync_state: SyncState::Pending.as_str().to_owned(),
            last_synced_at: None,
            sync_error: None,
            default_branch: None,
            lease_token: None,
            lease_until: None,
            next_attempt_at: None,
            attempts: 0,
            updated_since: None,
            tree_revision: None,
            sync_again: false,
        }
    }

    /// Takes over the sync bookkeeping of the row this one replaces (the
    /// same repository, kept by an update): its state, its cache marks and
    /// any claim on it, so a sync running meanwhile still completes.
    pub(crate) fn keep_sync_of(&mut self, before: RepoRow) {
        self.sync_state = before.sync_state;
        self.last_synced_at = before.last_synced_at;
        self.sync_error = before.sync_error;
        self.default_branch = before.default_branch;
        self.lease_token = before.lease_token;
        self.lease_until = before.lease_until;
        self.next_attempt_at = before.next_attempt_at;
        self.attempts = before.attempts;
        self.updated_since = before.updated_since;
        self.tree_revision = before.tree_revision;
        self.sync_again = before.sync_again;
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = service_mappings, check_for_backend(Sqlite, Pg))]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct MappingRow {
    pub connection_id: DbId,
    pub project_id: DbId,
    pub position: i32,
    pub service_name: String,
    pub repo: String,
    pub path_prefix: String,
    pub default_branch: Option<String>,
}

impl MappingRow {
    pub(crate) fn from_domain(connection_id: DbId, project_id: DbId, position: usize, m: &ServiceMapping) -> Self {
        Self {
            connection_id,
            project_id,
            position: position_value(position),
            service_name: m.service_name.as_str().to_owned(),
            repo: m.repo.as_str().to_owned(),
            path_prefix: m.path_prefix.as_str().to_owned(),
            default_branch: m.default_branch.as_ref().map(|b| b.as_str().to_owned()),
        }
    }
}

/// Lists hold at most a few thousand items, far below `i32::MAX`.
fn position_value(position: usize) -> i32 {
    i32::try_from(position).unwrap_or(i32::MAX)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = pull_requests, check_for_backend(Sqlite, Pg))]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct PullRequestRow {
    pub connection_id: DbId,
    pub repository_key: String,
    pub repository: String,
    pub number: i64,
    pub title: String,
    pub author: Option<String>,
    pub url: String,
    pub merged_at: DbTime,
    pub merge_commit_sha: Option<String>,
    pub updated_at: DbTime,
}

impl PullRequestRow {
    /// The row of `pr`, cached for the repository of `connection_id` keyed
    /// `repository_key` and spelt `repository`.
    pub(crate) fn from_domain(
        connection_id: DbId,
        repository_key: &str,
        repository: &str,
        pr: &MergedPullRequest,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            connection_id,
            repository_key: repository_key.to_owned(),
            repository: repository.to_owned(),
            number: stored_number(pr.number)?,
            title: pr.title.clone(),
            author: pr.author.clone(),
            url: pr.url.clone(),
            merged_at: pr.merged_at.into(),
            merge_commit_sha: pr.merge_commit_sha.clone(),
            updated_at: pr.updated_at.into(),
        })
    }
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = pull_request_files, check_for_backend(Sqlite, Pg))]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct PullRequestFileRow {
    pub connection_id: DbId,
    pub repository_key: String,
    pub number: i64,
    pub path: String,
    pub previous_path: Option<String>,
    /// [`LineRange::encode_list`]: `38-47,100`, empty when unknown.
    pub ranges: String,
}

impl PullRequestFileRow {
    /// The row of one file `number` changed.
    pub(crate) fn from_domain(connection_id: DbId, repository_key: &str, number: i64, file: &ChangedFile) -> Self {
        Self {
            connection_id,
            repository_key: repository_key.to_owned(),
            number,
            path: file.path.clone(),
            previous_path: file.previous_path.clone(),
            ranges: LineRange::encode_list(&file.ranges),
        }
    }

    /// The file as the domain has it.
    pub(crate) fn into_domain(self) -> ChangedFile {
        ChangedFile { path: self.path, previous_path: self.previous_path, ranges: LineRange::decode_list(&self.ranges) }
    }
}

/// A file of a repository's tree.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = repository_files, check_for_backend(Sqlite, Pg))]
pub(crate) struct RepositoryFileRow {
    pub connection_id: DbId,
    pub repository_key: String,
    pub path: String,
    pub name_key: String,
}

impl RepositoryFileRow {
    /// The row of `path` in the repository keyed `repository_key`.
    pub(crate) fn new(connection_id: DbId, repository_key: &str, path: &str) -> Self {
        Self {
            connection_id,
            repository_key: repository_key.to_owned(),
            path: path.to_owned(),
            name_key: PathIndex::name_key(path),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = connection_webhooks, check_for_backend(Sqlite, Pg))]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct WebhookSecretRow {
    pub connection_id: DbId,
    pub secret_key_id: String,
    pub secret_ciphertext: Vec<u8>,
    pub created_at: DbTime,
}

impl WebhookSecretRow {
    pub(crate) fn new(connection_id: DbId, sealed: &SealedSecret, created_at: DbTime) -> Self {
        Self {
            connection_id,
            secret_key_id: sealed.key_id.clone(),
            secret_ciphertext: sealed.ciphertext.clone(),
            created_at,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_deliveries, check_for_backend(Sqlite, Pg))]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct DeliveryRow {
    pub source: String,
    pub delivery: String,
    pub expires_at: DbTime,
}
