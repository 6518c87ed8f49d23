//! The few events we act on, read from the platforms' payloads by typed
//! structs that take only the fields we use (the platforms add fields
//! freely; unknown ones are ignored). Called only on a verified body.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use sigsentry_domain::Platform;

/// What a delivery announces, as far as the cache cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HookEvent {
    /// A PR/MR was merged into the repository (`owner/name` as the platform spells it).
    Merged { repository: String, installation: Option<i64> },
    /// Branches were pushed; `default_branch` when the payload names it.
    Pushed { repository: String, branches: Vec<String>, default_branch: Option<String>, installation: Option<i64> },
    /// An App installation was deleted or suspended (GitHub App hook only):
    /// its connections' credentials no longer work.
    InstallationGone { installation: i64 },
    /// Another change to an App installation (created, unsuspended,
    /// repositories added or removed): the next sync learns of it.
    Installation,
    /// Anything else: a ping, an MR opened, a comment, a push of a tag.
    Other,
}

/// Why a verified body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub String);

/// Reads the delivery whose event name is `event` (`X-GitHub-Event`,
/// `X-Gitlab-Event` or `X-Event-Key`). Every body must be JSON; the events
/// we act on must also have the fields we read.
pub(crate) fn parse(platform: Platform, event: Option<&str>, json: &[u8]) -> Result<HookEvent, Malformed> {
    serde_json::from_slice::<serde::de::IgnoredAny>(json)
        .map_err(|e| Malformed(format!("the body is not valid JSON (line {}, column {})", e.line(), e.column())))?;
    let event = event.unwrap_or_default();
    match platform {
        Platform::GitHub => github(event, json),
        Platform::GitLab => gitlab(event, json),
        Platform::Bitbucket => bitbucket(event, json),
    }
}

fn read<T: DeserializeOwned>(json: &[u8]) -> Result<T, Malformed> {
    serde_json::from_slice(json).map_err(|e| {
        // serde names the missing or mistyped field; the value is never echoed.
        let what = e.to_string();
        let what = what.split(" at line").next().unwrap_or("the payload is not the event's shape");
        Malformed(format!("the payload lacks what the event carries: {what}"))
    })
}

const BRANCH_REF: &str = "refs/heads/";

#[derive(Deserialize)]
struct GitHubRepository {
    full_name: String,
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct GitHubInstallation {
    id: i64,
}

#[derive(Deserialize)]
struct GitHubPullRequest {
    #[serde(default)]
    merged: bool,
}

#[derive(Deserialize)]
struct GitHubPullRequestEvent {
    action: String,
    pull_request: GitHubPullRequest,
    repository: GitHubRepository,
    installation: Option<GitHubInstallation>,
}

#[derive(Deserialize)]
struct GitHubPushEvent {
    #[serde(rename = "ref")]
    git_ref: String,
    repository: GitHubRepository,
    installation: Option<GitHubInstallation>,
}

#[derive(Deserialize)]
struct GitHubInstallationEvent {
    action: String,
    installation: GitHubInstallation,
}

fn github(event: &str, json: &[u8]) -> Result<HookEvent, Malformed> {
    match event {
        "pull_request" => {
            let e: GitHubPullRequestEvent = read(json)?;
            Ok(if e.action == "closed" && e.pull_request.merged {
                HookEvent::Merged { repository: e.repository.full_name, installation: e.installation.map(|i| i.id) }
            } else {
                HookEvent::Other
            })
        }
        "push" => {
            let e: GitHubPushEvent = read(json)?;
            Ok(match e.git_ref.strip_prefix(BRANCH_REF) {
                Some(branch) => HookEvent::Pushed {
                    repository: e.repository.full_name,
                    branches: vec![branch.to_owned()],
                    default_branch: e.repository.default_branch,
                    installation: e.installation.map(|i| i.id),
                },
                None => HookEvent::Other,
            })
        }
        "installation" => {
            let e: GitHubInstallationEvent = read(json)?;
            Ok(match e.action.as_str() {
                "deleted" | "suspend" => HookEvent::InstallationGone { installation: e.installation.id },
                _ => HookEvent::Installation,
            })
        }
        "installation_repositories" => Ok(HookEvent::Installation),
        _ => Ok(HookEvent::Other),
    }
}

#[derive(Deserialize)]
struct GitLabProject {
    path_with_namespace: String,
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct GitLabMergeRequestAttributes {
    action: Option<String>,
}

#[derive(Deserialize)]
struct GitLabMergeRequestEvent {
    object_attributes: GitLabMergeRequestAttributes,
    project: GitLabProject,
}

#[derive(Deserialize)]
struct GitLabPushEvent {
    #[serde(rename = "ref")]
    git_ref: String,
    project: GitLabProject,
}

fn gitlab(event: &str, json: &[u8]) -> Result<HookEvent, Malformed> {
    match event {
        "Merge Request Hook" => {
            let e: GitLabMergeRequestEvent = read(json)?;
            Ok(if e.object_attributes.action.as_deref() == Some("merge") {
                HookEvent::Merged { repository: e.project.path_with_namespace, installation: None }
            } else {
                HookEvent::Other
            })
        }
        "Push Hook" => {
            let e: GitLabPushEvent = read(json)?;
            Ok(match e.git_ref.strip_prefix(BRANCH_REF) {
                Some(branch) => HookEvent::Pushed {
                    repository: e.project.path_with_namespace,
                    branches: vec![branch.to_owned()],
                    default_branch: e.project.default_branch,
                    installation: None,
                },
                None => HookEvent::Other,
            })
        }
        _ => Ok(HookEvent::Other),
    }
}

#[derive(Deserialize)]
struct BitbucketRepository {
    full_name: String,
}

#[derive(Deserialize)]
struct BitbucketPullRequestEvent {
    repository: BitbucketRepository,
}

#[derive(Deserialize)]
struct BitbucketRef {
    #[serde(rename = "type")]
    kind: String,
    name: String,
}

#[derive(Deserialize)]
struct BitbucketChange {
    new: Option<BitbucketRef>,
}

#[derive(Deserialize)]
struct BitbucketPush {
    changes: Vec<BitbucketChange>,
}

#[derive(Deserialize)]
struct BitbucketPushEvent {
    repository: BitbucketRepository,
    push: BitbucketPush,
}

fn bitbucket(event: &str, json: &[u8]) -> Result<HookEvent, Malformed> {
    match event {
        // Bitbucket's "fulfilled" is a merged PR.
        "pullrequest:fulfilled" => {
            let e: BitbucketPullRequestEvent = read(json)?;
            Ok(HookEvent::Merged { repository: e.repository.full_name, installation: None })
        }
        "repo:push" => {
            let e: BitbucketPushEvent = read(json)?;
            // A deleted branch has no `new`; tags are not branches.
            let branches: Vec<String> = e
                .push
                .changes
                .into_iter()
                .filter_map(|c| c.new)
                .filter(|r| r.kind == "branch")
                .map(|r| r.name)
                .collect();
            Ok(if branches.is_empty() {
                HookEvent::Other
            } else {
                // Bitbucket's payload does not name the main branch: the one learned at sync decides.
                HookEvent::Pushed {
                    repository: e.repository.full_name,
                    branches,
                    default_branch: None,
                    installation: None,
                }
            })
        }
        _ => Ok(HookEvent::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_installations_deleted_or_suspended_are_gone_and_others_are_not() {
        for action in ["deleted", "suspend"] {
            let body = format!(r#"{{"action":"{action}","installation":{{"id":42,"account":{{}}}},"sender":{{}}}}"#);
            assert_eq!(
                parse(Platform::GitHub, Some("installation"), body.as_bytes()).unwrap(),
                HookEvent::InstallationGone { installation: 42 }
            );
        }
        let created = br#"{"action":"created","installation":{"id":42}}"#;
        assert_eq!(parse(Platform::GitHub, Some("installation"), created).unwrap(), HookEvent::Installation);
        let removed = br#"{"action":"removed","installation":{"id":42},"repositories_removed":[]}"#;
        assert_eq!(
            parse(Platform::GitHub, Some("installation_repositories"), removed).unwrap(),
            HookEvent::Installation
        );
        assert!(parse(Platform::GitHub, Some("installation"), br#"{"action":"deleted"}"#).is_err(), "no installation");
    }

    #[test]
    fn github_merges_and_default_branch_pushes() {
        let merged = br#"{"action":"closed","number":7,"pull_request":{"merged":true,"title":"x"},
            "repository":{"full_name":"acme/Web","default_branch":"main"},"installation":{"id":42},"sender":{}}"#;
        assert_eq!(
            parse(Platform::GitHub, Some("pull_request"), merged).unwrap(),
            HookEvent::Merged { repository: "acme/Web".into(), installation: Some(42) }
        );
        let closed = br#"{"action":"closed","pull_request":{"merged":false},"repository":{"full_name":"a/b"}}"#;
        assert_eq!(parse(Platform::GitHub, Some("pull_request"), closed).unwrap(), HookEvent::Other);
        let push = br#"{"ref":"refs/heads/main","repository":{"full_name":"a/b","default_branch":"main"}}"#;
        assert!(matches!(parse(Platform::GitHub, Some("push"), push).unwrap(), HookEvent::Pushed { .. }));
        let tag = br#"{"ref":"refs/tags/v1","repository":{"full_name":"a/b"}}"#;
        assert_eq!(parse(Platform::GitHub, Some("push"), tag).unwrap(), HookEvent::Other);
        assert_eq!(parse(Platform::GitHub, Some("ping"), br#"{"zen":"x"}"#).unwrap(), HookEvent::Other);
    }

    #[test]
    fn gitlab_and_bitbucket_events() {
        let mr = br#"{"object_kind":"merge_request","object_attributes":{"action":"merge"},
            "project":{"path_with_namespace":"acme/platform/api"}}"#;
        assert!(matches!(parse(Platform::GitLab, Some("Merge Request Hook"), mr).unwrap(), HookEvent::Merged { .. }));
        let opened = br#"{"object_attributes":{"action":"open"},"project":{"path_with_namespace":"a/b"}}"#;
        assert_eq!(parse(Platform::GitLab, Some("Merge Request Hook"), opened).unwrap(), HookEvent::Other);
        let fulfilled = br#"{"repository":{"full_name":"acme/web"},"pullrequest":{"id":1}}"#;
        assert!(matches!(
            parse(Platform::Bitbucket, Some("pullrequest:fulfilled"), fulfilled).unwrap(),
            HookEvent::Merged { .. }
        ));
        let push = br#"{"repository":{"full_name":"acme/web"},"push":{"changes":[{"new":{"type":"branch","name":"main"}},{"new":null}]}}"#;
        assert_eq!(
            parse(Platform::Bitbucket, Some("repo:push"), push).unwrap(),
            HookEvent::Pushed {
                repository: "acme/web".into(),
                branches: vec!["main".into()],
                default_branch: None,
                installation: None
            }
        );
    }

    #[test]
    fn malformed_bodies_are_refused_without_echoing_them() {
        let error = parse(Platform::GitHub, Some("ping"), b"{not json").unwrap_err();
        assert!(error.0.contains("not valid JSON"), "{error:?}");
        let error = parse(Platform::GitHub, Some("pull_request"), br#"{"action":"closed"}"#).unwrap_err();
        assert!(error.0.contains("pull_request"), "{error:?}");
    }
}
