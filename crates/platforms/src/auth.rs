//! How a session's requests authenticate.
//!
//! A session asks its [`Auth`] for the header of each request, so that a
//! credential that renews itself can hand out a fresh value without the
//! session knowing. Today every credential is a header fixed when the session
//! opens. The renewable ones go here as variants, by mechanism rather than by
//! platform, because the mechanism is what they share:
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
//! [`Auth::header`] is already async and fallible for them.

use std::fmt;

use base64::Engine;
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};
use sigsentry_domain::Secret;
use sigsentry_ports::PlatformError;

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
        let mut value = HeaderValue::from_str(value).map_err(|_| PlatformError::Unexpected {
            platform,
            detail: "the credentials hold characters a header cannot".to_owned(),
        })?;
        value.set_sensitive(true);
        Ok(Self::Fixed(AuthHeader { name, value }))
    }

    /// The header for the next request.
    ///
    /// # Errors
    /// None for a fixed header. A renewable credential will fail here when
    /// it cannot be renewed.
    pub(crate) async fn header(&self) -> Result<AuthHeader, PlatformError> {
        match self {
            Self::Fixed(header) => Ok(header.clone()),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(header) => f.debug_tuple("Fixed").field(&header.name).finish_non_exhaustive(),
        }
    }
}
