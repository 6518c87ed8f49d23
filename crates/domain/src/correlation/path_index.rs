//! The repositories' file lists, indexed for mapping frames to files.

use std::collections::HashMap;

use super::classify::{FrameClass, classify};
use super::frame_path::{Suffixes, suffixes};
use super::outcome::{FrameMapping, MappedFrame, RepoPath, Unmapped};
use super::trace::{Frame, Language, ParsedTrace};
use crate::PathPrefix;

/// Every file of the connected repositories (at their default branch),
/// indexed by file name.
///
/// A frame is looked up through its file name (a map from lower-cased file
/// name to the paths that end in it); among those candidates the **longest
/// matching suffix of path components** wins: `/app/checkout/cart.py` and
/// `/srv/build/checkout/cart.py` both find `checkout/cart.py`. A lookup
/// costs O(candidates × depth), never a scan of all paths.
///
/// ```
/// use sigsentry_domain::correlation::{FrameMapping, MapOptions, PathIndex, parse_trace};
///
/// let index: PathIndex = [
///     ("acme/checkout-api", "checkout/cart.py"),
///     ("acme/checkout-api", "web/views.py"),
///     ("acme/billing", "billing/cart.py"),
/// ]
/// .into_iter()
/// .collect();
///
/// let trace = parse_trace(
///     "Traceback (most recent call last):\n  \
///        File \"/srv/app/checkout/cart.py\", line 42, in total\n    \
///          rate = rates[self.currency]\n\
///      KeyError: 'currency'\n",
/// );
/// let mapping = index.map_frame(&trace.frames[0], trace.language, &MapOptions::default());
/// let FrameMapping::Mapped(mapped) = mapping else { panic!("not mapped: {mapping:?}") };
/// assert_eq!(mapped.file.repository, "acme/checkout-api");
/// assert_eq!(mapped.file.path, "checkout/cart.py");
/// assert_eq!(mapped.matched_components, 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct PathIndex {
    repositories: Vec<String>,
    /// (index into `repositories`, path).
    paths: Vec<(u32, Box<str>)>,
    by_name: HashMap<Box<str>, Vec<u32>>,
}

/// The repository and directory a request's service maps to: candidates
/// there win over candidates elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingScope {
    /// The repository key.
    pub repository: String,
    /// The service's directory in it (monorepos), the root otherwise.
    pub path_prefix: PathPrefix,
}

/// How to map frames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapOptions {
    /// The service's repository and directory, when the request's service
    /// matched a mapping.
    pub scope: Option<MappingScope>,
    /// Repositories whose file list is not known yet (sync pending or
    /// failed); they are not in the index.
    pub not_synced: Vec<String>,
}

/// One candidate file and how well it fits.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    id: u32,
    matched: usize,
    /// Every component of the repository path matched: the runtime path
    /// ends with the whole repository path.
    whole: bool,
}

impl PathIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file. `path` is relative to the repository root; a leading
    /// `/` or `./` is ignored, and so are directories (ending in `/`).
    /// `repository` is an opaque key: use the same key in
    /// [`MappingScope::repository`] and [`MapOptions::not_synced`].
    pub fn insert(&mut self, repository: &str, path: &str) {
        let path = path.trim_start_matches("./").trim_start_matches('/');
        let Some(name) = path.rsplit('/').next().filter(|n| !n.is_empty()) else {
            return;
        };
        let Ok(id) = u32::try_from(self.paths.len()) else {
            return; // four billion paths: far beyond any cache
        };
        let repo = match self.repositories.iter().position(|r| r == repository) {
            Some(i) => i,
            None => {
                self.repositories.push(repository.to_owned());
                self.repositories.len() - 1
            }
        };
        let repo = u32::try_from(repo).unwrap_or(u32::MAX);
        self.paths.push((repo, path.into()));
        self.by_name.entry(Self::name_key(name).into()).or_default().push(id);
    }

    /// How many files are indexed.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// True when no file is indexed.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Whether any file of `repository` is indexed.
    pub fn has_repository(&self, repository: &str) -> bool {
        self.repositories.iter().any(|r| r == repository)
    }

    /// The key a repository file is looked up by: its file name, lower-cased
    /// (ASCII), as [`PathIndex::lookup_names`] gives them for frames. A store
    /// that indexes files by it finds every candidate of a frame.
    ///
    /// ```
    /// use sigsentry_domain::correlation::PathIndex;
    ///
    /// assert_eq!(PathIndex::name_key("src/main/java/com/acme/Cart.java"), "cart.java");
    /// ```
    pub fn name_key(path: &str) -> String {
        path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase()
    }

    /// The lower-cased file names under which [`PathIndex::map_frame`]
    /// looks `frame` up; empty for a library frame or one without a path.
    /// A store holding a large repository indexes its files by these names
    /// and builds an index of just the candidates: the mapping is the same
    /// as over every file.
    ///
    /// ```
    /// use sigsentry_domain::correlation::{Frame, Language, PathIndex};
    ///
    /// let frame = Frame { file: Some("/srv/app/checkout/Cart.py".into()), ..Frame::default() };
    /// assert_eq!(PathIndex::lookup_names(&frame, Language::Python), ["cart.py"]);
    /// ```
    pub fn lookup_names(frame: &Frame, language: Language) -> Vec<String> {
        if classify(frame, language) != FrameClass::InApp {
            return Vec::new();
        }
        let Some(wanted) = suffixes(frame, language) else { return Vec::new() };
        let mut names: Vec<String> =
            wanted.alternatives.iter().filter_map(|a| a.last()).map(|n| n.to_ascii_lowercase()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Maps every frame of `trace`, in order.
    pub fn map_trace(&self, trace: &ParsedTrace, options: &MapOptions) -> Vec<FrameMapping> {
        trace.frames.iter().map(|frame| self.map_frame(frame, trace.language, options)).collect()
    }

    /// Maps one frame to a repository file, or says why it cannot.
    ///
    /// Library frames and frames without a path are not looked up (see
    /// [`classify`]). Otherwise the file name must match; among files with
    /// that name, those inside the scope win when there are any; then the
    /// most matching trailing components win. A tie between several files
    /// goes to the only one whose whole path matched (the runtime path ends
    /// with it), else the frame is [`Unmapped::Ambiguous`]. A file that
    /// matches by name only is accepted when it is the only one.
    pub fn map_frame(&self, frame: &Frame, language: Language, options: &MapOptions) -> FrameMapping {
        match classify(frame, language) {
            FrameClass::Library(why) => return FrameMapping::Unmapped(Unmapped::LibraryFrame { why }),
            FrameClass::NoFile => return FrameMapping::Unmapped(Unmapped::NoFile),
            FrameClass::InApp => {}
        }
        let Some(wanted) = suffixes(frame, language) else {
            return FrameMapping::Unmapped(Unmapped::NoFile);
        };
        let candidates = self.candidates(&wanted);
        let scope = options.scope.as_ref();
        let in_scope: Vec<Candidate> = match scope {
            Some(scope) => candidates.iter().copied().filter(|c| self.in_scope(c.id, scope)).collect(),
            None => Vec::new(),
        };
        let scope_unsynced = scope.is_some_and(|s| options.not_synced.contains(&s.repository));
        let pool = if in_scope.is_empty() { candidates } else { in_scope.clone() };
        let best = pool.iter().map(|c| c.matched).max().unwrap_or(0);
        if pool.is_empty() || (scope_unsynced && in_scope.is_empty() && best < 2) {
            if scope_unsynced {
                let repository = scope.map(|s| s.repository.clone()).unwrap_or_default();
                return FrameMapping::Unmapped(Unmapped::NotSynced { repositories: vec![repository] });
            }
            if !options.not_synced.is_empty() {
                let mut repositories = options.not_synced.clone();
                repositories.sort();
                repositories.dedup();
                return FrameMapping::Unmapped(Unmapped::NotSynced { repositories });
            }
            return FrameMapping::Unmapped(Unmapped::NotInRepository { suffix: wanted.display() });
        }
        let mut winners: Vec<Candidate> = pool.into_iter().filter(|c| c.matched == best).collect();
        let whole: Vec<Candidate> = winners.iter().copied().filter(|c| c.whole).collect();
        if winners.len() > 1 && whole.len() == 1 {
            winners = whole;
        }
        let mut files: Vec<RepoPath> = winners.iter().map(|c| self.repo_path(c.id)).collect();
        files.sort();
        files.dedup();
        match files.len() {
            1 => FrameMapping::Mapped(MappedFrame { file: files.swap_remove(0), matched_components: best }),
            total => {
                files.truncate(3);
                FrameMapping::Unmapped(Unmapped::Ambiguous { candidates: files, total })
            }
        }
    }

    /// Files with the wanted name, each with its best match over the
    /// alternatives; at least the name matched. Alternatives that share a
    /// file name are scored in one pass over that name's files, so every
    /// file appears once.
    fn candidates(&self, wanted: &Suffixes) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = Vec::new();
        let mut names: Vec<String> =
            wanted.alternatives.iter().filter_map(|a| a.last()).map(|n| n.to_ascii_lowercase()).collect();
        names.sort();
        names.dedup();
        for name in &names {
            let Some(ids) = self.by_name.get(name.as_str()) else { continue };
            let same_name: Vec<&Vec<String>> =
                wanted.alternatives.iter().filter(|a| a.last().is_some_and(|n| n.eq_ignore_ascii_case(name))).collect();
            for &id in ids {
                let Some((_, path)) = self.paths.get(id as usize) else { continue };
                let matched = same_name.iter().map(|a| suffix_match(a, path, wanted.ignore_case)).max().unwrap_or(0);
                if matched > 0 {
                    out.push(Candidate { id, matched, whole: matched == path.split('/').count() });
                }
            }
        }
        out
    }

    fn in_scope(&self, id: u32, scope: &MappingScope) -> bool {
        self.paths.get(id as usize).is_some_and(|(repo, path)| {
            self.repositories.get(*repo as usize).is_some_and(|r| *r == scope.repository)
                && scope.path_prefix.contains(path)
        })
    }

    fn repo_path(&self, id: u32) -> RepoPath {
        let (repo, path) = self.paths.get(id as usize).map_or((u32::MAX, ""), |(r, p)| (*r, &**p));
        RepoPath {
            repository: self.repositories.get(repo as usize).cloned().unwrap_or_default(),
            path: path.to_owned(),
        }
    }
}

/// How many trailing components of `path` equal the trailing components
/// of `wanted`.
fn suffix_match(wanted: &[String], path: &str, ignore_case: bool) -> usize {
    wanted
        .iter()
        .rev()
        .zip(path.rsplit('/'))
        .take_while(|(a, b)| if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b })
        .count()
}

impl<R: AsRef<str>, P: AsRef<str>> FromIterator<(R, P)> for PathIndex {
    fn from_iter<I: IntoIterator<Item = (R, P)>>(iter: I) -> Self {
        let mut index = PathIndex::new();
        index.extend(iter);
        index
    }
}

impl<R: AsRef<str>, P: AsRef<str>> Extend<(R, P)> for PathIndex {
    fn extend<I: IntoIterator<Item = (R, P)>>(&mut self, iter: I) {
        for (repository, path) in iter {
            self.insert(repository.as_ref(), path.as_ref());
        }
    }
}
