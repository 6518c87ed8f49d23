//! Renamed files: a pull request that changed a file under an earlier path
//! still counts for the file's current path.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// Rename edges: repository, then path, to (when, other path), sorted.
/// Nested so that lookups borrow `&str` and allocate nothing.
type Edges = BTreeMap<String, BTreeMap<String, Vec<(DateTime<Utc>, String)>>>;

/// The renames of the repositories, each at the time its pull request was
/// merged. Chains (`a.py` to `b.py` to `c.py`) are followed in time order,
/// at most [`RenameMap::MAX_DEPTH`] steps, so cycles (a file renamed and
/// renamed back) end.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use sigsentry_domain::correlation::RenameMap;
///
/// let t = |day| Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap();
/// let mut renames = RenameMap::new();
/// renames.insert("acme/shop", "cart.py", "checkout/cart.py", t(3));
/// renames.insert("acme/shop", "checkout/cart.py", "checkout/basket.py", t(9));
/// // A change to cart.py merged on the 1st is a change to today's basket.py.
/// assert_eq!(renames.current_path("acme/shop", "cart.py", t(1)), "checkout/basket.py");
/// assert_eq!(renames.earlier_paths("acme/shop", "checkout/basket.py"), vec!["cart.py", "checkout/cart.py"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenameMap {
    /// (repository, old path) to (when, new path), sorted.
    forward: Edges,
    /// (repository, new path) to (when, old path), sorted.
    backward: Edges,
}

impl RenameMap {
    /// The most renames followed from one path.
    pub const MAX_DEPTH: usize = 32;
    /// The most earlier names returned for one path.
    pub const MAX_NAMES: usize = 64;

    /// No renames.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `old_path` became `new_path` in `repository` at `at`
    /// (the merge time of the pull request that renamed it). Recording the
    /// same rename twice has no further effect.
    pub fn insert(&mut self, repository: &str, old_path: &str, new_path: &str, at: DateTime<Utc>) {
        if old_path == new_path || old_path.is_empty() || new_path.is_empty() {
            return;
        }
        let add = |map: &mut Edges, from: &str, to: &str| {
            let edges = map.entry(repository.to_owned()).or_default().entry(from.to_owned()).or_default();
            let edge = (at, to.to_owned());
            if let Err(position) = edges.binary_search(&edge) {
                edges.insert(position, edge);
            }
        };
        add(&mut self.forward, old_path, new_path);
        add(&mut self.backward, new_path, old_path);
    }

    /// True when no rename is recorded.
    pub fn is_empty(&self) -> bool {
        self.forward.is_empty()
    }

    /// The path that `path`, as it was at `since`, has now: renames merged
    /// after `since` are followed, oldest first.
    pub fn current_path(&self, repository: &str, path: &str, since: DateTime<Utc>) -> String {
        self.renamed(repository, path, since).unwrap_or_else(|| path.to_owned())
    }

    /// Like [`RenameMap::current_path`], but `None` when no rename applies,
    /// without allocating.
    pub(crate) fn renamed(&self, repository: &str, path: &str, since: DateTime<Utc>) -> Option<String> {
        let edges = self.forward.get(repository)?;
        let mut current: Option<&String> = None;
        let mut since = since;
        for _ in 0..Self::MAX_DEPTH {
            let name = current.map_or(path, String::as_str);
            let next = edges.get(name).and_then(|list| list.iter().find(|(at, _)| *at > since));
            match next {
                Some((at, new_path)) => {
                    since = *at;
                    current = Some(new_path);
                }
                None => break,
            }
        }
        current.filter(|c| c.as_str() != path).cloned()
    }

    /// The names `path` had before, sorted: what to look pull requests up
    /// by, besides the current path.
    pub fn earlier_paths(&self, repository: &str, path: &str) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        let mut frontier: Vec<(String, Option<DateTime<Utc>>, usize)> = vec![(path.to_owned(), None, 0)];
        while let Some((name, until, depth)) = frontier.pop() {
            if depth >= Self::MAX_DEPTH || found.len() >= Self::MAX_NAMES {
                continue;
            }
            let Some(edges) = self.backward.get(repository).and_then(|paths| paths.get(&name)) else { continue };
            for (at, old) in edges.iter().filter(|(at, _)| until.is_none_or(|u| *at < u)) {
                if old != path && !found.contains(old) && found.len() < Self::MAX_NAMES {
                    found.push(old.clone());
                    frontier.push((old.clone(), Some(*at), depth + 1));
                }
            }
        }
        found.sort();
        found
    }
}
