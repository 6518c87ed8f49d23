//! Reading stored values back into domain types, the same for both
//! dialects. Each adapter turns its rows (text or native columns) into the
//! `Stored*` shapes below; the rules that rebuild and re-check the domain
//! values live here once.
//!
//! Reading back never panics: a value that no longer parses is reported as
//! [`StoreError::Unexpected`].

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sigsentry_domain::{
    BaseUrl, BaseUrlPolicy, BranchName, ConnectionId, CredentialKind, CredentialSummary, Invalid, LookbackDays,
    PathPrefix, Platform, ProjectId, RepoConnection, RepoName, RepoSyncStatus, ServiceMapping, ServiceName, SyncState,
    TenantId, corrupt,
};
use sigsentry_ports::StoreError;

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
pub(crate) fn base_url(value: Option<&str>) -> Result<Option<BaseUrl>, StoreError> {
    value.map(|u| check(BaseUrl::parse(u, STORED_URL_POLICY), "credential base URL")).transpose()
}

/// A connection row, with ids and times already decoded by the dialect.
pub(crate) struct StoredConnection {
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub project_id: ProjectId,
    pub platform: String,
    pub credential_kind: String,
    pub credential_hint: Option<String>,
    pub base_url: Option<String>,
    pub credentials_updated_at: DateTime<Utc>,
    pub lookback_days: i64,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// A repository row of a connection.
pub(crate) struct StoredRepo {
    pub name: String,
    pub sync_state: String,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub sync_error: Option<String>,
    pub default_branch: Option<String>,
}

/// A service-mapping row of a connection.
pub(crate) struct StoredMapping {
    pub service_name: String,
    pub repo: String,
    pub path_prefix: String,
    pub default_branch: Option<String>,
}

/// Rebuilds a full connection; child rows in position order.
pub(crate) fn connection(
    row: StoredConnection,
    repos: Vec<StoredRepo>,
    mappings: Vec<StoredMapping>,
) -> Result<RepoConnection, StoreError> {
    let platform: Platform = parse(&row.platform, "connection platform")?;
    let mut repositories = Vec::with_capacity(repos.len());
    let mut sync = Vec::with_capacity(repos.len());
    for repo in repos {
        let name = check(RepoName::parse(platform, &repo.name), "repository name")?;
        sync.push(RepoSyncStatus {
            repository: name.clone(),
            state: check(SyncState::parse(&repo.sync_state), "repository sync state")?,
            last_synced_at: repo.last_synced_at,
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
        id: row.id,
        tenant_id: row.tenant_id,
        project_id: row.project_id,
        platform,
        credentials: CredentialSummary {
            kind: check(CredentialKind::parse(&row.credential_kind), "credential kind")?,
            hint: row.credential_hint,
            base_url: base_url(row.base_url.as_deref())?,
            updated_at: row.credentials_updated_at,
        },
        repositories,
        service_mappings,
        lookback_days: check(LookbackDays::new(row.lookback_days), "lookback days")?,
        is_active: row.is_active,
        sync,
        created_at: row.created_at,
        updated_at: row.updated_at,
        version: row.version,
    })
}
