//! How a session's requests authenticate.
//!
//! A session asks its [`Auth`] for the header of each request, so that a
//! credential that renews itself can hand out a fresh value without the
//! session knowing. Personal tokens and Basic pairs are a header fixed when
//! the session opens. The renewable ones are variants by mechanism rather
//! than by platform, because the mechanism is what they share:
//!
//! - a GitHub App installation token: minted with the App's JWT at
//!   `POST {api}/app/installations/{id}/access_tokens`, kept in memory per
//!   installation (shared by the sessions through `PlatformClients`, like the
//!   rate-limit book), renewed a few minutes before expiry or after a 401.
//!   octocrab's own installation auth does not fit: it attaches the token
//!   only to `api.github.com`, not to GitHub Enterprise Server;
//! - an OAuth access token (GitLab and Bitbucket alike, `Authorization:
//!   Bearer`): refreshed before expiry or after a 401, under the store's lock
//!   because the refresh token may rotate.
//!
//! [`Auth::header`] hands out the token to send; [`Auth::refused`] renews
//! after a 401.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use chrono::Utc;
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};
use sigsentry_domain::{InstallationId, OAuthTokens, RENEW_BEFORE, Secret};
use sigsentry_ports::{CredentialKeeper, PlatformError};
use url::Url;

use crate::RetryConfig;
use crate::app_token::{AppMinter, MintTarget};
use crate::oauth::TokenEndpoint;
use crate::outbound::Lane;

/// The header that authenticates one request. Its value is marked
/// sensitive: `Debug` prints `Sensitive`, and HTTP/2 never indexes it.
#[derive(Debug, Clone)]
pub(crate) struct AuthHeader {
    pub(crate) name: HeaderName,
    pub(crate) value: HeaderValue,
}

/// How a session authenticates.
#[derive(Clone)]
pub(crate) enum Auth {
    /// A personal token or a Basic pair: the same header on every request.
    Fixed(AuthHeader),
    /// A GitHub App installation: tokens minted by the process's [`AppMinter`].
    Installation(Arc<Installation>),
    /// An OAuth grant: `Bearer` access tokens, refreshed through the keeper.
    Grant(Arc<OAuthGrant>),
}

/// A GitHub App installation, as a session reaches it.
pub(crate) struct Installation {
    pub(crate) minter: Arc<AppMinter>,
    pub(crate) installation: InstallationId,
    /// Where the session's API is (github.com or a GitHub Enterprise Server).
    pub(crate) root: Url,
    pub(crate) lane: Lane,
    pub(crate) retry: RetryConfig,
}

/// An OAuth grant, as a session holds it: the current tokens, and the token
/// endpoint that renews them.
pub(crate) struct OAuthGrant {
    pub(crate) tokens: tokio::sync::Mutex<OAuthTokens>,
    pub(crate) endpoint: TokenEndpoint,
}

impl Auth {
    /// `Authorization: Bearer <token>`.
    pub(crate) fn bearer(platform: &'static str, token: &Secret) -> Result<Self, PlatformError> {
        Self::fixed(platform, AUTHORIZATION, &format!("Bearer {}", token.expose()))
    }

    /// `<name>: <token>`, such as GitLab's `PRIVATE-TOKEN`.
    pub(crate) fn token(platform: &'static str, name: HeaderName, token: &Secret) -> Result<Self, PlatformError> {
        Self::fixed(platform, name, token.expose())
    }

    /// `Authorization: Basic base64(<user>:<password>)`.
    pub(crate) fn basic(platform: &'static str, user: &str, password: &Secret) -> Result<Self, PlatformError> {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
        Self::fixed(platform, AUTHORIZATION, &format!("Basic {pair}"))
    }

    fn fixed(platform: &'static str, name: HeaderName, value: &str) -> Result<Self, PlatformError> {
        Ok(Self::Fixed(AuthHeader { name, value: sensitive(platform, value)? }))
    }

    /// Whether the credentials are a personal token or a Basic pair (whose
    /// expiry, if any, is the user's concern), not renewed by the service.
    pub(crate) fn is_fixed(&self) -> bool {
        matches!(self, Self::Fixed(_))
    }

    /// The header for the next request: for renewable credentials, a token
    /// renewed first when it expires within [`RENEW_BEFORE`].
    ///
    /// # Errors
    /// `CredentialsRejected` when the platform refused to renew them; others
    /// when they cannot be renewed now.
    pub(crate) async fn header(&self, keeper: &dyn CredentialKeeper) -> Result<AuthHeader, PlatformError> {
        match self {
            Self::Fixed(header) => Ok(header.clone()),
            Self::Installation(app) => {
                let target = MintTarget { root: &app.root, lane: &app.lane, retry: &app.retry };
                let value = app.minter.token(&target, app.installation, keeper).await?;
                Ok(AuthHeader { name: AUTHORIZATION, value })
            }
            Self::Grant(grant) => {
                let mut tokens = grant.tokens.lock().await;
                if tokens.due(Utc::now(), RENEW_BEFORE) {
                    *tokens = keeper.renew_oauth(&tokens, &grant.endpoint).await?;
                }
                bearer_header(grant.endpoint.platform, &tokens.access_token)
            }
        }
    }

    /// After the platform refused `used` with a 401: renews the credentials
    /// if they can be, and says whether the request is worth one more try.
    ///
    /// # Errors
    /// As [`Auth::header`].
    pub(crate) async fn refused(
        &self,
        used: &AuthHeader,
        keeper: &dyn CredentialKeeper,
    ) -> Result<bool, PlatformError> {
        match self {
            Self::Fixed(_) => Ok(false),
            Self::Installation(app) => {
                app.minter.forget(&app.root, app.installation, &used.value).await;
                Ok(true)
            }
            Self::Grant(grant) => {
                let mut tokens = grant.tokens.lock().await;
                let current = bearer_header(grant.endpoint.platform, &tokens.access_token)?;
                // Another request of this session renewed it already: try the new one.
                if current.value != used.value {
                    return Ok(true);
                }
                *tokens = keeper.renew_oauth(&tokens, &grant.endpoint).await?;
                Ok(true)
            }
        }
    }
}

fn sensitive(platform: &'static str, value: &str) -> Result<HeaderValue, PlatformError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| PlatformError::Unexpected {
        platform,
        detail: "the credentials hold characters a header cannot".to_owned(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn bearer_header(platform: &'static str, token: &Secret) -> Result<AuthHeader, PlatformError> {
    Ok(AuthHeader { name: AUTHORIZATION, value: sensitive(platform, &format!("Bearer {}", token.expose()))? })
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(header) => f.debug_tuple("Fixed").field(&header.name).finish_non_exhaustive(),
            Self::Installation(app) => f.debug_tuple("Installation").field(&app.installation).finish(),
            Self::Grant(grant) => f.debug_tuple("OAuth").field(&grant.endpoint).finish_non_exhaustive(),
        }
    }
}
