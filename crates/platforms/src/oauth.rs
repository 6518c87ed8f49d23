//! The OAuth 2.0 token endpoints of GitLab (`{root}/oauth/token`, the client
//! in the form) and Bitbucket (`bitbucket.org/site/oauth2/access_token`,
//! another host than its API, the client as Basic auth): a refresh token is
//! exchanged for a new grant. GitLab and Bitbucket may rotate the refresh
//! token; the caller stores what comes back in place of what it spent.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{TimeDelta, Utc};
use http::HeaderValue;
use http::header::AUTHORIZATION;
use serde::Deserialize;
use sigsentry_domain::{OAuthTokens, Secret};
use sigsentry_ports::{BoxFuture, OAuthExchange, PlatformError, RefreshError};
use url::Url;

use crate::config::OAuthClientConfig;
use crate::outbound::{Lane, send_error};

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// `client_id` and `client_secret` as form fields (GitLab).
    Form,
    /// HTTP Basic with the client id and secret (Bitbucket).
    Basic,
}

/// One platform's token endpoint, with the operator's client.
#[derive(Clone)]
pub(crate) struct TokenEndpoint {
    pub(crate) platform: &'static str,
    pub(crate) url: Url,
    pub(crate) lane: Lane,
    pub(crate) client: OAuthClientConfig,
    pub(crate) auth: ClientAuth,
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpoint").field("platform", &self.platform).field("url", &self.url.as_str()).finish()
    }
}

impl TokenEndpoint {
    async fn refresh(&self, refresh_token: &Secret) -> Result<OAuthTokens, RefreshError> {
        #[derive(Deserialize)]
        struct Grant {
            access_token: String,
            refresh_token: Option<String>,
            expires_in: Option<i64>,
        }
        #[derive(Deserialize)]
        struct Refusal {
            error: Option<String>,
        }
        let platform = self.platform;
        let failed =
            |detail: &str| RefreshError::Failed(PlatformError::Unexpected { platform, detail: detail.to_owned() });
        let mut fields = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose())];
        let mut headers = Vec::new();
        match self.auth {
            ClientAuth::Form => {
                fields.push(("client_id", &self.client.client_id));
                fields.push(("client_secret", self.client.client_secret.expose()));
            }
            ClientAuth::Basic => {
                let pair = STANDARD.encode(format!("{}:{}", self.client.client_id, self.client.client_secret.expose()));
                let mut value = HeaderValue::from_str(&format!("Basic {pair}"))
                    .map_err(|_| failed("the OAuth client id cannot be sent"))?;
                value.set_sensitive(true);
                headers.push((AUTHORIZATION, value));
            }
        }
        if let Some(redirect_uri) = &self.client.redirect_uri {
            fields.push(("redirect_uri", redirect_uri));
        }
        let form = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        // Sent once, never retried: the endpoint may have spent the refresh
        // token even when its answer is lost, and a second try would be refused.
        let reply = self
            .lane
            .post_form(&self.url, &headers, form)
            .await
            .map_err(|error| RefreshError::Failed(send_error(platform, error)))?;
        let status = reply.status.as_u16();
        match status {
            200..=299 => {
                let grant: Grant =
                    serde_json::from_slice(&reply.body).map_err(|_| failed("the token endpoint sent no grant"))?;
                let secret =
                    |value: String| Secret::new(value).map_err(|_| failed("the token endpoint sent an unusable token"));
                let access_token = secret(grant.access_token)?;
                // A platform that does not rotate sends no new refresh token.
                let refresh_token = match grant.refresh_token {
                    Some(rotated) => secret(rotated)?,
                    None => refresh_token.clone(),
                };
                // Both platforms grant two hours; an answer without a lifetime is taken as one hour.
                let lifetime = TimeDelta::seconds(grant.expires_in.unwrap_or(3600).clamp(60, 30 * 24 * 3600));
                Ok(OAuthTokens { access_token, refresh_token, expires_at: Utc::now() + lifetime })
            }
            400 | 401 => {
                let error = serde_json::from_slice::<Refusal>(&reply.body).ok().and_then(|r| r.error);
                match error.as_deref() {
                    Some("invalid_grant") => {
                        Err(RefreshError::Refused { platform, reason: "invalid_grant".to_owned() })
                    }
                    // The client itself was refused: the operator's configuration, not the user's grant.
                    other => Err(RefreshError::Failed(PlatformError::PermissionMissing {
                        platform,
                        detail: format!(
                            "the token endpoint refused the server's OAuth client ({}): check its id and secret",
                            other.unwrap_or("no reason given")
                        ),
                    })),
                }
            }
            500..=599 => Err(RefreshError::Failed(PlatformError::Unavailable {
                platform,
                detail: format!("the token endpoint answered {status}"),
            })),
            _ => Err(failed(&format!("the token endpoint answered {status}"))),
        }
    }
}

impl OAuthExchange for TokenEndpoint {
    fn exchange<'a>(&'a self, refresh_token: &'a Secret) -> BoxFuture<'a, Result<OAuthTokens, RefreshError>> {
        Box::pin(self.refresh(refresh_token))
    }
}
