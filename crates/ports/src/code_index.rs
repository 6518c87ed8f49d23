//! What code correlation reads from the repo cache: repository files by
//! name, and the lines merged pull requests changed in them. Both are
//! scoped to one project: a correlation never sees another tenant's cache.

use std::future::Future;

use chrono::{DateTime, Utc};
use sigsentry_domain::correlation::LineRange;
use sigsentry_domain::{ConnectionId, ProjectId};

use crate::StoreError;

/// A file of a repository at its default branch, as the last sync saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedFile {
    /// The connection holding the repository.
    pub connection_id: ConnectionId,
    /// The repository's key ([`RepoName::key`](sigsentry_domain::RepoName::key)).
    pub repository_key: String,
    /// The path from the repository root.
    pub path: String,
}

/// A file of a repository, to ask about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileRef {
    /// The connection holding the repository.
    pub connection_id: ConnectionId,
    /// The repository's key.
    pub repository_key: String,
    /// The path from the repository root.
    pub path: String,
}

/// One file one merged pull request changed, with the pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The connection.
    pub connection_id: ConnectionId,
    /// The repository's key.
    pub repository_key: String,
    /// The PR number (MR iid).
    pub number: u64,
    /// Its title.
    pub title: String,
    /// Its author's login, when known.
    pub author: Option<String>,
    /// Its web page.
    pub url: String,
    /// When it was merged.
    pub merged_at: DateTime<Utc>,
    /// The file's path after the change.
    pub path: String,
    /// Its path before, when the change renamed it.
    pub previous_path: Option<String>,
    /// New-side lines the change touched; empty when unknown (binary, too large).
    pub ranges: Vec<LineRange>,
}

/// The repo cache as correlation reads it.
pub trait CodeIndexStore: Clone + Send + Sync + 'static {
    /// Files of the project's active connections whose lower-cased file name
    /// is one of `names` (as
    /// [`PathIndex::lookup_names`](sigsentry_domain::correlation::PathIndex::lookup_names)
    /// gives them), at most `limit` rows.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn files_named(
        &self,
        project: ProjectId,
        names: &[String],
        limit: u32,
    ) -> impl Future<Output = Result<Vec<IndexedFile>, StoreError>> + Send;

    /// Changes, by pull requests merged between `since` and `until`
    /// (inclusive), to any of `files`, under their current or their
    /// previous path, in the project's connections. At most `limit` rows,
    /// the newest merges first.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn changes_to(
        &self,
        project: ProjectId,
        files: &[FileRef],
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<FileChange>, StoreError>> + Send;
}
