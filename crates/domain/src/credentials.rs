//! Platform credentials. Secrets never show in `Debug`, logs or errors.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::{BaseUrl, FieldError, Invalid, Platform};

/// A secret string: a token, an app password. `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// Longest secret we accept; real tokens are far shorter.
const SECRET_MAX: usize = 1024;
/// Secrets shorter than this get no hint: four characters would give away too much of them.
const HINT_MIN_LEN: usize = 16;

impl Secret {
    /// A secret of 1 to 1024 characters without whitespace.
    ///
    /// # Errors
    /// [`Invalid`] when empty, too long, or holding whitespace or control characters.
    pub fn new(value: String) -> Result<Self, Invalid> {
        let len = value.chars().count();
        if len == 0 || len > SECRET_MAX {
            return Err(Invalid::new(format!("must be 1 to {SECRET_MAX} characters")));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Invalid::new("must not contain whitespace"));
        }
        Ok(Self(value))
    }

    /// The secret itself. Call only where it is sent to its platform or sealed.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// At most the last four characters, prefixed with `…`; `None` for short
    /// secrets.
    pub fn hint(&self) -> Option<String> {
        let chars: Vec<char> = self.0.chars().collect();
        (chars.len() >= HINT_MIN_LEN).then(|| {
            let tail: String = chars[chars.len() - 4..].iter().collect();
            format!("…{tail}")
        })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How a connection authenticates, as shown in a redacted summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A personal access token (GitHub, GitLab).
    Token,
    /// A Bitbucket username and app password.
    AppPassword,
    /// An Atlassian account email and API token (Bitbucket).
    ApiToken,
    /// An installation of the operator's GitHub App (GitHub).
    GitHubApp,
    /// OAuth 2.0 access and refresh tokens (GitLab, Bitbucket).
    OAuth,
}

impl CredentialKind {
    /// The wire name: `token`, `appPassword`, `apiToken`, `githubApp` or `oauth`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Token => "token",
            CredentialKind::AppPassword => "appPassword",
            CredentialKind::ApiToken => "apiToken",
            CredentialKind::GitHubApp => "githubApp",
            CredentialKind::OAuth => "oauth",
        }
    }

    /// Reads a wire name back.
    ///
    /// # Errors
    /// [`Invalid`] for an unknown name.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "token" => Ok(Self::Token),
            "appPassword" => Ok(Self::AppPassword),
            "apiToken" => Ok(Self::ApiToken),
            "githubApp" => Ok(Self::GitHubApp),
            "oauth" => Ok(Self::OAuth),
            _ => Err(Invalid::new("unknown credential kind")),
        }
    }

    /// Whether the service renews these credentials itself (it mints or
    /// refreshes the access tokens it sends): their own expiry is then not
    /// the user's concern until a renewal is refused.
    pub const fn renews_itself(self) -> bool {
        matches!(self, CredentialKind::GitHubApp | CredentialKind::OAuth)
    }

    /// Whether a connection with these credentials has a webhook endpoint
    /// and secret of its own. A GitHub App's deliveries all come to the
    /// App's one endpoint, signed with the operator's secret.
    pub const fn has_own_webhook(self) -> bool {
        !matches!(self, CredentialKind::GitHubApp)
    }
}

/// The id of an installation of a GitHub App: a positive integer that fits
/// a signed 64-bit column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct InstallationId(i64);

impl InstallationId {
    /// An installation id, 1 to 2^63 - 1.
    ///
    /// # Errors
    /// [`Invalid`] when zero or negative.
    pub fn new(value: i64) -> Result<Self, Invalid> {
        if value > 0 { Ok(Self(value)) } else { Err(Invalid::new("must be a positive integer")) }
    }

    /// The number.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for InstallationId {
    type Error = Invalid;

    fn try_from(value: i64) -> Result<Self, Invalid> {
        Self::new(value)
    }
}

impl From<InstallationId> for i64 {
    fn from(id: InstallationId) -> Self {
        id.0
    }
}

impl fmt::Display for InstallationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How long before an access token (an OAuth grant's, a GitHub App
/// installation's) expires it is renewed: a sync must not start on a token
/// that dies half-way.
pub const RENEW_BEFORE: TimeDelta = TimeDelta::minutes(5);

/// An OAuth 2.0 grant: the access token sent to the platform, the refresh
/// token that renews it, and when the access token stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthTokens {
    /// Sent as `Authorization: Bearer`.
    pub access_token: Secret,
    /// Exchanged for a new access token (and, on platforms that rotate
    /// them, a new refresh token) at the token endpoint; spent once.
    pub refresh_token: Secret,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
}

impl OAuthTokens {
    /// Whether the access token should be refreshed before it is used at
    /// `now`: it expires within `margin`.
    pub fn due(&self, now: DateTime<Utc>, margin: TimeDelta) -> bool {
        self.expires_at - margin <= now
    }
}

/// The credentials of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// GitHub personal access token, optionally for a GitHub Enterprise Server.
    GitHubToken {
        /// The token.
        token: Secret,
        /// `https://HOST/api/v3` for GitHub Enterprise Server; `None` for github.com.
        base_url: Option<BaseUrl>,
    },
    /// An installation of the operator's GitHub App: the service mints
    /// short-lived installation tokens with the App's key.
    GitHubApp {
        /// The installation.
        installation_id: InstallationId,
        /// `https://HOST/api/v3` for an App on GitHub Enterprise Server; `None` for github.com.
        base_url: Option<BaseUrl>,
    },
    /// GitLab personal access token, optionally for a self-managed GitLab.
    GitLabToken {
        /// The token.
        token: Secret,
        /// The instance root for self-managed GitLab; `None` for gitlab.com.
        base_url: Option<BaseUrl>,
    },
    /// GitLab OAuth 2.0 tokens of the operator's GitLab application.
    GitLabOAuth {
        /// The grant.
        tokens: OAuthTokens,
        /// The instance root for self-managed GitLab; `None` for gitlab.com.
        base_url: Option<BaseUrl>,
    },
    /// Bitbucket Cloud username and app password (Basic auth).
    BitbucketAppPassword {
        /// The Bitbucket username.
        username: String,
        /// The app password.
        app_password: Secret,
    },
    /// Bitbucket Cloud Atlassian account email and API token (Basic auth).
    BitbucketApiToken {
        /// The Atlassian account email.
        email: String,
        /// The API token.
        api_token: Secret,
    },
    /// Bitbucket Cloud OAuth 2.0 tokens of the operator's OAuth consumer.
    BitbucketOAuth {
        /// The grant.
        tokens: OAuthTokens,
    },
}

/// What is sealed at rest: only the secret parts, in a stable JSON shape.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SealedParts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app_password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    installation_id: Option<InstallationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oauth: Option<OAuthTokens>,
}

impl Credentials {
    /// The platform these credentials are for.
    pub const fn platform(&self) -> Platform {
        match self {
            Credentials::GitHubToken { .. } | Credentials::GitHubApp { .. } => Platform::GitHub,
            Credentials::GitLabToken { .. } | Credentials::GitLabOAuth { .. } => Platform::GitLab,
            Credentials::BitbucketAppPassword { .. }
            | Credentials::BitbucketApiToken { .. }
            | Credentials::BitbucketOAuth { .. } => Platform::Bitbucket,
        }
    }

    /// The kind shown in the redacted summary.
    pub const fn kind(&self) -> CredentialKind {
        match self {
            Credentials::GitHubToken { .. } | Credentials::GitLabToken { .. } => CredentialKind::Token,
            Credentials::GitHubApp { .. } => CredentialKind::GitHubApp,
            Credentials::GitLabOAuth { .. } | Credentials::BitbucketOAuth { .. } => CredentialKind::OAuth,
            Credentials::BitbucketAppPassword { .. } => CredentialKind::AppPassword,
            Credentials::BitbucketApiToken { .. } => CredentialKind::ApiToken,
        }
    }

    /// The self-hosted API root, if any.
    pub fn base_url(&self) -> Option<&BaseUrl> {
        match self {
            Credentials::GitHubToken { base_url, .. }
            | Credentials::GitHubApp { base_url, .. }
            | Credentials::GitLabToken { base_url, .. }
            | Credentials::GitLabOAuth { base_url, .. } => base_url.as_ref(),
            _ => None,
        }
    }

    /// The GitHub App installation, for `githubApp` credentials.
    pub const fn installation_id(&self) -> Option<InstallationId> {
        match self {
            Credentials::GitHubApp { installation_id, .. } => Some(*installation_id),
            _ => None,
        }
    }

    /// The OAuth grant, for `oauth` credentials.
    pub const fn oauth(&self) -> Option<&OAuthTokens> {
        match self {
            Credentials::GitLabOAuth { tokens, .. } | Credentials::BitbucketOAuth { tokens } => Some(tokens),
            _ => None,
        }
    }

    /// The same credentials with a renewed OAuth grant; `None` for other kinds.
    #[must_use]
    pub fn with_oauth(&self, tokens: OAuthTokens) -> Option<Self> {
        match self {
            Credentials::GitLabOAuth { base_url, .. } => {
                Some(Credentials::GitLabOAuth { tokens, base_url: base_url.clone() })
            }
            Credentials::BitbucketOAuth { .. } => Some(Credentials::BitbucketOAuth { tokens }),
            _ => None,
        }
    }

    /// The secret the user gave that authenticates: the token, the
    /// password, an OAuth grant's access token; `None` for an App
    /// installation, which holds none.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Credentials::GitHubToken { token, .. } | Credentials::GitLabToken { token, .. } => Some(token),
            Credentials::GitHubApp { .. } => None,
            Credentials::GitLabOAuth { tokens, .. } | Credentials::BitbucketOAuth { tokens } => {
                Some(&tokens.access_token)
            }
            Credentials::BitbucketAppPassword { app_password, .. } => Some(app_password),
            Credentials::BitbucketApiToken { api_token, .. } => Some(api_token),
        }
    }

    /// The redacted hint shown to people: the last four characters of a
    /// long token (see [`Secret::hint`]; an OAuth grant's access token as
    /// given), or the installation's number.
    pub fn hint(&self) -> Option<String> {
        match self {
            Credentials::GitHubToken { token, .. } | Credentials::GitLabToken { token, .. } => token.hint(),
            Credentials::GitHubApp { installation_id, .. } => Some(format!("installation {installation_id}")),
            Credentials::GitLabOAuth { tokens, .. } | Credentials::BitbucketOAuth { tokens } => {
                tokens.access_token.hint()
            }
            Credentials::BitbucketAppPassword { app_password, .. } => app_password.hint(),
            Credentials::BitbucketApiToken { api_token, .. } => api_token.hint(),
        }
    }

    /// The parts to seal, as bytes. The base URL is not secret and is kept
    /// beside the sealed value; the installation id is sealed too, so that
    /// it is bound to the row like the rest.
    pub fn sealed_plaintext(&self) -> Vec<u8> {
        let mut parts = SealedParts::default();
        match self {
            Credentials::GitHubToken { token, .. } | Credentials::GitLabToken { token, .. } => {
                parts.token = Some(token.clone());
            }
            Credentials::GitHubApp { installation_id, .. } => parts.installation_id = Some(*installation_id),
            Credentials::GitLabOAuth { tokens, .. } | Credentials::BitbucketOAuth { tokens } => {
                parts.oauth = Some(tokens.clone());
            }
            Credentials::BitbucketAppPassword { username, app_password } => {
                parts.username = Some(username.clone());
                parts.app_password = Some(app_password.clone());
            }
            Credentials::BitbucketApiToken { email, api_token } => {
                parts.email = Some(email.clone());
                parts.api_token = Some(api_token.clone());
            }
        }
        // Serializing plain strings, numbers and times to JSON cannot fail.
        serde_json::to_vec(&parts).unwrap_or_default()
    }

    /// Rebuilds credentials from opened bytes, their kind and the stored base URL.
    ///
    /// # Errors
    /// [`Invalid`] when the bytes do not hold what `kind` on `platform` needs:
    /// a corrupt or foreign row.
    pub fn from_sealed_plaintext(
        platform: Platform,
        kind: CredentialKind,
        base_url: Option<BaseUrl>,
        plaintext: &[u8],
    ) -> Result<Self, Invalid> {
        let parts: SealedParts =
            serde_json::from_slice(plaintext).map_err(|_| Invalid::new("sealed credentials are unreadable"))?;
        let missing = || Invalid::new("sealed credentials lack a part");
        match (platform, kind) {
            (Platform::GitHub, CredentialKind::Token) => {
                Ok(Credentials::GitHubToken { token: parts.token.ok_or_else(missing)?, base_url })
            }
            (Platform::GitHub, CredentialKind::GitHubApp) => {
                Ok(Credentials::GitHubApp { installation_id: parts.installation_id.ok_or_else(missing)?, base_url })
            }
            (Platform::GitLab, CredentialKind::Token) => {
                Ok(Credentials::GitLabToken { token: parts.token.ok_or_else(missing)?, base_url })
            }
            (Platform::GitLab, CredentialKind::OAuth) => {
                Ok(Credentials::GitLabOAuth { tokens: parts.oauth.ok_or_else(missing)?, base_url })
            }
            (Platform::Bitbucket, CredentialKind::AppPassword) => Ok(Credentials::BitbucketAppPassword {
                username: parts.username.ok_or_else(missing)?,
                app_password: parts.app_password.ok_or_else(missing)?,
            }),
            (Platform::Bitbucket, CredentialKind::ApiToken) => Ok(Credentials::BitbucketApiToken {
                email: parts.email.ok_or_else(missing)?,
                api_token: parts.api_token.ok_or_else(missing)?,
            }),
            (Platform::Bitbucket, CredentialKind::OAuth) => {
                Ok(Credentials::BitbucketOAuth { tokens: parts.oauth.ok_or_else(missing)? })
            }
            _ => Err(Invalid::new("credential kind does not fit the platform")),
        }
    }
}

/// Which renewable credential kinds the operator has configured (the
/// GitHub App's id and key, the OAuth clients). A kind whose configuration
/// is missing cannot be renewed, so it is refused when set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenewalSetup {
    /// `SIGSENTRY_GITHUB_APP_ID` and its private key are set.
    pub github_app: bool,
    /// `SIGSENTRY_GITLAB_OAUTH_CLIENT_ID` and `..._SECRET` are set.
    pub gitlab_oauth: bool,
    /// `SIGSENTRY_BITBUCKET_OAUTH_CLIENT_ID` and `..._SECRET` are set.
    pub bitbucket_oauth: bool,
}

impl RenewalSetup {
    /// Every kind configured (tests, embedders that supply their own renewal).
    pub const ALL: Self = Self { github_app: true, gitlab_oauth: true, bitbucket_oauth: true };

    /// Refuses `credentials` whose renewal the operator has not configured,
    /// at `/credentials`, naming the settings that are missing.
    ///
    /// # Errors
    /// A [`FieldError`] at `/credentials`.
    pub fn check(&self, credentials: &Credentials) -> Result<(), FieldError> {
        let missing = match credentials {
            Credentials::GitHubApp { .. } if !self.github_app => {
                "SIGSENTRY_GITHUB_APP_ID and SIGSENTRY_GITHUB_APP_PRIVATE_KEY (or SIGSENTRY_GITHUB_APP_PRIVATE_KEY_FILE)"
            }
            Credentials::GitLabOAuth { .. } if !self.gitlab_oauth => {
                "SIGSENTRY_GITLAB_OAUTH_CLIENT_ID and SIGSENTRY_GITLAB_OAUTH_CLIENT_SECRET"
            }
            Credentials::BitbucketOAuth { .. } if !self.bitbucket_oauth => {
                "SIGSENTRY_BITBUCKET_OAUTH_CLIENT_ID and SIGSENTRY_BITBUCKET_OAUTH_CLIENT_SECRET"
            }
            _ => return Ok(()),
        };
        Err(FieldError::new(
            "/credentials",
            format!(
                "{} credentials are not enabled on this server: its operator has not set {missing}",
                credentials.kind().as_str()
            ),
        ))
    }
}

/// A Bitbucket username: 1 to 100 characters without whitespace.
pub(crate) fn username(value: String) -> Result<String, Invalid> {
    let len = value.chars().count();
    if len == 0 || len > 100 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Invalid::new("must be 1 to 100 characters without whitespace"));
    }
    Ok(value)
}

/// An Atlassian account email: one `@`, something on each side, no
/// whitespace, at most 254 characters.
pub(crate) fn email(value: String) -> Result<String, Invalid> {
    let ok = value.chars().count() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(value.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@') && !domain.starts_with('.') && !domain.ends_with('.'));
    if ok { Ok(value) } else { Err(Invalid::new("must be an email address")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let creds =
            Credentials::GitHubToken { token: Secret::new("ghp_supersecretvalue1234".into()).unwrap(), base_url: None };
        let printed = format!("{creds:?}");
        assert!(!printed.contains("supersecret"), "{printed}");
    }

    #[test]
    fn hint_is_last_four_of_long_secrets_only() {
        assert_eq!(Secret::new("glpat-abcdefghijkx9Qz".into()).unwrap().hint().as_deref(), Some("…x9Qz"));
        assert_eq!(Secret::new("short".into()).unwrap().hint(), None);
    }

    #[test]
    fn secrets_refuse_whitespace_and_length() {
        assert!(Secret::new(String::new()).is_err());
        assert!(Secret::new("a b".into()).is_err());
        assert!(Secret::new("x".repeat(1025)).is_err());
        assert!(Secret::new("x".repeat(1024)).is_ok());
    }

    #[test]
    fn sealed_plaintext_round_trips() {
        let creds = Credentials::BitbucketApiToken {
            email: "dev@acme.io".into(),
            api_token: Secret::new("ATATT3xFfGF0abc".into()).unwrap(),
        };
        let bytes = creds.sealed_plaintext();
        let back =
            Credentials::from_sealed_plaintext(Platform::Bitbucket, CredentialKind::ApiToken, None, &bytes).unwrap();
        assert_eq!(back, creds);
        assert!(Credentials::from_sealed_plaintext(Platform::GitHub, CredentialKind::ApiToken, None, &bytes).is_err());
    }

    #[test]
    fn renewable_credentials_round_trip_and_show_no_secret() {
        let tokens = OAuthTokens {
            access_token: Secret::new("oauth-access-secretvalue-1234".into()).unwrap(),
            refresh_token: Secret::new("oauth-refresh-secretvalue-5678".into()).unwrap(),
            expires_at: DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000),
        };
        let app = Credentials::GitHubApp { installation_id: InstallationId::new(42).unwrap(), base_url: None };
        let gitlab = Credentials::GitLabOAuth { tokens: tokens.clone(), base_url: None };
        let bitbucket = Credentials::BitbucketOAuth { tokens: tokens.clone() };
        for (creds, platform) in
            [(&app, Platform::GitHub), (&gitlab, Platform::GitLab), (&bitbucket, Platform::Bitbucket)]
        {
            let bytes = creds.sealed_plaintext();
            let back = Credentials::from_sealed_plaintext(platform, creds.kind(), None, &bytes).unwrap();
            assert_eq!(&back, creds);
            let printed = format!("{creds:?}");
            assert!(!printed.contains("secretvalue"), "{printed}");
        }
        assert!(
            Credentials::from_sealed_plaintext(
                Platform::GitHub,
                CredentialKind::OAuth,
                None,
                &gitlab.sealed_plaintext()
            )
            .is_err()
        );
        assert_eq!(gitlab.with_oauth(tokens.clone()).map(|c| c.kind()), Some(CredentialKind::OAuth));
        assert_eq!(app.with_oauth(tokens.clone()), None);
        assert!(tokens.due(tokens.expires_at - TimeDelta::minutes(4), RENEW_BEFORE));
        assert!(!tokens.due(tokens.expires_at - TimeDelta::minutes(6), RENEW_BEFORE));
        assert!(InstallationId::new(0).is_err() && InstallationId::new(-1).is_err());
    }

    #[test]
    fn emails() {
        assert!(email("dev@acme.io".into()).is_ok());
        for bad in ["dev", "@acme.io", "dev@acme", "dev@@acme.io", "d ev@acme.io"] {
            assert!(email(bad.into()).is_err(), "{bad}");
        }
        // 254 characters, as the document counts them (not bytes).
        assert!(email(format!("{}@acme.io", "é".repeat(246))).is_ok());
        assert!(email(format!("{}@acme.io", "é".repeat(247))).is_err());
    }
}
