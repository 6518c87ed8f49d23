//! GitHub App installation tokens: a JWT signed RS256 with the App's key
//! (ring: RSA PKCS#1 v1.5 with SHA-256) is exchanged at
//! `POST {api}/app/installations/{id}/access_tokens` for a token that lives
//! an hour. Tokens are kept in memory per API root and installation, shared
//! by every session of the process, renewed a few minutes before they
//! expire or at once after a 401, and never stored.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderName, HeaderValue};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use sigsentry_domain::{CredentialUse, InstallationId, RENEW_BEFORE};
use sigsentry_ports::{CredentialKeeper, CredentialReport, PlatformError};
use url::Url;

use crate::config::GitHubAppConfig;
use crate::outbound::{Lane, with_retry};
use crate::response::{self, json};

const PLATFORM: &str = "GitHub";
/// GitHub allows a JWT at most 10 minutes of life; 9 leaves room for clock drift.
const JWT_LIFETIME: TimeDelta = TimeDelta::minutes(9);
/// `iat` in the past, as GitHub recommends, against clock drift.
const JWT_BACKDATE: TimeDelta = TimeDelta::seconds(60);

/// Why the App's configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AppKeyError {
    /// Not a PEM block of a private key.
    #[error("the GitHub App private key is not a PEM 'RSA PRIVATE KEY' or 'PRIVATE KEY' block")]
    NotPem,
    /// ring refused the key (not RSA, too short, malformed).
    #[error("the GitHub App private key is not a usable RSA key ({0})")]
    Rejected(String),
}

/// The App's id and key, and the installation tokens minted with them.
pub(crate) struct AppMinter {
    app_id: String,
    key: RsaKeyPair,
    rng: SystemRandom,
    /// Held across a mint, so a token is minted once however many sessions
    /// ask for it at the same time. Keyed by API root and installation.
    tokens: tokio::sync::Mutex<HashMap<(String, i64), Minted>>,
}

impl fmt::Debug for AppMinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppMinter").field("app_id", &self.app_id).finish_non_exhaustive()
    }
}

/// A minted token; its value is a sensitive header value.
#[derive(Clone)]
struct Minted {
    header: HeaderValue,
    expires_at: DateTime<Utc>,
}

/// Where to mint: the API root of the connection (github.com or a GitHub
/// Enterprise Server) and the lane that reaches it.
pub(crate) struct MintTarget<'a> {
    pub(crate) root: &'a Url,
    pub(crate) lane: &'a Lane,
    pub(crate) retry: &'a crate::RetryConfig,
}

impl AppMinter {
    /// Parses the App's key.
    ///
    /// # Errors
    /// [`AppKeyError`] when it is not an RSA private key in PEM.
    pub(crate) fn new(config: &GitHubAppConfig) -> Result<Self, AppKeyError> {
        let key = parse_pem_key(config.private_key_pem.expose())?;
        Ok(Self {
            app_id: config.app_id.clone(),
            key,
            rng: SystemRandom::new(),
            tokens: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// A JWT for the App, valid from a minute ago for nine minutes.
    pub(crate) fn jwt(&self, now: DateTime<Utc>) -> Result<String, PlatformError> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iat": (now - JWT_BACKDATE).timestamp(),
            "exp": (now + JWT_LIFETIME).timestamp(),
            "iss": self.app_id,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key.sign(&RSA_PKCS1_SHA256, &self.rng, signing_input.as_bytes(), &mut signature).map_err(|_| {
            PlatformError::Unexpected {
                platform: PLATFORM,
                detail: "the GitHub App's JWT could not be signed".to_owned(),
            }
        })?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// `Authorization: Bearer <installation token>`: the one in memory
    /// unless it expires within [`RENEW_BEFORE`], else a new one.
    ///
    /// # Errors
    /// `CredentialsRejected` (reported to `keeper` as refused) when GitHub
    /// says the installation is gone (404) or suspended (403); others as they come.
    pub(crate) async fn token(
        &self,
        target: &MintTarget<'_>,
        installation: InstallationId,
        keeper: &dyn CredentialKeeper,
    ) -> Result<HeaderValue, PlatformError> {
        let key = (target.root.as_str().to_owned(), installation.get());
        let mut tokens = self.tokens.lock().await;
        if let Some(minted) = tokens.get(&key)
            && minted.expires_at - RENEW_BEFORE > Utc::now()
        {
            return Ok(minted.header.clone());
        }
        let minted = self.mint(target, installation, keeper).await?;
        tokens.insert(key, minted.clone());
        Ok(minted.header)
    }

    /// Forgets `used` (GitHub refused it with a 401), so the next
    /// [`AppMinter::token`] mints a new one; a newer token is kept.
    pub(crate) async fn forget(&self, root: &Url, installation: InstallationId, used: &HeaderValue) {
        let mut tokens = self.tokens.lock().await;
        let key = (root.as_str().to_owned(), installation.get());
        if tokens.get(&key).is_some_and(|minted| minted.header == *used) {
            tokens.remove(&key);
        }
    }

    async fn mint(
        &self,
        target: &MintTarget<'_>,
        installation: InstallationId,
        keeper: &dyn CredentialKeeper,
    ) -> Result<Minted, PlatformError> {
        #[derive(Deserialize)]
        struct AccessToken {
            token: String,
            expires_at: DateTime<Utc>,
        }
        let root = target.root.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{root}/app/installations/{installation}/access_tokens")).map_err(|_| {
            PlatformError::Unexpected { platform: PLATFORM, detail: "could not build the token URL".to_owned() }
        })?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", self.jwt(Utc::now())?)).map_err(|_| {
            PlatformError::Unexpected { platform: PLATFORM, detail: "the JWT is not a header value".to_owned() }
        })?;
        authorization.set_sensitive(true);
        let headers = [
            (AUTHORIZATION, authorization),
            (ACCEPT, HeaderValue::from_static("application/vnd.github+json")),
            (HeaderName::from_static("x-github-api-version"), HeaderValue::from_static("2022-11-28")),
        ];
        // A mint spends nothing: retrying a transient failure is safe.
        let reply = with_retry(PLATFORM, target.retry, || target.lane.post_empty(&url, &headers)).await?;
        let status = reply.status.as_u16();
        match status {
            200..=299 => {
                let answer: AccessToken = json(PLATFORM, &reply.body)?;
                let mut header = HeaderValue::from_str(&format!("Bearer {}", answer.token)).map_err(|_| {
                    PlatformError::Unexpected { platform: PLATFORM, detail: "GitHub sent an unusable token".to_owned() }
                })?;
                header.set_sensitive(true);
                tracing::debug!(%installation, expires_at = %answer.expires_at, "GitHub App installation token minted");
                Ok(Minted { header, expires_at: answer.expires_at })
            }
            403 | 404 => {
                // The installation was removed (404) or suspended (403):
                // only a person can fix that, so it is not tried again now.
                keeper.observe(CredentialReport { outcome: Some(CredentialUse::Refused), expires_at: None });
                Err(PlatformError::CredentialsRejected { platform: PLATFORM, status })
            }
            401 => Err(PlatformError::PermissionMissing {
                platform: PLATFORM,
                detail: "GitHub refused the App's JWT: check SIGSENTRY_GITHUB_APP_ID and the App's private key"
                    .to_owned(),
            }),
            _ => Err(response::unexpected_status(PLATFORM, status, &reply.body)),
        }
    }
}

/// An RSA private key from PEM: PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`).
fn parse_pem_key(pem: &str) -> Result<RsaKeyPair, AppKeyError> {
    let block = |label: &str| -> Option<Vec<u8>> {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let start = pem.find(&begin)? + begin.len();
        let stop = start + pem[start..].find(&end)?;
        let body: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
        STANDARD.decode(body).ok()
    };
    if let Some(der) = block("RSA PRIVATE KEY") {
        RsaKeyPair::from_der(&der).map_err(|e| AppKeyError::Rejected(e.to_string()))
    } else if let Some(der) = block("PRIVATE KEY") {
        RsaKeyPair::from_pkcs8(&der).map_err(|e| AppKeyError::Rejected(e.to_string()))
    } else {
        Err(AppKeyError::NotPem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClientSecret;

    const PKCS1: &str = include_str!("../tests/fixtures/test-only-github-app-key.pem");
    const PKCS8: &str = include_str!("../tests/fixtures/test-only-github-app-key.pkcs8.pem");
    const PUBLIC: &[u8] = include_bytes!("../tests/fixtures/test-only-github-app-key.public.der");

    fn minter(pem: &str) -> Result<AppMinter, AppKeyError> {
        AppMinter::new(&GitHubAppConfig { app_id: "424242".into(), private_key_pem: ClientSecret::new(pem) })
    }

    #[test]
    fn both_pem_forms_sign_jwts_the_public_key_verifies() {
        for pem in [PKCS1, PKCS8] {
            let jwt = minter(pem).unwrap().jwt(Utc::now()).unwrap();
            let (input, signature) = jwt.rsplit_once('.').unwrap();
            let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
            let public = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, PUBLIC);
            public.verify(input.as_bytes(), &signature).unwrap();
        }
    }

    #[test]
    fn keys_that_are_not_rsa_pem_are_refused() {
        assert!(matches!(minter("not a key"), Err(AppKeyError::NotPem)));
        let garbage = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----";
        assert!(matches!(minter(garbage), Err(AppKeyError::Rejected(_))));
    }
}
