//! Request bodies. Every field is optional here, on purpose: the domain's
//! rules ([`sigsentry_domain::ConnectionSpec::from_draft`] and
//! [`sigsentry_domain::RepoConnection::apply`]) are the one rulebook, and
//! they report every broken rule at once, each at its JSON pointer; serde
//! only checks types and refuses unknown fields.

use serde::{Deserialize, Deserializer};
use sigsentry_domain::{BaseUrlField, CredentialsDraft, MappingDraft, PatchDraft, SpecDraft};
use utoipa::ToSchema;

/// Credentials as sent: `{token, baseUrl?}` for GitHub and GitLab;
/// `{username, appPassword}` or `{email, apiToken}` for Bitbucket.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialsBody {
    /// GitHub or GitLab personal access token.
    pub token: Option<String>,
    /// GitHub Enterprise Server (`https://HOST/api/v3`) or self-managed GitLab root.
    /// On update: left out keeps the stored one; `null` means the cloud host.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub base_url: Option<Option<String>>,
    /// Bitbucket username (with appPassword).
    pub username: Option<String>,
    /// Bitbucket app password.
    pub app_password: Option<String>,
    /// Atlassian account email (with apiToken).
    pub email: Option<String>,
    /// Atlassian API token.
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMappingBody {
    /// The service name as it appears in logs.
    pub service_name: Option<String>,
    /// One of the connection's repositories.
    pub repo: Option<String>,
    /// Subdirectory inside the repo; `""` (the default) is the root.
    pub path_prefix: Option<String>,
    /// Branch analyses reason about; defaults to the repository's own default branch.
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateConnectionBody {
    /// `github`, `gitlab` or `bitbucket`.
    pub platform: Option<String>,
    /// Platform-specific credentials.
    pub credentials: Option<CredentialsBody>,
    /// Repositories to attach (1 to 100).
    pub repositories: Option<Vec<String>>,
    /// Service-to-repo path mappings.
    pub service_mappings: Option<Vec<ServiceMappingBody>>,
    /// PR/MR history window, 1 to 365 days (default 30).
    pub lookback_days: Option<i64>,
}

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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateConnectionBody {
    /// Refused: the platform cannot change.
    #[schema(value_type = Option<String>)]
    pub platform: Option<serde_json::Value>,
    /// Replaces the credentials (a left-out `baseUrl` keeps the stored one).
    pub credentials: Option<CredentialsBody>,
    /// Replaces the repositories (1 to 100).
    pub repositories: Option<Vec<String>>,
    /// Replaces all mappings; `[]` clears them.
    pub service_mappings: Option<Vec<ServiceMappingBody>>,
    /// Replaces the lookback window, 1 to 365.
    pub lookback_days: Option<i64>,
    /// `false` pauses the connection; `true` resumes it.
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
