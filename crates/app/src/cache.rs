//! Reading the repo cache and asking for a sync.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sigsentry_domain::{ConnectionId, Invalid};
use sigsentry_ports::{CachedPullRequest, Clock, CredentialCipher, PullRequestQuery, Store};

use crate::{CodeRepos, NotFoundOr, ProjectScope};

/// One page of cached pull requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestPage {
    /// The PRs, newest merge first.
    pub items: Vec<CachedPullRequest>,
    /// The cursor of the next page, `None` on the last.
    pub next_cursor: Option<String>,
}

/// Filters of a PR listing, as the caller gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRequestFilter {
    /// Only this repository (compared without case).
    pub repository: Option<String>,
    /// Only PRs that touched a path starting with this.
    pub path_prefix: Option<String>,
    /// The PRs after this position (merged at, repository key, number), from a cursor.
    pub after: Option<(DateTime<Utc>, String, u64)>,
    /// Page size, 1..=100.
    pub limit: u32,
}

const CURSOR_PREFIX: &str = "p1";

fn encode_cursor(item: &CachedPullRequest) -> String {
    let raw = format!(
        "{}|{}|{}",
        item.pull_request.merged_at.timestamp_millis(),
        item.pull_request.number,
        item.repository.key()
    );
    format!("{CURSOR_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
}

/// Reads a PR-listing cursor back.
///
/// # Errors
/// [`Invalid`] when it is not a cursor this service gave out.
pub fn decode_pr_cursor(cursor: &str) -> Result<(DateTime<Utc>, String, u64), Invalid> {
    let invalid = || Invalid::new("is not a cursor from a previous page");
    let bytes = cursor.strip_prefix(CURSOR_PREFIX).and_then(|b| URL_SAFE_NO_PAD.decode(b).ok()).ok_or_else(invalid)?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '|');
    let millis: i64 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(invalid)?;
    let number: u64 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(invalid)?;
    let key = parts.next().filter(|k| !k.is_empty()).ok_or_else(invalid)?.to_owned();
    let merged_at = DateTime::<Utc>::from_timestamp_millis(millis).ok_or_else(invalid)?;
    Ok((merged_at, key, number))
}

impl<S: Store, C: CredentialCipher, K: Clock> CodeRepos<S, C, K> {
    /// Asks for a sync of every repository of the connection now.
    ///
    /// # Errors
    /// [`NotFoundOr::NotFound`] when it is not in the project.
    pub async fn request_sync(&self, scope: ProjectScope, id: ConnectionId) -> Result<(), NotFoundOr> {
        if self.store.request_sync(scope.project_id, id).await? {
            tracing::info!(connection_id = %id, "sync requested");
            Ok(())
        } else {
            Err(NotFoundOr::NotFound)
        }
    }

    /// Lists cached PRs of a connection, newest merge first.
    ///
    /// # Errors
    /// [`NotFoundOr::NotFound`] when the connection is not in the project.
    pub async fn list_pull_requests(
        &self,
        scope: ProjectScope,
        id: ConnectionId,
        filter: PullRequestFilter,
    ) -> Result<PullRequestPage, NotFoundOr> {
        let query = PullRequestQuery {
            repository_key: filter.repository.map(|r| r.to_ascii_lowercase()),
            path_prefix: filter.path_prefix,
            after: filter.after,
            limit: filter.limit + 1,
        };
        let mut items =
            self.store.list_pull_requests(scope.project_id, id, query).await?.ok_or(NotFoundOr::NotFound)?;
        let next_cursor = if items.len() > filter.limit as usize {
            items.truncate(filter.limit as usize);
            items.last().map(encode_cursor)
        } else {
            None
        };
        Ok(PullRequestPage { items, next_cursor })
    }
}
