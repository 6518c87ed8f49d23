//! Rows as stored, and their mapping to and from domain types.
//!
//! Reading back never panics: a value that no longer parses is reported as
//! [`StoreError::Unexpected`].

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
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
use crate::decode::{self, check, corrupt_row};

/// Formats a time the way every time column holds it: UTC, milliseconds,
/// `Z`, fixed width, so text order is time order.
pub(crate) fn fmt_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `at` minus `secs` seconds, stored form; clamps instead of overflowing.
pub(crate) fn fmt_time_before(at: DateTime<Utc>, secs: u32) -> String {
    fmt_time(at.checked_sub_signed(TimeDelta::seconds(i64::from(secs))).unwrap_or(DateTime::<Utc>::MIN_UTC))
}

pub(crate) fn parse_time(value: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).map_err(|e| corrupt_row(what, e))
}

fn parse_opt_time(value: Option<&str>, what: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    value.map(|v| parse_time(v, what)).transpose()
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants, check_for_backend(Sqlite))]
pub(crate) struct TenantRow {
    pub id: String,
    pub name: String,
    pub plan: String,
    pub created_at: String,
}

impl TenantRow {
    pub(crate) fn from_domain(tenant: &Tenant) -> Self {
        Self {
            id: tenant.id.to_string(),
            name: tenant.name.clone(),
            plan: tenant.plan.as_str().to_owned(),
            created_at: fmt_time(tenant.created_at),
        }
    }

    pub(crate) fn into_domain(self) -> Result<Tenant, StoreError> {
        Ok(Tenant {
            id: parse(&self.id, "tenant id")?,
            name: self.name,
            plan: parse(&self.plan, "tenant plan")?,
            created_at: parse_time(&self.created_at, "tenant creation time")?,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = projects, check_for_backend(Sqlite))]
pub(crate) struct ProjectRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub created_at: String,
}

impl ProjectRow {
    pub(crate) fn from_domain(project: &Project) -> Self {
        Self {
            id: project.id.to_string(),
            tenant_id: project.tenant_id.to_string(),
            name: project.name.clone(),
            created_at: fmt_time(project.created_at),
        }
    }

    pub(crate) fn into_domain(self) -> Result<Project, StoreError> {
        Ok(Project {
            id: parse(&self.id, "project id")?,
            tenant_id: parse(&self.tenant_id, "project tenant id")?,
            name: self.name,
            created_at: parse_time(&self.created_at, "project creation time")?,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys, check_for_backend(Sqlite))]
pub(crate) struct ApiKeyRow {
    pub id: String,
    pub tenant_id: String,
    pub project_id: Option<String>,
    pub name: String,
    pub key_hash: String,
    pub permissions: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
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
            id: parse(&self.id, "API key id")?,
            tenant_id: parse(&self.tenant_id, "API key tenant id")?,
            project_id: self.project_id.as_deref().map(|p| parse(p, "API key project id")).transpose()?,
            name: self.name,
            permissions,
            created_at: parse_time(&self.created_at, "API key creation time")?,
            revoked_at: parse_opt_time(self.revoked_at.as_deref(), "API key revocation time")?,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = repo_connections, check_for_backend(Sqlite))]
pub(crate) struct ConnectionRow {
    pub id: String,
    pub tenant_id: String,
    pub project_id: String,
    pub platform: String,
    pub credential_kind: String,
    pub credential_hint: Option<String>,
    pub base_url: Option<String>,
    pub credential_key_id: String,
    pub credential_ciphertext: Vec<u8>,
    pub credentials_updated_at: String,
    pub lookback_days: i64,
    pub is_active: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = connection_repositories, check_for_backend(Sqlite))]
pub(crate) struct RepoRow {
    pub connection_id: String,
    pub project_id: String,
    pub position: i64,
    pub name: String,
    pub name_key: String,
    pub sync_state: String,
    pub last_synced_at: Option<String>,
    pub sync_error: Option<String>,
    pub default_branch: Option<String>,
    pub lease_token: Option<String>,
    pub lease_until: Option<String>,
    pub next_attempt_at: Option<String>,
    pub attempts: i64,
    pub updated_since: Option<String>,
}

impl RepoRow {
    /// A repository that nobody has synced yet.
    pub(crate) fn pending(connection_id: &str, project_id: &str, position: usize, repo: &RepoName) -> Self {
        Self {
            connection_id: connection_id.to_owned(),
            project_id: project_id.to_owned(),
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
#[diesel(table_name = service_mappings, check_for_backend(Sqlite))]
pub(crate) struct MappingRow {
    pub connection_id: String,
    pub project_id: String,
    pub position: i64,
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

    pub(crate) fn from_domain(connection_id: &str, project_id: &str, position: usize, m: &ServiceMapping) -> Self {
        Self {
            connection_id: connection_id.to_owned(),
            project_id: project_id.to_owned(),
            position: position_value(position),
            service_name: m.service_name.as_str().to_owned(),
            repo: m.repo.as_str().to_owned(),
            path_prefix: m.path_prefix.as_str().to_owned(),
            default_branch: m.default_branch.as_ref().map(|b| b.as_str().to_owned()),
        }
    }
}

/// Lists hold at most a few thousand items, far below `i64::MAX`.
fn position_value(position: usize) -> i64 {
    i64::try_from(position).unwrap_or(i64::MAX)
}

pub(crate) use crate::decode::{count_u32, parse};

/// Builds full connections from their rows. Child rows must be in position
/// order; `repos` and `mappings` are keyed by connection id.
pub(crate) fn assemble(
    rows: Vec<ConnectionRow>,
    mut repos: HashMap<String, Vec<RepoRow>>,
    mut mappings: HashMap<String, Vec<MappingRow>>,
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
        id: parse(&row.id, "connection id")?,
        tenant_id: parse(&row.tenant_id, "connection tenant id")?,
        project_id: parse(&row.project_id, "connection project id")?,
        credentials_updated_at: parse_time(&row.credentials_updated_at, "credentials update time")?,
        created_at: parse_time(&row.created_at, "connection creation time")?,
        updated_at: parse_time(&row.updated_at, "connection update time")?,
        platform: row.platform,
        credential_kind: row.credential_kind,
        credential_hint: row.credential_hint,
        base_url: row.base_url,
        lookback_days: row.lookback_days,
        is_active: row.is_active,
        version: row.version,
    };
    let repos = repos
        .into_iter()
        .map(|r| {
            Ok(decode::StoredRepo {
                last_synced_at: parse_opt_time(r.last_synced_at.as_deref(), "repository sync time")?,
                name: r.name,
                sync_state: r.sync_state,
                sync_error: r.sync_error,
                default_branch: r.default_branch,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    decode::connection(stored, repos, mappings.into_iter().map(MappingRow::into_stored).collect())
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = pull_requests, check_for_backend(Sqlite))]
pub(crate) struct PullRequestRow {
    pub connection_id: String,
    pub repository_key: String,
    pub repository: String,
    pub number: i64,
    pub title: String,
    pub author: Option<String>,
    pub url: String,
    pub merged_at: String,
    pub merge_commit_sha: Option<String>,
    pub updated_at: String,
}

impl PullRequestRow {
    /// The row of `pr`, cached for the repository of `connection_id` keyed
    /// `repository_key` and spelt `repository`.
    pub(crate) fn from_domain(
        connection_id: &str,
        repository_key: &str,
        repository: &str,
        pr: &MergedPullRequest,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            connection_id: connection_id.to_owned(),
            repository_key: repository_key.to_owned(),
            repository: repository.to_owned(),
            number: stored_number(pr.number)?,
            title: pr.title.clone(),
            author: pr.author.clone(),
            url: pr.url.clone(),
            merged_at: fmt_time(pr.merged_at),
            merge_commit_sha: pr.merge_commit_sha.clone(),
            updated_at: fmt_time(pr.updated_at),
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
                merged_at: parse_time(&self.merged_at, "PR merge time")?,
                merge_commit_sha: self.merge_commit_sha,
                updated_at: parse_time(&self.updated_at, "PR update time")?,
                files,
            },
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = pull_request_files, check_for_backend(Sqlite))]
pub(crate) struct PullRequestFileRow {
    pub connection_id: String,
    pub repository_key: String,
    pub number: i64,
    pub path: String,
}

/// The job of a claimed repository, from its connection's row and its own.
pub(crate) fn sync_job(conn: &ConnectionRow, repo: &RepoRow, lease: Uuid) -> Result<SyncJob, StoreError> {
    let platform: Platform = parse(&conn.platform, "connection platform")?;
    Ok(SyncJob {
        lease,
        connection_id: parse(&conn.id, "connection id")?,
        tenant_id: parse(&conn.tenant_id, "connection tenant id")?,
        project_id: parse(&conn.project_id, "connection project id")?,
        platform,
        repository: check(RepoName::parse(platform, &repo.name), "repository name")?,
        credential_kind: check(CredentialKind::parse(&conn.credential_kind), "credential kind")?,
        base_url: decode::base_url(conn.base_url.as_deref())?,
        sealed: SealedSecret { key_id: conn.credential_key_id.clone(), ciphertext: conn.credential_ciphertext.clone() },
        lookback_days: check(LookbackDays::new(conn.lookback_days), "lookback days")?,
        updated_since: parse_opt_time(repo.updated_since.as_deref(), "repository sync high-water mark")?,
        // TODO(sync-code storage): no file list is stored yet, so every sync lists the tree.
        known_tree_revision: None,
        attempts: read_attempts(repo.attempts),
    })
}
