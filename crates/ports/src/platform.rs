//! Talking to a source platform (GitHub, GitLab, Bitbucket).

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sigsentry_domain::correlation::{LineRange, PrFile};
use sigsentry_domain::{Credentials, RepoName};

use crate::CredentialKeeper;

/// What the platform says about one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryInfo {
    /// The repository's default branch (`None` for an empty repository).
    pub default_branch: Option<String>,
    /// Whether the repository is private.
    pub private: bool,
}

/// A pull request (GitHub, Bitbucket) or merge request (GitLab) merged into the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedPullRequest {
    /// The PR number, or the MR iid.
    pub number: u64,
    /// Its title.
    pub title: String,
    /// The author's login / username, when known.
    pub author: Option<String>,
    /// The web page of the PR/MR.
    pub url: String,
    /// When it was merged.
    pub merged_at: DateTime<Utc>,
    /// The merge (or squash) commit, when known; may be abbreviated on Bitbucket.
    pub merge_commit_sha: Option<String>,
    /// Last update on the platform (drives incremental sync).
    pub updated_at: DateTime<Utc>,
    /// The files the PR touched, each once; a renamed file under its new path.
    pub files: Vec<ChangedFile>,
}

/// One file a merged PR/MR changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChangedFile {
    /// Its path after the change (a deleted file: its last path).
    pub path: String,
    /// Its path before, when the PR renamed it (not for a copy): a change
    /// made under the earlier path still counts for the current one.
    pub previous_path: Option<String>,
    /// The new-side lines the PR changed, sorted and merged (from the
    /// patch's hunk headers, see
    /// [`parse_hunk_ranges`](sigsentry_domain::correlation::parse_hunk_ranges)).
    /// Empty when unknown: a binary file, a patch the platform left out or
    /// cut (too large), a diff past the adapter's cap, a deleted file.
    pub ranges: Vec<LineRange>,
}

impl ChangedFile {
    /// `path`, not renamed, with no known ranges.
    #[must_use]
    pub fn path_only(path: impl Into<String>) -> Self {
        Self { path: path.into(), previous_path: None, ranges: Vec::new() }
    }
}

impl From<ChangedFile> for PrFile {
    fn from(file: ChangedFile) -> Self {
        PrFile { path: file.path, previous_path: file.previous_path, ranges: file.ranges }
    }
}

/// A repository's files at the head of a branch, as
/// [`PlatformSession::file_tree`] found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeSnapshot {
    /// The branch's revision is still the `known` one given: the files are
    /// the same as then, and were not listed again.
    Unchanged,
    /// The files at `revision`.
    Listed {
        /// What the files were listed at, opaque and platform-specific
        /// (GitHub: the root tree's sha; GitLab and Bitbucket: the head
        /// commit's hash). Pass it back as `known` next time.
        revision: String,
        /// Every file's path from the repository root (`src/main.rs`), sorted
        /// and unique: blobs only, no directories, no submodules. Paths
        /// longer than the adapter's limit (4096 bytes) are left out.
        paths: Vec<String>,
    },
}

/// Which merged PRs/MRs to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullRequestWindow {
    /// Keep only PRs merged at or after this time (the lookback window).
    pub merged_since: DateTime<Utc>,
    /// Fetch only PRs updated at or after this time (incremental sync);
    /// `None` fetches the whole window.
    pub updated_since: Option<DateTime<Utc>>,
}

impl PullRequestWindow {
    /// The oldest update a PR in the window can have: a PR merged at `T` was
    /// updated at or after `T`, so nothing updated before both bounds is in
    /// the window, and a listing sorted by update can stop there.
    #[must_use]
    pub fn oldest_update(&self) -> DateTime<Utc> {
        self.updated_since.map_or(self.merged_since, |since| since.max(self.merged_since))
    }
}

/// The platform's rate-limit state as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimitState {
    /// Requests allowed per window, if the platform says.
    pub limit: Option<u32>,
    /// Requests left in the window, if the platform says.
    pub remaining: Option<u32>,
    /// When the window resets, if the platform says.
    pub reset_at: Option<DateTime<Utc>>,
}

/// Why a platform call failed, sorted the way a user needs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// The platform rejected the credentials (401).
    #[error("{platform} rejected the credentials ({status})")]
    CredentialsRejected {
        /// `GitHub`, `GitLab` or `Bitbucket`.
        platform: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// The repository does not exist or the credentials cannot see it.
    #[error("{platform} repository {repository} was not found or is not visible to these credentials")]
    RepositoryNotFound {
        /// The platform.
        platform: &'static str,
        /// The repository.
        repository: String,
    },
    /// The credentials lack a permission (a scope) the call needs.
    #[error("{platform} denied access: {detail}")]
    PermissionMissing {
        /// The platform.
        platform: &'static str,
        /// What the platform said is missing, without secrets.
        detail: String,
    },
    /// Rate limited; retry no earlier than `until`.
    #[error("{platform} rate limit reached; retry after {}", until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))]
    RateLimited {
        /// The platform.
        platform: &'static str,
        /// When to try again.
        until: DateTime<Utc>,
    },
    /// The platform did not answer, or answered 5xx after retries.
    #[error("{platform} is unavailable: {detail}")]
    Unavailable {
        /// The platform.
        platform: &'static str,
        /// What happened, without secrets.
        detail: String,
    },
    /// The connection's host is refused by the outbound rules (private,
    /// loopback, link-local or metadata address).
    #[error("refused to connect to {host}: {reason}")]
    AddressRefused {
        /// The host name.
        host: String,
        /// Why.
        reason: String,
    },
    /// The platform answered something we do not understand.
    #[error("{platform} sent an unexpected response: {detail}")]
    Unexpected {
        /// The platform.
        platform: &'static str,
        /// What was wrong, without secrets.
        detail: String,
    },
}

/// A client for the platforms: it opens [`PlatformSession`]s. One value
/// serves every platform; the credentials given to [`PlatformClient::open`]
/// say which, and where (their `baseUrl`, or the cloud root).
///
/// Open one session per unit of work (one repository's sync, one check of
/// new credentials) and make all its calls on it: the credentials are read
/// once, and a credential that renews itself is renewed in one place.
///
/// ```
/// use sigsentry_domain::{Credentials, RepoName};
/// use sigsentry_ports::{PlatformClient, PlatformError, PlatformSession};
///
/// /// The default branch of `repository`, as `credentials` see it.
/// async fn default_branch(
///     platform: &impl PlatformClient,
///     credentials: Credentials,
///     repository: &RepoName,
/// ) -> Result<Option<String>, PlatformError> {
///     let session = platform.open(credentials).await?;
///     Ok(session.repository(repository).await?.default_branch)
/// }
/// ```
pub trait PlatformClient: Clone + Send + Sync + 'static {
    /// A session on one platform with one set of credentials.
    type Session: PlatformSession;

    /// Opens a session with `credentials`: where their platform is, and how
    /// to authenticate there. Sends no request; it is async so that an
    /// adapter may set up what needs a runtime, or renew a credential before
    /// its first use.
    ///
    /// # Errors
    /// [`PlatformError::Unexpected`] when the credentials cannot be used at
    /// all: a `baseUrl` that does not make an API root, a secret that cannot
    /// be sent in a header. Nothing is checked with the platform yet.
    fn open(&self, credentials: Credentials) -> impl Future<Output = Result<Self::Session, PlatformError>> + Send;

    /// [`PlatformClient::open`] for credentials kept in the store: the
    /// session reports to `keeper` what it learns of them (their expiry,
    /// whether they were accepted) and renews an OAuth grant through it,
    /// under the store's lock. By default the keeper is not used.
    ///
    /// # Errors
    /// As [`PlatformClient::open`].
    fn open_kept(
        &self,
        credentials: Credentials,
        keeper: Arc<dyn CredentialKeeper>,
    ) -> impl Future<Output = Result<Self::Session, PlatformError>> + Send {
        drop(keeper);
        self.open(credentials)
    }
}

/// Calls to one platform with one set of credentials, opened by
/// [`PlatformClient::open`]. It holds the authenticated client and whatever
/// the authentication needs to stay valid, so its methods take no
/// credentials.
pub trait PlatformSession: Send + Sync {
    /// Checks that the credentials are accepted.
    ///
    /// # Errors
    /// [`PlatformError::CredentialsRejected`] for a bad token; the others as they come.
    fn verify(&self) -> impl Future<Output = Result<(), PlatformError>> + Send;

    /// Reads a repository's default branch and visibility.
    ///
    /// # Errors
    /// [`PlatformError::RepositoryNotFound`] when it does not exist or is not visible.
    fn repository(&self, repository: &RepoName) -> impl Future<Output = Result<RepositoryInfo, PlatformError>> + Send;

    /// Lists the PRs/MRs merged in `window`, newest update first, with the
    /// files they touched: paths, renames and changed line ranges.
    ///
    /// # Errors
    /// Any [`PlatformError`]; a rate limit hit mid-way is `RateLimited`.
    fn merged_pull_requests(
        &self,
        repository: &RepoName,
        window: PullRequestWindow,
    ) -> impl Future<Output = Result<Vec<MergedPullRequest>, PlatformError>> + Send;

    /// The files of `repository` at the head of `branch` (its default branch),
    /// unless the branch is still at the `known` revision: then
    /// [`TreeSnapshot::Unchanged`], and the list is not downloaded again.
    ///
    /// # Errors
    /// [`PlatformError::RepositoryNotFound`] when the repository is not
    /// visible; [`PlatformError::Unexpected`] when the branch is not there
    /// or the tree is past the adapter's bounds (too many files, too many
    /// requests: the message says which); the others as they come.
    fn file_tree(
        &self,
        repository: &RepoName,
        branch: &str,
        known: Option<&str>,
    ) -> impl Future<Output = Result<TreeSnapshot, PlatformError>> + Send;

    /// The rate-limit state last seen for this session's platform and host
    /// (shared with every other session on that host).
    fn rate_limit(&self) -> RateLimitState;
}
