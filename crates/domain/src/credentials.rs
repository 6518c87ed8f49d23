//! Platform credentials. Secrets never show in `Debug`, logs or errors.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{BaseUrl, Invalid, Platform};

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
}

impl CredentialKind {
    /// The wire name: `token`, `appPassword` or `apiToken`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Token => "token",
            CredentialKind::AppPassword => "appPassword",
            CredentialKind::ApiToken => "apiToken",
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
            _ => Err(Invalid::new("unknown credential kind")),
        }
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
    /// GitLab personal access token, optionally for a self-managed GitLab.
    GitLabToken {
        /// The token.
        token: Secret,
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
}

/// What is sealed at rest: only the secret parts, in a stable JSON shape.
#[derive(Serialize, Deserialize)]
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
}

impl Credentials {
    /// The platform these credentials are for.
    pub const fn platform(&self) -> Platform {
        match self {
            Credentials::GitHubToken { .. } => Platform::GitHub,
            Credentials::GitLabToken { .. } => Platform::GitLab,
            Credentials::BitbucketAppPassword { .. } | Credentials::BitbucketApiToken { .. } => Platform::Bitbucket,
        }
    }

    /// The kind shown in the redacted summary.
    pub const fn kind(&self) -> CredentialKind {
        match self {
            Credentials::GitHubToken { .. } | Credentials::GitLabToken { .. } => CredentialKind::Token,
            Credentials::BitbucketAppPassword { .. } => CredentialKind::AppPassword,
            Credentials::BitbucketApiToken { .. } => CredentialKind::ApiToken,
        }
    }

    /// The self-hosted API root, if any.
    pub fn base_url(&self) -> Option<&BaseUrl> {
        match self {
            Credentials::GitHubToken { base_url, .. } | Credentials::GitLabToken { base_url, .. } => base_url.as_ref(),
            _ => None,
        }
    }

    /// The secret that authenticates: the token or password.
    pub fn secret(&self) -> &Secret {
        match self {
            Credentials::GitHubToken { token, .. } | Credentials::GitLabToken { token, .. } => token,
            Credentials::BitbucketAppPassword { app_password, .. } => app_password,
            Credentials::BitbucketApiToken { api_token, .. } => api_token,
        }
    }

    /// The redacted hint of the secret (see [`Secret::hint`]).
    pub fn hint(&self) -> Option<String> {
        self.secret().hint()
    }

    /// The secret parts as the bytes to seal. The base URL is not secret and is
    /// kept beside the sealed value.
    pub fn sealed_plaintext(&self) -> Vec<u8> {
        let mut parts = SealedParts { token: None, username: None, app_password: None, email: None, api_token: None };
        match self {
            Credentials::GitHubToken { token, .. } | Credentials::GitLabToken { token, .. } => {
                parts.token = Some(token.clone());
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
        // Serializing plain strings to JSON cannot fail.
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
            (Platform::GitLab, CredentialKind::Token) => {
                Ok(Credentials::GitLabToken { token: parts.token.ok_or_else(missing)?, base_url })
            }
            (Platform::Bitbucket, CredentialKind::AppPassword) => Ok(Credentials::BitbucketAppPassword {
                username: parts.username.ok_or_else(missing)?,
                app_password: parts.app_password.ok_or_else(missing)?,
            }),
            (Platform::Bitbucket, CredentialKind::ApiToken) => Ok(Credentials::BitbucketApiToken {
                email: parts.email.ok_or_else(missing)?,
                api_token: parts.api_token.ok_or_else(missing)?,
            }),
            _ => Err(Invalid::new("credential kind does not fit the platform")),
        }
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
