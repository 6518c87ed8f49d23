//! Request bodies. Every field is optional here, on purpose: the domain's
//! rules ([`sigsentry_domain::ConnectionSpec::from_draft`] and
//! [`sigsentry_domain::RepoConnection::apply`]) are the one rulebook, and
//! they report every broken rule at once, each at its JSON pointer; serde
//! only checks types and refuses unknown fields.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use sigsentry_domain::{BaseUrlField, CredentialsDraft, MappingDraft, OAuthDraft, PatchDraft, SpecDraft};
use utoipa::ToSchema;

/// Credentials as sent: `{token, baseUrl?}` for GitHub and GitLab;
/// `{installationId, baseUrl?}` for GitHub; `{oauth, baseUrl?}` for GitLab;
/// `{username, appPassword}`, `{email, apiToken}` or `{oauth}` for Bitbucket.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialsBody {
    /// GitHub or GitLab personal access token: 1 to 1024 characters, no whitespace.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub token: Option<String>,
    /// GitHub Enterprise Server (`https://HOST/api/v3`) or self-managed GitLab root:
    /// an `https` URL without user info, query or fragment. On update: left out keeps
    /// the stored one; `null` means the cloud host. The server also takes IP literals
    /// of public addresses (and, when its operator allows, `http` and private hosts);
    /// the pattern states the portable subset: a DNS name with a dot, no `localhost`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = r"^https://(?![^/]*(?:localhost|metadata\.goog|xn--))(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$")]
    pub base_url: Option<Option<String>>,
    /// Bitbucket username (with appPassword): 1 to 100 characters, no whitespace.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub username: Option<String>,
    /// Bitbucket app password: 1 to 1024 characters, no whitespace.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub app_password: Option<String>,
    /// Atlassian account email (with apiToken): one `@`, a domain with a dot, no whitespace.
    #[schema(
        nullable = false,
        min_length = 5,
        max_length = 254,
        pattern = r"^[^@\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@(?!\.)[^@\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\.[^@\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@.\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$"
    )]
    pub email: Option<String>,
    /// Atlassian API token: 1 to 1024 characters, no whitespace.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub api_token: Option<String>,
    /// The id of an installation of the server's GitHub App (GitHub).
    #[serde(default, deserialize_with = "integer")]
    #[schema(nullable = false, minimum = 1, maximum = 9_223_372_036_854_775_807_i64, format = Int64)]
    pub installation_id: Option<i64>,
    /// OAuth 2.0 tokens granted to the server's OAuth application (GitLab,
    /// Bitbucket): the server refreshes them before they expire.
    #[schema(nullable = false)]
    pub oauth: Option<OAuthBody>,
}

/// An OAuth 2.0 grant, as the platform's token endpoint gave it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthBody {
    /// The access token: 1 to 1024 characters, no whitespace.
    #[schema(
        required,
        nullable = false,
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub access_token: Option<String>,
    /// The refresh token: 1 to 1024 characters, no whitespace.
    #[schema(
        required,
        nullable = false,
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub refresh_token: Option<String>,
    /// When the access token expires: an RFC 3339 date-time with its offset.
    #[schema(required, nullable = false, value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub expires_at: Option<String>,
}

/// A JSON integer as JSON Schema counts them: `186` and `186.0` alike (a
/// number whose fraction is zero is an integer, however it is written). Values
/// past `i64` saturate, so the domain reports them as out of range; a number
/// with a fraction is a type error.
pub(super) fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Integer;

    impl Visitor<'_> for Integer {
        type Value = i64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            Ok(i64::try_from(v).unwrap_or(i64::MAX))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            if v.is_finite() && v.fract() == 0.0 {
                // `as` saturates: a huge integral value stays out of range.
                Ok(v as i64)
            } else {
                Err(E::invalid_type(de::Unexpected::Float(v), &self))
            }
        }
    }

    d.deserialize_any(Integer).map(Some)
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
            installation_id: body.installation_id,
            oauth: body.oauth.map(|oauth| OAuthDraft {
                access_token: oauth.access_token,
                refresh_token: oauth.refresh_token,
                expires_at: oauth.expires_at,
            }),
        }
    }
}

/// A service mapping.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMappingBody {
    /// The service name as it appears in logs: 1 to 128 printable characters (no
    /// control or invisible format characters), no leading or trailing
    /// whitespace; unique in the project, compared in Unicode NFC.
    // The classes are the domain's (`tests/http/openapi_document.rs` checks them
    // against it, character by character). Characters past U+FFFF stand in the
    // pattern as themselves: Rust's `\u{..}` escapes below, not the regex's, since
    // ECMA-262 spells them `\u{..}` (with the `u` flag) and Python's `re` cannot.
    #[schema(
        required,
        nullable = false,
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2\\u1680\\u180e\\u2000-\\u200f\\u2028-\\u202f\\u205f-\\u2064\\u2066-\\u206f\\u3000\\ufeff\\ufff9-\\ufffb\u{110BD}\u{110CD}\u{13430}-\u{1343F}\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}](?:[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb\u{110BD}\u{110CD}\u{13430}-\u{1343F}\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}]*[^\\u0000-\\u0020\\u007f-\\u00a0\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2\\u1680\\u180e\\u2000-\\u200f\\u2028-\\u202f\\u205f-\\u2064\\u2066-\\u206f\\u3000\\ufeff\\ufff9-\\ufffb\u{110BD}\u{110CD}\u{13430}-\u{1343F}\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}])?$"
    )]
    pub service_name: Option<String>,
    /// One of the connection's `repositories` (compared without regard to case).
    #[schema(required, nullable = false, min_length = 3, pattern = r"^[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)+$")]
    pub repo: Option<String>,
    /// Subdirectory inside the repo, relative to its root: `""` (the default) is the
    /// root; `src` is stored as `src/`. At most 1024 characters, a final `/` not
    /// counted; no leading `/`, no `.` or `..` segments, no empty segments, no
    /// backslash, no control characters.
    #[schema(
        nullable = false,
        max_length = 1025,
        pattern = r"^(?!/)(?!.*//)(?!(?:.*/)?\.\.?(?:/|$))(?!.{1024}[^/])[^\\\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub path_prefix: Option<String>,
    /// Branch analyses reason about (a git branch name, as `git check-ref-format
    /// --branch` takes it); defaults to the repository's own default branch.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = r"^(?!@$)(?![-/.])(?!.*(?:\.\.|@\{|//|/\.|\.lock/|\.lock$|[/.]$))[^\u0000-\u0020\u007f-\u009f~^:?*\[\\]+$"
    )]
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
    #[schema(required, nullable = false, value_type = Option<crate::dto::PlatformName>)]
    pub platform: Option<String>,
    /// Platform-specific credentials.
    #[schema(required, nullable = false)]
    pub credentials: Option<CredentialsBody>,
    /// Repositories to attach: 1 to 100 distinct names (compared without regard to
    /// case), none attached to another connection of the project.
    #[schema(required, nullable = false, min_items = 1, max_items = 100)]
    pub repositories: Option<Vec<String>>,
    /// Service-to-repo path mappings (at most 1000); service names distinct.
    #[schema(nullable = false, max_items = 1000)]
    pub service_mappings: Option<Vec<ServiceMappingBody>>,
    /// PR/MR history window, 1 to 365 days (default 30).
    #[serde(default, deserialize_with = "integer")]
    #[schema(nullable = false, minimum = 1, maximum = 365, format = Int32)]
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
    /// Refused whatever its value: the platform cannot change. Left out of the
    /// document, so the document's `additionalProperties: false` says the same.
    #[schema(ignore)]
    pub platform: Option<serde_json::Value>,
    /// Replaces the credentials, in the form of the connection's platform (a
    /// left-out `baseUrl` keeps the stored one).
    #[schema(nullable = false)]
    pub credentials: Option<CredentialsBody>,
    /// Replaces the repositories: 1 to 100 distinct names of the connection's
    /// platform; a repository a kept mapping names must stay.
    #[schema(nullable = false, min_items = 1, max_items = 100)]
    pub repositories: Option<Vec<String>>,
    /// Replaces all mappings (at most 1000); `[]` clears them.
    #[schema(nullable = false, max_items = 1000)]
    pub service_mappings: Option<Vec<ServiceMappingBody>>,
    /// Replaces the lookback window, 1 to 365.
    #[serde(default, deserialize_with = "integer")]
    #[schema(nullable = false, minimum = 1, maximum = 365, format = Int32)]
    pub lookback_days: Option<i64>,
    /// `false` pauses the connection; `true` resumes it.
    #[schema(nullable = false)]
    pub is_active: Option<bool>,
    /// `true` makes a new webhook secret, shown once in this answer
    /// (`data.webhook.secret`); the old one stops verifying at once.
    #[schema(nullable = false)]
    pub rotate_webhook_secret: Option<bool>,
}

impl UpdateConnectionBody {
    /// Whether the request asks for a new webhook secret.
    pub fn rotates_webhook_secret(&self) -> bool {
        self.rotate_webhook_secret == Some(true)
    }
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
