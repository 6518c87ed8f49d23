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
