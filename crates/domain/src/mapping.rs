//! Service mappings: which service name in the logs lives where in which repo.

use std::fmt;

use crate::validation::is_printable;
use crate::{Invalid, RepoName};

/// A service name as it appears in logs: 1 to 128 printable characters (no
/// control or invisible format characters), not starting or ending with
/// whitespace. Kept in Unicode NFC, so names that differ only in how an
/// accent is encoded are one name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName(String);

impl ServiceName {
    /// Longest accepted name, in characters.
    pub const MAX: usize = 128;

    /// Checks `value`.
    ///
    /// # Errors
    /// [`Invalid`] when empty, too long, padded or holding control characters.
    pub fn new(value: String) -> Result<Self, Invalid> {
        let value: String = unicode_normalization::UnicodeNormalization::nfc(value.as_str()).collect();
        let len = value.chars().count();
        if len == 0 || len > Self::MAX {
            return Err(Invalid::new(format!("must be 1 to {} characters", Self::MAX)));
        }
        if !value.chars().all(is_printable) {
            return Err(Invalid::new(
                "must hold printable characters only (no control characters, no invisible or direction-changing \
                 format characters)",
            ));
        }
        if value.trim() != value {
            return Err(Invalid::new("must not start or end with whitespace"));
        }
        Ok(Self(value))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A subdirectory inside a repository: `""` for the root, otherwise a relative
/// path that always ends in `/` (`src` becomes `src/`). At most 1024
/// characters, not counting the final `/` (`src` and `src/` are one prefix).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PathPrefix(String);

impl PathPrefix {
    /// Longest accepted prefix, in characters, without its final `/`.
    pub const MAX: usize = 1024;

    /// The repository root.
    pub fn root() -> Self {
        Self(String::new())
    }

    /// Checks and normalizes `value`.
    ///
    /// # Errors
    /// [`Invalid`] for an absolute path, `..`, `.`, a backslash, an empty
    /// segment or a control character.
    pub fn new(value: &str) -> Result<Self, Invalid> {
        if value.is_empty() {
            return Ok(Self::root());
        }
        // The limit leaves the final `/` out, so that a prefix read back in its
        // normalized form (always ending in `/`) passes as it did when sent.
        if value.strip_suffix('/').unwrap_or(value).chars().count() > Self::MAX {
            return Err(Invalid::new(format!("must be at most {} characters (a final '/' not counted)", Self::MAX)));
        }
        if value.starts_with('/') {
            return Err(Invalid::new("must be relative to the repository root (no leading '/')"));
        }
        if value.contains('\\') {
            return Err(Invalid::new("must use '/' as separator, not '\\'"));
        }
        if value.chars().any(char::is_control) {
            return Err(Invalid::new("must not contain control characters"));
        }
        let trimmed = value.strip_suffix('/').unwrap_or(value);
        for segment in trimmed.split('/') {
            match segment {
                "" => return Err(Invalid::new("must not contain empty segments ('//')")),
                ".." => return Err(Invalid::new("must not contain '..'")),
                "." => return Err(Invalid::new("must not contain '.' segments")),
                _ => {}
            }
        }
        Ok(Self(format!("{trimmed}/")))
    }

    /// The normalized prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `path` (relative to the repository root) lies under this prefix.
    pub fn contains(&self, path: &str) -> bool {
        path.starts_with(&self.0)
    }
}

/// A git branch name, checked against `git check-ref-format --branch` rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BranchName(String);

impl BranchName {
    /// Longest accepted name, in characters.
    pub const MAX: usize = 255;

    /// Checks `value`.
    ///
    /// # Errors
    /// [`Invalid`] naming the git rule broken.
    pub fn new(value: String) -> Result<Self, Invalid> {
        let bad = |why: &str| Err(Invalid::new(format!("must be a valid git branch name: {why}")));
        if value.is_empty() || value.chars().count() > Self::MAX {
            return bad("1 to 255 characters");
        }
        if value == "@" {
            return bad("cannot be '@'");
        }
        if value.starts_with('-') {
            return bad("cannot start with '-'");
        }
        if value.chars().any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c)) {
            return bad("no spaces, control characters or any of ~ ^ : ? * [ \\");
        }
        if value.contains("..") || value.contains("@{") || value.contains("//") {
            return bad("no '..', '@{' or '//'");
        }
        if value.starts_with('/') || value.ends_with('/') || value.ends_with('.') {
            return bad("cannot start or end with '/' or end with '.'");
        }
        if value.split('/').any(|c| c.starts_with('.') || c.ends_with(".lock")) {
            return bad("no part may start with '.' or end with '.lock'");
        }
        Ok(Self(value))
    }

    /// The branch name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BranchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a service's code lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMapping {
    /// The service name seen in logs.
    pub service_name: ServiceName,
    /// One of the connection's repositories.
    pub repo: RepoName,
    /// The service's directory in the repository.
    pub path_prefix: PathPrefix,
    /// The branch to reason about; `None` means the repository's own default
    /// branch, learned at sync.
    pub default_branch: Option<BranchName>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prefix_normalizes() {
        assert_eq!(PathPrefix::new("").unwrap().as_str(), "");
        assert_eq!(PathPrefix::new("src").unwrap().as_str(), "src/");
        assert_eq!(PathPrefix::new("services/api/").unwrap().as_str(), "services/api/");
        for bad in ["/src", "../x", "a/../b", "a\\b", "a//b", "./a", "/"] {
            assert!(PathPrefix::new(bad).is_err(), "{bad}");
        }
        assert!(PathPrefix::new("src/").unwrap().contains("src/main.rs"));
        assert!(!PathPrefix::new("src/").unwrap().contains("srcx/main.rs"));
    }

    #[test]
    fn a_normalized_prefix_passes_again() {
        // Read back from the store, a prefix is checked again in its normalized
        // form: a 1024-character prefix sent without its '/' was once refused
        // then, and its connection answered 500 on every read.
        let longest = "é".repeat(PathPrefix::MAX);
        let prefix = PathPrefix::new(&longest).unwrap();
        assert_eq!(PathPrefix::new(prefix.as_str()).unwrap(), prefix);
        assert!(PathPrefix::new(&format!("{longest}/")).is_ok());
        assert!(PathPrefix::new(&format!("{longest}x")).is_err());
    }

    #[test]
    fn lengths_count_characters() {
        assert!(BranchName::new("é".repeat(BranchName::MAX)).is_ok());
        assert!(BranchName::new("é".repeat(BranchName::MAX + 1)).is_err());
    }

    #[test]
    fn branch_rules() {
        for ok in ["main", "release/2026.11", "feature/x-y_z", "v1.2"] {
            assert!(BranchName::new(ok.into()).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", "a b", "x.lock", "/x", "x/", "a//b", "@", "x~1", "x^", "a:b", ".hidden", "-x", "a@{1}"]
        {
            assert!(BranchName::new(bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn service_names() {
        assert!(ServiceName::new("checkout-api".into()).is_ok());
        assert!(ServiceName::new("checkout api v2".into()).is_ok());
        assert!(ServiceName::new(String::new()).is_err());
        assert!(ServiceName::new(" padded".into()).is_err());
        assert!(ServiceName::new("tab\there".into()).is_err());
        assert!(ServiceName::new("x".repeat(129)).is_err());
    }

    #[test]
    fn invisible_and_direction_changing_characters_are_refused() {
        for bad in ["check\u{200b}out", "\u{202e}ipa-tuokcehc", "\u{feff}checkout", "checkout\u{e0041}", "a\u{2066}b"] {
            assert!(ServiceName::new(bad.into()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_compared_in_nfc() {
        let composed = ServiceName::new("caf\u{e9}".into()).unwrap();
        let decomposed = ServiceName::new("cafe\u{301}".into()).unwrap();
        assert_eq!(composed, decomposed);
        assert_eq!(decomposed.as_str(), "caf\u{e9}");
    }
}
