//! Bitbucket Cloud, over REST 2.0 with HTTP Basic auth (a username and app
//! password, or an Atlassian account email and API token).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sigsentry_domain::RepoName;
use sigsentry_domain::correlation::{LineRange, split_unified_diff};
use sigsentry_ports::{
    ChangedFile, MergedPullRequest, PlatformError, PlatformSession, PullRequestWindow, RateLimitState, RepositoryInfo,
    TreeSnapshot,
};

use crate::api::{Api, Dialect};
use crate::listing::{self, TreeListing};
use crate::outbound::Reply;
use crate::rate_limit::retry_after;
use crate::response::{self, count_page, json};

/// The platform's name in errors and rate-limit keys.
pub(crate) const PLATFORM: &str = "Bitbucket";
/// Bitbucket answers a larger `pagelen` on pull requests with 400.
const PULL_REQUEST_PAGE_LEN: &str = "50";
/// Entries per page of a directory listing: Bitbucket's most.
const SOURCE_PAGE_LEN: &str = "100";
/// How deep one directory listing goes. Bitbucket lists one level unless
/// told more; a directory it stopped at is listed on its own.
const SOURCE_MAX_DEPTH: &str = "10";

/// A session on Bitbucket Cloud.
#[derive(Debug)]
pub(crate) struct BitbucketSession {
    api: Api,
}

impl BitbucketSession {
    pub(crate) fn new(api: Api) -> Self {
        Self { api }
    }
}

impl PlatformSession for BitbucketSession {
    /// `GET /user`: a 401 means the pair is bad.
    async fn verify(&self) -> Result<(), PlatformError> {
        self.get(&self.api.endpoint("/user")?, None).await.map(drop)
    }

    /// `GET /repositories/{workspace}/{slug}`: the main branch and visibility.
    async fn repository(&self, repository: &RepoName) -> Result<RepositoryInfo, PlatformError> {
        #[derive(Deserialize)]
        struct Repo {
            mainbranch: Option<Branch>,
            is_private: bool,
        }
        #[derive(Deserialize)]
        struct Branch {
            name: String,
        }
        // RepoName allows only letters, digits, '-', '_' and '.' in each part: nothing to encode.
        let url = self.api.endpoint(&format!("/repositories/{}", repository.as_str()))?;
        let reply = self.get(&url, Some(repository)).await?;
        let repo: Repo = json(PLATFORM, &reply.body)?;
        Ok(RepositoryInfo {
            default_branch: repo.mainbranch.map(|branch| branch.name).filter(|name| !name.is_empty()),
            private: repo.is_private,
        })
    }

    /// Merged PRs updated since the window's lower bound, newest update
    /// first, with their files.
    ///
    /// Bitbucket's pull request has no merge time. We take `updated_on` of a
    /// MERGED PR as its merge time: a merge is its last state change, but a
    /// later comment also moves `updated_on` (unverified against the
    /// platform; at worst a PR merged just before the window shows up as
    /// merged later).
    async fn merged_pull_requests(
        &self,
        repository: &RepoName,
        window: PullRequestWindow,
    ) -> Result<Vec<MergedPullRequest>, PlatformError> {
        let oldest_update = window.oldest_update();
        let mut url = self.api.endpoint(&format!("/repositories/{}/pullrequests", repository.as_str()))?;
        // BBQL takes datetimes unquoted in ISO 8601, and refuses a `Z` suffix:
        // hence the explicit +00:00.
        let cutoff = oldest_update.format("%Y-%m-%dT%H:%M:%S%:z").to_string();
        url.query_pairs_mut()
            .append_pair("state", "MERGED")
            .append_pair("q", &format!("updated_on >= {cutoff}"))
            .append_pair("sort", "-updated_on")
            .append_pair("pagelen", PULL_REQUEST_PAGE_LEN);
        let mut merged = Vec::new();
        let mut pages = 0;
        loop {
            count_page(PLATFORM, &mut pages)?;
            let reply = self.get(&url, Some(repository)).await?;
            let page: Page<PullRequest> = json(PLATFORM, &reply.body)?;
            // The query already bounds the list; the check only saves a page
            // should the filter be ignored.
            let past_window = page.values.iter().any(|pull| pull.updated_on < oldest_update);
            merged.extend(page.values.into_iter().filter(|pull| pull.updated_on >= oldest_update));
            if self.api.enough_pull_requests(merged.len()) {
                merged.truncate(self.api.bounds().max_pull_requests);
                break;
            }
            match page.next {
                Some(next) if !past_window => url = self.api.follow(&url, &next)?,
                _ => break,
            }
        }
        let mut result = Vec::with_capacity(merged.len());
        for pull in merged {
            let files = self.files(repository, pull.id).await?;
            result.push(MergedPullRequest {
                number: pull.id,
                title: pull.title,
                author: pull.author.and_then(|author| author.nickname.or(author.display_name)),
                url: pull.links.html.href,
                merged_at: pull.updated_on,
                merge_commit_sha: pull.merge_commit.map(|commit| commit.hash),
                updated_at: pull.updated_on,
                files,
            });
        }
        Ok(result)
    }

    /// The branch's head commit (`GET /repositories/{ws}/{slug}/refs/branches/{name}`,
    /// `target.hash`) is the revision; its files come from
    /// `GET /repositories/{ws}/{slug}/src/{commit}/?pagelen=100&max_depth=10`,
    /// paged by `next`. A directory listed without any of its entries (past
    /// the depth, or however Bitbucket chose to stop) is listed on its own.
    async fn file_tree(
        &self,
        repository: &RepoName,
        branch: &str,
        known: Option<&str>,
    ) -> Result<TreeSnapshot, PlatformError> {
        #[derive(Deserialize)]
        struct Branch {
            target: Target,
        }
        #[derive(Deserialize)]
        struct Target {
            hash: String,
        }
        let refs = format!("/repositories/{}/refs/branches", repository.as_str());
        let url = self.api.endpoint_with(&refs, branch.split('/'))?;
        // A 404 here is the branch, not the repository: not `RepositoryNotFound`.
        let reply = self.get(&url, None).await?;
        let revision = json::<Branch>(PLATFORM, &reply.body)?.target.hash;
        if known == Some(revision.as_str()) {
            return Ok(TreeSnapshot::Unchanged);
        }
        let mut listing = TreeListing::new(PLATFORM, *self.api.bounds());
        // Directories still to list ("" is the root), and those listed.
        let mut pending = vec![String::new()];
        let mut listed: HashSet<String> = HashSet::new();
        while let Some(directory) = pending.pop() {
            if !listed.insert(directory.clone()) {
                continue;
            }
            let (directories, parents) = self.list_directory(repository, &revision, &directory, &mut listing).await?;
            pending.extend(directories.into_iter().filter(|found| !parents.contains(found)));
        }
        Ok(listing.finish(revision))
    }

    fn rate_limit(&self) -> RateLimitState {
        self.api.rate_limit()
    }
}

impl Dialect for BitbucketSession {
    fn api(&self) -> &Api {
        &self.api
    }

    /// A 429 carries no documented `Retry-After`: without one, back off
    /// exponentially (1, 2, 4 ... 60 minutes). A 403 is a private repository
    /// these credentials cannot see (a repository that is not there is 404),
    /// or credentials lacking a scope, which the message says.
    fn refused(&self, status: u16, reply: &Reply, repository: Option<&RepoName>) -> PlatformError {
        if status == 429 {
            return self.api.rate_limited(retry_after(&reply.headers));
        }
        let message = response::message(&reply.body);
        let lower = response::unshown_message(&reply.body);
        let names_a_scope = lower.contains("scope") || lower.contains("privilege") || lower.contains("permission");
        match repository {
            Some(repository) if !names_a_scope => self.api.not_found(repository),
            _ => response::permission_missing(PLATFORM, message),
        }
    }
}

#[derive(Deserialize)]
struct Page<T> {
    values: Vec<T>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct PullRequest {
    id: u64,
    #[serde(deserialize_with = "listing::title")]
    title: String,
    author: Option<Account>,
    links: PullRequestLinks,
    merge_commit: Option<Commit>,
    updated_on: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Account {
    #[serde(default, deserialize_with = "listing::optional_label")]
    nickname: Option<String>,
    #[serde(default, deserialize_with = "listing::optional_label")]
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct PullRequestLinks {
    html: Link,
}

#[derive(Deserialize)]
struct Link {
    #[serde(deserialize_with = "listing::label")]
    href: String,
}

#[derive(Deserialize)]
struct Commit {
    #[serde(deserialize_with = "listing::label")]
    hash: String,
}

#[derive(Deserialize)]
struct DiffStat {
    old: Option<DiffPath>,
    new: Option<DiffPath>,
}

#[derive(Deserialize)]
struct DiffPath {
    path: String,
}

/// One entry of a directory listing (`src`).
#[derive(Deserialize)]
struct SourceEntry {
    /// From the repository root.
    path: String,
    /// `commit_file`, `commit_directory`, or another kind (a submodule).
    #[serde(rename = "type")]
    kind: String,
}

impl BitbucketSession {
    /// The files a PR touched: the paths from its diffstat, the line ranges
    /// from its raw diff.
    async fn files(&self, repository: &RepoName, id: u64) -> Result<Vec<ChangedFile>, PlatformError> {
        let mut files = self.diffstat(repository, id).await?;
        if files.is_empty() {
            return Ok(files);
        }
        let mut ranges = self.diff_ranges(repository, id).await?;
        for file in &mut files {
            file.ranges = ranges.remove(&file.path).unwrap_or_default();
        }
        Ok(files)
    }

    /// `GET .../pullrequests/{id}/diffstat`, which redirects (same host, auth
    /// kept) to the repository's diffstat; all pages. New paths (old paths of
    /// removed files), the old path of a renamed file; no ranges yet.
    async fn diffstat(&self, repository: &RepoName, id: u64) -> Result<Vec<ChangedFile>, PlatformError> {
        let mut url =
            self.api.endpoint(&format!("/repositories/{}/pullrequests/{id}/diffstat", repository.as_str()))?;
        let mut files = self.api.changed_files();
        let mut pages = 0;
        loop {
            count_page(PLATFORM, &mut pages)?;
            let reply = self.get(&url, Some(repository)).await?;
            let page: Page<DiffStat> = json(PLATFORM, &reply.body)?;
            for stat in page.values {
                let file = match (stat.old, stat.new) {
                    (Some(old), Some(new)) if old.path != new.path => {
                        ChangedFile { previous_path: Some(old.path), ..ChangedFile::path_only(new.path) }
                    }
                    (_, Some(path)) | (Some(path), None) => ChangedFile::path_only(path.path),
                    (None, None) => continue,
                };
                files.push(file);
            }
            match page.next {
                Some(next) if !files.is_full() => url = self.api.follow(&url, &next)?,
                _ => return Ok(files.finish(PLATFORM, id)),
            }
        }
    }

    /// The new-side line ranges of each file the PR's raw diff shows, by new
    /// path: `GET .../pullrequests/{id}/diff` redirects (same host, auth
    /// kept) to the repository's diff. At most
    /// [`ListingBounds::max_diff_bytes`](crate::ListingBounds::max_diff_bytes)
    /// are read: the file the cut falls in, and those after, get none.
    ///
    /// A diff Bitbucket cannot give (an error that is neither ours nor the
    /// credentials', such as a diff too large for it to render) leaves the
    /// PR's files without ranges rather than failing the whole sync.
    async fn diff_ranges(
        &self,
        repository: &RepoName,
        id: u64,
    ) -> Result<HashMap<String, Vec<LineRange>>, PlatformError> {
        let url = self.api.endpoint(&format!("/repositories/{}/pullrequests/{id}/diff", repository.as_str()))?;
        let max = self.api.bounds().max_diff_bytes;
        // A 404 is this PR's diff, not the repository (just read): kept `Unexpected`.
        let reply = match self.get_text_prefix(&url, None, max).await {
            Ok(reply) => reply,
            Err(error @ (PlatformError::Unexpected { .. } | PlatformError::Unavailable { .. })) => {
                tracing::warn!(platform = PLATFORM, pull_request = id, %error, "no diff: files kept without line ranges");
                return Ok(HashMap::new());
            }
            Err(error) => return Err(error),
        };
        let text = String::from_utf8_lossy(&reply.body);
        // Cut at the last whole line; the file cut through may lack hunks.
        let text = if reply.truncated { text.rfind('\n').map_or("", |end| &text[..=end]) } else { &text };
        let mut files = split_unified_diff(text);
        if reply.truncated {
            tracing::warn!(
                platform = PLATFORM,
                pull_request = id,
                max,
                "diff longer than the cap: later files without line ranges"
            );
            files.pop();
        }
        Ok(files
            .into_iter()
            .filter_map(|file| file.new_path.map(|path| (path, file.ranges)))
            .filter(|(_, ranges)| !ranges.is_empty())
            .collect())
    }

    /// Lists `directory` ("" for the root) at `commit` into `listing`, all
    /// pages: the directories it found, and those it found entries of.
    async fn list_directory(
        &self,
        repository: &RepoName,
        commit: &str,
        directory: &str,
        listing: &mut TreeListing,
    ) -> Result<(Vec<String>, HashSet<String>), PlatformError> {
        let src = format!("/repositories/{}/src", repository.as_str());
        let segments = std::iter::once(commit).chain(directory.split('/').filter(|s| !s.is_empty()));
        let mut url = self.api.endpoint_with(&src, segments)?;
        // The trailing slash asks for the directory itself.
        url.set_path(&format!("{}/", url.path()));
        url.query_pairs_mut().append_pair("pagelen", SOURCE_PAGE_LEN).append_pair("max_depth", SOURCE_MAX_DEPTH);
        let mut directories = Vec::new();
        let mut parents = HashSet::new();
        loop {
            listing.request()?;
            let reply = self.get(&url, Some(repository)).await?;
            let page: Page<SourceEntry> = json(PLATFORM, &reply.body)?;
            for entry in page.values {
                let path = entry.path.trim_end_matches('/');
                if let Some((parent, _)) = path.rsplit_once('/') {
                    parents.insert(parent.to_owned());
                }
                match entry.kind.as_str() {
                    "commit_file" => listing.file(path.to_owned())?,
                    "commit_directory" => directories.push(path.to_owned()),
                    _ => {}
                }
            }
            match page.next {
                Some(next) => url = self.api.follow(&url, &next)?,
                None => return Ok((directories, parents)),
            }
        }
    }
}
