//! Repository names, by platform.

use std::fmt;

use crate::{Invalid, Platform};

/// A repository's full name on its platform: `owner/repo` on GitHub,
/// `group/project` or `group/sub/.../project` on GitLab, and
/// `workspace/repo-slug` on Bitbucket.
///
/// Platforms compare these names without regard to case, so two names that
/// differ only in case are the same repository: see [`RepoName::key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoName(String);

/// GitLab nests groups at most 20 deep, so a project path has at most 21 parts.
const GITLAB_MAX_SEGMENTS: usize = 21;

impl RepoName {
    /// Parses `name` under the rules of `platform`.
    ///
    /// # Errors
    /// [`Invalid`] saying which rule the name broke.
    pub fn parse(platform: Platform, name: &str) -> Result<Self, Invalid> {
        let segments: Vec<&str> = name.split('/').collect();
        match platform {
            Platform::GitHub => {
                let [owner, repo] = segments[..] else {
                    return Err(Invalid::new("must be owner/repo"));
                };
                github_owner(owner)?;
                plain_segment(repo, 100, "repository name")?;
            }
            Platform::GitLab => {
                if segments.len() < 2 || segments.len() > GITLAB_MAX_SEGMENTS {
                    return Err(Invalid::new(
                        "must be group/project or group/subgroup/.../project (at most 20 groups)",
                    ));
                }
                for segment in &segments {
                    gitlab_segment(segment)?;
                }
            }
            Platform::Bitbucket => {
                let [workspace, slug] = segments[..] else {
                    return Err(Invalid::new("must be workspace/repo-slug"));
                };
                plain_segment(workspace, 62, "workspace")?;
                plain_segment(slug, 128, "repository slug")?;
            }
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name folded for comparison: two repositories with the same key are
    /// the same repository on the platform.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn github_owner(owner: &str) -> Result<(), Invalid> {
    let ok = (1..=39).contains(&owner.len())
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !owner.starts_with('-')
        && !owner.ends_with('-');
    if ok { Ok(()) } else { Err(Invalid::new("owner must be 1 to 39 letters, digits or inner hyphens (owner/repo)")) }
}

fn plain_segment(segment: &str, max: usize, what: &str) -> Result<(), Invalid> {
    if segment.is_empty() || segment.len() > max {
        return Err(Invalid::new(format!("{what} must be 1 to {max} characters")));
    }
    if segment == "." || segment == ".." {
        return Err(Invalid::new(format!("{what} cannot be . or ..")));
    }
    if !segment.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(Invalid::new(format!("{what} may hold only letters, digits, '-', '_' and '.'")));
    }
    Ok(())
}

fn gitlab_segment(segment: &str) -> Result<(), Invalid> {
    plain_segment(segment, 255, "each path part")?;
    if segment.starts_with(['-', '.']) || segment.ends_with('.') {
        return Err(Invalid::new("a path part cannot start with '-' or '.', nor end with '.'"));
    }
    if segment.ends_with(".git") || segment.ends_with(".atom") {
        return Err(Invalid::new("a path part cannot end in .git or .atom"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_needs_exactly_owner_and_repo() {
        assert!(RepoName::parse(Platform::GitHub, "acme/checkout-api").is_ok());
        assert!(RepoName::parse(Platform::GitHub, "acme/checkout.api_2").is_ok());
        for bad in ["acme", "acme/", "/repo", "a/b/c", "-acme/x", "ac me/x", "acme/..", ""] {
            assert!(RepoName::parse(Platform::GitHub, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gitlab_allows_subgroups() {
        assert!(RepoName::parse(Platform::GitLab, "acme/checkout-api").is_ok());
        assert!(RepoName::parse(Platform::GitLab, "acme/platform/team/checkout-api").is_ok());
        for bad in ["acme", "acme//x", "acme/x.git", "acme/-x", "acme/x."] {
            assert!(RepoName::parse(Platform::GitLab, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bitbucket_is_workspace_and_slug() {
        assert!(RepoName::parse(Platform::Bitbucket, "acme/checkout-api").is_ok());
        assert!(RepoName::parse(Platform::Bitbucket, "acme/team/checkout-api").is_err());
    }

    #[test]
    fn key_ignores_case() {
        let a = RepoName::parse(Platform::GitHub, "Acme/Checkout").unwrap();
        let b = RepoName::parse(Platform::GitHub, "acme/checkout").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.as_str(), "Acme/Checkout");
    }
}
