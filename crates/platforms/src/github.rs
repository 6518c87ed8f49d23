//! GitHub and GitHub Enterprise Server, through octocrab.
//!
//! octocrab supplies the request pipeline over a transport of ours, so that
//! GitHub calls leave through the same guarded lane as the other platforms.
//! We call its raw `_get_with_headers`, with the session's authentication,
//! and read status, headers and body ourselves: its typed API drops the
//! `link`, rate-limit and `retry-after` headers we need, and loses the status
//! of non-JSON error bodies. octocrab's own retry layer is not in the stack
//! at all: our retry decides.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue};
use octocrab::{AuthState, OctoBody, Octocrab, OctocrabBuilder};
use serde::Deserialize;
use sigsentry_domain::RepoName;
use sigsentry_ports::{
    ChangedFile, MergedPullRequest, PlatformError, PlatformSession, PullRequestWindow, RateLimitState, RepositoryInfo,
    TreeSnapshot,
};
use url::Url;

use crate::api::{Api, Dialect};
use crate::auth::AuthHeader;
use crate::listing::{self, Patch, TreeListing};
use crate::outbound::{self, Accept, Lane, Reply, SendError, find_source, read_reply};
use crate::rate_limit::{header_epoch, remaining_is_zero, retry_after};
use crate::response::{self, count_page, json};

/// The platform's name in errors and rate-limit keys.
pub(crate) const PLATFORM: &str = "GitHub";
/// The REST API version we speak.
const API_VERSION: &str = "2022-11-28";

/// A session on GitHub: its API and one octocrab client, built when the
/// session opens, over the API's lane.
#[derive(Debug)]
pub(crate) struct GitHubSession {
    api: Api,
    octocrab: Octocrab,
}

impl GitHubSession {
    /// Needs a Tokio runtime: octocrab spawns the worker of its buffer.
    pub(crate) fn new(api: Api) -> Self {
        let transport = Transport { lane: api.lane().clone(), headers: Arc::new(github_headers()) };
        // Infallible: the service is given.
        let Ok(octocrab) = OctocrabBuilder::new_empty().with_service(transport).with_auth(AuthState::None).build();
        Self { api, octocrab }
    }
}

impl PlatformSession for GitHubSession {
    /// `GET /user`: a 401 means the token is bad. An installation token
    /// cannot call `/user`: `GET /installation/repositories?per_page=1`.
    async fn verify(&self) -> Result<(), PlatformError> {
        let path = if self.api.app_installation() { "/installation/repositories?per_page=1" } else { "/user" };
        self.get(&self.api.endpoint(path)?, None).await.map(drop)
    }

    /// `GET /repos/{owner}/{repo}`: the default branch and visibility.
    async fn repository(&self, repository: &RepoName) -> Result<RepositoryInfo, PlatformError> {
        #[derive(Deserialize)]
        struct Repo {
            default_branch: Option<String>,
            private: bool,
        }
        // RepoName allows only letters, digits, '-', '_' and '.' in each part: nothing to encode.
        let url = self.api.endpoint(&format!("/repos/{}", repository.as_str()))?;
        let reply = self.get(&url, Some(repository)).await?;
        let repo: Repo = json(PLATFORM, &reply.body)?;
        Ok(RepositoryInfo { default_branch: repo.default_branch.filter(|b| !b.is_empty()), private: repo.private })
    }

    /// Closed PRs, most recently updated first (GitHub has no `since` for
    /// pulls), until one is older than the window; those merged inside it,
    /// with their files.
    async fn merged_pull_requests(
        &self,
        repository: &RepoName,
        window: PullRequestWindow,
    ) -> Result<Vec<MergedPullRequest>, PlatformError> {
        let oldest_update = window.oldest_update();
        let mut url = self.api.endpoint(&format!(
            "/repos/{}/pulls?state=closed&sort=updated&direction=desc&per_page=100",
            repository.as_str()
        ))?;
        let mut merged = Vec::new();
        let mut pages = 0;
        loop {
            count_page(PLATFORM, &mut pages)?;
            let reply = self.get(&url, Some(repository)).await?;
            let pulls: Vec<Pull> = json(PLATFORM, &reply.body)?;
            let mut past_window = false;
            for pull in pulls {
                if pull.updated_at < oldest_update {
                    past_window = true;
                    continue;
                }
                if let Some(merged_at) = pull.merged_at.filter(|at| *at >= window.merged_since) {
                    merged.push((pull, merged_at));
                }
            }
            if self.api.enough_pull_requests(merged.len()) {
                merged.truncate(self.api.bounds().max_pull_requests);
                break;
            }
            match outbound::link_next(&reply.headers) {
                Some(next) if !past_window => url = self.api.follow(&url, &next)?,
                _ => break,
            }
        }
        let mut result = Vec::with_capacity(merged.len());
        for (pull, merged_at) in merged {
            let files = self.files(repository, pull.number).await?;
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

    /// The branch's root tree (`GET /repos/{o}/{r}/branches/{branch}`,
    /// `commit.commit.tree.sha`) is the revision. Listed with one recursive
    /// `GET /repos/{o}/{r}/git/trees/{sha}?recursive=1`; when GitHub cuts
    /// that answer (`truncated`: past 100,000 entries or 7 MB), the tree's
    /// own level is listed without `recursive` and each subtree is listed
    /// the same way, recursively first.
    async fn file_tree(
        &self,
        repository: &RepoName,
        branch: &str,
        known: Option<&str>,
    ) -> Result<TreeSnapshot, PlatformError> {
        #[derive(Deserialize)]
        struct Branch {
            commit: BranchCommit,
        }
        #[derive(Deserialize)]
        struct BranchCommit {
            commit: Commit,
        }
        #[derive(Deserialize)]
        struct Commit {
            tree: Object,
        }
        #[derive(Deserialize)]
        struct Object {
            sha: String,
        }
        // A branch's slashes stay: GitHub routes `branches/feature/x`.
        let url = self.api.endpoint_with(&format!("/repos/{}/branches", repository.as_str()), branch.split('/'))?;
        // A 404 here is the branch, not the repository: not `RepositoryNotFound`.
        let reply = self.get(&url, None).await?;
        let revision = json::<Branch>(PLATFORM, &reply.body)?.commit.commit.tree.sha;
        if known == Some(revision.as_str()) {
            return Ok(TreeSnapshot::Unchanged);
        }
        let mut listing = TreeListing::new(PLATFORM, *self.api.bounds());
        // Trees still to list: the path they are at, and their sha.
        let mut pending = vec![(String::new(), revision.clone())];
        while let Some((at, sha)) = pending.pop() {
            listing.request()?;
            let whole = self.tree(repository, &sha, true).await?;
            if !whole.truncated {
                for entry in whole.tree.into_iter().filter(|entry| entry.kind == "blob") {
                    listing.file(join(&at, &entry.path))?;
                }
                continue;
            }
            listing.request()?;
            let level = self.tree(repository, &sha, false).await?;
            if level.truncated {
                return Err(PlatformError::Unexpected {
                    platform: PLATFORM,
                    detail: "a directory has more entries than GitHub lists; its file list is not kept".to_owned(),
                });
            }
            for entry in level.tree {
                match entry.kind.as_str() {
                    "blob" => listing.file(join(&at, &entry.path))?,
                    "tree" => pending.push((join(&at, &entry.path), entry.sha)),
                    // `commit`: a submodule, not a file of this repository.
                    _ => {}
                }
            }
        }
        Ok(listing.finish(revision))
    }

    fn rate_limit(&self) -> RateLimitState {
        self.api.rate_limit()
    }
}

/// `path` under the directory `at` (the root when empty).
fn join(at: &str, path: &str) -> String {
    if at.is_empty() { path.to_owned() } else { format!("{at}/{path}") }
}

/// `GET .../git/trees/{sha}`: its entries, paths relative to it.
#[derive(Deserialize)]
struct Tree {
    tree: Vec<TreeEntry>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Deserialize)]
struct TreeEntry {
    path: String,
    /// `blob`, `tree`, or `commit` (a submodule).
    #[serde(rename = "type")]
    kind: String,
    sha: String,
}

#[derive(Deserialize)]
struct Pull {
    number: u64,
    #[serde(deserialize_with = "listing::title")]
    title: String,
    user: Option<User>,
    #[serde(deserialize_with = "listing::label")]
    html_url: String,
    merged_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "listing::optional_label")]
    merge_commit_sha: Option<String>,
    updated_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct User {
    #[serde(deserialize_with = "listing::label")]
    login: String,
}

#[derive(Deserialize)]
struct File {
    filename: String,
    previous_filename: Option<String>,
    /// `added`, `removed`, `modified`, `renamed`, `copied`, `changed` or `unchanged`.
    #[serde(default)]
    status: String,
    /// Absent for binary files and for patches GitHub finds too large.
    #[serde(default)]
    patch: Option<Patch>,
}

impl GitHubSession {
    /// The files a PR touched, all pages: renamed files under their new
    /// name with the old one kept, line ranges from each `patch`.
    async fn files(&self, repository: &RepoName, number: u64) -> Result<Vec<ChangedFile>, PlatformError> {
        let bounds = self.api.bounds();
        let mut url =
            self.api.endpoint(&format!("/repos/{}/pulls/{number}/files?per_page=100", repository.as_str()))?;
        let mut files = self.api.changed_files();
        let mut pages = 0;
        loop {
            count_page(PLATFORM, &mut pages)?;
            let reply = self.get(&url, Some(repository)).await?;
            for file in json::<Vec<File>>(PLATFORM, &reply.body)? {
                // A copy's source is still there: only a rename moves history.
                let previous_path =
                    file.previous_filename.filter(|previous| file.status == "renamed" && *previous != file.filename);
                let ranges = match file.patch {
                    Some(patch) if file.status != "removed" => patch.ranges(bounds.max_patch_bytes),
                    _ => Vec::new(),
                };
                files.push(ChangedFile { path: file.filename, previous_path, ranges });
            }
            match outbound::link_next(&reply.headers) {
                Some(next) if !files.is_full() => url = self.api.follow(&url, &next)?,
                _ => return Ok(files.finish(PLATFORM, number)),
            }
        }
    }

    /// `GET /repos/{o}/{r}/git/trees/{sha}`, with `?recursive=1` or not.
    async fn tree(&self, repository: &RepoName, sha: &str, recursive: bool) -> Result<Tree, PlatformError> {
        let mut url = self.api.endpoint_with(&format!("/repos/{}/git/trees", repository.as_str()), [sha])?;
        if recursive {
            url.set_query(Some("recursive=1"));
        }
        let reply = self.get(&url, Some(repository)).await?;
        json(PLATFORM, &reply.body)
    }
}

impl Dialect for GitHubSession {
    fn api(&self) -> &Api {
        &self.api
    }

    /// Always JSON (`application/vnd.github+json`); a text `accept` only
    /// bounds how much is read.
    async fn send(&self, url: &Url, auth: &AuthHeader, accept: Accept) -> Result<Reply, SendError> {
        let mut headers = HeaderMap::new();
        headers.insert(auth.name.clone(), auth.value.clone());
        let response = self
            .octocrab
            ._get_with_headers(url.as_str(), Some(headers))
            .await
            .map_err(|error| octocrab_error(&error))?;
        read_reply(response, accept.prefix()).await
    }

    /// GitHub answers both a spent rate limit and a missing permission with
    /// 403: the headers and the message tell them apart.
    fn refused(&self, status: u16, reply: &Reply, _repository: Option<&RepoName>) -> PlatformError {
        let headers = &reply.headers;
        let message = response::message(&reply.body);
        if remaining_is_zero(headers) {
            // Primary limit: wait for the reset.
            self.api.rate_limited(header_epoch(headers, &["x-ratelimit-reset"]))
        } else if let Some(until) = retry_after(headers) {
            // Secondary limit with a wait.
            self.api.rate_limited(Some(until))
        } else if status == 429 || response::unshown_message(&reply.body).contains("rate limit") {
            // Secondary limit without one: at least a minute, exponentially longer.
            self.api.rate_limited(None)
        } else {
            PlatformError::PermissionMissing { platform: PLATFORM, detail: permission_detail(headers, message) }
        }
    }
}

/// What GitHub said is missing: its message, and the permissions
/// `X-Accepted-GitHub-Permissions` names.
fn permission_detail(headers: &HeaderMap, message: String) -> String {
    let accepted =
        headers.get("x-accepted-github-permissions").and_then(|value| value.to_str().ok()).and_then(response::quotable);
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
