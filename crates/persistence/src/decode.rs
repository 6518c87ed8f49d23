//! Reading stored rows back into domain types: the one place that rebuilds
//! and re-checks domain values (ids and times already come typed from
//! `sql_types`; the text columns are parsed and checked here).
//!
//! Reading back never panics: a value that no longer parses is reported as
//! [`StoreError::Unexpected`].

use std::collections::HashMap;
use std::str::FromStr;

use sigsentry_domain::{
    BaseUrl, BaseUrlPolicy, BranchName, CredentialHealth, CredentialKind, CredentialSummary, CredentialUse, Invalid,
    LookbackDays, PathPrefix, PermissionSet, Platform, ProjectId, RepoConnection, RepoName, RepoSyncStatus,
    ServiceMapping, ServiceName, SyncState, corrupt,
};
use sigsentry_ports::{
    ApiKeyRecord, CachedPullRequest, ChangedFile, MergedPullRequest, Project, SealedCredentialsRow, SealedSecret,
    StoreError, SyncJob, Tenant,
};
use uuid::Uuid;

use crate::cache::{read_attempts, read_number};
use crate::rows::{
    ApiKeyRow, ConnectionRow, CredentialStateRow, MappingRow, ProjectRow, PullRequestRow, RepoRow, TenantRow,
};
use crate::sql_types::{DbId, DbTime};

/// Stored URLs were checked when written; reading them back must not fail
/// because the private-address policy changed since.
pub(crate) const STORED_URL_POLICY: BaseUrlPolicy = BaseUrlPolicy { allow_private: true };

/// A stored value that does not read back: a bug or a damaged row, never the user's input.
pub(crate) fn corrupt_row(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(format!("{}: {detail}", corrupt(what)))
}

/// Parses a stored text value.
pub(crate) fn parse<T: FromStr<Err = Invalid>>(value: &str, what: &str) -> Result<T, StoreError> {
    value.parse().map_err(|e| corrupt_row(what, e))
}

/// Re-checks a stored value against its domain rule.
pub(crate) fn check<T>(result: Result<T, Invalid>, what: &str) -> Result<T, StoreError> {
    result.map_err(|e| corrupt_row(what, e))
}

/// A count as the domain wants it; a count past `u32::MAX` saturates.
pub(crate) fn count_u32(n: impl TryInto<u32>) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

/// A stored base URL read back.
fn base_url(value: Option<&str>) -> Result<Option<BaseUrl>, StoreError> {
    value.map(|u| check(BaseUrl::parse(u, STORED_URL_POLICY), "credential base URL")).transpose()
}

pub(crate) fn tenant(row: TenantRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: row.id.into(),
        name: row.name,
        plan: parse(&row.plan, "tenant plan")?,
        created_at: row.created_at.into(),
    })
}

pub(crate) fn project(row: ProjectRow) -> Project {
    Project { id: row.id.into(), tenant_id: row.tenant_id.into(), name: row.name, created_at: row.created_at.into() }
}

pub(crate) fn api_key(row: ApiKeyRow) -> Result<ApiKeyRecord, StoreError> {
    // An empty set is stored as "", which `parse_list` refuses.
    let permissions = if row.permissions.is_empty() {
        PermissionSet::default()
    } else {
        check(PermissionSet::parse_list(&row.permissions), "API key permissions")?
    };
    Ok(ApiKeyRecord {
        id: row.id.into(),
        tenant_id: row.tenant_id.into(),
        project_id: row.project_id.map(ProjectId::from),
        name: row.name,
        permissions,
        created_at: row.created_at.into(),
        revoked_at: row.revoked_at.map(DbTime::into),
    })
}

/// Builds full connections from their rows, in the order of `rows`. Child
/// rows must be in position order.
pub(crate) fn connections(
    rows: Vec<ConnectionRow>,
    repos: Vec<RepoRow>,
    mappings: Vec<MappingRow>,
    states: Vec<CredentialStateRow>,
) -> Result<Vec<RepoConnection>, StoreError> {
    let mut states_of: HashMap<DbId, CredentialStateRow> = states.into_iter().map(|s| (s.connection_id, s)).collect();
    let mut repos_of: HashMap<DbId, Vec<RepoRow>> = HashMap::new();
    for row in repos {
        repos_of.entry(row.connection_id).or_default().push(row);
    }
    let mut mappings_of: HashMap<DbId, Vec<MappingRow>> = HashMap::new();
    for row in mappings {
        mappings_of.entry(row.connection_id).or_default().push(row);
    }
    rows.into_iter()
        .map(|row| {
            let repos = repos_of.remove(&row.id).unwrap_or_default();
            let mappings = mappings_of.remove(&row.id).unwrap_or_default();
            let state = states_of.remove(&row.id);
            connection(row, repos, mappings, state)
        })
        .collect()
}

/// Rebuilds a full connection; child rows in position order.
fn connection(
    row: ConnectionRow,
    repos: Vec<RepoRow>,
    mappings: Vec<MappingRow>,
    state: Option<CredentialStateRow>,
) -> Result<RepoConnection, StoreError> {
    let platform: Platform = parse(&row.platform, "connection platform")?;
    let mut repositories = Vec::with_capacity(repos.len());
    let mut sync = Vec::with_capacity(repos.len());
    for repo in repos {
        let name = check(RepoName::parse(platform, &repo.name), "repository name")?;
        sync.push(RepoSyncStatus {
            repository: name.clone(),
            state: check(SyncState::parse(&repo.sync_state), "repository sync state")?,
            last_synced_at: repo.last_synced_at.map(DbTime::into),
            error: repo.sync_error,
            default_branch: repo.default_branch,
        });
        repositories.push(name);
    }
    let service_mappings = mappings
        .into_iter()
        .map(|m| {
            Ok(ServiceMapping {
                service_name: check(ServiceName::new(m.service_name), "mapping service name")?,
                repo: check(RepoName::parse(platform, &m.repo), "mapping repository")?,
                path_prefix: check(PathPrefix::new(&m.path_prefix), "mapping path prefix")?,
                default_branch: m
                    .default_branch
                    .map(|b| check(BranchName::new(b), "mapping default branch"))
                    .transpose()?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(RepoConnection {
        id: row.id.into(),
        tenant_id: row.tenant_id.into(),
        project_id: row.project_id.into(),
        platform,
        credentials: CredentialSummary {
            kind: check(CredentialKind::parse(&row.credential_kind), "credential kind")?,
            hint: row.credential_hint,
            base_url: base_url(row.base_url.as_deref())?,
            updated_at: row.credentials_updated_at.into(),
            health: credential_health(state)?,
        },
        repositories,
        service_mappings,
        lookback_days: check(LookbackDays::new(i64::from(row.lookback_days)), "lookback days")?,
        is_active: row.is_active,
        sync,
        created_at: row.created_at.into(),
        updated_at: row.updated_at.into(),
        version: row.version,
    })
}

/// What is known of a connection's credentials; nothing when its row is
/// missing (it is written with the connection, so only a foreign writer
/// could leave it out).
pub(crate) fn credential_health(state: Option<CredentialStateRow>) -> Result<CredentialHealth, StoreError> {
    let Some(state) = state else { return Ok(CredentialHealth::UNKNOWN) };
    Ok(CredentialHealth {
        expires_at: state.expires_at.map(DbTime::into),
        last_use: check(CredentialUse::parse(&state.last_use), "credential use")?,
        last_use_at: state.last_use_at.map(DbTime::into),
    })
}

/// A cached PR as listed, with its files (sorted by path here).
pub(crate) fn pull_request(
    row: PullRequestRow,
    platform: Platform,
    mut files: Vec<ChangedFile>,
) -> Result<CachedPullRequest, StoreError> {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(CachedPullRequest {
        repository: check(RepoName::parse(platform, &row.repository), "cached PR repository")?,
        pull_request: MergedPullRequest {
            number: read_number(row.number)?,
            title: row.title,
            author: row.author,
            url: row.url,
            merged_at: row.merged_at.into(),
            merge_commit_sha: row.merge_commit_sha,
            updated_at: row.updated_at.into(),
            files,
        },
    })
}

/// A connection's sealed credentials with what is bound into them.
pub(crate) fn sealed_credentials(conn: &ConnectionRow) -> Result<SealedCredentialsRow, StoreError> {
    Ok(SealedCredentialsRow {
        connection_id: conn.id.into(),
        tenant_id: conn.tenant_id.into(),
        project_id: conn.project_id.into(),
        platform: parse(&conn.platform, "connection platform")?,
        credential_kind: check(CredentialKind::parse(&conn.credential_kind), "credential kind")?,
        base_url: base_url(conn.base_url.as_deref())?,
        sealed: SealedSecret { key_id: conn.credential_key_id.clone(), ciphertext: conn.credential_ciphertext.clone() },
    })
}

/// The job of a claimed repository, from its connection's row and its own.
pub(crate) fn sync_job(conn: &ConnectionRow, repo: &RepoRow, lease: Uuid) -> Result<SyncJob, StoreError> {
    let platform: Platform = parse(&conn.platform, "connection platform")?;
    Ok(SyncJob {
        lease,
        connection_id: conn.id.into(),
        tenant_id: conn.tenant_id.into(),
        project_id: conn.project_id.into(),
        platform,
        repository: check(RepoName::parse(platform, &repo.name), "repository name")?,
        credential_kind: check(CredentialKind::parse(&conn.credential_kind), "credential kind")?,
        base_url: base_url(conn.base_url.as_deref())?,
        sealed: SealedSecret { key_id: conn.credential_key_id.clone(), ciphertext: conn.credential_ciphertext.clone() },
        credentials_set_at: conn.credentials_updated_at.into(),
        lookback_days: check(LookbackDays::new(i64::from(conn.lookback_days)), "lookback days")?,
        updated_since: repo.updated_since.map(DbTime::into),
        known_tree_revision: repo.tree_revision.clone(),
        attempts: read_attempts(i64::from(repo.attempts)),
    })
}
