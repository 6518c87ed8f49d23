//! Bitbucket Cloud, over REST 2.0 with HTTP Basic auth (a username and app
//! password, or an Atlassian account email and API token).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sigsentry_domain::RepoName;
use sigsentry_ports::{
    MergedPullRequest, PlatformError, PlatformSession, PullRequestWindow, RateLimitState, RepositoryInfo,
};

use crate::api::{Api, Dialect};
use crate::outbound::Reply;
use crate::rate_limit::retry_after;
use crate::response::{self, count_page, json};

/// The platform's name in errors and rate-limit keys.
pub(crate) const PLATFORM: &str = "Bitbucket";
/// Bitbucket answers a larger `pagelen` on pull requests with 400.
const PULL_REQUEST_PAGE_LEN: &str = "50";

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
        let lower = message.to_ascii_lowercase();
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
    title: String,
    author: Option<Account>,
    links: PullRequestLinks,
    merge_commit: Option<Commit>,
    updated_on: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Account {
    nickname: Option<String>,
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct PullRequestLinks {
    html: Link,
}

#[derive(Deserialize)]
struct Link {
    href: String,
}

#[derive(Deserialize)]
struct Commit {
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

impl BitbucketSession {
    /// `GET .../pullrequests/{id}/diffstat`, which redirects (same host, auth
    /// kept) to the repository's diffstat; all pages. New paths, old paths of
    /// removed files.
    async fn files(&self, repository: &RepoName, id: u64) -> Result<Vec<String>, PlatformError> {
        let mut url =
            self.api.endpoint(&format!("/repositories/{}/pullrequests/{id}/diffstat", repository.as_str()))?;
        let mut paths = Vec::new();
        let mut pages = 0;
        loop {
            count_page(PLATFORM, &mut pages)?;
            let reply = self.get(&url, Some(repository)).await?;
            let page: Page<DiffStat> = json(PLATFORM, &reply.body)?;
            paths.extend(page.values.into_iter().filter_map(|stat| stat.new.or(stat.old).map(|path| path.path)));
            match page.next {
                Some(next) => url = self.api.follow(&url, &next)?,
                None => return Ok(paths),
            }
        }
    }
}
