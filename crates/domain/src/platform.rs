//! The source platforms a connection can point at.

use std::fmt;
use std::str::FromStr;

use crate::Invalid;

/// A source-code hosting platform. It cannot change once a connection exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// github.com or GitHub Enterprise Server.
    GitHub,
    /// gitlab.com or a self-managed GitLab.
    GitLab,
    /// Bitbucket Cloud.
    Bitbucket,
}

impl Platform {
    /// Every platform, in the order the API documents them.
    pub const ALL: [Platform; 3] = [Platform::GitHub, Platform::GitLab, Platform::Bitbucket];

    /// The wire name: `github`, `gitlab` or `bitbucket`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Platform::GitHub => "github",
            Platform::GitLab => "gitlab",
            Platform::Bitbucket => "bitbucket",
        }
    }

    /// The product name, for messages.
    pub const fn display_name(self) -> &'static str {
        match self {
            Platform::GitHub => "GitHub",
            Platform::GitLab => "GitLab",
            Platform::Bitbucket => "Bitbucket",
        }
    }

    /// The address of the platform's web UI, where people read code: the
    /// cloud's (`https://github.com`, `https://gitlab.com`,
    /// `https://bitbucket.org`), or the self-hosted one a connection's
    /// `baseUrl` names (GitHub Enterprise Server's API root
    /// `https://HOST/api/v3` serves its web UI at `https://HOST`).
    ///
    /// ```
    /// use sigsentry_domain::{BaseUrl, BaseUrlPolicy, Platform};
    ///
    /// let ghes = BaseUrl::parse("https://ghe.acme.io/api/v3", BaseUrlPolicy::default()).unwrap();
    /// assert_eq!(Platform::GitHub.web_root(Some(&ghes)), "https://ghe.acme.io");
    /// assert_eq!(Platform::GitLab.web_root(None), "https://gitlab.com");
    /// ```
    pub fn web_root(self, base_url: Option<&crate::BaseUrl>) -> String {
        match (self, base_url) {
            (Platform::GitHub, Some(base)) => {
                let root = base.as_str().trim_end_matches('/');
                root.strip_suffix("/api/v3").unwrap_or(root).to_owned()
            }
            (Platform::GitLab, Some(base)) => base.as_str().trim_end_matches('/').to_owned(),
            (Platform::GitHub, None) => "https://github.com".to_owned(),
            (Platform::GitLab, None) => "https://gitlab.com".to_owned(),
            (Platform::Bitbucket, _) => "https://bitbucket.org".to_owned(),
        }
    }

    /// Whether connections of this platform may name their own API host.
    pub const fn supports_base_url(self) -> bool {
        !matches!(self, Platform::Bitbucket)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Invalid::new("must be one of github, gitlab, bitbucket"))
    }
}
