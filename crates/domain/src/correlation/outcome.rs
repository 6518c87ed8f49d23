//! The result of mapping one frame: a repository file, or why not.

use std::fmt;

/// A file of a connected repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoPath {
    /// The repository key, as given to the [`PathIndex`](super::PathIndex).
    pub repository: String,
    /// The path relative to the repository root.
    pub path: String,
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.path)
    }
}

/// A frame found in a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedFrame {
    /// Where the frame's file is.
    pub file: RepoPath,
    /// How many trailing path components matched (1 = the file name only).
    pub matched_components: usize,
}

/// Why a frame was not mapped. Every unmapped frame says why, in words a
/// person can act on: see [`Unmapped::message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmapped {
    /// A runtime, standard library or dependency frame; `why` names which
    /// (`a third-party package (site-packages)`).
    LibraryFrame {
        /// A short phrase naming the kind of library.
        why: &'static str,
    },
    /// An application frame whose file no connected repository has.
    NotInRepository {
        /// The path suffix that was looked for (`checkout/cart.py`).
        suffix: String,
    },
    /// Several files fit equally well.
    Ambiguous {
        /// Up to three of them, sorted.
        candidates: Vec<RepoPath>,
        /// How many fit in all.
        total: usize,
    },
    /// Nothing matched in the repositories whose files are known, and these
    /// repositories' files are not known yet.
    NotSynced {
        /// The repositories waiting for a sync, sorted.
        repositories: Vec<String>,
    },
    /// The frame has no path (`<anonymous>`, `Native Method`).
    NoFile,
}

impl Unmapped {
    /// The wire name: `LIBRARY_FRAME`, `NOT_IN_REPOSITORY`, `AMBIGUOUS`,
    /// `NOT_SYNCED` or `NO_FILE`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Unmapped::LibraryFrame { .. } => "LIBRARY_FRAME",
            Unmapped::NotInRepository { .. } => "NOT_IN_REPOSITORY",
            Unmapped::Ambiguous { .. } => "AMBIGUOUS",
            Unmapped::NotSynced { .. } => "NOT_SYNCED",
            Unmapped::NoFile => "NO_FILE",
        }
    }

    /// A sentence saying why and what to do about it.
    pub fn message(&self) -> String {
        match self {
            Unmapped::LibraryFrame { why } => format!("This frame is in {why}, not in your code."),
            Unmapped::NotInRepository { suffix } => format!(
                "No connected repository has a file ending in {suffix}; check the service mapping's pathPrefix or connect the repository."
            ),
            Unmapped::Ambiguous { candidates, total } => {
                let names: Vec<String> = candidates.iter().map(ToString::to_string).collect();
                let more = total.saturating_sub(names.len());
                let listed = if more > 0 { format!("{} and {more} more", names.join(", ")) } else { join_and(&names) };
                format!(
                    "{total} files fit this frame equally well ({listed}); map the service to its repository and pathPrefix to choose."
                )
            }
            Unmapped::NotSynced { repositories } => format!(
                "The file list of {} is not known yet (its sync is pending or failed); correlate again after a successful sync.",
                join_and(repositories)
            ),
            Unmapped::NoFile => {
                "The frame has no file path (anonymous, native or generated code), so it cannot be mapped.".to_owned()
            }
        }
    }
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Where a frame maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameMapping {
    /// A repository file.
    Mapped(MappedFrame),
    /// Not mapped, and why.
    Unmapped(Unmapped),
}

impl FrameMapping {
    /// The file, when mapped.
    pub fn mapped(&self) -> Option<&MappedFrame> {
        match self {
            FrameMapping::Mapped(mapped) => Some(mapped),
            FrameMapping::Unmapped(_) => None,
        }
    }
}
