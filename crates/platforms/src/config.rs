//! What the operator configures: the cloud roots, the outbound rules, timeouts
//! and the retry schedule.

use std::time::Duration;

use sigsentry_domain::BaseUrlPolicy;

/// How the platform clients are set up.
///
/// The three roots are trusted operator configuration: they are not subject
/// to the address rules of [`BaseUrlPolicy`], so tests and egress proxies may
/// aim them at `127.0.0.1`. A connection's own `baseUrl` (GitHub Enterprise
/// Server, self-managed GitLab) is user input and always is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformConfig {
    /// The GitHub REST API root (`https://api.github.com`).
    pub github_api_url: String,
    /// The GitLab instance root (`https://gitlab.com`); the API is at `{root}/api/v4`.
    pub gitlab_url: String,
    /// The Bitbucket Cloud API root (`https://api.bitbucket.org/2.0`).
    pub bitbucket_api_url: String,
    /// The rules a connection's `baseUrl` host must pass, checked on every connect.
    pub policy: BaseUrlPolicy,
    /// Longest wait for a TCP + TLS connection.
    pub connect_timeout: Duration,
    /// Longest wait for one whole request, body included.
    pub request_timeout: Duration,
    /// How transient failures (5xx, connection errors, timeouts) are retried.
    pub retry: RetryConfig,
    /// The `User-Agent` sent with every request (GitHub refuses requests without one).
    pub user_agent: String,
    /// How much a file listing or a pull request's changes may hold.
    pub bounds: ListingBounds,
    /// The operator's GitHub App, for `githubApp` credentials.
    pub github_app: Option<GitHubAppConfig>,
    /// The operator's GitLab OAuth application, for GitLab `oauth` credentials.
    pub gitlab_oauth: Option<OAuthClientConfig>,
    /// The operator's Bitbucket OAuth consumer, for Bitbucket `oauth` credentials.
    pub bitbucket_oauth: Option<OAuthClientConfig>,
    /// Bitbucket's token endpoint (`https://bitbucket.org/site/oauth2/access_token`):
    /// another host than its API.
    pub bitbucket_token_url: String,
}

/// A secret of the operator's configuration: `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(***)")
    }
}

/// A GitHub App: its id (the JWT's `iss`) and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubAppConfig {
    /// The App's id, or its client id.
    pub app_id: String,
    /// Its private key, PEM: PKCS#1 (`BEGIN RSA PRIVATE KEY`, as GitHub
    /// issues it) or PKCS#8 (`BEGIN PRIVATE KEY`).
    pub private_key_pem: ClientSecret,
}

/// An OAuth client registered with a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClientConfig {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: ClientSecret,
    /// Sent with a refresh when set (GitLab checks it against the application's).
    pub redirect_uri: Option<String>,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        Self {
            github_api_url: "https://api.github.com".to_owned(),
            gitlab_url: "https://gitlab.com".to_owned(),
            bitbucket_api_url: "https://api.bitbucket.org/2.0".to_owned(),
            policy: BaseUrlPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            retry: RetryConfig::default(),
            user_agent: concat!("sigsentry-code-repos/", env!("CARGO_PKG_VERSION")).to_owned(),
            bounds: ListingBounds::default(),
            github_app: None,
            gitlab_oauth: None,
            bitbucket_oauth: None,
            bitbucket_token_url: "https://bitbucket.org/site/oauth2/access_token".to_owned(),
        }
    }
}

/// The retry schedule for transient failures.
///
/// Retry `n` (1-based) waits `base_delay × 2^(n-1)`, capped at
/// [`RetryConfig::max_delay`], plus a random jitter of up to half that wait.
/// With the defaults (3 retries, 500 ms): about 0.5 s, 1 s, 2 s, then the call
/// fails as `Unavailable`. Rate limits are not retried here: they come back
/// as `RateLimited` with the time to come back, and the caller schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    /// How many times a transient failure is retried after the first try.
    pub attempts: u32,
    /// The wait before the first retry; it doubles for each further one.
    pub base_delay: Duration,
    /// The longest single wait.
    pub max_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { attempts: 3, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(30) }
    }
}

/// The bounds on what one sync reads and keeps, so that a huge repository,
/// or a hostile server, can neither keep a sync reading forever nor make it
/// hold unbounded memory. Each response body is also capped (32 MiB), and
/// every listing of PRs or of their files stops after 1,000 pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListingBounds {
    /// The most files a repository's tree may list; past it the tree fetch
    /// fails, saying so (the correlation cannot trust a partial list).
    pub max_tree_paths: usize,
    /// The most bytes all paths of one tree may add up to; past it, likewise.
    pub max_tree_bytes: usize,
    /// The most requests (pages, subtrees, directories) one tree listing may
    /// take; past it, likewise.
    pub max_tree_requests: usize,
    /// The longest path kept, in bytes; a longer one (in a tree or a PR) is
    /// left out. Linux's `PATH_MAX`.
    pub max_path_bytes: usize,
    /// The most changed files kept per PR; the rest are left out (GitHub
    /// itself lists at most 3,000).
    pub max_files_per_pull_request: usize,
    /// The longest patch of one file (GitHub's `patch`, GitLab's `diff`)
    /// read for line ranges; a longer one keeps its path without ranges.
    pub max_patch_bytes: usize,
    /// The most of a PR's whole diff read (Bitbucket's raw diff); files
    /// past it keep their paths without ranges. The rest is not downloaded.
    pub max_diff_bytes: usize,
    /// The most merged PRs one sync keeps: the listing (newest update
    /// first) stops there, so the most recently updated are kept.
    pub max_pull_requests: usize,
    /// The most changed files one sync keeps over all its PRs; PRs listed
    /// after it is reached keep no files.
    pub max_changed_files: usize,
    /// The most bytes the paths of those files may add up to; likewise.
    pub max_changed_path_bytes: usize,
    /// The most requests one session (one sync) sends; past it the sync
    /// fails, saying so.
    pub max_requests: usize,
    /// The most response bytes one session reads; past it, likewise.
    pub max_response_bytes: usize,
}

impl Default for ListingBounds {
    fn default() -> Self {
        Self {
            max_tree_paths: 500_000,
            max_tree_bytes: 64 * 1024 * 1024,
            max_tree_requests: 10_000,
            max_path_bytes: 4096,
            max_files_per_pull_request: 10_000,
            max_patch_bytes: 1024 * 1024,
            max_diff_bytes: 5 * 1024 * 1024,
            max_pull_requests: 10_000,
            max_changed_files: 200_000,
            max_changed_path_bytes: 32 * 1024 * 1024,
            max_requests: 30_000,
            max_response_bytes: 1024 * 1024 * 1024,
        }
    }
}
