//! Bitbucket Cloud, over REST 2.0 with HTTP Basic auth (a username and app
//! password, or an Atlassian account email and API token).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sigsentry_domain::{Credentials, RepoName};
use sigsentry_ports::{MergedPullRequest, PlatformError, PullRequestWindow, RepositoryInfo};
use url::Url;

use crate::Call;
use crate::outbound::{self, Auth, Reply, with_retry};
use crate::response::{self, count_page, json};

/// The platform's name in errors and rate-limit keys.
pub(crate) const PLATFORM: &str = "Bitbucket";
/// Bitbucket answers a larger `pagelen` on pull requests with 400.
const PULL_REQUEST_PAGE_LEN: &str = "50";

/// The Basic-auth pair of Bitbucket credentials.
pub(crate) struct Login<'a> {
    user: &'a str,
    password: &'a str,
}

impl<'a> Login<'a> {
    /// The pair of Bitbucket credentials; empty for another platform's, which
    /// the caller never passes.
    pub(crate) fn of(credentials: &'a Credentials) -> Self {
        match credentials {
            Credentials::BitbucketAppPassword { username, app_password } => {
                Self { user: username, password: app_password.expose() }
            }
            Credentials::BitbucketApiToken { email, api_token } => Self { user: email, password: api_token.expose() },
            Credentials::GitHubToken { .. } | Credentials::GitLabToken { .. } => Self { user: "", password: "" },
        }
    }
}

/// `GET /user`: a 401 means the pair is bad.
pub(crate) async fn verify(call: &Call<'_>, login: &Login<'_>) -> Result<(), PlatformError> {
    get(call, login, &call.root.endpoint(PLATFORM, "/user")?, None).await.map(drop)
}

/// `GET /repositories/{workspace}/{slug}`: the main branch and visibility.
pub(crate) async fn repository(
    call: &Call<'_>,
    login: &Login<'_>,
    repository: &RepoName,
) -> Result<RepositoryInfo, PlatformError> {
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
    let url = call.root.endpoint(PLATFORM, &format!("/repositories/{}", repository.as_str()))?;
    let reply = get(call, login, &url, Some(repository)).await?;
    let repo: Repo = json(PLATFORM, &reply.body)?;
    Ok(RepositoryInfo {
        default_branch: repo.mainbranch.map(|branch| branch.name).filter(|name| !name.is_empty()),
        private: repo.is_private,
    })
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

/// Merged PRs updated since the window's lower bound, newest update first,
/// with their files.
///
/// Bitbucket's pull request has no merge time. We take `updated_on` of a
/// MERGED PR as its merge time: a merge is its last state change, but a
/// later comment also moves `updated_on` (unverified against the platform;
/// at worst a PR merged just before the window shows up as merged later).
pub(crate) async fn merged_pull_requests(
    call: &Call<'_>,
    login: &Login<'_>,
    repository: &RepoName,
    window: PullRequestWindow,
) -> Result<Vec<MergedPullRequest>, PlatformError> {
    let lower_bound = window.updated_since.map_or(window.merged_since, |since| since.max(window.merged_since));
    let mut url = call.root.endpoint(PLATFORM, &format!("/repositories/{}/pullrequests", repository.as_str()))?;
    // BBQL takes datetimes unquoted in ISO 8601, and refuses a `Z` suffix:
    // hence the explicit +00:00.
    let cutoff = lower_bound.format("%Y-%m-%dT%H:%M:%S%:z").to_string();
    url.query_pairs_mut()
        .append_pair("state", "MERGED")
        .append_pair("q", &format!("updated_on >= {cutoff}"))
        .append_pair("sort", "-updated_on")
        .append_pair("pagelen", PULL_REQUEST_PAGE_LEN);
    let mut merged = Vec::new();
    let mut pages = 0;
    loop {
        count_page(PLATFORM, &mut pages)?;
        let reply = get(call, login, &url, Some(repository)).await?;
        let page: Page<PullRequest> = json(PLATFORM, &reply.body)?;
        // The query already bounds the list; the check only saves a page
        // should the filter be ignored.
        let past_window = page.values.iter().any(|pull| pull.updated_on < lower_bound);
        merged.extend(page.values.into_iter().filter(|pull| pull.updated_on >= lower_bound));
        match page.next {
            Some(next) if !past_window => url = outbound::follow_on_same_host(PLATFORM, &call.root.url, &url, &next)?,
            _ => break,
        }
    }
    let mut result = Vec::with_capacity(merged.len());
    for pull in merged {
        let files = files(call, login, repository, pull.id).await?;
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

/// `GET .../pullrequests/{id}/diffstat`, which redirects (same host, auth
/// kept) to the repository's diffstat; all pages. New paths, old paths of
/// removed files.
async fn files(
    call: &Call<'_>,
    login: &Login<'_>,
    repository: &RepoName,
    id: u64,
) -> Result<Vec<String>, PlatformError> {
    let mut url =
        call.root.endpoint(PLATFORM, &format!("/repositories/{}/pullrequests/{id}/diffstat", repository.as_str()))?;
    let mut paths = Vec::new();
    let mut pages = 0;
    loop {
        count_page(PLATFORM, &mut pages)?;
        let reply = get(call, login, &url, Some(repository)).await?;
        let page: Page<DiffStat> = json(PLATFORM, &reply.body)?;
        paths.extend(page.values.into_iter().filter_map(|stat| stat.new.or(stat.old).map(|path| path.path)));
        match page.next {
            Some(next) => url = outbound::follow_on_same_host(PLATFORM, &call.root.url, &url, &next)?,
            None => return Ok(paths),
        }
    }
}

/// `GET url` with Basic auth, retried when transient, its rate-limit headers
/// recorded, and its status sorted: only a 2xx comes back as `Ok`.
async fn get(
    call: &Call<'_>,
    login: &Login<'_>,
    url: &Url,
    repository: Option<&RepoName>,
) -> Result<Reply, PlatformError> {
    let auth = Auth::Basic(login.user, login.password);
    let reply = with_retry(PLATFORM, call.retry, || call.lane.get(url, &auth)).await?;
    call.limits.observe(PLATFORM, &call.origin, &reply.headers);
    let status = reply.status.as_u16();
    match status {
        200..=299 => {
            call.limits.succeeded(PLATFORM, &call.origin);
            Ok(reply)
        }
        300..=399 => Err(outbound::redirect_refused(PLATFORM)),
        401 => Err(PlatformError::CredentialsRejected { platform: PLATFORM, status }),
        403 => Err(forbidden(repository, &reply.body)),
        404 => Err(match repository {
            Some(repository) => {
                PlatformError::RepositoryNotFound { platform: PLATFORM, repository: repository.to_string() }
            }
            None => response::unexpected_status(PLATFORM, status, &reply.body),
        }),
        429 => {
            // No Retry-After on Bitbucket: back off exponentially (1, 2, 4 ... 60 minutes).
            let until = crate::rate_limit::retry_after(&reply.headers)
                .unwrap_or_else(|| call.limits.limited_without_time(PLATFORM, &call.origin));
            call.limits.limited_until(PLATFORM, &call.origin, until);
            Err(PlatformError::RateLimited { platform: PLATFORM, until })
        }
        _ => Err(response::unexpected_status(PLATFORM, status, &reply.body)),
    }
}

/// Bitbucket answers 403 for a private repository these credentials cannot
/// see (a repository that is not there is 404), and also for credentials
/// lacking a scope, which its message says.
fn forbidden(repository: Option<&RepoName>, body: &[u8]) -> PlatformError {
    let message = response::message(body);
    let lower = message.to_ascii_lowercase();
    let names_a_scope = lower.contains("scope") || lower.contains("privilege") || lower.contains("permission");
    match repository {
        Some(repository) if !names_a_scope => {
            PlatformError::RepositoryNotFound { platform: PLATFORM, repository: repository.to_string() }
        }
        _ => PlatformError::PermissionMissing {
            platform: PLATFORM,
            detail: if message.is_empty() { "403 Forbidden".to_owned() } else { message },
        },
    }
}
