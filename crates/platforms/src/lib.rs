//! The platform adapters of SigSentry Code Repos: GitHub (through octocrab),
//! GitLab and Bitbucket Cloud, behind the [`PlatformClient`] port.
//!
//! One [`PlatformClients`] value serves every platform; the credentials say
//! which, and where. Every request leaves through one guarded path
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

mod backoff;
mod bitbucket;
mod config;
mod github;
mod gitlab;
mod outbound;
mod rate_limit;
mod response;

use std::sync::Arc;

use sigsentry_domain::{BaseUrl, Credentials, RepoName};
use sigsentry_ports::{
    MergedPullRequest, PlatformClient, PlatformError, PullRequestWindow, RateLimitState, RepositoryInfo,
};
use url::Url;

pub use config::{PlatformConfig, RetryConfig};

use crate::outbound::{Lane, Outbound};
use crate::rate_limit::RateLimitBook;

/// The [`PlatformClient`] for GitHub, GitLab and Bitbucket Cloud. Cheap to
/// clone: clones share their HTTP connections and rate-limit state.
#[derive(Debug, Clone)]
pub struct PlatformClients {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: PlatformConfig,
    outbound: Outbound,
    limits: RateLimitBook,
    github_root: Url,
    gitlab_root: Url,
    bitbucket_root: Url,
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
}

impl PlatformClients {
    /// Builds the clients from `config`.
    ///
    /// # Errors
    /// [`SetupError`] when a configured root is not a URL or TLS cannot be set up.
    pub fn new(config: PlatformConfig) -> Result<Self, SetupError> {
        let github_root = parse_root(&config.github_api_url, "github_api_url")?;
        let gitlab_root = parse_root(&config.gitlab_url, "gitlab_url")?;
        let bitbucket_root = parse_root(&config.bitbucket_api_url, "bitbucket_api_url")?;
        let outbound = Outbound::new(&config).map_err(SetupError::Client)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                outbound,
                limits: RateLimitBook::default(),
                github_root,
                gitlab_root,
                bitbucket_root,
            }),
        })
    }

    /// The API root a call goes to, and whether it came from a user.
    fn root(&self, credentials: &Credentials) -> Result<ApiRoot, PlatformError> {
        let inner = &self.inner;
        let (url, guarded) = match credentials {
            Credentials::GitHubToken { base_url: Some(base), .. } => (user_root(github::PLATFORM, base, "")?, true),
            Credentials::GitHubToken { base_url: None, .. } => (inner.github_root.clone(), false),
            Credentials::GitLabToken { base_url: Some(base), .. } => {
                (user_root(gitlab::PLATFORM, base, gitlab::API_PATH)?, true)
            }
            Credentials::GitLabToken { base_url: None, .. } => {
                (join_root(gitlab::PLATFORM, &inner.gitlab_root, gitlab::API_PATH)?, false)
            }
            Credentials::BitbucketAppPassword { .. } | Credentials::BitbucketApiToken { .. } => {
                (inner.bitbucket_root.clone(), false)
            }
        };
        Ok(ApiRoot { url, guarded })
    }

    fn call(&self, root: ApiRoot) -> Call<'_> {
        let inner = &self.inner;
        Call {
            origin: outbound::origin_of(&root.url),
            lane: inner.outbound.lane(root.guarded),
            root,
            retry: &inner.config.retry,
            limits: &inner.limits,
        }
    }
}

impl PlatformClient for PlatformClients {
    async fn verify_credentials(&self, credentials: &Credentials) -> Result<(), PlatformError> {
        let root = self.root(credentials)?;
        match credentials {
            Credentials::GitHubToken { token, .. } => github::verify(&self.call(root), token).await,
            Credentials::GitLabToken { token, .. } => gitlab::verify(&self.call(root), token).await,
            Credentials::BitbucketAppPassword { .. } | Credentials::BitbucketApiToken { .. } => {
                bitbucket::verify(&self.call(root), &bitbucket::Login::of(credentials)).await
            }
        }
    }

    async fn repository(
        &self,
        credentials: &Credentials,
        repository: &RepoName,
    ) -> Result<RepositoryInfo, PlatformError> {
        let root = self.root(credentials)?;
        match credentials {
            Credentials::GitHubToken { token, .. } => github::repository(&self.call(root), token, repository).await,
            Credentials::GitLabToken { token, .. } => gitlab::repository(&self.call(root), token, repository).await,
            Credentials::BitbucketAppPassword { .. } | Credentials::BitbucketApiToken { .. } => {
                let login = bitbucket::Login::of(credentials);
                bitbucket::repository(&self.call(root), &login, repository).await
            }
        }
    }

    async fn merged_pull_requests(
        &self,
        credentials: &Credentials,
        repository: &RepoName,
        window: PullRequestWindow,
    ) -> Result<Vec<MergedPullRequest>, PlatformError> {
        let root = self.root(credentials)?;
        match credentials {
            Credentials::GitHubToken { token, .. } => {
                github::merged_pull_requests(&self.call(root), token, repository, window).await
            }
            Credentials::GitLabToken { token, .. } => {
                gitlab::merged_merge_requests(&self.call(root), token, repository, window).await
            }
            Credentials::BitbucketAppPassword { .. } | Credentials::BitbucketApiToken { .. } => {
                let login = bitbucket::Login::of(credentials);
                bitbucket::merged_pull_requests(&self.call(root), &login, repository, window).await
            }
        }
    }

    fn rate_limit(&self, credentials: &Credentials) -> RateLimitState {
        let Ok(root) = self.root(credentials) else { return RateLimitState::default() };
        self.inner.limits.get(platform_name(credentials), &outbound::origin_of(&root.url))
    }
}

fn platform_name(credentials: &Credentials) -> &'static str {
    match credentials {
        Credentials::GitHubToken { .. } => github::PLATFORM,
        Credentials::GitLabToken { .. } => gitlab::PLATFORM,
        Credentials::BitbucketAppPassword { .. } | Credentials::BitbucketApiToken { .. } => bitbucket::PLATFORM,
    }
}

/// An API root: where the paths of a platform's API hang, without a trailing slash.
#[derive(Debug, Clone)]
pub(crate) struct ApiRoot {
    url: Url,
    /// The host came from a user (a connection's `baseUrl`): the address rules apply.
    guarded: bool,
}

impl ApiRoot {
    /// The URL of `path` (which starts with `/` and may carry a query) under this root.
    pub(crate) fn endpoint(&self, platform: &'static str, path: &str) -> Result<Url, PlatformError> {
        let root = self.url.as_str().trim_end_matches('/');
        Url::parse(&format!("{root}{path}"))
            .map_err(|_| PlatformError::Unexpected { platform, detail: "could not build a request URL".to_owned() })
    }
}

/// Everything one platform call needs.
pub(crate) struct Call<'a> {
    root: ApiRoot,
    /// `root`'s scheme, host and port: the key of its rate limits.
    origin: String,
    lane: &'a Lane,
    retry: &'a RetryConfig,
    limits: &'a RateLimitBook,
}

fn parse_root(raw: &str, name: &'static str) -> Result<Url, SetupError> {
    let url = Url::parse(raw.trim_end_matches('/')).map_err(|_| SetupError::InvalidRoot { name })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(SetupError::InvalidRoot { name });
    }
    Ok(url)
}

fn user_root(platform: &'static str, base: &BaseUrl, api_path: &str) -> Result<Url, PlatformError> {
    Url::parse(&format!("{}{api_path}", base.as_str().trim_end_matches('/')))
        .map_err(|_| PlatformError::Unexpected { platform, detail: "the connection's baseUrl is not a URL".to_owned() })
}

fn join_root(platform: &'static str, root: &Url, api_path: &str) -> Result<Url, PlatformError> {
    Url::parse(&format!("{}{api_path}", root.as_str().trim_end_matches('/')))
        .map_err(|_| PlatformError::Unexpected { platform, detail: "the configured root is not a URL".to_owned() })
}
