//! What every session shares: where its platform's API is, the lane its
//! requests take, how they authenticate, and the one path a GET takes
//! (retried when transient, its rate-limit headers recorded, its status
//! sorted), which each platform joins through [`Dialect`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDateTime, Utc};
use sigsentry_domain::{CredentialUse, RepoName};
use sigsentry_ports::{CredentialKeeper, CredentialReport, NoTelemetry, PlatformError, RateLimitState, Telemetry};
use url::Url;

use crate::auth::{Auth, AuthHeader};
use crate::listing::{Budget, ChangedFiles};
use crate::outbound::{self, Accept, Lane, Reply, SendError, with_retry};
use crate::rate_limit::RateLimitBook;
use crate::response;
use crate::{ListingBounds, RetryConfig};

/// One platform API as a session reaches it.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    /// `GitHub`, `GitLab` or `Bitbucket`, in errors and rate-limit keys.
    platform: &'static str,
    /// Where the API's paths hang.
    root: Url,
    /// `root`'s scheme, host and port: the key of its rate limits.
    origin: String,
    /// Guarded when the root came from a user (a connection's `baseUrl`).
    lane: Lane,
    retry: RetryConfig,
    /// Shared by every session: limits belong to the host, not the session.
    limits: RateLimitBook,
    auth: Auth,
    /// Told what the calls teach about the credentials; renews OAuth grants.
    keeper: Keeper,
    /// Whether GitHub's `github-authentication-token-expiration` header
    /// tells this session's token expiry (a personal token on GitHub).
    expiry_header: bool,
    /// How much a file listing or a PR's changes may hold.
    bounds: ListingBounds,
    /// What this session has spent of the per-sync bounds.
    budget: Arc<Budget>,
    /// Where calls and rate-limit waits are reported.
    telemetry: Reporter,
}

/// The [`Telemetry`] platform calls are reported to; `Debug` shows nothing.
#[derive(Clone)]
pub(crate) struct Reporter(pub(crate) Arc<dyn Telemetry>);

impl Default for Reporter {
    fn default() -> Self {
        Self(Arc::new(NoTelemetry))
    }
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reporter")
    }
}

/// The session's credential keeper (`Debug` for the session's sake).
#[derive(Clone)]
pub(crate) struct Keeper(pub(crate) Arc<dyn CredentialKeeper>);

impl std::fmt::Debug for Keeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keeper")
    }
}

impl Api {
    pub(crate) fn new(
        platform: &'static str,
        root: Url,
        lane: Lane,
        retry: RetryConfig,
        limits: RateLimitBook,
        auth: Auth,
        bounds: ListingBounds,
    ) -> Self {
        let origin = root.origin().ascii_serialization();
        let expiry_header = platform == crate::github::PLATFORM && auth.is_fixed();
        let keeper = Keeper(Arc::new(sigsentry_ports::DetachedKeeper));
        let (budget, telemetry) = (Budget::new(bounds), Reporter::default());
        Self { platform, root, origin, lane, retry, limits, auth, keeper, expiry_header, bounds, budget, telemetry }
    }

    /// The same API, reporting its calls and rate-limit waits to `telemetry`.
    pub(crate) fn reporting(mut self, telemetry: Reporter) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// The same API, its calls reported to (and its grants renewed by) `keeper`.
    #[must_use]
    pub(crate) fn kept_by(mut self, keeper: Keeper) -> Self {
        self.keeper = keeper;
        self
    }

    /// Tells the keeper what a call taught.
    pub(crate) fn observe(&self, report: CredentialReport) {
        self.keeper.0.observe(report);
    }

    /// Whether the session's credentials are a personal token or Basic pair.
    pub(crate) fn fixed_auth(&self) -> bool {
        self.auth.is_fixed()
    }

    /// Whether the session authenticates as a GitHub App installation.
    pub(crate) fn app_installation(&self) -> bool {
        matches!(self.auth, Auth::Installation(_))
    }

    /// What a successful reply teaches: the credentials work, and on GitHub
    /// a personal token's expiry (the header's absence: it does not expire).
    fn accepted(&self, headers: &http::HeaderMap) {
        let expires_at = self.expiry_header.then(|| {
            headers
                .get("github-authentication-token-expiration")
                .and_then(|v| v.to_str().ok())
                .and_then(github_expiration)
        });
        self.observe(CredentialReport { outcome: Some(CredentialUse::Accepted), expires_at });
    }

    /// How much a file listing or a PR's changes may hold.
    pub(crate) fn bounds(&self) -> &ListingBounds {
        &self.bounds
    }

    /// An empty list of one PR's changed files, within the bounds and what
    /// is left of this session's budget.
    pub(crate) fn changed_files(&self) -> ChangedFiles {
        ChangedFiles::new(self.bounds, Arc::clone(&self.budget))
    }

    /// Whether a listing of merged PRs holding `kept` must stop; says so in
    /// the log when it must.
    pub(crate) fn enough_pull_requests(&self, kept: usize) -> bool {
        let full = kept >= self.bounds.max_pull_requests;
        if full {
            let max = self.bounds.max_pull_requests;
            tracing::warn!(platform = self.platform, max, "merged PRs past the most one sync keeps left out");
        }
        full
    }

    /// The lane requests take, for a platform that sends them its own way.
    pub(crate) fn lane(&self) -> &Lane {
        &self.lane
    }

    /// The URL of `path` (which starts with `/` and may carry a query) under the root.
    pub(crate) fn endpoint(&self, path: &str) -> Result<Url, PlatformError> {
        let root = self.root.as_str().trim_end_matches('/');
        Url::parse(&format!("{root}{path}")).map_err(|_| PlatformError::Unexpected {
            platform: self.platform,
            detail: "could not build a request URL".to_owned(),
        })
    }

    /// The URL of `path` (no query) under the root, followed by `segments`,
    /// each percent-encoded as one path segment (a `/` in one is `%2F`): for
    /// names that come from the platform, such as branches and directories.
    ///
    /// # Errors
    /// `Unexpected` for an empty, `.` or `..` segment, which a URL cannot
    /// carry as it is (and no Git ref or path has).
    pub(crate) fn endpoint_with<'a>(
        &self,
        path: &str,
        segments: impl IntoIterator<Item = &'a str>,
    ) -> Result<Url, PlatformError> {
        let mut url = self.endpoint(path)?;
        let unusable = || PlatformError::Unexpected {
            platform: self.platform,
            detail: "a name the platform sent cannot be put in a request URL".to_owned(),
        };
        {
            let mut path = url.path_segments_mut().map_err(|()| unusable())?;
            for segment in segments {
                if matches!(segment, "" | "." | "..") {
                    return Err(unusable());
                }
                path.push(segment);
            }
        }
        Ok(url)
    }

    /// A pagination or redirect target, resolved against `current`, and
    /// refused unless it stays on the root's host: credentials go nowhere else.
    pub(crate) fn follow(&self, current: &Url, next: &str) -> Result<Url, PlatformError> {
        outbound::follow_on_same_host(self.platform, &self.root, current, next)
    }

    /// The rate-limit state last seen for this host.
    pub(crate) fn rate_limit(&self) -> RateLimitState {
        self.limits.get(self.platform, &self.origin)
    }

    /// Records that the host limited us until `until` or, when it named no
    /// time, for a wait that grows with each such limit in a row; and says so.
    pub(crate) fn rate_limited(&self, until: Option<DateTime<Utc>>) -> PlatformError {
        let until = until.unwrap_or_else(|| self.limits.limited_without_time(self.platform, &self.origin));
        self.limits.limited_until(self.platform, &self.origin, until);
        let wait = (until - Utc::now()).to_std().unwrap_or_default();
        self.telemetry.0.rate_limit_wait(self.platform, wait);
        PlatformError::RateLimited { platform: self.platform, until }
    }

    /// `repository` is not there, or not visible to these credentials.
    pub(crate) fn not_found(&self, repository: &RepoName) -> PlatformError {
        PlatformError::RepositoryNotFound { platform: self.platform, repository: repository.to_string() }
    }
}

/// What sets one platform's requests apart. The rest of their path,
/// [`Dialect::get`], is the same for all.
pub(crate) trait Dialect: Sync {
    /// The API this session talks to.
    fn api(&self) -> &Api;

    /// Sends one GET authenticated with `auth`, its answer read as `accept`
    /// says: through the lane, unless the platform has its own client.
    fn send(
        &self,
        url: &Url,
        auth: &AuthHeader,
        accept: Accept,
    ) -> impl Future<Output = Result<Reply, SendError>> + Send {
        self.api().lane.get(url, auth, accept)
    }

    /// What a 403 or a 429 means here: each platform says "rate limited" and
    /// "permission missing" its own way.
    fn refused(&self, status: u16, reply: &Reply, repository: Option<&RepoName>) -> PlatformError;

    /// `GET url` for JSON; see [`Dialect::request`].
    fn get(
        &self,
        url: &Url,
        repository: Option<&RepoName>,
    ) -> impl Future<Output = Result<Reply, PlatformError>> + Send {
        self.request(url, repository, Accept::Json)
    }

    /// `GET url` for plain text, of which at most `max_bytes` are read (the
    /// reply says when there was more); see [`Dialect::request`].
    fn get_text_prefix(
        &self,
        url: &Url,
        repository: Option<&RepoName>,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Reply, PlatformError>> + Send {
        self.request(url, repository, Accept::TextPrefix(max_bytes))
    }

    /// `GET url` with the session's credentials, retried when transient,
    /// its rate-limit headers recorded, and its status sorted: only a 2xx
    /// comes back as `Ok`; a 404 is `RepositoryNotFound` when the request
    /// was about `repository`.
    fn request(
        &self,
        url: &Url,
        repository: Option<&RepoName>,
        accept: Accept,
    ) -> impl Future<Output = Result<Reply, PlatformError>> + Send {
        async move {
            let api = self.api();
            let platform = api.platform;
            // `endpoint` and `follow` already keep to the root; checked again
            // where the credentials are attached.
            if url.origin() != api.root.origin() {
                let detail = "a request for another host; not sent".to_owned();
                return Err(PlatformError::Unexpected { platform, detail });
            }
            api.budget.request(platform)?;
            let keeper = api.keeper.0.as_ref();
            let mut renewed = false;
            let reply = loop {
                let auth = api.auth.header(keeper).await?;
                let began = Instant::now();
                let reply = with_retry(platform, &api.retry, || self.send(url, &auth, accept)).await;
                let status = reply.as_ref().ok().map(|reply| reply.status.as_u16());
                api.telemetry.0.platform_call(platform, status, began.elapsed());
                let reply = reply?;
                // A refused installation token or OAuth access token is renewed
                // once, and the request tried again with the new one.
                if reply.status.as_u16() == 401 && !renewed && api.auth.refused(&auth, keeper).await? {
                    renewed = true;
                    continue;
                }
                break reply;
            };
            api.budget.read(platform, reply.body.len())?;
            api.limits.observe(platform, &api.origin, &reply.headers);
            let status = reply.status.as_u16();
            match status {
                200..=299 => {
                    api.limits.succeeded(platform, &api.origin);
                    api.accepted(&reply.headers);
                    Ok(reply)
                }
                300..=399 => Err(outbound::redirect_refused(platform)),
                401 => {
                    api.observe(CredentialReport { outcome: Some(CredentialUse::Refused), expires_at: None });
                    Err(PlatformError::CredentialsRejected { platform, status })
                }
                403 | 429 => Err(self.refused(status, &reply, repository)),
                404 => Err(match repository {
                    Some(repository) => api.not_found(repository),
                    None => response::unexpected_status(platform, status, &reply.body),
                }),
                _ => Err(response::unexpected_status(platform, status, &reply.body)),
            }
        }
    }
}

/// GitHub's `github-authentication-token-expiration` (`2026-12-02 10:00:00
/// UTC`, or with a numeric offset).
pub(crate) fn github_expiration(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Some(utc) = value.strip_suffix(" UTC") {
        return NaiveDateTime::parse_from_str(utc, "%Y-%m-%d %H:%M:%S").ok().map(|t| t.and_utc());
    }
    DateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S %z").ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_expirations_parse_in_both_spellings() {
        let utc = github_expiration("2026-12-02 10:00:00 UTC").unwrap();
        assert_eq!(utc.to_rfc3339(), "2026-12-02T10:00:00+00:00");
        assert_eq!(github_expiration("2026-12-02 11:00:00 +0100"), Some(utc));
        assert_eq!(github_expiration("soon"), None);
    }
}
