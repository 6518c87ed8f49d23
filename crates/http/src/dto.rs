//! Request and response bodies, as the API documents them.

use chrono::{DateTime, SecondsFormat, Utc};
use garde::Validate;
use serde::{Deserialize, Deserializer, Serialize};
use sigsentry_domain::{
    BaseUrlField, CredentialsDraft, MappingDraft, PatchDraft, RepoConnection, ServiceMapping, SpecDraft,
};
use utoipa::ToSchema;

use crate::error::Detail;

/// Credentials as sent: `{token, baseUrl?}` for GitHub and GitLab;
/// `{username, appPassword}` or `{email, apiToken}` for Bitbucket.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialsBody {
    /// GitHub or GitLab personal access token.
    #[garde(length(chars, min = 1, max = 1024))]
    pub token: Option<String>,
    /// GitHub Enterprise Server (`https://HOST/api/v3`) or self-managed GitLab root.
    /// On update: left out keeps the stored one; `null` means the cloud host.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    #[garde(skip)]
    pub base_url: Option<Option<String>>,
    /// Bitbucket username (with appPassword).
    #[garde(length(chars, min = 1, max = 100))]
    pub username: Option<String>,
    /// Bitbucket app password.
    #[garde(length(chars, min = 1, max = 1024))]
    pub app_password: Option<String>,
    /// Atlassian account email (with apiToken).
    #[garde(length(chars, min = 3, max = 254))]
    pub email: Option<String>,
    /// Atlassian API token.
    #[garde(length(chars, min = 1, max = 1024))]
    pub api_token: Option<String>,
}

/// Distinguishes a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl From<CredentialsBody> for CredentialsDraft {
    fn from(body: CredentialsBody) -> Self {
        CredentialsDraft {
            token: body.token,
            base_url: match body.base_url {
                None => BaseUrlField::Absent,
                Some(None) => BaseUrlField::Null,
                Some(Some(url)) => BaseUrlField::Value(url),
            },
            username: body.username,
            app_password: body.app_password,
            email: body.email,
            api_token: body.api_token,
        }
    }
}

/// A service mapping.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMappingBody {
    /// The service name as it appears in logs.
    #[garde(length(chars, min = 1, max = 128))]
    pub service_name: Option<String>,
    /// One of the connection's repositories.
    #[garde(length(min = 1))]
    pub repo: Option<String>,
    /// Subdirectory inside the repo; `""` (the default) is the root.
    #[garde(length(max = 1024))]
    pub path_prefix: Option<String>,
    /// Branch analyses reason about; defaults to the repository's own default branch.
    #[garde(length(min = 1, max = 255))]
    pub default_branch: Option<String>,
}

impl From<ServiceMappingBody> for MappingDraft {
    fn from(body: ServiceMappingBody) -> Self {
        MappingDraft {
            service_name: body.service_name,
            repo: body.repo,
            path_prefix: body.path_prefix,
            default_branch: body.default_branch,
        }
    }
}

/// `POST /v1/config/repos`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateConnectionBody {
    /// `github`, `gitlab` or `bitbucket`.
    #[garde(skip)]
    pub platform: Option<String>,
    /// Platform-specific credentials.
    #[garde(dive)]
    pub credentials: Option<CredentialsBody>,
    /// Repositories to attach (1 to 100).
    #[garde(length(min = 1, max = 100))]
    pub repositories: Option<Vec<String>>,
    /// Service-to-repo path mappings.
    #[garde(length(max = 1000), dive)]
    pub service_mappings: Option<Vec<ServiceMappingBody>>,
    /// PR/MR history window, 1 to 365 days (default 30).
    #[garde(range(min = 1, max = 365))]
    pub lookback_days: Option<i64>,
}

/// Field names of the create body, for typo suggestions.
pub const CREATE_FIELDS: &[&str] = &[
    "platform",
    "credentials",
    "repositories",
    "serviceMappings",
    "lookbackDays",
    "token",
    "baseUrl",
    "username",
    "appPassword",
    "email",
    "apiToken",
    "serviceName",
    "repo",
    "pathPrefix",
    "defaultBranch",
];

/// Field names of the update body, for typo suggestions.
pub const UPDATE_FIELDS: &[&str] = &[
    "platform",
    "credentials",
    "repositories",
    "serviceMappings",
    "lookbackDays",
    "isActive",
    "token",
    "baseUrl",
    "username",
    "appPassword",
    "email",
    "apiToken",
    "serviceName",
    "repo",
    "pathPrefix",
    "defaultBranch",
];

impl From<CreateConnectionBody> for SpecDraft {
    fn from(body: CreateConnectionBody) -> Self {
        SpecDraft {
            platform: body.platform,
            credentials: body.credentials.map(Into::into),
            repositories: body.repositories,
            service_mappings: body.service_mappings.map(|m| m.into_iter().map(Into::into).collect()),
            lookback_days: body.lookback_days,
        }
    }
}

/// `PUT /v1/config/repos/{id}`: every field optional; only those sent change.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateConnectionBody {
    /// Refused: the platform cannot change.
    #[garde(skip)]
    #[schema(value_type = Option<String>)]
    pub platform: Option<serde_json::Value>,
    /// Replaces the credentials (a left-out `baseUrl` keeps the stored one).
    #[garde(dive)]
    pub credentials: Option<CredentialsBody>,
    /// Replaces the repositories (1 to 100).
    #[garde(length(min = 1, max = 100))]
    pub repositories: Option<Vec<String>>,
    /// Replaces all mappings; `[]` clears them.
    #[garde(length(max = 1000), dive)]
    pub service_mappings: Option<Vec<ServiceMappingBody>>,
    /// Replaces the lookback window, 1 to 365.
    #[garde(range(min = 1, max = 365))]
    pub lookback_days: Option<i64>,
    /// `false` pauses the connection; `true` resumes it.
    #[garde(skip)]
    pub is_active: Option<bool>,
}

impl From<UpdateConnectionBody> for PatchDraft {
    fn from(body: UpdateConnectionBody) -> Self {
        PatchDraft {
            platform_sent: body.platform.is_some(),
            credentials: body.credentials.map(Into::into),
            repositories: body.repositories,
            service_mappings: body.service_mappings.map(|m| m.into_iter().map(Into::into).collect()),
            lookback_days: body.lookback_days,
            is_active: body.is_active,
        }
    }
}

/// garde's report as details with JSON pointers (`service_mappings[0].repo`
/// becomes `/serviceMappings/0/repo`).
pub fn garde_details(report: &garde::Report) -> Vec<Detail> {
    report
        .iter()
        .map(|(path, error)| Detail::at(garde_pointer(&path.to_string()), garde_message(error.message())))
        .collect()
}

/// garde says "lower than 1"; users read "must be at least 1".
fn garde_message(message: &str) -> String {
    let rewrites = [
        ("length is lower than ", "is too short: the minimum is "),
        ("length is greater than ", "is too long: the maximum is "),
        ("lower than ", "must be at least "),
        ("greater than ", "must be at most "),
    ];
    rewrites
        .iter()
        .find_map(|(from, to)| message.strip_prefix(from).map(|rest| format!("{to}{rest}")))
        .unwrap_or_else(|| message.to_owned())
}

fn garde_pointer(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        let (name, indexes) = part.split_once('[').map_or((part, ""), |(n, rest)| (n, rest));
        if !name.is_empty() {
            out.push('/');
            out.push_str(&camel_case(name));
        }
        for index in indexes.split('[').map(|i| i.trim_end_matches(']')).filter(|i| !i.is_empty()) {
            out.push('/');
            out.push_str(index);
        }
    }
    out
}

fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// RFC 3339, UTC, with milliseconds.
pub fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The redacted credentials summary.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialSummaryBody {
    /// `token`, `appPassword` or `apiToken`.
    pub kind: &'static str,
    /// At most the last four characters of the secret; `null` for short secrets.
    pub hint: Option<String>,
    /// When the credentials were last set.
    pub updated_at: String,
}

/// A service mapping as returned.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMappingView {
    /// The service name.
    pub service_name: String,
    /// The repository.
    pub repo: String,
    /// The normalized prefix (`""` or ending in `/`).
    pub path_prefix: String,
    /// The branch, or `null` for the repository's own default branch.
    pub default_branch: Option<String>,
}

impl From<&ServiceMapping> for ServiceMappingView {
    fn from(m: &ServiceMapping) -> Self {
        Self {
            service_name: m.service_name.as_str().to_owned(),
            repo: m.repo.as_str().to_owned(),
            path_prefix: m.path_prefix.as_str().to_owned(),
            default_branch: m.default_branch.as_ref().map(|b| b.as_str().to_owned()),
        }
    }
}

/// The sync status of one repository.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncView {
    /// The repository.
    pub repository: String,
    /// `pending`, `syncing`, `ready` or `error`.
    pub state: &'static str,
    /// Last successful sync.
    pub last_synced_at: Option<String>,
    /// Why the last sync failed.
    pub error: Option<String>,
    /// The repository's own default branch, learned at sync (`null` before).
    pub default_branch: Option<String>,
}

/// A repo connection as returned. Never holds a secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    /// The connection id (UUID).
    pub id: String,
    /// The owning project.
    pub project_id: String,
    /// `github`, `gitlab` or `bitbucket`.
    pub platform: &'static str,
    /// Self-hosted API root; `null` for the cloud host.
    pub base_url: Option<String>,
    /// Redacted credentials.
    pub credentials: CredentialSummaryBody,
    /// Attached repositories.
    pub repositories: Vec<String>,
    /// Service mappings.
    pub service_mappings: Vec<ServiceMappingView>,
    /// PR/MR lookback window in days.
    pub lookback_days: u16,
    /// `false` when paused.
    pub is_active: bool,
    /// One entry per repository.
    pub sync: Vec<SyncView>,
    /// Creation time.
    pub created_at: String,
    /// Last configuration change.
    pub updated_at: String,
}

impl From<&RepoConnection> for ConnectionView {
    fn from(c: &RepoConnection) -> Self {
        Self {
            id: c.id.to_string(),
            project_id: c.project_id.to_string(),
            platform: c.platform.as_str(),
            base_url: c.credentials.base_url.as_ref().map(|u| u.as_str().to_owned()),
            credentials: CredentialSummaryBody {
                kind: c.credentials.kind.as_str(),
                hint: c.credentials.hint.clone(),
                updated_at: timestamp(&c.credentials.updated_at),
            },
            repositories: c.repositories.iter().map(|r| r.as_str().to_owned()).collect(),
            service_mappings: c.service_mappings.iter().map(Into::into).collect(),
            lookback_days: c.lookback_days.get(),
            is_active: c.is_active,
            sync: c
                .sync
                .iter()
                .map(|s| SyncView {
                    repository: s.repository.as_str().to_owned(),
                    state: s.state.as_str(),
                    last_synced_at: s.last_synced_at.as_ref().map(timestamp),
                    error: s.error.clone(),
                    default_branch: s.default_branch.clone(),
                })
                .collect(),
            created_at: timestamp(&c.created_at),
            updated_at: timestamp(&c.updated_at),
        }
    }
}

/// `{"success": true, "data": <connection>}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The connection.
    pub data: ConnectionView,
}

/// Page metadata.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageMeta {
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `{"success": true, "data": [...], "meta": {"nextCursor": ...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionListEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The connections of this page.
    pub data: Vec<ConnectionView>,
    /// Paging.
    pub meta: PageMeta,
}

/// A one-flag acknowledgement such as `{"updated": true}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AckEnvelope {
    /// Always `true`.
    pub success: bool,
    /// `{"updated": true}`, `{"deleted": true}` or `{"invalidated": true}`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// One entry of `error.details`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetailDoc {
    /// A JSON pointer into the body (`/serviceMappings/0/repo`), or a header or query parameter name.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The error object.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBodyDoc {
    /// A stable code such as `VALIDATION_ERROR`.
    pub code: String,
    /// For people.
    pub message: String,
    /// Field-level details, when any. Quota errors add `limit`, `used`,
    /// `requested`; conflicts add `connectionId`.
    pub details: Option<Vec<ErrorDetailDoc>>,
    /// Quote it to support; also in the `X-Request-Id` header.
    pub request_id: String,
}

/// `{"success": false, "error": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    /// The error.
    pub error: ErrorBodyDoc,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garde_paths_become_pointers() {
        assert_eq!(garde_pointer("service_mappings[0].service_name"), "/serviceMappings/0/serviceName");
        assert_eq!(garde_pointer("lookback_days"), "/lookbackDays");
        assert_eq!(garde_pointer("credentials.app_password"), "/credentials/appPassword");
        assert_eq!(garde_message("lower than 1"), "must be at least 1");
        assert_eq!(garde_message("length is greater than 100"), "is too long: the maximum is 100");
    }
}
