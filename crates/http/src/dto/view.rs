//! Answers: what a connection, a cached pull request or an acknowledgement
//! looks like on the wire. Never a secret.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use sigsentry_app::{CachedPullRequest, HookAction, WebhookSecret};
use sigsentry_domain::{
    ConnectionId, CredentialKind, CredentialStatus, Platform, RepoConnection, ServiceMapping, SyncState,
};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use crate::envelope::True;
use crate::extract::PublicUrl;

/// A time as the API writes it: RFC 3339, UTC, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub DateTime<Utc>);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    }
}

impl ToSchema for Timestamp {}

/// A platform's wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlatformName {
    /// github.com or GitHub Enterprise Server.
    Github,
    /// gitlab.com or a self-managed GitLab.
    Gitlab,
    /// Bitbucket Cloud.
    Bitbucket,
}

impl From<Platform> for PlatformName {
    fn from(platform: Platform) -> Self {
        match platform {
            Platform::GitHub => Self::Github,
            Platform::GitLab => Self::Gitlab,
            Platform::Bitbucket => Self::Bitbucket,
        }
    }
}

/// How a connection authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum CredentialKindName {
    /// A personal access token (GitHub, GitLab).
    Token,
    /// A Bitbucket username and app password.
    AppPassword,
    /// An Atlassian account email and API token (Bitbucket).
    ApiToken,
    /// An installation of the server's GitHub App (GitHub).
    GithubApp,
    /// OAuth 2.0 tokens the server refreshes (GitLab, Bitbucket).
    Oauth,
}

impl From<CredentialKind> for CredentialKindName {
    fn from(kind: CredentialKind) -> Self {
        match kind {
            CredentialKind::Token => Self::Token,
            CredentialKind::AppPassword => Self::AppPassword,
            CredentialKind::ApiToken => Self::ApiToken,
            CredentialKind::GitHubApp => Self::GithubApp,
            CredentialKind::OAuth => Self::Oauth,
        }
    }
}

/// Whether the credentials work, the first that applies: `rejected` (the
/// platform refused them before any known expiry: revoked, refresh refused,
/// App installation removed or suspended), `expired`, `expiring` (within 7
/// days), `valid` (the last use worked), `unknown` (not used yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CredentialStatusName {
    /// The last use worked and no expiry is near.
    Valid,
    /// They expire within 7 days.
    Expiring,
    /// Their known expiry has passed.
    Expired,
    /// The platform refused them before any known expiry.
    Rejected,
    /// Not used yet.
    Unknown,
}

impl From<CredentialStatus> for CredentialStatusName {
    fn from(status: CredentialStatus) -> Self {
        match status {
            CredentialStatus::Valid => Self::Valid,
            CredentialStatus::Expiring => Self::Expiring,
            CredentialStatus::Expired => Self::Expired,
            CredentialStatus::Rejected => Self::Rejected,
            CredentialStatus::Unknown => Self::Unknown,
        }
    }
}

/// Where a repository's cache stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncStateName {
    /// Not yet synced, or invalidated since.
    Pending,
    /// A worker syncs it now.
    Syncing,
    /// The cache is current.
    Ready,
    /// The last sync failed; see `error`.
    Error,
}

impl From<SyncState> for SyncStateName {
    fn from(state: SyncState) -> Self {
        match state {
            SyncState::Pending => Self::Pending,
            SyncState::Syncing => Self::Syncing,
            SyncState::Ready => Self::Ready,
            SyncState::Error => Self::Error,
        }
    }
}

/// The redacted credentials summary.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialSummaryView {
    /// How the connection authenticates.
    pub kind: CredentialKindName,
    /// At most the last four characters of the secret; `null` for short secrets.
    pub hint: Option<String>,
    /// When the credentials were last set.
    pub updated_at: Timestamp,
    /// When the credentials given stop working, if known. `null` while the
    /// server renews them by itself (`githubApp`, `oauth`), or when the
    /// platform does not tell (Bitbucket).
    pub expires_at: Option<Timestamp>,
    /// Whether they work.
    pub status: CredentialStatusName,
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
    /// Where its cache stands.
    pub state: SyncStateName,
    /// Last successful sync.
    pub last_synced_at: Option<Timestamp>,
    /// Why the last sync failed.
    pub error: Option<String>,
    /// The repository's own default branch, learned at sync (`null` before).
    pub default_branch: Option<String>,
}

/// A repo connection as returned. Never holds a secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    /// The connection id.
    pub id: Uuid,
    /// The owning project.
    pub project_id: Uuid,
    /// The platform; fixed at creation.
    pub platform: PlatformName,
    /// Self-hosted API root; `null` for the cloud host.
    pub base_url: Option<String>,
    /// Redacted credentials.
    pub credentials: CredentialSummaryView,
    /// Attached repositories.
    pub repositories: Vec<String>,
    /// Service mappings.
    pub service_mappings: Vec<ServiceMappingView>,
    /// PR/MR lookback window in days.
    #[schema(minimum = 1, maximum = 365)]
    pub lookback_days: u16,
    /// `false` when paused.
    pub is_active: bool,
    /// One entry per repository, in repository order.
    pub sync: Vec<SyncView>,
    /// Where the platform delivers this connection's webhooks. The secret
    /// shows only in the answer that created the connection (not in an
    /// idempotent replay of it) or rotated the secret.
    #[schema(required = true)]
    pub webhook: Option<WebhookView>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last configuration change.
    pub updated_at: Timestamp,
}

/// A connection's webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    /// `POST` deliveries here: `{SIGSENTRY_PUBLIC_URL}/v1/hooks/{connectionId}`.
    pub url: String,
    /// The secret to enter in the platform's webhook settings (GitHub and
    /// Bitbucket sign with it; GitLab sends it back as its secret token). Shown
    /// once: in the answer of `POST /v1/config/repos` and of a `PUT` with
    /// `rotateWebhookSecret`, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, pattern = r"^ss_whsec_[A-Za-z0-9_-]{43}$")]
    pub secret: Option<String>,
}

impl WebhookView {
    /// The endpoint of connection `id`, with `secret` when this answer shows it.
    pub fn new(public: &PublicUrl, id: ConnectionId, secret: Option<&WebhookSecret>) -> Self {
        Self { url: public.hook_url(id), secret: secret.map(|s| s.expose().to_owned()) }
    }
}

impl ConnectionView {
    /// A connection as returned: its webhook URL under `public`, its
    /// credentials' status computed at `now`.
    pub fn new(c: &RepoConnection, public: &PublicUrl, now: DateTime<Utc>) -> Self {
        Self {
            id: *c.id.as_uuid(),
            project_id: *c.project_id.as_uuid(),
            platform: c.platform.into(),
            base_url: c.credentials.base_url.as_ref().map(|u| u.as_str().to_owned()),
            credentials: CredentialSummaryView {
                kind: c.credentials.kind.into(),
                hint: c.credentials.hint.clone(),
                updated_at: Timestamp(c.credentials.updated_at),
                expires_at: c.credentials.health.expires_at.map(Timestamp),
                status: c.credentials.health.status(now).into(),
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
                    state: s.state.into(),
                    last_synced_at: s.last_synced_at.map(Timestamp),
                    error: s.error.clone(),
                    default_branch: s.default_branch.clone(),
                })
                .collect(),
            // A GitHub App connection has none (`null`): the App's own hook
            // (`POST /v1/hooks/github`) serves it.
            webhook: c.credentials.kind.has_own_webhook().then(|| WebhookView::new(public, c.id, None)),
            created_at: Timestamp(c.created_at),
            updated_at: Timestamp(c.updated_at),
        }
    }
}

/// A merged pull request (merge request on GitLab) from the repo cache.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestView {
    /// The repository.
    pub repository: String,
    /// The PR number (the MR iid on GitLab).
    pub number: u64,
    /// Its title.
    pub title: String,
    /// The author's login, when known.
    pub author: Option<String>,
    /// Its web page.
    pub url: String,
    /// When it was merged.
    pub merged_at: Timestamp,
    /// The merge or squash commit, when known (may be abbreviated on Bitbucket).
    pub merge_commit_sha: Option<String>,
    /// Paths it touched (a renamed file under its new path).
    pub files: Vec<String>,
}

impl From<&CachedPullRequest> for PullRequestView {
    fn from(item: &CachedPullRequest) -> Self {
        let pr = &item.pull_request;
        Self {
            repository: item.repository.as_str().to_owned(),
            number: pr.number,
            title: pr.title.clone(),
            author: pr.author.clone(),
            url: pr.url.clone(),
            merged_at: Timestamp(pr.merged_at),
            merge_commit_sha: pr.merge_commit_sha.clone(),
            files: pr.files.iter().map(|file| file.path.clone()).collect(),
        }
    }
}

/// `{"updated": true}`, and the new webhook secret after a rotation.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Updated {
    /// Always `true`.
    pub updated: True,
    /// Only when the request asked `rotateWebhookSecret`: the endpoint and its
    /// new secret, shown this once (the old secret no longer verifies).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub webhook: Option<WebhookView>,
}

/// What a webhook delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HookActionName {
    /// A merge or a push to the default branch: the repository's sync runs now.
    Sync,
    /// An event not acted on, or a repository the connection does not hold.
    Ignored,
    /// A delivery already handled (same delivery id): nothing done again.
    Duplicate,
}

impl From<HookAction> for HookActionName {
    fn from(action: HookAction) -> Self {
        match action {
            HookAction::Sync => Self::Sync,
            HookAction::Ignored => Self::Ignored,
            HookAction::Duplicate => Self::Duplicate,
        }
    }
}

/// `{"action": "sync"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HookAccepted {
    /// What was done.
    pub action: HookActionName,
}

/// `{"deleted": true}`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Deleted {
    /// Always `true`.
    pub deleted: True,
}

/// `{"invalidated": true}`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Invalidated {
    /// Always `true`.
    pub invalidated: True,
}

/// `{"syncRequested": true}`.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequested {
    /// Always `true`.
    pub sync_requested: True,
}

/// What `/healthz` and `/readyz` say when all is well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// The process is up.
    Ok,
    /// The store answers.
    Ready,
}

/// `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// The status.
    pub status: HealthStatus,
}
