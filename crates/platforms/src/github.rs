//! GitHub and GitHub Enterprise Server, through octocrab.
//!
//! octocrab supplies the request pipeline (its `AuthHeaderLayer` attaches the
//! token only to requests for the API's own host and port) over a transport
//! of ours, so that GitHub calls leave through the same guarded client as the
//! other platforms. We call its raw `_get` and read status, headers and body
//! ourselves: its typed API drops the `link`, rate-limit and `retry-after`
//! headers we need, and loses the status of non-JSON error bodies. octocrab's
//! own retry layer is not in the stack at all: our retry decides.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Limited};
use octocrab::service::middleware::auth_header::AuthHeaderLayer;
use octocrab::{AuthState, OctoBody, Octocrab, OctocrabBuilder};
use serde::Deserialize;
use sigsentry_domain::{RepoName, Secret};
use sigsentry_ports::{MergedPullRequest, PlatformError, PullRequestWindow, RepositoryInfo};
use url::Url;

use crate::Call;
use crate::outbound::{self, Lane, MAX_BODY_BYTES, Reply, SendError, find_source, with_retry};
use crate::rate_limit::{header_epoch, remaining_is_zero, retry_after};
use crate::response::{self, count_page, json};

/// The platform's name in errors and rate-limit keys.
pub(crate) const PLATFORM: &str = "GitHub";
/// The REST API version we speak.
const API_VERSION: &str = "2022-11-28";

/// `GET /user`: a 401 means the token is bad.
pub(crate) async fn verify(call: &Call<'_>, token: &Secret) -> Result<(), PlatformError> {
    let github = GitHub::new(call, token)?;
    github.get(&call.root.endpoint(PLATFORM, "/user")?, None).await.map(drop)
}

/// `GET /repos/{owner}/{repo}`: the default branch and visibility.
pub(crate) async fn repository(
    call: &Call<'_>,
    token: &Secret,
    repository: &RepoName,
) -> Result<RepositoryInfo, PlatformError> {
    #[derive(Deserialize)]
    struct Repo {
        default_branch: Option<String>,
        private: bool,
    }
    let github = GitHub::new(call, token)?;
    // RepoName allows only letters, digits, '-', '_' and '.' in each part: nothing to encode.
    let url = call.root.endpoint(PLATFORM, &format!("/repos/{}", repository.as_str()))?;
    let reply = github.get(&url, Some(repository)).await?;
    let repo: Repo = json(PLATFORM, &reply.body)?;
    Ok(RepositoryInfo { default_branch: repo.default_branch.filter(|b| !b.is_empty()), private: repo.private })
}

#[derive(Deserialize)]
struct Pull {
    number: u64,
    title: String,
    user: Option<User>,
    html_url: String,
    merged_at: Option<DateTime<Utc>>,
    merge_commit_sha: Option<String>,
    updated_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct File {
    filename: String,
}

/// Closed PRs, most recently updated first (GitHub has no `since` for
/// pulls), until one is older than the window; those merged inside it, with
/// their files.
pub(crate) async fn merged_pull_requests(
    call: &Call<'_>,
    token: &Secret,
    repository: &RepoName,
    window: PullRequestWindow,
) -> Result<Vec<MergedPullRequest>, PlatformError> {
    let github = GitHub::new(call, token)?;
    // A PR merged at T was updated at or after T, so nothing older than both
    // bounds can be in the window: paging stops there.
    let lower_bound = window.updated_since.map_or(window.merged_since, |since| since.max(window.merged_since));
    let mut url = call.root.endpoint(
        PLATFORM,
        &format!("/repos/{}/pulls?state=closed&sort=updated&direction=desc&per_page=100", repository.as_str()),
    )?;
    let mut merged = Vec::new();
    let mut pages = 0;
    loop {
        count_page(PLATFORM, &mut pages)?;
        let reply = github.get(&url, Some(repository)).await?;
        let pulls: Vec<Pull> = json(PLATFORM, &reply.body)?;
        let mut past_window = false;
        for pull in pulls {
            if pull.updated_at < lower_bound {
                past_window = true;
                continue;
            }
            if let Some(merged_at) = pull.merged_at.filter(|at| *at >= window.merged_since) {
                merged.push((pull, merged_at));
            }
        }
        let next = outbound::link_next(&reply.headers);
        match next {
            Some(next) if !past_window => url = outbound::follow_on_same_host(PLATFORM, &call.root.url, &url, &next)?,
            _ => break,
        }
    }
    let mut result = Vec::with_capacity(merged.len());
    for (pull, merged_at) in merged {
        let files = github.files(repository, pull.number).await?;
        result.push(MergedPullRequest {
            number: pull.number,
            title: pull.title,
            author: pull.user.map(|user| user.login),
            url: pull.html_url,
            merged_at,
            merge_commit_sha: pull.merge_commit_sha,
            updated_at: pull.updated_at,
            files,
        });
    }
    Ok(result)
}

/// One authenticated octocrab client for one call.
struct GitHub<'a> {
    octocrab: Octocrab,
    call: &'a Call<'a>,
}

impl<'a> GitHub<'a> {
    fn new(call: &'a Call<'a>, token: &Secret) -> Result<Self, PlatformError> {
        let setup_failed =
            |what: &str| PlatformError::Unexpected { platform: PLATFORM, detail: format!("could not set up: {what}") };
        let base: http::Uri = call.root.url.as_str().parse().map_err(|_| setup_failed("the API root"))?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| setup_failed("the token holds characters a header cannot"))?;
        authorization.set_sensitive(true);
        let transport = Transport { lane: call.lane.clone(), headers: Arc::new(github_headers()) };
        // Infallible: every layer is given.
        let Ok(octocrab) = OctocrabBuilder::new_empty()
            .with_service(transport)
            .with_layer(&AuthHeaderLayer::new(Some(authorization), base.clone(), base))
            .with_auth(AuthState::None)
            .build();
        Ok(Self { octocrab, call })
    }

    /// `GET url`, retried when transient, its rate-limit headers recorded,
    /// and its status sorted: only a 2xx comes back as `Ok`.
    async fn get(&self, url: &Url, repository: Option<&RepoName>) -> Result<Reply, PlatformError> {
        let reply = with_retry(PLATFORM, self.call.retry, || self.send(url)).await?;
        self.call.limits.observe(PLATFORM, &self.call.origin, &reply.headers);
        self.sort(reply, repository)
    }

    async fn send(&self, url: &Url) -> Result<Reply, SendError> {
        let response = self.octocrab._get(url.as_str()).await.map_err(|error| octocrab_error(&error))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    SendError::Fatal("the response body is too large".to_owned())
                } else {
                    find_source::<SendError>(error.as_ref())
                        .cloned()
                        .unwrap_or_else(|| SendError::Transient("the connection failed".to_owned()))
                }
            })?
            .to_bytes();
        Ok(Reply { status: parts.status, headers: parts.headers, body })
    }

    fn sort(&self, reply: Reply, repository: Option<&RepoName>) -> Result<Reply, PlatformError> {
        let status = reply.status.as_u16();
        let limits = self.call.limits;
        let origin = self.call.origin.as_str();
        match status {
            200..=299 => {
                limits.succeeded(PLATFORM, origin);
                Ok(reply)
            }
            300..=399 => Err(outbound::redirect_refused(PLATFORM)),
            401 => Err(PlatformError::CredentialsRejected { platform: PLATFORM, status }),
            403 | 429 => Err(self.forbidden_or_limited(status, &reply)),
            404 => Err(match repository {
                Some(repository) => {
                    PlatformError::RepositoryNotFound { platform: PLATFORM, repository: repository.to_string() }
                }
                None => response::unexpected_status(PLATFORM, status, &reply.body),
            }),
            _ => Err(response::unexpected_status(PLATFORM, status, &reply.body)),
        }
    }

    /// GitHub answers both a spent rate limit and a missing permission with
    /// 403: the headers and the message tell them apart.
    fn forbidden_or_limited(&self, status: u16, reply: &Reply) -> PlatformError {
        let limits = self.call.limits;
        let origin = self.call.origin.as_str();
        let headers = &reply.headers;
        let message = response::message(&reply.body);
        let until = if remaining_is_zero(headers) {
            // Primary limit: wait for the reset.
            Some(
                header_epoch(headers, &["x-ratelimit-reset"])
                    .unwrap_or_else(|| limits.limited_without_time(PLATFORM, origin)),
            )
        } else if let Some(until) = retry_after(headers) {
            // Secondary limit with a wait.
            Some(until)
        } else if status == 429 || message.to_ascii_lowercase().contains("rate limit") {
            // Secondary limit without one: at least a minute, exponentially longer.
            Some(limits.limited_without_time(PLATFORM, origin))
        } else {
            None
        };
        match until {
            Some(until) => {
                limits.limited_until(PLATFORM, origin, until);
                PlatformError::RateLimited { platform: PLATFORM, until }
            }
            None => {
                PlatformError::PermissionMissing { platform: PLATFORM, detail: permission_detail(headers, message) }
            }
        }
    }

    /// The paths a PR touched (renamed files under their new name), all pages.
    async fn files(&self, repository: &RepoName, number: u64) -> Result<Vec<String>, PlatformError> {
        let root = &self.call.root;
        let mut url =
            root.endpoint(PLATFORM, &format!("/repos/{}/pulls/{number}/files?per_page=100", repository.as_str()))?;
        let mut paths = Vec::new();
        let mut pages = 0;
        loop {
            count_page(PLATFORM, &mut pages)?;
            let reply = self.get(&url, Some(repository)).await?;
            let files: Vec<File> = json(PLATFORM, &reply.body)?;
            paths.extend(files.into_iter().map(|file| file.filename));
            match outbound::link_next(&reply.headers) {
                Some(next) => url = outbound::follow_on_same_host(PLATFORM, &root.url, &url, &next)?,
                None => return Ok(paths),
            }
        }
    }
}

/// What GitHub said is missing: its message, and the permissions
/// `X-Accepted-GitHub-Permissions` names.
fn permission_detail(headers: &HeaderMap, message: String) -> String {
    let accepted = headers.get("x-accepted-github-permissions").and_then(|value| value.to_str().ok());
    match (message.is_empty(), accepted) {
        (true, None) => "403 Forbidden".to_owned(),
        (false, None) => message,
        (true, Some(accepted)) => format!("needs {accepted}"),
        (false, Some(accepted)) => format!("{message} (needs {accepted})"),
    }
}

fn github_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::ACCEPT, HeaderValue::from_static("application/vnd.github+json"));
    headers.insert("x-github-api-version", HeaderValue::from_static(API_VERSION));
    headers
}

/// Digs our [`SendError`] (or the reqwest failure) out of octocrab's error.
fn octocrab_error(error: &octocrab::Error) -> SendError {
    if let Some(send) = find_source::<SendError>(error) {
        return send.clone();
    }
    if let Some(reqwest) = find_source::<reqwest::Error>(error) {
        return SendError::from_reqwest(reqwest);
    }
    SendError::Transient("the request failed".to_owned())
}

/// The bottom of octocrab's stack: hands its requests to our guarded lane.
#[derive(Clone)]
struct Transport {
    lane: Lane,
    /// Headers every GitHub request carries; set here (not appended) so that
    /// octocrab's own version header is not doubled.
    headers: Arc<HeaderMap>,
}

impl tower_service::Service<http::Request<OctoBody>> for Transport {
    type Response = http::Response<reqwest::Body>;
    type Error = SendError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, SendError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // reqwest keeps its own pool: always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<OctoBody>) -> Self::Future {
        let lane = self.lane.clone();
        let headers = Arc::clone(&self.headers);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            for (name, value) in headers.iter() {
                parts.headers.insert(name.clone(), value.clone());
            }
            let request = http::Request::from_parts(parts, reqwest::Body::wrap(body));
            let request = reqwest::Request::try_from(request).map_err(|error| SendError::from_reqwest(&error))?;
            let response = lane.execute(request).await?;
            Ok(http::Response::from(response))
        })
    }
}
