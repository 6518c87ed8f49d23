//! GitLab (gitlab.com and self-managed), over REST v4 with a `PRIVATE-TOKEN`
//! (personal, group and project access tokens) or `Authorization: Bearer`
//! (OAuth access tokens, which GitLab accepts only that way).

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use http::HeaderName;
use serde::Deserialize;
use sigsentry_domain::RepoName;
use sigsentry_ports::{
    ChangedFile, CredentialReport, MergedPullRequest, PlatformError, PlatformSession, PullRequestWindow,
    RateLimitState, RepositoryInfo, TreeSnapshot,
};
use url::Url;

use crate::api::{Api, Dialect};
use crate::listing::{self, Patch, TreeListing};
use crate::outbound::{self, Reply};
use crate::rate_limit::{header_epoch, retry_after};
use crate::response::{self, count_page, json};

/// The platform's name in errors and rate-limit keys.
pub(crate) const PLATFORM: &str = "GitLab";
/// Where the REST API hangs under an instance root.
pub(crate) const API_PATH: &str = "/api/v4";
/// The header a personal, group or project access token goes in.
pub(crate) const TOKEN_HEADER: HeaderName = HeaderName::from_static("private-token");

/// A session on GitLab.
#[derive(Debug)]
pub(crate) struct GitLabSession {
    api: Api,
    /// Whether the token's expiry was asked for already in this session.
    expiry_asked: AtomicBool,
}

impl GitLabSession {
    pub(crate) fn new(api: Api) -> Self {
        Self { api, expiry_asked: AtomicBool::new(false) }
    }

    /// A personal (group, project) access token's expiry, once per session:
    /// `GET /personal_access_tokens/self` answers `expires_at`, a date; the
    /// token stops working at 00:00 UTC of that day. OAuth grants renew
    /// themselves. Not knowing it fails nothing.
    async fn learn_expiry(&self) {
        #[derive(Deserialize)]
        struct SelfToken {
            expires_at: Option<NaiveDate>,
        }
        if !self.api.fixed_auth() || self.expiry_asked.swap(true, Ordering::Relaxed) {
            return;
        }
        let Ok(url) = self.api.endpoint("/personal_access_tokens/self") else { return };
        match self.get(&url, None).await.and_then(|reply| json::<SelfToken>(PLATFORM, &reply.body)) {
            Ok(token) => {
                let expires_at = token.expires_at.and_then(|day| day.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
                self.api.observe(CredentialReport { outcome: None, expires_at: Some(expires_at) });
            }
            Err(error) => tracing::debug!(%error, "GitLab did not tell the token's expiry"),
        }
    }
}

impl PlatformSession for GitLabSession {
    /// `GET /user`: a 401 means the token is bad.
    async fn verify(&self) -> Result<(), PlatformError> {
        self.get(&self.api.endpoint("/user")?, None).await?;
        self.learn_expiry().await;
        Ok(())
    }

    /// `GET /projects/{group%2Fsub%2Fproject}`: the default branch and visibility.
    async fn repository(&self, repository: &RepoName) -> Result<RepositoryInfo, PlatformError> {
        #[derive(Deserialize)]
        struct Project {
            default_branch: Option<String>,
            visibility: Option<String>,
        }
        let url = self.api.endpoint(&format!("/projects/{}", project_id(repository)))?;
        let reply = self.get(&url, Some(repository)).await?;
        let project: Project = json(PLATFORM, &reply.body)?;
        self.learn_expiry().await;
        Ok(RepositoryInfo {
            default_branch: project.default_branch.filter(|b| !b.is_empty()),
            // `internal` projects are visible to every signed-in user, not to the public.
            private: project.visibility.as_deref() != Some("public"),
        })
    }

    /// Merged MRs updated since the window's lower bound, newest update
    /// first, those merged inside the window kept, with their files.
    async fn merged_pull_requests(
        &self,
        repository: &RepoName,
        window: PullRequestWindow,
    ) -> Result<Vec<MergedPullRequest>, PlatformError> {
        let oldest_update = window.oldest_update();
        let mut url = self.api.endpoint(&format!("/projects/{}/merge_requests", project_id(repository)))?;
        url.query_pairs_mut()
            .append_pair("state", "merged")
            .append_pair("updated_after", &oldest_update.to_rfc3339_opts(SecondsFormat::Secs, true))
            .append_pair("order_by", "updated_at")
            .append_pair("sort", "desc")
            .append_pair("per_page", "100");
        let mut merged = Vec::new();
        let mut pages = 0;
        loop {
            count_page(PLATFORM, &mut pages)?;
            let reply = self.get(&url, Some(repository)).await?;
            let requests: Vec<MergeRequest> = json(PLATFORM, &reply.body)?;
            // `updated_after` already bounds the list; the check only saves a
            // page should an instance ignore it.
            let past_window = requests.iter().any(|request| request.updated_at < oldest_update);
            for request in requests {
                if request.updated_at < oldest_update {
                    continue;
                }
                // An MR merged before GitLab recorded merge times has no merged_at: left out.
                if let Some(merged_at) = request.merged_at.filter(|at| *at >= window.merged_since) {
                    merged.push((request, merged_at));
                }
            }
            if self.api.enough_pull_requests(merged.len()) {
                merged.truncate(self.api.bounds().max_pull_requests);
                break;
            }
            match self.next_page(&reply, &url)? {
                Some(next) if !past_window => url = next,
                _ => break,
            }
        }
        let mut result = Vec::with_capacity(merged.len());
        for (request, merged_at) in merged {
            let files = self.files(repository, request.iid).await?;
            result.push(MergedPullRequest {
                number: request.iid,
                title: request.title,
                author: request.author.map(|author| author.username),
                url: request.web_url,
                merged_at,
                merge_commit_sha: request.merge_commit_sha.or(request.squash_commit_sha),
                updated_at: request.updated_at,
                files,
            });
        }
        Ok(result)
    }

    /// The branch's head commit (`GET /projects/{id}/repository/branches/{branch}`,
    /// `commit.id`) is the revision; its files come from
    /// `GET /projects/{id}/repository/tree?ref={commit}&recursive=true&per_page=100&pagination=keyset`,
    /// paged by the `Link` header (keyset pagination has no page numbers).
    async fn file_tree(
        &self,
        repository: &RepoName,
        branch: &str,
        known: Option<&str>,
    ) -> Result<TreeSnapshot, PlatformError> {
        #[derive(Deserialize)]
        struct Branch {
            commit: Commit,
        }
        #[derive(Deserialize)]
        struct Commit {
            id: String,
        }
        #[derive(Deserialize)]
        struct Entry {
            path: String,
            /// `blob`, `tree`, or `commit` (a submodule).
            #[serde(rename = "type")]
            kind: String,
        }
        let project = format!("/projects/{}/repository/branches", project_id(repository));
        // The branch is one segment: its slashes are encoded.
        let url = self.api.endpoint_with(&project, [branch])?;
        // A 404 here is the branch, not the project: not `RepositoryNotFound`.
        let reply = self.get(&url, None).await?;
        let revision = json::<Branch>(PLATFORM, &reply.body)?.commit.id;
        if known == Some(revision.as_str()) {
            return Ok(TreeSnapshot::Unchanged);
        }
        let mut url = self.api.endpoint(&format!("/projects/{}/repository/tree", project_id(repository)))?;
        url.query_pairs_mut()
            .append_pair("ref", &revision)
            .append_pair("recursive", "true")
            .append_pair("per_page", "100")
            .append_pair("pagination", "keyset");
        let mut listing = TreeListing::new(PLATFORM, *self.api.bounds());
        loop {
            listing.request()?;
            let reply = self.get(&url, Some(repository)).await?;
            for entry in json::<Vec<Entry>>(PLATFORM, &reply.body)? {
                if entry.kind == "blob" {
                    listing.file(entry.path)?;
                }
            }
            // Keyset pages link the next one; an instance that pages by
            // number instead sends `x-next-page`.
            let next = match outbound::link_next(&reply.headers) {
                Some(next) => Some(self.api.follow(&url, &next)?),
                None => self.next_page(&reply, &url)?,
            };
            match next {
                Some(next) => url = next,
                None => return Ok(listing.finish(revision)),
            }
        }
    }

    fn rate_limit(&self) -> RateLimitState {
        self.api.rate_limit()
    }
}

impl Dialect for GitLabSession {
    fn api(&self) -> &Api {
        &self.api
    }

    /// GitLab limits with 429 (`Retry-After`, else `RateLimit-Reset`); a 403
    /// is a missing scope or role.
    fn refused(&self, status: u16, reply: &Reply, _repository: Option<&RepoName>) -> PlatformError {
        if status == 429 {
            self.api.rate_limited(
                retry_after(&reply.headers).or_else(|| header_epoch(&reply.headers, &["ratelimit-reset"])),
            )
        } else {
            response::permission_missing(PLATFORM, response::message(&reply.body))
        }
    }
}

#[derive(Deserialize)]
struct MergeRequest {
    iid: u64,
    #[serde(deserialize_with = "listing::title")]
    title: String,
    #[serde(deserialize_with = "listing::label")]
    web_url: String,
    author: Option<Author>,
    merged_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "listing::optional_label")]
    merge_commit_sha: Option<String>,
    #[serde(default, deserialize_with = "listing::optional_label")]
    squash_commit_sha: Option<String>,
    updated_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Author {
    #[serde(deserialize_with = "listing::label")]
    username: String,
}

#[derive(Deserialize)]
struct Diff {
    old_path: String,
    new_path: String,
    #[serde(default)]
    renamed_file: bool,
    #[serde(default)]
    deleted_file: bool,
    /// The file's unified diff, hunks only; empty when left out.
    #[serde(default)]
    diff: Option<Patch>,
    /// Past the instance's diff limits: no diff, and none to be had.
    #[serde(default)]
    too_large: bool,
    /// Collapsed for its size: no diff in this listing.
    #[serde(default)]
    collapsed: bool,
}

impl GitLabSession {
    /// `GET /projects/{id}/merge_requests/{iid}/diffs` (the successor of the
    /// deprecated `/changes`), all pages: new paths (old paths of deleted
    /// files), the old path of a renamed one, line ranges from each `diff`.
    async fn files(&self, repository: &RepoName, iid: u64) -> Result<Vec<ChangedFile>, PlatformError> {
        let bounds = self.api.bounds();
        let path = format!("/projects/{}/merge_requests/{iid}/diffs?per_page=100", project_id(repository));
        let mut url = self.api.endpoint(&path)?;
        let mut files = self.api.changed_files();
        let mut pages = 0;
        loop {
            count_page(PLATFORM, &mut pages)?;
            let reply = self.get(&url, Some(repository)).await?;
            for diff in json::<Vec<Diff>>(PLATFORM, &reply.body)? {
                let ranges = match diff.diff {
                    Some(patch) if !(diff.deleted_file || diff.too_large || diff.collapsed) => {
                        patch.ranges(bounds.max_patch_bytes)
                    }
                    _ => Vec::new(),
                };
                let file = if diff.deleted_file {
                    ChangedFile::path_only(diff.old_path)
                } else {
                    let renamed = diff.renamed_file && diff.old_path != diff.new_path;
                    ChangedFile { path: diff.new_path, previous_path: renamed.then_some(diff.old_path), ranges }
                };
                files.push(file);
            }
            match self.next_page(&reply, &url)? {
                Some(next) if !files.is_full() => url = next,
                _ => return Ok(files.finish(PLATFORM, iid)),
            }
        }
    }

    /// The next page: `x-next-page` (empty on the last page), else the `Link`
    /// header (GitLab leaves out the page headers past 10,000 rows, not `Link`).
    fn next_page(&self, reply: &Reply, current: &Url) -> Result<Option<Url>, PlatformError> {
        let header = reply.headers.get("x-next-page").and_then(|value| value.to_str().ok()).map(str::trim);
        match header {
            Some(page) if !page.is_empty() => {
                let page: u32 = page.parse().map_err(|_| PlatformError::Unexpected {
                    platform: PLATFORM,
                    detail: "x-next-page is not a page number".to_owned(),
                })?;
                Ok(Some(with_page(current, page)))
            }
            Some(_) => Ok(None),
            None => outbound::link_next(&reply.headers).map(|next| self.api.follow(current, &next)).transpose(),
        }
    }
}

/// The full path as one URL segment: `group/sub/project` → `group%2Fsub%2Fproject`.
/// RepoName allows only letters, digits, '-', '_' and '.' besides the
/// slashes, so the slashes are all there is to encode.
fn project_id(repository: &RepoName) -> String {
    repository.as_str().replace('/', "%2F")
}

/// `current` with its `page` parameter set to `page`.
fn with_page(current: &Url, page: u32) -> Url {
    let pairs: Vec<(String, String)> = current
        .query_pairs()
        .filter(|(name, _)| name != "page")
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    let mut next = current.clone();
    next.query_pairs_mut().clear().extend_pairs(pairs).append_pair("page", &page.to_string());
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigsentry_domain::Platform;

    #[test]
    fn project_ids_are_one_segment() {
        let name = RepoName::parse(Platform::GitLab, "acme/platform/checkout-api").unwrap();
        assert_eq!(project_id(&name), "acme%2Fplatform%2Fcheckout-api");
    }

    #[test]
    fn sets_the_page_parameter() {
        let url =
            Url::parse("https://gitlab.example.com/api/v4/projects/1/merge_requests?state=merged&page=1").unwrap();
        assert_eq!(
            with_page(&url, 3).as_str(),
            "https://gitlab.example.com/api/v4/projects/1/merge_requests?state=merged&page=3"
        );
    }
}
