//! Rows as stored, and their mapping to and from domain types.
//!
//! Reading back never panics: a value that no longer parses is reported as
//! [`StoreError::Unexpected`].

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use sigsentry_domain::{
    CredentialKind, LookbackDays, PermissionSet, Platform, RepoConnection, RepoName, ServiceMapping, SyncState,
};
use sigsentry_ports::{
    ApiKeyRecord, CachedPullRequest, ChangedFile, MergedPullRequest, Project, SealedSecret, StoreError, SyncJob, Tenant,
};
use uuid::Uuid;

use super::schema::{
    api_keys, connection_repositories, projects, pull_request_files, pull_requests, repo_connections, service_mappings,
    tenants,
};
use crate::cache::{read_attempts, read_number, stored_number};
use crate::decode::{self, check};

/// A time as stored: truncated to milliseconds, as the SQLite store keeps
/// times, so both backends give back the same values.
pub(crate) fn stored_time(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(3)
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants, check_for_backend(Pg))]
pub(crate) struct TenantRow {
    pub id: Uuid,
    pub name: String,
    pub plan: String,
    pub created_at: DateTime<Utc>,
}

impl TenantRow {
    pub(crate) fn from_domain(tenant: &Tenant) -> Self {
        Self {
            id: *tenant.id.as_uuid(),
            name: tenant.name.clone(),
            plan: tenant.plan.as_str().to_owned(),
            created_at: stored_time(tenant.created_at),
        }
    }

    pub(crate) fn into_domain(self) -> Result<Tenant, StoreError> {
        Ok(Tenant {
            id: sigsentry_domain::TenantId::from_uuid(self.id),
            name: self.name,
            plan: parse(&self.plan, "tenant plan")?,
            created_at: self.created_at,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = projects, check_for_backend(Pg))]
pub(crate) struct ProjectRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl ProjectRow {
    pub(crate) fn from_domain(project: &Project) -> Self {
        Self {
            id: *project.id.as_uuid(),
            tenant_id: *project.tenant_id.as_uuid(),
            name: project.name.clone(),
            created_at: stored_time(project.created_at),
        }
    }

    pub(crate) fn into_domain(self) -> Project {
        Project {
            id: sigsentry_domain::ProjectId::from_uuid(self.id),
            tenant_id: sigsentry_domain::TenantId::from_uuid(self.tenant_id),
            name: self.name,
            created_at: self.created_at,
        }
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys, check_for_backend(Pg))]
pub(crate) struct ApiKeyRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub project_id: Option<Uuid>,
    pub name: String,
    pub key_hash: String,
    pub permissions: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyRow {
    pub(crate) fn into_domain(self) -> Result<ApiKeyRecord, StoreError> {
        // An empty set is stored as "", which `parse_list` refuses.
        let permissions = if self.permissions.is_empty() {
            PermissionSet::default()
        } else {
            check(PermissionSet::parse_list(&self.permissions), "API key permissions")?
        };
        Ok(ApiKeyRecord {
            id: sigsentry_domain::ApiKeyId::from_uuid(self.id),
            tenant_id: sigsentry_domain::TenantId::from_uuid(self.tenant_id),
            project_id: self.project_id.map(sigsentry_domain::ProjectId::from_uuid),
            name: self.name,
            permissions,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = repo_connections, check_for_backend(Pg))]
pub(crate) struct ConnectionRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub project_id: Uuid,
    pub platform: String,
    pub credential_kind: String,
    pub credential_hint: Option<String>,
    pub base_url: Option<String>,
    pub credential_key_id: String,
    pub credential_ciphertext: Vec<u8>,
    pub credentials_updated_at: DateTime<Utc>,
    pub lookback_days: i32,
    pub is_active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = connection_repositories, check_for_backend(Pg))]
pub(crate) struct RepoRow {
    pub connection_id: Uuid,
    pub project_id: Uuid,
    pub position: i32,
    pub name: String,
    pub name_key: String,
    pub sync_state: String,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub sync_error: Option<String>,
    pub default_branch: Option<String>,
    pub lease_token: Option<Uuid>,
    pub lease_until: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub updated_since: Option<DateTime<Utc>>,
}

impl RepoRow {
    /// A repository that nobody has synced yet.
    pub(crate) fn pending(connection_id: Uuid, project_id: Uuid, position: usize, repo: &RepoName) -> Self {
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
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = service_mappings, check_for_backend(Pg))]
pub(crate) struct MappingRow {
    pub connection_id: Uuid,
    pub project_id: Uuid,
    pub position: i32,
    pub service_name: String,
    pub repo: String,
    pub path_prefix: String,
    pub default_branch: Option<String>,
}

impl MappingRow {
    fn into_stored(self) -> decode::StoredMapping {
        decode::StoredMapping {
            service_name: self.service_name,
            repo: self.repo,
            path_prefix: self.path_prefix,
            default_branch: self.default_branch,
        }
    }

    pub(crate) fn from_domain(connection_id: Uuid, project_id: Uuid, position: usize, m: &ServiceMapping) -> Self {
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

pub(crate) use crate::decode::{count_u32, parse};

/// Builds full connections from their rows. Child rows must be in position
/// order; `repos` and `mappings` are keyed by connection id.
pub(crate) fn assemble(
    rows: Vec<ConnectionRow>,
    mut repos: HashMap<Uuid, Vec<RepoRow>>,
    mut mappings: HashMap<Uuid, Vec<MappingRow>>,
) -> Result<Vec<RepoConnection>, StoreError> {
    rows.into_iter()
        .map(|row| {
            let repos = repos.remove(&row.id).unwrap_or_default();
            let mappings = mappings.remove(&row.id).unwrap_or_default();
            to_connection(row, repos, mappings)
        })
        .collect()
}

fn to_connection(
    row: ConnectionRow,
    repos: Vec<RepoRow>,
    mappings: Vec<MappingRow>,
) -> Result<RepoConnection, StoreError> {
    let stored = decode::StoredConnection {
        id: sigsentry_domain::ConnectionId::from_uuid(row.id),
        tenant_id: sigsentry_domain::TenantId::from_uuid(row.tenant_id),
        project_id: sigsentry_domain::ProjectId::from_uuid(row.project_id),
        credentials_updated_at: row.credentials_updated_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
        platform: row.platform,
        credential_kind: row.credential_kind,
        credential_hint: row.credential_hint,
        base_url: row.base_url,
        lookback_days: i64::from(row.lookback_days),
        is_active: row.is_active,
        version: row.version,
    };
    let repos = repos
        .into_iter()
        .map(|r| decode::StoredRepo {
            last_synced_at: r.last_synced_at,
            name: r.name,
            sync_state: r.sync_state,
            sync_error: r.sync_error,
            default_branch: r.default_branch,
        })
        .collect();
    decode::connection(stored, repos, mappings.into_iter().map(MappingRow::into_stored).collect())
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = pull_requests, check_for_backend(Pg))]
pub(crate) struct PullRequestRow {
    pub connection_id: Uuid,
    pub repository_key: String,
    pub repository: String,
    pub number: i64,
    pub title: String,
    pub author: Option<String>,
    pub url: String,
    pub merged_at: DateTime<Utc>,
    pub merge_commit_sha: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl PullRequestRow {
    /// The row of `pr`, cached for the repository of `connection_id` keyed
    /// `repository_key` and spelt `repository`.
    pub(crate) fn from_domain(
        connection_id: Uuid,
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
            merged_at: stored_time(pr.merged_at),
            merge_commit_sha: pr.merge_commit_sha.clone(),
            updated_at: stored_time(pr.updated_at),
        })
    }

    /// The PR as listed, with its paths (sorted here).
    pub(crate) fn into_domain(
        self,
        platform: Platform,
        mut files: Vec<String>,
    ) -> Result<CachedPullRequest, StoreError> {
        files.sort();
        // TODO(sync-code storage): only the paths are stored; previous paths and ranges come back empty.
        let files = files.into_iter().map(ChangedFile::path_only).collect();
        Ok(CachedPullRequest {
            repository: check(RepoName::parse(platform, &self.repository), "cached PR repository")?,
            pull_request: MergedPullRequest {
                number: read_number(self.number)?,
                title: self.title,
                author: self.author,
                url: self.url,
                merged_at: self.merged_at,
                merge_commit_sha: self.merge_commit_sha,
                updated_at: self.updated_at,
                files,
            },
        })
    }
}

#[derive(Debug, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = pull_request_files, check_for_backend(Pg))]
pub(crate) struct PullRequestFileRow {
    pub connection_id: Uuid,
    pub repository_key: String,
    pub number: i64,
    pub path: String,
}

/// The job of a claimed repository, from its connection's row and its own.
pub(crate) fn sync_job(conn: &ConnectionRow, repo: &RepoRow, lease: Uuid) -> Result<SyncJob, StoreError> {
    let platform: Platform = parse(&conn.platform, "connection platform")?;
    Ok(SyncJob {
        lease,
        connection_id: sigsentry_domain::ConnectionId::from_uuid(conn.id),
        tenant_id: sigsentry_domain::TenantId::from_uuid(conn.tenant_id),
        project_id: sigsentry_domain::ProjectId::from_uuid(conn.project_id),
        platform,
        repository: check(RepoName::parse(platform, &repo.name), "repository name")?,
        credential_kind: check(CredentialKind::parse(&conn.credential_kind), "credential kind")?,
        base_url: decode::base_url(conn.base_url.as_deref())?,
        sealed: SealedSecret { key_id: conn.credential_key_id.clone(), ciphertext: conn.credential_ciphertext.clone() },
        lookback_days: check(LookbackDays::new(i64::from(conn.lookback_days)), "lookback days")?,
        updated_since: repo.updated_since,
        // TODO(sync-code storage): no file list is stored yet, so every sync lists the tree.
        known_tree_revision: None,
        attempts: read_attempts(i64::from(repo.attempts)),
    })
}
