//! The platform adapters of SigSentry Code Repos: GitHub (through octocrab),
//! GitLab and Bitbucket Cloud, behind the [`PlatformClient`] port.
//!
//! One [`PlatformClients`] value serves every platform. It opens a
//! [`Session`] per set of credentials: the credentials are matched once,
//! there, to pick the platform, the API root and the authentication; the
//! session's calls take none. Every request leaves through one guarded path
//! (`outbound.rs`): connect and request timeouts, redirects only to the same
//! host, credentials only to the host they belong to, and for a connection's
//! own `baseUrl` the address rules of [`BaseUrlPolicy`](sigsentry_domain::BaseUrlPolicy),
//! checked on every connect.
//!
//! ```no_run
//! use sigsentry_platforms::{PlatformClients, PlatformConfig};
//!
//! let clients = PlatformClients::new(PlatformConfig::default()).expect("TLS is available");
//! # let _ = clients;
//! ```

mod api;
mod app_token;
mod auth;
mod backoff;
mod bitbucket;
mod config;
mod github;
mod gitlab;
mod listing;
mod oauth;
mod outbound;
mod rate_limit;
mod response;

use std::sync::Arc;

use sigsentry_domain::{BaseUrl, Credentials, OAuthTokens, RepoName};
use sigsentry_ports::{
    CredentialKeeper, DetachedKeeper, MergedPullRequest, PlatformClient, PlatformError, PlatformSession,
    PullRequestWindow, RateLimitState, RepositoryInfo, Telemetry, TreeSnapshot,
};
use url::Url;

pub use app_token::AppKeyError;
pub use config::{ClientSecret, GitHubAppConfig, ListingBounds, OAuthClientConfig, PlatformConfig, RetryConfig};

use crate::api::{Api, Keeper, Reporter};
use crate::app_token::AppMinter;
use crate::auth::{Auth, Installation, OAuthGrant};
use crate::bitbucket::BitbucketSession;
use crate::github::GitHubSession;
use crate::gitlab::GitLabSession;
use crate::oauth::{ClientAuth, TokenEndpoint};
use crate::outbound::Outbound;
use crate::rate_limit::RateLimitBook;

/// The [`PlatformClient`] for GitHub, GitLab and Bitbucket Cloud. Cheap to
/// clone: clones, and the sessions they open, share their HTTP connections
/// and rate-limit state.
#[derive(Debug, Clone)]
pub struct PlatformClients {
    inner: Arc<Inner>,
    telemetry: Reporter,
}

#[derive(Debug)]
struct Inner {
    retry: RetryConfig,
    bounds: ListingBounds,
    outbound: Outbound,
    limits: RateLimitBook,
    /// The configured API roots (GitLab's with its `/api/v4`).
    github_api: Url,
    gitlab_api: Url,
    bitbucket_api: Url,
    /// The GitLab instance root (its token endpoint is `{root}/oauth/token`).
    gitlab_root: Url,
    /// The operator's GitHub App, its installation tokens shared by every session.
    github_app: Option<Arc<AppMinter>>,
    gitlab_oauth: Option<OAuthClientConfig>,
    bitbucket_oauth: Option<OAuthClientConfig>,
    bitbucket_token_url: Url,
}

/// Why [`PlatformClients::new`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A configured root is not an absolute http(s) URL.
    #[error("{name} is not an absolute http(s) URL")]
    InvalidRoot {
        /// The configuration field.
        name: &'static str,
    },
    /// The HTTP client could not be built (its TLS setup failed).
    #[error("the HTTP client could not be built")]
    Client(#[source] reqwest::Error),
    /// The GitHub App's private key cannot be used.
    #[error(transparent)]
    AppKey(#[from] AppKeyError),
}

impl PlatformClients {
    /// Builds the clients from `config`.
    ///
    /// # Errors
    /// [`SetupError`] when a configured root is not a URL or TLS cannot be set up.
    pub fn new(config: PlatformConfig) -> Result<Self, SetupError> {
        let github_api = parse_root(&config.github_api_url, "", "github_api_url")?;
        let gitlab_api = parse_root(&config.gitlab_url, gitlab::API_PATH, "gitlab_url")?;
        let bitbucket_api = parse_root(&config.bitbucket_api_url, "", "bitbucket_api_url")?;
        let gitlab_root = parse_root(&config.gitlab_url, "", "gitlab_url")?;
        let bitbucket_token_url = parse_root(&config.bitbucket_token_url, "", "bitbucket_token_url")?;
        let github_app = config.github_app.as_ref().map(AppMinter::new).transpose()?.map(Arc::new);
        let outbound = Outbound::new(&config).map_err(SetupError::Client)?;
        Ok(Self {
            telemetry: Reporter::default(),
            inner: Arc::new(Inner {
                retry: config.retry,
                bounds: config.bounds,
                outbound,
                limits: RateLimitBook::default(),
                github_api,
                gitlab_api,
                bitbucket_api,
                gitlab_root,
                github_app,
                gitlab_oauth: config.gitlab_oauth,
                bitbucket_oauth: config.bitbucket_oauth,
                bitbucket_token_url,
            }),
        })
    }

    /// The same clients, reporting every platform call (by platform and
    /// status, with its latency) and every rate-limit wait to `telemetry`.
    #[must_use]
    pub fn with_telemetry(mut self, telemetry: Arc<dyn Telemetry>) -> Self {
        self.telemetry = Reporter(telemetry);
        self
    }

    /// The API a session talks to: the connection's own `baseUrl` (plus
    /// `api_path`) through the guarded lane, else the configured `cloud` root.
    fn api(
        &self,
        platform: &'static str,
        cloud: &Url,
        base_url: Option<&BaseUrl>,
        api_path: &str,
        auth: impl FnOnce(&Url, &outbound::Lane) -> Result<Auth, PlatformError>,
        keeper: Arc<dyn CredentialKeeper>,
    ) -> Result<Api, PlatformError> {
        let inner = &self.inner;
        let (root, guarded) = match base_url {
            Some(base) => (user_root(platform, base, api_path)?, true),
            None => (cloud.clone(), false),
        };
        let lane = inner.outbound.lane(guarded).clone();
        let auth = auth(&root, &lane)?;
        Ok(Api::new(platform, root, lane, inner.retry, inner.limits.clone(), auth, inner.bounds)
            .kept_by(Keeper(keeper))
            .reporting(self.telemetry.clone()))
    }

    /// The OAuth grant of a session: its tokens, and where they are renewed.
    fn oauth(
        &self,
        platform: &'static str,
        tokens: &OAuthTokens,
        url: Url,
        lane: outbound::Lane,
        client: Option<&OAuthClientConfig>,
        auth: ClientAuth,
    ) -> Result<Auth, PlatformError> {
        let client = client.cloned().ok_or_else(|| PlatformError::Unexpected {
            platform,
            detail: "the server's OAuth client is not configured".to_owned(),
        })?;
        let endpoint = TokenEndpoint { platform, url, lane, client, auth };
        Ok(Auth::Grant(Arc::new(OAuthGrant { tokens: tokio::sync::Mutex::new(tokens.clone()), endpoint })))
    }
}

impl PlatformClient for PlatformClients {
    type Session = Session;

    async fn open(&self, credentials: Credentials) -> Result<Session, PlatformError> {
        self.open_kept(credentials, Arc::new(DetachedKeeper)).await
    }

    async fn open_kept(
        &self,
        credentials: Credentials,
        keeper: Arc<dyn CredentialKeeper>,
    ) -> Result<Session, PlatformError> {
        let inner = &self.inner;
        let session = match &credentials {
            Credentials::GitHubToken { token, base_url } => {
                let auth = |_: &Url, _: &outbound::Lane| Auth::bearer(github::PLATFORM, token);
                let api = self.api(github::PLATFORM, &inner.github_api, base_url.as_ref(), "", auth, keeper)?;
                AnySession::GitHub(GitHubSession::new(api))
            }
            Credentials::GitHubApp { installation_id, base_url } => {
                let minter = inner.github_app.clone().ok_or_else(|| PlatformError::Unexpected {
                    platform: github::PLATFORM,
                    detail: "the server's GitHub App is not configured".to_owned(),
                })?;
                let auth = |root: &Url, lane: &outbound::Lane| {
                    Ok(Auth::Installation(Arc::new(Installation {
                        minter,
                        installation: *installation_id,
                        root: root.clone(),
                        lane: lane.clone(),
                        retry: inner.retry,
                    })))
                };
                let api = self.api(github::PLATFORM, &inner.github_api, base_url.as_ref(), "", auth, keeper)?;
                AnySession::GitHub(GitHubSession::new(api))
            }
            Credentials::GitLabToken { token, base_url } => {
                let auth = |_: &Url, _: &outbound::Lane| Auth::token(gitlab::PLATFORM, gitlab::TOKEN_HEADER, token);
                let api =
                    self.api(gitlab::PLATFORM, &inner.gitlab_api, base_url.as_ref(), gitlab::API_PATH, auth, keeper)?;
                AnySession::GitLab(GitLabSession::new(api))
            }
            Credentials::GitLabOAuth { tokens, base_url } => {
                // The token endpoint hangs off the instance root, on the API's lane.
                let root = match base_url {
                    Some(base) => user_root(gitlab::PLATFORM, base, "")?,
                    None => inner.gitlab_root.clone(),
                };
                let url =
                    Url::parse(&format!("{}/oauth/token", root.as_str().trim_end_matches('/'))).map_err(|_| {
                        PlatformError::Unexpected {
                            platform: gitlab::PLATFORM,
                            detail: "no token endpoint URL".to_owned(),
                        }
                    })?;
                let auth = |_: &Url, lane: &outbound::Lane| {
                    let client = inner.gitlab_oauth.as_ref();
                    self.oauth(gitlab::PLATFORM, tokens, url, lane.clone(), client, ClientAuth::Form)
                };
                let api =
                    self.api(gitlab::PLATFORM, &inner.gitlab_api, base_url.as_ref(), gitlab::API_PATH, auth, keeper)?;
                AnySession::GitLab(GitLabSession::new(api))
            }
            Credentials::BitbucketAppPassword { username: user, app_password: password }
            | Credentials::BitbucketApiToken { email: user, api_token: password } => {
                let auth = |_: &Url, _: &outbound::Lane| Auth::basic(bitbucket::PLATFORM, user, password);
                let api = self.api(bitbucket::PLATFORM, &inner.bitbucket_api, None, "", auth, keeper)?;
                AnySession::Bitbucket(BitbucketSession::new(api))
            }
            Credentials::BitbucketOAuth { tokens } => {
                // The token endpoint is the operator's, on another host than the API.
                let auth = |_: &Url, _: &outbound::Lane| {
                    let lane = inner.outbound.lane(false).clone();
                    let url = inner.bitbucket_token_url.clone();
                    let client = inner.bitbucket_oauth.as_ref();
                    self.oauth(bitbucket::PLATFORM, tokens, url, lane, client, ClientAuth::Basic)
                };
                let api = self.api(bitbucket::PLATFORM, &inner.bitbucket_api, None, "", auth, keeper)?;
                AnySession::Bitbucket(BitbucketSession::new(api))
            }
        };
        Ok(Session(session))
    }
}

/// A [`PlatformSession`] of [`PlatformClients`]: one platform, one set of
/// credentials. `Debug` shows no secret.
#[derive(Debug)]
pub struct Session(AnySession);

/// The session of each platform; chosen once, at [`PlatformClient::open`].
#[derive(Debug)]
enum AnySession {
    GitHub(GitHubSession),
    GitLab(GitLabSession),
    Bitbucket(BitbucketSession),
}

/// `$call` on the platform's own session, bound to `$session`.
macro_rules! on_platform {
    ($self:ident, $session:ident => $call:expr) => {
        match &$self.0 {
            AnySession::GitHub($session) => $call,
            AnySession::GitLab($session) => $call,
            AnySession::Bitbucket($session) => $call,
        }
    };
}

impl PlatformSession for Session {
    async fn verify(&self) -> Result<(), PlatformError> {
        on_platform!(self, session => session.verify().await)
    }

    async fn repository(&self, repository: &RepoName) -> Result<RepositoryInfo, PlatformError> {
        on_platform!(self, session => session.repository(repository).await)
    }

    async fn merged_pull_requests(
        &self,
        repository: &RepoName,
        window: PullRequestWindow,
    ) -> Result<Vec<MergedPullRequest>, PlatformError> {
        on_platform!(self, session => session.merged_pull_requests(repository, window).await)
    }

    async fn file_tree(
        &self,
        repository: &RepoName,
        branch: &str,
        known: Option<&str>,
    ) -> Result<TreeSnapshot, PlatformError> {
        on_platform!(self, session => session.file_tree(repository, branch, known).await)
    }

    fn rate_limit(&self) -> RateLimitState {
        on_platform!(self, session => session.rate_limit())
    }
}

/// A configured root, plus `api_path`, without a trailing slash.
fn parse_root(raw: &str, api_path: &str, name: &'static str) -> Result<Url, SetupError> {
    let url = Url::parse(&format!("{}{api_path}", raw.trim_end_matches('/')))
        .map_err(|_| SetupError::InvalidRoot { name })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(SetupError::InvalidRoot { name });
    }
    Ok(url)
}

/// A connection's `baseUrl`, plus `api_path`.
fn user_root(platform: &'static str, base: &BaseUrl, api_path: &str) -> Result<Url, PlatformError> {
    Url::parse(&format!("{}{api_path}", base.as_str().trim_end_matches('/')))
        .map_err(|_| PlatformError::Unexpected { platform, detail: "the connection's baseUrl is not a URL".to_owned() })
}
