//! Repo connections: what a user configures, and the rules across fields.
//!
//! Requests arrive as drafts (every field optional, values unchecked). A
//! draft becomes a [`ConnectionSpec`] (create) or a [`ConnectionUpdate`]
//! (update, merged over what is stored) only when every rule holds; the
//! errors point into the request body with JSON pointers.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::credentials::{email, username};
use crate::{
    BaseUrl, BaseUrlPolicy, BranchName, ConnectionId, CredentialHealth, CredentialKind, Credentials, FieldError,
    InstallationId, Invalid, LookbackDays, OAuthTokens, PathPrefix, Platform, ProjectId, RepoName, RepoSyncStatus,
    Secret, ServiceMapping, ServiceName, TenantId, ValidationErrors,
};

/// Most repositories one connection may hold.
pub const MAX_REPOSITORIES: usize = 100;
/// Most service mappings one connection may hold.
pub const MAX_SERVICE_MAPPINGS: usize = 1000;

/// A `baseUrl` field as sent: left out, sent as `null`, or sent with a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BaseUrlField {
    /// Not in the request: on update, the stored one is kept.
    #[default]
    Absent,
    /// `null`: the platform's cloud host.
    Null,
    /// A URL to check.
    Value(String),
}

/// Credentials as sent, unchecked. Which fields must be set depends on the platform.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialsDraft {
    /// GitHub or GitLab token.
    pub token: Option<String>,
    /// GitHub Enterprise Server or self-managed GitLab root.
    pub base_url: BaseUrlField,
    /// Bitbucket username (app password auth).
    pub username: Option<String>,
    /// Bitbucket app password.
    pub app_password: Option<String>,
    /// Atlassian account email (API token auth).
    pub email: Option<String>,
    /// Atlassian API token.
    pub api_token: Option<String>,
    /// GitHub App installation id.
    pub installation_id: Option<i64>,
    /// OAuth 2.0 tokens (GitLab, Bitbucket).
    pub oauth: Option<OAuthDraft>,
}

/// OAuth 2.0 tokens as sent, unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OAuthDraft {
    /// Required.
    pub access_token: Option<String>,
    /// Required.
    pub refresh_token: Option<String>,
    /// Required: when the access token expires, RFC 3339.
    pub expires_at: Option<String>,
}

/// A service mapping as sent, unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappingDraft {
    /// Required.
    pub service_name: Option<String>,
    /// Required; one of the connection's repositories.
    pub repo: Option<String>,
    /// Defaults to the root.
    pub path_prefix: Option<String>,
    /// Defaults to the repository's own default branch.
    pub default_branch: Option<String>,
}

/// A create request, unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecDraft {
    /// Required.
    pub platform: Option<String>,
    /// Required.
    pub credentials: Option<CredentialsDraft>,
    /// Required, 1 to 100.
    pub repositories: Option<Vec<String>>,
    /// Defaults to none.
    pub service_mappings: Option<Vec<MappingDraft>>,
    /// Defaults to 30.
    pub lookback_days: Option<i64>,
}

/// An update request, unchecked. Fields left out keep their stored values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchDraft {
    /// Whether the request named `platform`; it cannot change, so that is refused.
    pub platform_sent: bool,
    /// Replaces the credentials whole (except a left-out `baseUrl`).
    pub credentials: Option<CredentialsDraft>,
    /// Replaces the repository list.
    pub repositories: Option<Vec<String>>,
    /// Replaces all mappings; an empty list clears them.
    pub service_mappings: Option<Vec<MappingDraft>>,
    /// Replaces the lookback window.
    pub lookback_days: Option<i64>,
    /// Pauses (`false`) or resumes (`true`).
    pub is_active: Option<bool>,
}

/// A checked, complete connection to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSpec {
    /// The credentials; they also fix the platform.
    pub credentials: Credentials,
    /// The attached repositories, distinct, 1 to 100.
    pub repositories: Vec<RepoName>,
    /// The service mappings; each names one of `repositories`.
    pub service_mappings: Vec<ServiceMapping>,
    /// The PR/MR lookback window.
    pub lookback_days: LookbackDays,
}

impl ConnectionSpec {
    /// The platform of the connection.
    pub fn platform(&self) -> Platform {
        self.credentials.platform()
    }

    /// Checks a create request.
    ///
    /// # Errors
    /// Every rule broken, each at its JSON pointer.
    pub fn from_draft(draft: SpecDraft, policy: BaseUrlPolicy) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let platform = match draft.platform.as_deref() {
            None => {
                errors.push(FieldError::new("/platform", "is required"));
                None
            }
            Some(raw) => errors.check("/platform", raw.parse::<Platform>()),
        };
        let credentials = match (platform, draft.credentials) {
            (_, None) => {
                errors.push(FieldError::new("/credentials", "is required"));
                None
            }
            (None, Some(_)) => None, // cannot be checked without a platform
            (Some(platform), Some(creds)) => parse_credentials(platform, creds, policy, None, &mut errors),
        };
        let repositories = match (platform, draft.repositories) {
            (_, None) => {
                errors.push(FieldError::new("/repositories", "is required"));
                None
            }
            (None, Some(_)) => None,
            (Some(platform), Some(names)) => parse_repositories(platform, &names, &mut errors),
        };
        let lookback_days = match draft.lookback_days {
            None => Some(LookbackDays::DEFAULT),
            Some(days) => errors.check("/lookbackDays", LookbackDays::new(days)),
        };
        let mappings = parse_mappings(platform, draft.service_mappings.unwrap_or_default(), &mut errors);
        if let (Some(repositories), Some(mappings)) = (&repositories, &mappings) {
            check_mappings_name_repositories(repositories, mappings, &mut errors, MappingsOrigin::Sent);
        }
        match (credentials, repositories, mappings, lookback_days) {
            (Some(credentials), Some(repositories), Some(service_mappings), Some(lookback_days))
                if errors.is_empty() =>
            {
                Ok(Self { credentials, repositories, service_mappings, lookback_days })
            }
            _ => Err(errors),
        }
    }
}

/// A redacted summary of stored credentials: what the API may show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSummary {
    /// How the connection authenticates.
    pub kind: CredentialKind,
    /// At most the last four characters of the secret.
    pub hint: Option<String>,
    /// The self-hosted API root; `None` for the cloud host.
    pub base_url: Option<BaseUrl>,
    /// When the credentials were last set.
    pub updated_at: DateTime<Utc>,
    /// What is known of their expiry and last use.
    pub health: CredentialHealth,
}

/// A stored repo connection, as read back (never holding the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoConnection {
    /// Its id.
    pub id: ConnectionId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The owning project.
    pub project_id: ProjectId,
    /// The platform; fixed at creation.
    pub platform: Platform,
    /// What the credentials are, redacted.
    pub credentials: CredentialSummary,
    /// The attached repositories.
    pub repositories: Vec<RepoName>,
    /// The service mappings.
    pub service_mappings: Vec<ServiceMapping>,
    /// The PR/MR lookback window.
    pub lookback_days: LookbackDays,
    /// `false` when paused.
    pub is_active: bool,
    /// One status per repository, in repository order.
    pub sync: Vec<RepoSyncStatus>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change of its configuration.
    pub updated_at: DateTime<Utc>,
    /// Bumped on every change; guards read-modify-write updates.
    pub version: i64,
}

/// A checked update, merged over the stored connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionUpdate {
    /// New credentials, when the request sent them.
    pub credentials: Option<Credentials>,
    /// The full repository list after the update.
    pub repositories: Vec<RepoName>,
    /// The full mapping list after the update.
    pub service_mappings: Vec<ServiceMapping>,
    /// The window after the update.
    pub lookback_days: LookbackDays,
    /// Active after the update.
    pub is_active: bool,
    /// Repositories the update adds (count against the quota; start `pending`).
    pub added: Vec<RepoName>,
    /// Whether every repository must be synced again (new credentials or window).
    pub resync_all: bool,
}

impl RepoConnection {
    /// Merges `draft` over this connection and checks the result.
    ///
    /// # Errors
    /// Every rule broken, each at its JSON pointer in the update request.
    pub fn apply(&self, draft: PatchDraft, policy: BaseUrlPolicy) -> Result<ConnectionUpdate, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if draft.platform_sent {
            errors.push(FieldError::new(
                "/platform",
                "cannot be changed; delete the connection and create it again on the other platform",
            ));
        }
        let credentials = draft.credentials.and_then(|creds| {
            parse_credentials(self.platform, creds, policy, Some(self.credentials.base_url.clone()), &mut errors)
        });
        let repositories = match &draft.repositories {
            None => Some(self.repositories.clone()),
            Some(names) => parse_repositories(self.platform, names, &mut errors),
        };
        let mappings_sent = draft.service_mappings.is_some();
        let mappings = match draft.service_mappings {
            None => Some(self.service_mappings.clone()),
            Some(drafts) => parse_mappings(Some(self.platform), drafts, &mut errors),
        };
        let lookback_days = match draft.lookback_days {
            None => Some(self.lookback_days),
            Some(days) => errors.check("/lookbackDays", LookbackDays::new(days)),
        };
        if let (Some(repositories), Some(mappings)) = (&repositories, &mappings) {
            let origin = if mappings_sent { MappingsOrigin::Sent } else { MappingsOrigin::Kept };
            check_mappings_name_repositories(repositories, mappings, &mut errors, origin);
        }
        let (Some(repositories), Some(service_mappings), Some(lookback_days)) = (repositories, mappings, lookback_days)
        else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let before: HashSet<String> = self.repositories.iter().map(RepoName::key).collect();
        let added = repositories.iter().filter(|r| !before.contains(&r.key())).cloned().collect();
        let resync_all = credentials.is_some() || lookback_days != self.lookback_days;
        Ok(ConnectionUpdate {
            credentials,
            repositories,
            service_mappings,
            lookback_days,
            is_active: draft.is_active.unwrap_or(self.is_active),
            added,
            resync_all,
        })
    }
}

/// The shapes credentials come in, each named by the fields that make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Token,
    Installation,
    OAuth,
    AppPassword,
    ApiToken,
}

impl Shape {
    /// How a message names the shape.
    const fn fields(self) -> &'static str {
        match self {
            Shape::Token => "token",
            Shape::Installation => "installationId",
            Shape::OAuth => "oauth",
            Shape::AppPassword => "username and appPassword",
            Shape::ApiToken => "email and apiToken",
        }
    }

    /// The shapes a platform takes.
    const fn of(platform: Platform) -> &'static [Shape] {
        match platform {
            Platform::GitHub => &[Shape::Token, Shape::Installation],
            Platform::GitLab => &[Shape::Token, Shape::OAuth],
            Platform::Bitbucket => &[Shape::AppPassword, Shape::ApiToken, Shape::OAuth],
        }
    }

    /// `a`, `a or b`, `a, b or c`.
    fn alternatives(shapes: &[Shape], joiner: &str) -> String {
        let names: Vec<&str> = shapes.iter().map(|s| s.fields()).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{}{joiner}{last}", rest.join(", ")),
            _ => names.concat(),
        }
    }
}

fn parse_credentials(
    platform: Platform,
    draft: CredentialsDraft,
    policy: BaseUrlPolicy,
    stored_base_url: Option<Option<BaseUrl>>,
    errors: &mut ValidationErrors,
) -> Option<Credentials> {
    let allowed = Shape::of(platform);
    let mut takes = Shape::alternatives(allowed, ", or ");
    if platform != Platform::Bitbucket {
        takes.push_str(", with an optional baseUrl");
    }
    // Each field, the shape it belongs to, and whether it was sent.
    let fields = [
        ("token", Shape::Token, draft.token.is_some()),
        ("installationId", Shape::Installation, draft.installation_id.is_some()),
        ("oauth", Shape::OAuth, draft.oauth.is_some()),
        ("username", Shape::AppPassword, draft.username.is_some()),
        ("appPassword", Shape::AppPassword, draft.app_password.is_some()),
        ("email", Shape::ApiToken, draft.email.is_some()),
        ("apiToken", Shape::ApiToken, draft.api_token.is_some()),
    ];
    let mut sent: Vec<Shape> = Vec::new();
    for (field, shape, present) in fields {
        if !present {
            continue;
        }
        if !allowed.contains(&shape) {
            errors.push(FieldError::new(
                format!("/credentials/{field}"),
                format!("is not a {} credential field; {} takes {takes}", platform.as_str(), platform.display_name()),
            ));
        } else if !sent.contains(&shape) {
            sent.push(shape);
        }
    }
    let base_url = if platform == Platform::Bitbucket {
        if draft.base_url != BaseUrlField::Absent {
            errors.push(FieldError::new(
                "/credentials/baseUrl",
                "is not supported for bitbucket: only Bitbucket Cloud is supported",
            ));
        }
        Some(None)
    } else {
        match draft.base_url {
            // New credentials must never be sent to another host than before.
            BaseUrlField::Absent => Some(stored_base_url.unwrap_or(None)),
            BaseUrlField::Null => Some(None),
            BaseUrlField::Value(raw) => errors.check("/credentials/baseUrl", BaseUrl::parse(&raw, policy)).map(Some),
        }
    };
    let shape = match sent.as_slice() {
        // A token is what most users send: point at it where it is one choice.
        [] if platform != Platform::Bitbucket => {
            let message = format!("is required ({} takes {takes})", platform.display_name());
            errors.push(FieldError::new("/credentials/token", message));
            return None;
        }
        [] => {
            errors.push(FieldError::new("/credentials", format!("must hold {takes}")));
            return None;
        }
        [shape] => *shape,
        several => {
            errors.push(FieldError::new(
                "/credentials",
                format!("send either {}, not both", Shape::alternatives(several, ", or ")),
            ));
            return None;
        }
    };
    let secret = |value: Option<String>, field: &str, errors: &mut ValidationErrors| match value {
        None => {
            errors.push(FieldError::new(format!("/credentials/{field}"), "is required"));
            None
        }
        Some(value) => errors.check(format!("/credentials/{field}"), Secret::new(value)),
    };
    match shape {
        Shape::Token => {
            let token = secret(draft.token, "token", errors);
            let (token, base_url) = (token?, base_url?);
            Some(if platform == Platform::GitHub {
                Credentials::GitHubToken { token, base_url }
            } else {
                Credentials::GitLabToken { token, base_url }
            })
        }
        Shape::Installation => {
            let installation_id = draft
                .installation_id
                .and_then(|id| errors.check("/credentials/installationId", InstallationId::new(id)));
            Some(Credentials::GitHubApp { installation_id: installation_id?, base_url: base_url? })
        }
        Shape::OAuth => {
            let oauth = draft.oauth.unwrap_or_default();
            let access_token = secret(oauth.access_token, "oauth/accessToken", errors);
            let refresh_token = secret(oauth.refresh_token, "oauth/refreshToken", errors);
            let expires_at = match oauth.expires_at {
                None => {
                    errors.push(FieldError::new("/credentials/oauth/expiresAt", "is required"));
                    None
                }
                Some(raw) => errors.check("/credentials/oauth/expiresAt", rfc3339(&raw)),
            };
            let tokens =
                OAuthTokens { access_token: access_token?, refresh_token: refresh_token?, expires_at: expires_at? };
            let base_url = base_url?;
            Some(if platform == Platform::GitLab {
                Credentials::GitLabOAuth { tokens, base_url }
            } else {
                Credentials::BitbucketOAuth { tokens }
            })
        }
        Shape::AppPassword => {
            let username = match draft.username {
                None => {
                    errors.push(FieldError::new("/credentials/username", "is required with appPassword"));
                    None
                }
                Some(value) => errors.check("/credentials/username", username(value)),
            };
            let app_password = secret(draft.app_password, "appPassword", errors);
            Some(Credentials::BitbucketAppPassword { username: username?, app_password: app_password? })
        }
        Shape::ApiToken => {
            let email = match draft.email {
                None => {
                    errors.push(FieldError::new("/credentials/email", "is required with apiToken"));
                    None
                }
                Some(value) => errors.check("/credentials/email", email(value)),
            };
            let api_token = secret(draft.api_token, "apiToken", errors);
            Some(Credentials::BitbucketApiToken { email: email?, api_token: api_token? })
        }
    }
}

/// An RFC 3339 time with its offset (`2026-12-24T10:00:00Z`), as UTC.
fn rfc3339(raw: &str) -> Result<DateTime<Utc>, Invalid> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Invalid::new("must be an RFC 3339 date-time with an offset, such as 2026-12-24T10:00:00Z"))
}

fn parse_repositories(platform: Platform, names: &[String], errors: &mut ValidationErrors) -> Option<Vec<RepoName>> {
    if names.is_empty() || names.len() > MAX_REPOSITORIES {
        errors.push(FieldError::new("/repositories", format!("must list 1 to {MAX_REPOSITORIES} repositories")));
        return None;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut parsed = Vec::with_capacity(names.len());
    let start = errors.errors().len();
    for (i, name) in names.iter().enumerate() {
        let Some(repo) = errors.check(format!("/repositories/{i}"), RepoName::parse(platform, name)) else {
            continue;
        };
        if let Some(first) = seen.insert(repo.key(), i) {
            errors.push(FieldError::new(format!("/repositories/{i}"), format!("repeats /repositories/{first}")));
            continue;
        }
        parsed.push(repo);
    }
    (errors.errors().len() == start).then_some(parsed)
}

fn parse_mappings(
    platform: Option<Platform>,
    drafts: Vec<MappingDraft>,
    errors: &mut ValidationErrors,
) -> Option<Vec<ServiceMapping>> {
    if drafts.len() > MAX_SERVICE_MAPPINGS {
        errors.push(FieldError::new("/serviceMappings", format!("must list at most {MAX_SERVICE_MAPPINGS} mappings")));
        return None;
    }
    let start = errors.errors().len();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut parsed = Vec::with_capacity(drafts.len());
    for (i, draft) in drafts.into_iter().enumerate() {
        let at = |field: &str| format!("/serviceMappings/{i}/{field}");
        let service_name = match draft.service_name {
            None => required(errors, at("serviceName")),
            Some(name) => errors.check(at("serviceName"), ServiceName::new(name)),
        };
        if let Some(name) = &service_name
            && let Some(first) = seen.insert(name.as_str().to_owned(), i)
        {
            errors.push(FieldError::new(at("serviceName"), format!("repeats /serviceMappings/{first}/serviceName")));
        }
        let repo = match (draft.repo, platform) {
            (None, _) => required(errors, at("repo")),
            (Some(_), None) => None,
            (Some(raw), Some(platform)) => errors.check(at("repo"), RepoName::parse(platform, &raw)),
        };
        let path_prefix = errors.check(at("pathPrefix"), PathPrefix::new(draft.path_prefix.as_deref().unwrap_or("")));
        let default_branch = match draft.default_branch {
            None => Some(None),
            Some(branch) => errors.check(at("defaultBranch"), BranchName::new(branch)).map(Some),
        };
        if let (Some(service_name), Some(repo), Some(path_prefix), Some(default_branch)) =
            (service_name, repo, path_prefix, default_branch)
        {
            parsed.push(ServiceMapping { service_name, repo, path_prefix, default_branch });
        }
    }
    (errors.errors().len() == start).then_some(parsed)
}

fn required<T>(errors: &mut ValidationErrors, field: String) -> Option<T> {
    errors.push(FieldError::new(field, "is required"));
    None
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MappingsOrigin {
    /// The request sent the mappings: point at the offending mapping.
    Sent,
    /// The mappings are the stored ones: point at the repository list that dropped a repo.
    Kept,
}

fn check_mappings_name_repositories(
    repositories: &[RepoName],
    mappings: &[ServiceMapping],
    errors: &mut ValidationErrors,
    origin: MappingsOrigin,
) {
    let keys: HashSet<String> = repositories.iter().map(RepoName::key).collect();
    for (i, mapping) in mappings.iter().enumerate() {
        if keys.contains(&mapping.repo.key()) {
            continue;
        }
        match origin {
            MappingsOrigin::Sent => {
                errors.push(FieldError::new(format!("/serviceMappings/{i}/repo"), "must be one of repositories"));
            }
            MappingsOrigin::Kept => errors.push(FieldError::new(
                "/repositories",
                format!(
                    "removes {} but service mapping '{}' still names it; send serviceMappings without it too",
                    mapping.repo, mapping.service_name
                ),
            )),
        }
    }
}

/// Why a stored row could not be read back as a domain value.
pub fn corrupt(what: &str) -> Invalid {
    Invalid::new(format!("stored {what} is invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RenewalSetup, SyncState};

    const POLICY: BaseUrlPolicy = BaseUrlPolicy { allow_private: false };

    fn github_draft() -> SpecDraft {
        SpecDraft {
            platform: Some("github".into()),
            credentials: Some(CredentialsDraft {
                token: Some("ghp_abcdefghijklmnop1234".into()),
                ..Default::default()
            }),
            repositories: Some(vec!["acme/checkout-api".into(), "acme/billing-worker".into()]),
            service_mappings: Some(vec![MappingDraft {
                service_name: Some("checkout-api".into()),
                repo: Some("acme/checkout-api".into()),
                path_prefix: Some("src".into()),
                default_branch: Some("main".into()),
            }]),
            lookback_days: None,
        }
    }

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.errors().iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_full_github_spec_passes_with_defaults() {
        let spec = ConnectionSpec::from_draft(github_draft(), POLICY).unwrap();
        assert_eq!(spec.platform(), Platform::GitHub);
        assert_eq!(spec.lookback_days.get(), 30);
        assert_eq!(spec.service_mappings[0].path_prefix.as_str(), "src/");
    }

    #[test]
    fn every_error_is_reported_at_its_pointer() {
        let mut draft = github_draft();
        draft.repositories = Some(vec!["acme/ok".into(), "not a repo".into(), "ACME/ok".into()]);
        draft.lookback_days = Some(0);
        draft.service_mappings = Some(vec![
            MappingDraft { service_name: Some("a".into()), repo: Some("acme/other".into()), ..Default::default() },
            MappingDraft {
                service_name: Some("a".into()),
                repo: None,
                path_prefix: Some("/abs".into()),
                ..Default::default()
            },
        ]);
        let errors = ConnectionSpec::from_draft(draft, POLICY).unwrap_err();
        assert_eq!(
            fields(&errors),
            [
                "/repositories/1",
                "/repositories/2",
                "/lookbackDays",
                "/serviceMappings/1/serviceName",
                "/serviceMappings/1/repo",
                "/serviceMappings/1/pathPrefix",
            ]
        );
    }

    #[test]
    fn mapping_repo_must_be_attached() {
        let mut draft = github_draft();
        draft.repositories = Some(vec!["acme/billing-worker".into()]);
        let errors = ConnectionSpec::from_draft(draft, POLICY).unwrap_err();
        assert_eq!(fields(&errors), ["/serviceMappings/0/repo"]);
    }

    #[test]
    fn unknown_platform_and_missing_fields() {
        let errors =
            ConnectionSpec::from_draft(SpecDraft { platform: Some("svn".into()), ..Default::default() }, POLICY)
                .unwrap_err();
        assert_eq!(fields(&errors), ["/platform", "/credentials", "/repositories"]);
    }

    #[test]
    fn bitbucket_forms() {
        let mut draft = SpecDraft {
            platform: Some("bitbucket".into()),
            credentials: Some(CredentialsDraft {
                email: Some("dev@acme.io".into()),
                api_token: Some("ATATT3xFfGF0abcdef".into()),
                ..Default::default()
            }),
            repositories: Some(vec!["acme/checkout-api".into()]),
            ..Default::default()
        };
        let spec = ConnectionSpec::from_draft(draft.clone(), POLICY).unwrap();
        assert_eq!(spec.credentials.kind(), CredentialKind::ApiToken);
        draft.credentials = Some(CredentialsDraft {
            username: Some("dev".into()),
            api_token: Some("x".into()),
            token: Some("t".into()),
            ..Default::default()
        });
        let errors = ConnectionSpec::from_draft(draft, POLICY).unwrap_err();
        assert_eq!(fields(&errors), ["/credentials/token", "/credentials"]);
    }

    fn with_credentials(platform: &str, credentials: CredentialsDraft) -> SpecDraft {
        let repositories = if platform == "gitlab" { "acme/platform/api" } else { "acme/api" };
        SpecDraft {
            platform: Some(platform.into()),
            credentials: Some(credentials),
            repositories: Some(vec![repositories.into()]),
            ..Default::default()
        }
    }

    fn oauth(expires_at: &str) -> OAuthDraft {
        OAuthDraft {
            access_token: Some("access-token-abcdefgh1234".into()),
            refresh_token: Some("refresh-token-abcdefgh5678".into()),
            expires_at: Some(expires_at.into()),
        }
    }

    #[test]
    fn github_app_installations() {
        let app = CredentialsDraft { installation_id: Some(12_345_678), ..Default::default() };
        let spec = ConnectionSpec::from_draft(with_credentials("github", app.clone()), POLICY).unwrap();
        assert_eq!(spec.credentials.kind(), CredentialKind::GitHubApp);
        assert_eq!(spec.credentials.hint().as_deref(), Some("installation 12345678"));
        let ghes =
            CredentialsDraft { base_url: BaseUrlField::Value("https://ghe.acme.io/api/v3".into()), ..app.clone() };
        let spec = ConnectionSpec::from_draft(with_credentials("github", ghes), POLICY).unwrap();
        assert_eq!(spec.credentials.base_url().unwrap().as_str(), "https://ghe.acme.io/api/v3");

        let zero = CredentialsDraft { installation_id: Some(0), ..Default::default() };
        let errors = ConnectionSpec::from_draft(with_credentials("github", zero), POLICY).unwrap_err();
        assert_eq!(fields(&errors), ["/credentials/installationId"]);

        // Mixing two shapes names both.
        let mixed = CredentialsDraft { token: Some("ghp_abcdefghijklmnop1234".into()), ..app };
        let errors = ConnectionSpec::from_draft(with_credentials("github", mixed), POLICY).unwrap_err();
        assert_eq!(fields(&errors), ["/credentials"]);
        assert_eq!(errors.errors()[0].message, "send either token, or installationId, not both");

        let on_gitlab = CredentialsDraft { installation_id: Some(1), ..Default::default() };
        let errors = ConnectionSpec::from_draft(with_credentials("gitlab", on_gitlab), POLICY).unwrap_err();
        assert_eq!(fields(&errors), ["/credentials/installationId", "/credentials/token"]);
    }

    #[test]
    fn oauth_grants() {
        let draft = CredentialsDraft { oauth: Some(oauth("2026-12-24T10:00:00+01:00")), ..Default::default() };
        let spec = ConnectionSpec::from_draft(with_credentials("gitlab", draft.clone()), POLICY).unwrap();
        assert_eq!(spec.credentials.kind(), CredentialKind::OAuth);
        let tokens = spec.credentials.oauth().unwrap();
        assert_eq!(tokens.expires_at.to_rfc3339(), "2026-12-24T09:00:00+00:00");
        let spec = ConnectionSpec::from_draft(with_credentials("bitbucket", draft.clone()), POLICY).unwrap();
        assert!(matches!(spec.credentials, Credentials::BitbucketOAuth { .. }));
        let errors = ConnectionSpec::from_draft(with_credentials("github", draft), POLICY).unwrap_err();
        assert_eq!(fields(&errors), ["/credentials/oauth", "/credentials/token"]);

        let partial = CredentialsDraft {
            oauth: Some(OAuthDraft { access_token: Some("a b".into()), ..oauth("yesterday") }),
            ..Default::default()
        };
        let errors = ConnectionSpec::from_draft(with_credentials("gitlab", partial), POLICY).unwrap_err();
        assert_eq!(fields(&errors), ["/credentials/oauth/accessToken", "/credentials/oauth/expiresAt"]);
        let empty = CredentialsDraft { oauth: Some(OAuthDraft::default()), ..Default::default() };
        let errors = ConnectionSpec::from_draft(with_credentials("bitbucket", empty), POLICY).unwrap_err();
        assert_eq!(
            fields(&errors),
            ["/credentials/oauth/accessToken", "/credentials/oauth/refreshToken", "/credentials/oauth/expiresAt"]
        );

        let mixed = CredentialsDraft {
            oauth: Some(oauth("2026-12-24T10:00:00Z")),
            email: Some("dev@acme.io".into()),
            api_token: Some("ATATT3xFfGF0abcdef".into()),
            ..Default::default()
        };
        let errors = ConnectionSpec::from_draft(with_credentials("bitbucket", mixed), POLICY).unwrap_err();
        assert_eq!(errors.errors()[0].message, "send either oauth, or email and apiToken, not both");
    }

    #[test]
    fn renewal_setup_names_the_missing_settings() {
        let app = Credentials::GitHubApp { installation_id: InstallationId::new(7).unwrap(), base_url: None };
        let error = RenewalSetup::default().check(&app).unwrap_err();
        assert_eq!(error.field, "/credentials");
        assert!(error.message.contains("SIGSENTRY_GITHUB_APP_ID"), "{}", error.message);
        assert!(RenewalSetup::ALL.check(&app).is_ok());
        let token = Credentials::GitHubToken { token: Secret::new("ghp_x".into()).unwrap(), base_url: None };
        assert!(RenewalSetup::default().check(&token).is_ok());
    }

    fn stored() -> RepoConnection {
        let spec = ConnectionSpec::from_draft(github_draft(), POLICY).unwrap();
        let now = DateTime::<Utc>::UNIX_EPOCH;
        RepoConnection {
            id: ConnectionId::from_uuid(uuid::Uuid::nil()),
            tenant_id: TenantId::from_uuid(uuid::Uuid::nil()),
            project_id: ProjectId::from_uuid(uuid::Uuid::nil()),
            platform: Platform::GitHub,
            credentials: CredentialSummary {
                kind: CredentialKind::Token,
                hint: None,
                base_url: Some(BaseUrl::parse("https://ghe.acme.io/api/v3", POLICY).unwrap()),
                updated_at: now,
                health: CredentialHealth::UNKNOWN,
            },
            sync: spec.repositories.iter().cloned().map(RepoSyncStatus::pending).collect(),
            repositories: spec.repositories,
            service_mappings: spec.service_mappings,
            lookback_days: spec.lookback_days,
            is_active: true,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    #[test]
    fn update_keeps_what_is_not_sent() {
        let conn = stored();
        let update = conn.apply(PatchDraft { is_active: Some(false), ..Default::default() }, POLICY).unwrap();
        assert!(!update.is_active);
        assert_eq!(update.repositories, conn.repositories);
        assert_eq!(update.service_mappings, conn.service_mappings);
        assert!(update.credentials.is_none() && update.added.is_empty() && !update.resync_all);
        assert_eq!(conn.sync[0].state, SyncState::Pending);
    }

    #[test]
    fn rotated_token_keeps_the_stored_base_url_unless_told() {
        let conn = stored();
        let creds = CredentialsDraft { token: Some("ghp_newnewnewnewnew".into()), ..Default::default() };
        let update = conn.apply(PatchDraft { credentials: Some(creds.clone()), ..Default::default() }, POLICY).unwrap();
        assert_eq!(update.credentials.unwrap().base_url().unwrap().as_str(), "https://ghe.acme.io/api/v3");
        assert!(update.resync_all);
        let to_cloud = CredentialsDraft { base_url: BaseUrlField::Null, ..creds };
        let update = conn.apply(PatchDraft { credentials: Some(to_cloud), ..Default::default() }, POLICY).unwrap();
        assert!(update.credentials.unwrap().base_url().is_none());
    }

    #[test]
    fn removing_a_mapped_repository_is_refused_and_empty_mappings_clear() {
        let conn = stored();
        let draft = PatchDraft { repositories: Some(vec!["acme/billing-worker".into()]), ..Default::default() };
        let errors = conn.apply(draft, POLICY).unwrap_err();
        assert_eq!(fields(&errors), ["/repositories"]);
        let draft = PatchDraft {
            repositories: Some(vec!["acme/billing-worker".into(), "acme/new".into()]),
            service_mappings: Some(vec![]),
            ..Default::default()
        };
        let update = conn.apply(draft, POLICY).unwrap();
        assert!(update.service_mappings.is_empty());
        assert_eq!(update.added.len(), 1);
        assert_eq!(update.added[0].as_str(), "acme/new");
    }

    #[test]
    fn platform_cannot_change() {
        let errors = stored().apply(PatchDraft { platform_sent: true, ..Default::default() }, POLICY).unwrap_err();
        assert_eq!(fields(&errors), ["/platform"]);
    }
}
