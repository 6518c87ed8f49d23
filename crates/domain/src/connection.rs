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
    BaseUrl, BaseUrlPolicy, BranchName, ConnectionId, CredentialKind, Credentials, FieldError, Invalid, LookbackDays,
    PathPrefix, Platform, ProjectId, RepoName, RepoSyncStatus, Secret, ServiceMapping, ServiceName, TenantId,
    ValidationErrors,
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

fn parse_credentials(
    platform: Platform,
    draft: CredentialsDraft,
    policy: BaseUrlPolicy,
    stored_base_url: Option<Option<BaseUrl>>,
    errors: &mut ValidationErrors,
) -> Option<Credentials> {
    let not_for = |field: &str, errors: &mut ValidationErrors, takes: &str| {
        errors.push(FieldError::new(
            format!("/credentials/{field}"),
            format!("is not a {} credential field; {} takes {takes}", platform.as_str(), platform.display_name()),
        ));
    };
    let secret = |value: Option<String>, field: &str, errors: &mut ValidationErrors| match value {
        None => {
            errors.push(FieldError::new(format!("/credentials/{field}"), "is required"));
            None
        }
        Some(value) => errors.check(format!("/credentials/{field}"), Secret::new(value)),
    };
    match platform {
        Platform::GitHub | Platform::GitLab => {
            let takes = "token and an optional baseUrl";
            for (field, present) in [
                ("username", draft.username.is_some()),
                ("appPassword", draft.app_password.is_some()),
                ("email", draft.email.is_some()),
                ("apiToken", draft.api_token.is_some()),
            ] {
                if present {
                    not_for(field, errors, takes);
                }
            }
            let token = secret(draft.token, "token", errors);
            let base_url = match draft.base_url {
                // A rotated token must never be sent to another host than before.
                BaseUrlField::Absent => Some(stored_base_url.unwrap_or(None)),
                BaseUrlField::Null => Some(None),
                BaseUrlField::Value(raw) => {
                    errors.check("/credentials/baseUrl", BaseUrl::parse(&raw, policy)).map(Some)
                }
            };
            let (token, base_url) = (token?, base_url?);
            Some(if platform == Platform::GitHub {
                Credentials::GitHubToken { token, base_url }
            } else {
                Credentials::GitLabToken { token, base_url }
            })
        }
        Platform::Bitbucket => {
            let takes = "username and appPassword, or email and apiToken";
            if draft.token.is_some() {
                not_for("token", errors, takes);
            }
            if draft.base_url != BaseUrlField::Absent {
                errors.push(FieldError::new(
                    "/credentials/baseUrl",
                    "is not supported for bitbucket: only Bitbucket Cloud is supported",
                ));
            }
            let app_password_form = draft.username.is_some() || draft.app_password.is_some();
            let api_token_form = draft.email.is_some() || draft.api_token.is_some();
            match (app_password_form, api_token_form) {
                (true, true) => {
                    errors.push(FieldError::new(
                        "/credentials",
                        "send either username and appPassword, or email and apiToken, not both",
                    ));
                    None
                }
                (false, false) => {
                    errors.push(FieldError::new("/credentials", format!("must hold {takes}")));
                    None
                }
                (true, false) => {
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
                (false, true) => {
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
    }
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
    use crate::SyncState;

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
