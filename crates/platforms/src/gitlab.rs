//! GitLab (gitlab.com and self-managed), over REST v4 with a `PRIVATE-TOKEN`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use sigsentry_domain::{RepoName, Secret};
use sigsentry_ports::{MergedPullRequest, PlatformError, PullRequestWindow, RepositoryInfo};
use url::Url;

use crate::Call;
use crate::outbound::{self, Auth, Reply, with_retry};
use crate::rate_limit::{header_epoch, retry_after};
use crate::response::{self, count_page, json};

/// The platform's name in errors and rate-limit keys.
pub(crate) const PLATFORM: &str = "GitLab";
/// Where the REST API hangs under an instance root.
pub(crate) const API_PATH: &str = "/api/v4";

/// `GET /user`: a 401 means the token is bad.
pub(crate) async fn verify(call: &Call<'_>, token: &Secret) -> Result<(), PlatformError> {
    get(call, token, &call.root.endpoint(PLATFORM, "/user")?, None).await.map(drop)
}

/// `GET /projects/{group%2Fsub%2Fproject}`: the default branch and visibility.
pub(crate) async fn repository(
    call: &Call<'_>,
    token: &Secret,
    repository: &RepoName,
) -> Result<RepositoryInfo, PlatformError> {
    #[derive(Deserialize)]
    struct Project {
        default_branch: Option<String>,
        visibility: Option<String>,
    }
    let url = call.root.endpoint(PLATFORM, &format!("/projects/{}", project_id(repository)))?;
    let reply = get(call, token, &url, Some(repository)).await?;
    let project: Project = json(PLATFORM, &reply.body)?;
    Ok(RepositoryInfo {
        default_branch: project.default_branch.filter(|b| !b.is_empty()),
        // `internal` projects are visible to every signed-in user, not to the public.
        private: project.visibility.as_deref() != Some("public"),
    })
}

#[derive(Deserialize)]
struct MergeRequest {
    iid: u64,
    title: String,
    web_url: String,
    author: Option<Author>,
    merged_at: Option<DateTime<Utc>>,
    merge_commit_sha: Option<String>,
    squash_commit_sha: Option<String>,
    updated_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Author {
    username: String,
}

#[derive(Deserialize)]
struct Diff {
    old_path: String,
    new_path: String,
    #[serde(default)]
    deleted_file: bool,
}

/// Merged MRs updated since the window's lower bound, newest update first,
/// those merged inside the window kept, with their files.
pub(crate) async fn merged_merge_requests(
    call: &Call<'_>,
    token: &Secret,
    repository: &RepoName,
    window: PullRequestWindow,
) -> Result<Vec<MergedPullRequest>, PlatformError> {
    let lower_bound = window.updated_since.map_or(window.merged_since, |since| since.max(window.merged_since));
    let project = project_id(repository);
    let mut url = call.root.endpoint(PLATFORM, &format!("/projects/{project}/merge_requests"))?;
    url.query_pairs_mut()
        .append_pair("state", "merged")
        .append_pair("updated_after", &lower_bound.to_rfc3339_opts(SecondsFormat::Secs, true))
        .append_pair("order_by", "updated_at")
        .append_pair("sort", "desc")
        .append_pair("per_page", "100");
    let mut merged = Vec::new();
    let mut pages = 0;
    loop {
        count_page(PLATFORM, &mut pages)?;
        let reply = get(call, token, &url, Some(repository)).await?;
        let requests: Vec<MergeRequest> = json(PLATFORM, &reply.body)?;
        // `updated_after` already bounds the list; the check only saves a
        // page should an instance ignore it.
        let past_window = requests.iter().any(|request| request.updated_at < lower_bound);
        for request in requests {
            if request.updated_at < lower_bound {
                continue;
            }
            // An MR merged before GitLab recorded merge times has no merged_at: left out.
            if let Some(merged_at) = request.merged_at.filter(|at| *at >= window.merged_since) {
                merged.push((request, merged_at));
            }
        }
        match next_page(call, &reply, &url)? {
            Some(next) if !past_window => url = next,
            _ => break,
        }
    }
    let mut result = Vec::with_capacity(merged.len());
    for (request, merged_at) in merged {
        let files = files(call, token, repository, request.iid).await?;
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

/// `GET /projects/{id}/merge_requests/{iid}/diffs` (the successor of the
/// deprecated `/changes`), all pages: new paths, old paths of deleted files.
async fn files(call: &Call<'_>, token: &Secret, repository: &RepoName, iid: u64) -> Result<Vec<String>, PlatformError> {
    let path = format!("/projects/{}/merge_requests/{iid}/diffs?per_page=100", project_id(repository));
    let mut url = call.root.endpoint(PLATFORM, &path)?;
    let mut paths = Vec::new();
    let mut pages = 0;
    loop {
        count_page(PLATFORM, &mut pages)?;
        let reply = get(call, token, &url, Some(repository)).await?;
        let diffs: Vec<Diff> = json(PLATFORM, &reply.body)?;
        paths.extend(diffs.into_iter().map(|diff| if diff.deleted_file { diff.old_path } else { diff.new_path }));
        match next_page(call, &reply, &url)? {
            Some(next) => url = next,
            None => return Ok(paths),
        }
    }
}

/// The full path as one URL segment: `group/sub/project` → `group%2Fsub%2Fproject`.
/// RepoName allows only letters, digits, '-', '_' and '.' besides the
/// slashes, so the slashes are all there is to encode.
fn project_id(repository: &RepoName) -> String {
    repository.as_str().replace('/', "%2F")
}

/// The next page: `x-next-page` (empty on the last page), else the `Link`
/// header (GitLab leaves out the page headers past 10,000 rows, not `Link`).
fn next_page(call: &Call<'_>, reply: &Reply, current: &Url) -> Result<Option<Url>, PlatformError> {
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
        None => outbound::link_next(&reply.headers)
            .map(|next| outbound::follow_on_same_host(PLATFORM, &call.root.url, current, &next))
            .transpose(),
    }
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

/// `GET url` with the token, retried when transient, its rate-limit headers
/// recorded, and its status sorted: only a 2xx comes back as `Ok`.
async fn get(
    call: &Call<'_>,
    token: &Secret,
    url: &Url,
    repository: Option<&RepoName>,
) -> Result<Reply, PlatformError> {
    let auth = Auth::Header("private-token", token.expose());
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
        403 => {
            let message = response::message(&reply.body);
            let detail = if message.is_empty() { "403 Forbidden".to_owned() } else { message };
            Err(PlatformError::PermissionMissing { platform: PLATFORM, detail })
        }
        404 => Err(match repository {
            Some(repository) => {
                PlatformError::RepositoryNotFound { platform: PLATFORM, repository: repository.to_string() }
            }
            None => response::unexpected_status(PLATFORM, status, &reply.body),
        }),
        429 => {
            let until = retry_after(&reply.headers)
                .or_else(|| header_epoch(&reply.headers, &["ratelimit-reset"]))
                .unwrap_or_else(|| call.limits.limited_without_time(PLATFORM, &call.origin));
            call.limits.limited_until(PLATFORM, &call.origin, until);
            Err(PlatformError::RateLimited { platform: PLATFORM, until })
        }
        _ => Err(response::unexpected_status(PLATFORM, status, &reply.body)),
    }
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
