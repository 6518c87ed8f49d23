//! What a sync keeps of a repository's files and of a PR's changes, within
//! [`ListingBounds`]: the collectors every platform fills, and patches read
//! into line ranges as they are parsed, so no patch text outlives its field.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Deserializer};
use sigsentry_domain::correlation::{LineRange, parse_hunk_ranges};
use sigsentry_ports::{ChangedFile, PlatformError, TreeSnapshot};

use crate::ListingBounds;

/// The files of one tree as they are listed, within the bounds.
#[derive(Debug)]
pub(crate) struct TreeListing {
    platform: &'static str,
    bounds: ListingBounds,
    paths: Vec<String>,
    /// The bytes of all paths kept.
    bytes: usize,
    requests: usize,
    /// Paths left out for their length.
    skipped: usize,
}

impl TreeListing {
    pub(crate) fn new(platform: &'static str, bounds: ListingBounds) -> Self {
        Self { platform, bounds, paths: Vec::new(), bytes: 0, requests: 0, skipped: 0 }
    }

    /// Counts one request of the listing (a page, a subtree, a directory).
    ///
    /// # Errors
    /// `Unexpected` past [`ListingBounds::max_tree_requests`].
    pub(crate) fn request(&mut self) -> Result<(), PlatformError> {
        self.requests += 1;
        if self.requests > self.bounds.max_tree_requests {
            let max = self.bounds.max_tree_requests;
            return Err(self.too_large(format!("takes more than {max} requests to list")));
        }
        Ok(())
    }

    /// Keeps a file's path; an empty one, or one longer than
    /// [`ListingBounds::max_path_bytes`], is left out.
    ///
    /// # Errors
    /// `Unexpected` past [`ListingBounds::max_tree_paths`] or
    /// [`ListingBounds::max_tree_bytes`].
    pub(crate) fn file(&mut self, path: String) -> Result<(), PlatformError> {
        if path.is_empty() || path.len() > self.bounds.max_path_bytes {
            self.skipped += 1;
            return Ok(());
        }
        if self.paths.len() >= self.bounds.max_tree_paths {
            let max = self.bounds.max_tree_paths;
            return Err(self.too_large(format!("has more than {max} files")));
        }
        self.bytes += path.len();
        if self.bytes > self.bounds.max_tree_bytes {
            let max = self.bounds.max_tree_bytes;
            return Err(self.too_large(format!("has paths longer than {max} bytes in all")));
        }
        self.paths.push(path);
        Ok(())
    }

    /// The listing as a snapshot of `revision`: paths sorted and unique.
    pub(crate) fn finish(mut self, revision: String) -> TreeSnapshot {
        if self.skipped > 0 {
            let max = self.bounds.max_path_bytes;
            tracing::warn!(platform = self.platform, skipped = self.skipped, "paths longer than {max} bytes left out");
        }
        self.paths.sort_unstable();
        self.paths.dedup();
        TreeSnapshot::Listed { revision, paths: self.paths }
    }

    fn too_large(&self, what: String) -> PlatformError {
        PlatformError::Unexpected {
            platform: self.platform,
            detail: format!("the default branch {what}; its file list is not kept"),
        }
    }
}

/// What one session (one sync) has spent, against the per-sync bounds of
/// [`ListingBounds`]: requests sent and response bytes read (past either
/// the sync fails), changed files kept and their path bytes (past either,
/// no more are kept). Shared by the session's calls.
#[derive(Debug)]
pub(crate) struct Budget {
    bounds: ListingBounds,
    requests: AtomicUsize,
    bytes: AtomicUsize,
    files: AtomicUsize,
    path_bytes: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(bounds: ListingBounds) -> Arc<Self> {
        Arc::new(Self {
            bounds,
            requests: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            files: AtomicUsize::new(0),
            path_bytes: AtomicUsize::new(0),
        })
    }

    /// Counts one request about to be sent.
    ///
    /// # Errors
    /// `Unexpected` past [`ListingBounds::max_requests`].
    pub(crate) fn request(&self, platform: &'static str) -> Result<(), PlatformError> {
        let max = self.bounds.max_requests;
        if self.requests.fetch_add(1, Ordering::Relaxed) >= max {
            return Err(PlatformError::Unexpected {
                platform,
                detail: format!("one sync needed more than {max} requests; stopped"),
            });
        }
        Ok(())
    }

    /// Counts `n` response bytes read.
    ///
    /// # Errors
    /// `Unexpected` past [`ListingBounds::max_response_bytes`].
    pub(crate) fn read(&self, platform: &'static str, n: usize) -> Result<(), PlatformError> {
        let max = self.bounds.max_response_bytes;
        if self.bytes.fetch_add(n, Ordering::Relaxed).saturating_add(n) > max {
            let mib = max / (1024 * 1024);
            return Err(PlatformError::Unexpected {
                platform,
                detail: format!("one sync read more than {mib} MiB of answers; stopped"),
            });
        }
        Ok(())
    }

    /// Takes room for one more changed file with a path of `bytes`; `false`
    /// when the sync keeps no more.
    fn keep_file(&self, bytes: usize) -> bool {
        if self.files.load(Ordering::Relaxed) >= self.bounds.max_changed_files
            || self.path_bytes.load(Ordering::Relaxed).saturating_add(bytes) > self.bounds.max_changed_path_bytes
        {
            return false;
        }
        self.files.fetch_add(1, Ordering::Relaxed);
        self.path_bytes.fetch_add(bytes, Ordering::Relaxed);
        true
    }

    /// Whether the sync keeps no more changed files.
    fn files_spent(&self) -> bool {
        self.files.load(Ordering::Relaxed) >= self.bounds.max_changed_files
            || self.path_bytes.load(Ordering::Relaxed) >= self.bounds.max_changed_path_bytes
    }
}

/// The longest PR title kept, in characters; the rest is cut.
pub(crate) const MAX_TITLE_CHARS: usize = 1024;

/// The longest other short text a platform names (a login, a web URL, a
/// commit sha) kept, in characters.
pub(crate) const MAX_LABEL_CHARS: usize = 2048;

/// `text` cut to `max` characters. A cut string gives its spare capacity
/// back: a 10 KB title cut to 1 KB must not keep holding 10 KB.
pub(crate) fn truncated(mut text: String, max: usize) -> String {
    if let Some((end, _)) = text.char_indices().nth(max) {
        text.truncate(end);
        text.shrink_to_fit();
    }
    text
}

/// A PR title, cut to [`MAX_TITLE_CHARS`] as it is read, so a listing of
/// hostile titles holds no more than that per PR.
pub(crate) fn title<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(truncated(String::deserialize(deserializer)?, MAX_TITLE_CHARS))
}

/// A login, URL or sha, cut to [`MAX_LABEL_CHARS`] as it is read.
pub(crate) fn label<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(truncated(String::deserialize(deserializer)?, MAX_LABEL_CHARS))
}

/// An optional login, URL or sha, cut likewise (`#[serde(default)]` with it).
pub(crate) fn optional_label<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.map(|text| truncated(text, MAX_LABEL_CHARS)))
}

/// The files of one PR as they are listed, within the bounds: each path
/// once (the first entry wins), paths too long left out, at most
/// [`ListingBounds::max_files_per_pull_request`], and no more than the
/// sync's [`Budget`] still allows.
#[derive(Debug)]
pub(crate) struct ChangedFiles {
    bounds: ListingBounds,
    budget: Arc<Budget>,
    files: Vec<ChangedFile>,
    seen: HashSet<String>,
    /// Files left out: too long, or past the most kept.
    skipped: usize,
}

impl ChangedFiles {
    pub(crate) fn new(bounds: ListingBounds, budget: Arc<Budget>) -> Self {
        Self { bounds, budget, files: Vec::new(), seen: HashSet::new(), skipped: 0 }
    }

    /// Keeps `file`, unless it is one too many, its path is too long or
    /// already there. A previous path that is too long is dropped.
    pub(crate) fn push(&mut self, mut file: ChangedFile) {
        let max_path = self.bounds.max_path_bytes;
        if self.is_full() || file.path.is_empty() || file.path.len() > max_path {
            self.skipped += 1;
            return;
        }
        if file.previous_path.as_ref().is_some_and(|previous| previous.is_empty() || previous.len() > max_path) {
            file.previous_path = None;
        }
        if self.seen.contains(&file.path) {
            return;
        }
        let bytes = file.path.len() + file.previous_path.as_ref().map_or(0, String::len);
        if !self.budget.keep_file(bytes) {
            self.skipped += 1;
            return;
        }
        self.seen.insert(file.path.clone());
        self.files.push(file);
    }

    /// No more files are kept: the listing may stop paging.
    pub(crate) fn is_full(&self) -> bool {
        self.files.len() >= self.bounds.max_files_per_pull_request || self.budget.files_spent()
    }

    /// The files kept, in the platform's order.
    pub(crate) fn finish(self, platform: &'static str, number: u64) -> Vec<ChangedFile> {
        if self.skipped > 0 {
            tracing::warn!(
                platform,
                number,
                skipped = self.skipped,
                "changed files left out (path too long, or too many)"
            );
        }
        self.files
    }
}

/// One file's patch in a JSON answer (GitHub's `patch`, GitLab's `diff`):
/// only its new-side line ranges and its length are kept; the text is
/// dropped as soon as it is parsed.
#[derive(Debug, Default)]
pub(crate) struct Patch {
    ranges: Vec<LineRange>,
    bytes: usize,
}

impl Patch {
    /// The changed line ranges: none when the patch is longer than
    /// `max_bytes` (treated like one the platform left out as too large).
    pub(crate) fn ranges(self, max_bytes: usize) -> Vec<LineRange> {
        if self.bytes > max_bytes { Vec::new() } else { self.ranges }
    }
}

impl<'de> Deserialize<'de> for Patch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Self { ranges: parse_hunk_ranges(&text), bytes: text.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> ListingBounds {
        ListingBounds {
            max_tree_paths: 3,
            max_tree_bytes: 20,
            max_tree_requests: 2,
            max_path_bytes: 8,
            max_files_per_pull_request: 2,
            ..ListingBounds::default()
        }
    }

    #[test]
    fn trees_keep_files_sorted_and_unique_within_the_bounds() {
        let mut listing = TreeListing::new("GitHub", bounds());
        for path in ["b.rs", "a.rs", "b.rs", "toolong.rs", ""] {
            listing.file(path.to_owned()).unwrap();
        }
        let TreeSnapshot::Listed { paths, revision } = listing.finish("r1".into()) else { panic!() };
        assert_eq!((paths, revision.as_str()), (vec!["a.rs".to_owned(), "b.rs".to_owned()], "r1"));

        let mut listing = TreeListing::new("GitHub", bounds());
        for path in ["a", "b", "c"] {
            listing.file(path.to_owned()).unwrap();
        }
        let error = listing.file("d".to_owned()).unwrap_err();
        assert!(error.to_string().contains("more than 3 files"), "{error}");

        let mut listing = TreeListing::new("GitHub", bounds());
        listing.file("12345678".to_owned()).unwrap();
        listing.file("12345678".to_owned()).unwrap();
        let error = listing.file("12345".to_owned()).unwrap_err();
        assert!(error.to_string().contains("longer than 20 bytes in all"), "{error}");

        let mut listing = TreeListing::new("GitLab", bounds());
        listing.request().unwrap();
        listing.request().unwrap();
        let error = listing.request().unwrap_err();
        assert!(error.to_string().contains("more than 2 requests"), "{error}");
    }

    #[test]
    fn changed_files_are_unique_bounded_and_short() {
        let mut files = ChangedFiles::new(bounds(), Budget::new(bounds()));
        files.push(ChangedFile::path_only("toolong.rs"));
        files.push(ChangedFile { previous_path: Some("much/too/long.rs".into()), ..ChangedFile::path_only("a.rs") });
        files.push(ChangedFile::path_only("a.rs"));
        assert!(!files.is_full());
        files.push(ChangedFile::path_only("b.rs"));
        assert!(files.is_full());
        files.push(ChangedFile::path_only("c.rs"));
        assert_eq!(files.finish("GitHub", 1), [ChangedFile::path_only("a.rs"), ChangedFile::path_only("b.rs")]);
    }

    #[test]
    fn a_sync_keeps_no_more_files_than_its_budget() {
        let bounds = ListingBounds { max_changed_files: 3, max_files_per_pull_request: 10, ..ListingBounds::default() };
        let budget = Budget::new(bounds);
        let mut first = ChangedFiles::new(bounds, Arc::clone(&budget));
        for path in ["a", "b", "a"] {
            first.push(ChangedFile::path_only(path));
        }
        let mut second = ChangedFiles::new(bounds, Arc::clone(&budget));
        for path in ["c", "d"] {
            second.push(ChangedFile::path_only(path));
        }
        assert!(second.is_full());
        assert_eq!(first.finish("GitHub", 1).len() + second.finish("GitHub", 2).len(), 3);
    }

    #[test]
    fn requests_and_bytes_are_counted_per_sync() {
        let bounds = ListingBounds { max_requests: 2, max_response_bytes: 10, ..ListingBounds::default() };
        let budget = Budget::new(bounds);
        budget.request("GitHub").unwrap();
        budget.request("GitHub").unwrap();
        let error = budget.request("GitHub").unwrap_err();
        assert!(error.to_string().contains("more than 2 requests"), "{error}");
        budget.read("GitHub", 10).unwrap();
        assert!(budget.read("GitHub", 1).is_err());
    }

    #[test]
    fn titles_and_labels_are_cut_by_characters() {
        #[derive(Deserialize)]
        struct Pull {
            #[serde(deserialize_with = "title")]
            title: String,
        }
        let long = "é".repeat(3000);
        let pull: Pull = serde_json::from_value(serde_json::json!({ "title": long })).unwrap();
        assert_eq!(pull.title.chars().count(), MAX_TITLE_CHARS);
        assert_eq!(truncated("short".to_owned(), 3), "sho");
        assert_eq!(truncated("ok".to_owned(), 3), "ok");
    }

    #[test]
    fn patches_become_ranges_unless_too_long() {
        let patch: Patch = serde_json::from_str(r#""@@ -1,2 +3,4 @@\n a\n+b\n""#).unwrap();
        assert_eq!(patch.ranges(1024), [LineRange::new(3, 6)]);
        let patch: Patch = serde_json::from_str(r#""@@ -1,2 +3,4 @@\n a\n+b\n""#).unwrap();
        assert_eq!(patch.ranges(4), []);
    }
}
