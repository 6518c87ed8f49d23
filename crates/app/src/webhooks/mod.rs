//! Webhooks: a platform tells us of a merge, and that repository's
//! incremental sync runs now instead of at its next refresh.
//!
//! Two endpoints: one per connection (`POST /v1/hooks/{connectionId}`,
//! authenticated by the connection's own secret) and one for the whole
//! GitHub App (`POST /v1/hooks/github`, the App's secret). The signature is
//! the only authentication: it is checked on the raw body before anything
//! parses it. Waking goes through the store (the repository becomes
//! `pending`), which the sync worker polls; a delivery id already recorded
//! (by any replica) does nothing again.

mod events;
mod secret;
mod signature;

use chrono::TimeDelta;
use ring::digest;
use sigsentry_domain::{ConnectionId, Platform};
use sigsentry_ports::{
    CipherError, Clock, CredentialCipher, DeliveryMark, DeliveryOutcome, Store, StoreError, WakeRepository,
    WebhookSecretAad, WebhookTarget,
};

pub use secret::WebhookSecret;

use crate::CodeRepos;
use events::HookEvent;

/// Bodies larger than this are refused with 413 (GitHub caps its payloads at 25 MB,
/// but a push or merge event of a repository is far smaller).
pub const MAX_HOOK_BODY_BYTES: usize = 5 * 1024 * 1024;

/// How long a delivery id is remembered: GitHub lets a delivery be
/// redelivered by hand for three days; a day more covers the others' retries.
const DELIVERY_MEMORY: TimeDelta = TimeDelta::days(4);

/// The `source` of deliveries to the GitHub App's endpoint.
const GITHUB_APP_SOURCE: &str = "github-app";

/// Which endpoint a delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookEndpoint {
    /// `POST /v1/hooks/{connectionId}`.
    Connection(ConnectionId),
    /// `POST /v1/hooks/github`.
    GitHubApp,
}

/// An endpoint that exists, found before the body is read (so an unknown
/// connection is 404 whatever the body). Opaque: hand it back to
/// [`CodeRepos::receive_webhook`].
#[derive(Debug, Clone)]
pub struct HookTarget(Target);

#[derive(Debug, Clone)]
enum Target {
    Connection(Box<WebhookTarget>),
    GitHubApp,
}

/// A delivery as received: its headers (names in any case) and raw body.
#[derive(Clone)]
pub struct HookRequest {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl std::fmt::Debug for HookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A header may carry the secret itself (GitLab).
        f.debug_struct("HookRequest").field("body_len", &self.body.len()).finish_non_exhaustive()
    }
}

impl HookRequest {
    /// A delivery with these headers and this body.
    pub fn new(headers: impl IntoIterator<Item = (String, String)>, body: Vec<u8>) -> Self {
        Self { headers: headers.into_iter().collect(), body }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The JSON payload: the body, or GitHub's `payload` form field when
    /// the hook was set to `application/x-www-form-urlencoded` (GitHub's
    /// default content type, signed over the form as sent).
    fn json(&self) -> Result<Vec<u8>, HookError> {
        let form = self.header("content-type").is_some_and(|ct| {
            ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
        if !form {
            return Ok(self.body.clone());
        }
        url_form_payload(&self.body).ok_or_else(|| {
            HookError::Malformed("a form-encoded delivery must carry the event in its `payload` field".to_owned())
        })
    }
}

fn url_form_payload(body: &[u8]) -> Option<Vec<u8>> {
    url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, value)| value.into_owned().into_bytes())
}

/// What a delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookAction {
    /// A merge or a push to the default branch: the repository syncs now.
    Sync,
    /// An event we do not act on, or a repository the connection does not hold.
    Ignored,
    /// This delivery was handled before; nothing was done again.
    Duplicate,
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// No connection with that id (in any project). 404.
    #[error("no webhook endpoint for that connection")]
    NotFound,
    /// `POST /v1/hooks/github` on a service with no GitHub App webhook secret. 404.
    #[error("this service has no GitHub App configured")]
    AppNotConfigured,
    /// A connection made before webhooks existed has no secret until it is rotated. 401.
    #[error("this connection has no webhook secret yet")]
    NoSecret,
    /// The signature (or token) is missing or wrong. 401.
    #[error("the delivery's signature is missing or wrong")]
    BadSignature,
    /// A verified body that is not the event's JSON. 400.
    #[error("{0}")]
    Malformed(String),
    /// The secret did not open.
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<S: Store, C: CredentialCipher, K: Clock> CodeRepos<S, C, K> {
    /// Finds the endpoint a delivery is for, before its body is read.
    ///
    /// # Errors
    /// [`HookError::NotFound`], [`HookError::AppNotConfigured`], or `Store`.
    pub async fn webhook_target(&self, endpoint: HookEndpoint) -> Result<HookTarget, HookError> {
        match endpoint {
            HookEndpoint::Connection(id) => match self.store.webhook_target(id).await? {
                Some(target) => Ok(HookTarget(Target::Connection(Box::new(target)))),
                None => Err(HookError::NotFound),
            },
            HookEndpoint::GitHubApp if self.config.github_app_webhook_secret.is_some() => {
                Ok(HookTarget(Target::GitHubApp))
            }
            HookEndpoint::GitHubApp => Err(HookError::AppNotConfigured),
        }
    }

    /// Verifies a delivery, reads it, and wakes the repositories it names.
    ///
    /// # Errors
    /// [`HookError`]: `NoSecret` and `BadSignature` before the body is read,
    /// `Malformed` for a verified body we cannot read.
    pub async fn receive_webhook(&self, target: HookTarget, request: HookRequest) -> Result<HookAction, HookError> {
        match target.0 {
            Target::Connection(target) => self.connection_hook(*target, &request).await,
            Target::GitHubApp => self.github_app_hook(&request).await,
        }
    }

    async fn connection_hook(&self, target: WebhookTarget, request: &HookRequest) -> Result<HookAction, HookError> {
        let sealed = target.secret.as_ref().ok_or(HookError::NoSecret)?;
        let aad = WebhookSecretAad {
            tenant_id: target.tenant_id,
            project_id: target.project_id,
            connection_id: target.connection_id,
        };
        let secret = self.cipher.open_webhook_secret(sealed, &aad)?;
        let signed = match target.platform {
            Platform::GitHub => {
                signature::hmac_sha256_matches(&secret, &request.body, request.header("x-hub-signature-256"))
            }
            Platform::GitLab => signature::token_matches(&secret, request.header("x-gitlab-token")),
            Platform::Bitbucket => {
                signature::hmac_sha256_matches(&secret, &request.body, request.header("x-hub-signature"))
            }
        };
        if !signed {
            return Err(HookError::BadSignature);
        }
        let event = events::parse(target.platform, event_name(target.platform, request), &request.json()?)
            .map_err(|e| HookError::Malformed(e.0))?;
        let wake = if target.is_active { wake_in_connection(&target, &event) } else { Vec::new() };
        let action = self.wake(target.connection_id.to_string(), target.platform, request, wake).await?;
        tracing::info!(connection_id = %target.connection_id, platform = %target.platform, action = ?action, "webhook delivery");
        Ok(action)
    }

    async fn github_app_hook(&self, request: &HookRequest) -> Result<HookAction, HookError> {
        let secret = self.config.github_app_webhook_secret.as_ref().ok_or(HookError::AppNotConfigured)?;
        if !signature::hmac_sha256_matches(
            secret.expose().as_bytes(),
            &request.body,
            request.header("x-hub-signature-256"),
        ) {
            return Err(HookError::BadSignature);
        }
        let event = events::parse(Platform::GitHub, event_name(Platform::GitHub, request), &request.json()?)
            .map_err(|e| HookError::Malformed(e.0))?;
        let (repository, installation) = match &event {
            HookEvent::Merged { repository, installation } => (repository, *installation),
            HookEvent::Pushed { repository, branches, default_branch: Some(default), installation }
                if branches.contains(default) =>
            {
                (repository, *installation)
            }
            HookEvent::InstallationGone { installation } => {
                let refused = self.store.installation_refused(*installation, self.clock.now()).await?;
                tracing::info!(installation, refused, "GitHub App installation deleted or suspended");
                return Ok(if refused > 0 { HookAction::Sync } else { HookAction::Ignored });
            }
            // Repositories removed from an installation, or one unsuspended:
            // the next sync learns it from the platform.
            HookEvent::Installation | HookEvent::Pushed { .. } | HookEvent::Other => return Ok(HookAction::Ignored),
        };
        let key = repository.to_ascii_lowercase();
        let holders = self.store.github_connections_holding(&key, installation).await?;
        let wake: Vec<WakeRepository> = holders
            .into_iter()
            .map(|connection_id| WakeRepository { connection_id, repository_key: key.clone() })
            .collect();
        let action = self.wake(GITHUB_APP_SOURCE.to_owned(), Platform::GitHub, request, wake).await?;
        tracing::info!(installation, action = ?action, "GitHub App webhook delivery");
        Ok(action)
    }

    /// Records the delivery and wakes `wake` in one store transaction;
    /// nothing is recorded for a delivery that wakes nothing.
    async fn wake(
        &self,
        source: String,
        platform: Platform,
        request: &HookRequest,
        wake: Vec<WakeRepository>,
    ) -> Result<HookAction, HookError> {
        if wake.is_empty() {
            return Ok(HookAction::Ignored);
        }
        let now = self.clock.now();
        let mark = delivery_id(platform, request).map(|id| DeliveryMark {
            source,
            delivery: signature::encode_hex(digest::digest(&digest::SHA256, id.as_bytes()).as_ref()),
            expires_at: now + DELIVERY_MEMORY,
        });
        Ok(match self.store.accept_delivery(mark, wake, now).await? {
            DeliveryOutcome::Duplicate => HookAction::Duplicate,
            DeliveryOutcome::Accepted { .. } => HookAction::Sync,
        })
    }
}

fn event_name(platform: Platform, request: &HookRequest) -> Option<&str> {
    request.header(match platform {
        Platform::GitHub => "x-github-event",
        Platform::GitLab => "x-gitlab-event",
        Platform::Bitbucket => "x-event-key",
    })
}

/// The platform's id of this delivery, the same on each of its retries.
fn delivery_id(platform: Platform, request: &HookRequest) -> Option<&str> {
    let id = match platform {
        Platform::GitHub => request.header("x-github-delivery"),
        // `Idempotency-Key` stays the same across GitLab's retries;
        // older GitLab sends only the event's UUID.
        Platform::GitLab => request.header("idempotency-key").or_else(|| request.header("x-gitlab-event-uuid")),
        Platform::Bitbucket => request.header("x-request-uuid"),
    };
    id.map(str::trim).filter(|id| !id.is_empty())
}

/// The repository of `target` the event names, if the event is a merge
/// or a push to that repository's default branch.
fn wake_in_connection(target: &WebhookTarget, event: &HookEvent) -> Vec<WakeRepository> {
    let (repository, pushed) = match event {
        HookEvent::Merged { repository, .. } => (repository, None),
        HookEvent::Pushed { repository, branches, default_branch, .. } => {
            (repository, Some((branches, default_branch.as_ref())))
        }
        HookEvent::Installation | HookEvent::InstallationGone { .. } | HookEvent::Other => return Vec::new(),
    };
    let key = repository.to_ascii_lowercase();
    let Some(held) = target.repositories.iter().find(|r| r.name.key() == key) else {
        return Vec::new();
    };
    if let Some((branches, announced)) = pushed {
        // The payload's default branch, else the one learned at sync; with
        // neither known (never synced) any push may matter.
        if let Some(default) = announced.or(held.default_branch.as_ref())
            && !branches.contains(default)
        {
            return Vec::new();
        }
    }
    vec![WakeRepository { connection_id: target.connection_id, repository_key: key }]
}

#[cfg(test)]
mod tests {
    use sigsentry_domain::{ProjectId, RepoName, TenantId};
    use sigsentry_ports::HookRepository;

    use super::*;

    fn target(default_branch: Option<&str>) -> WebhookTarget {
        let id = |n: u128| uuid::Uuid::from_u128(n);
        WebhookTarget {
            connection_id: ConnectionId::from_uuid(id(1)),
            tenant_id: TenantId::from_uuid(id(2)),
            project_id: ProjectId::from_uuid(id(3)),
            platform: Platform::Bitbucket,
            is_active: true,
            repositories: vec![HookRepository {
                name: RepoName::parse(Platform::Bitbucket, "Acme/Web").unwrap(),
                default_branch: default_branch.map(str::to_owned),
            }],
            secret: None,
        }
    }

    fn pushed(branch: &str, default_branch: Option<&str>) -> HookEvent {
        HookEvent::Pushed {
            repository: "acme/web".into(),
            branches: vec![branch.into()],
            default_branch: default_branch.map(str::to_owned),
            installation: None,
        }
    }

    #[test]
    fn merges_wake_the_named_repository_of_the_connection_only() {
        let merged = |repository: &str| HookEvent::Merged { repository: repository.into(), installation: None };
        let woken = wake_in_connection(&target(None), &merged("ACME/web"));
        assert_eq!(
            woken,
            [WakeRepository { connection_id: target(None).connection_id, repository_key: "acme/web".into() }]
        );
        assert!(wake_in_connection(&target(None), &merged("acme/other")).is_empty());
        assert!(wake_in_connection(&target(None), &HookEvent::Other).is_empty());
    }

    #[test]
    fn pushes_wake_only_for_the_default_branch_when_it_is_known() {
        // The payload's default branch wins over the one learned at sync.
        assert_eq!(wake_in_connection(&target(Some("main")), &pushed("main", None)).len(), 1);
        assert!(wake_in_connection(&target(Some("main")), &pushed("feature", None)).is_empty());
        assert_eq!(wake_in_connection(&target(Some("main")), &pushed("trunk", Some("trunk"))).len(), 1);
        assert!(wake_in_connection(&target(Some("trunk")), &pushed("trunk", Some("main"))).is_empty());
        // Never synced, and a payload that does not say: any push may matter.
        assert_eq!(wake_in_connection(&target(None), &pushed("feature", None)).len(), 1);
    }

    #[test]
    fn delivery_ids_are_the_platforms_own_headers() {
        let request = |headers: &[(&str, &str)]| {
            HookRequest::new(headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())), Vec::new())
        };
        assert_eq!(delivery_id(Platform::GitHub, &request(&[("X-GitHub-Delivery", "g1")])), Some("g1"));
        let both = request(&[("X-Gitlab-Event-UUID", "e1"), ("Idempotency-Key", "i1")]);
        assert_eq!(delivery_id(Platform::GitLab, &both), Some("i1"), "stable across GitLab's retries");
        assert_eq!(delivery_id(Platform::GitLab, &request(&[("X-Gitlab-Event-UUID", "e1")])), Some("e1"));
        assert_eq!(delivery_id(Platform::Bitbucket, &request(&[("X-Request-UUID", "b1")])), Some("b1"));
        assert_eq!(delivery_id(Platform::Bitbucket, &request(&[("X-GitHub-Delivery", "g1")])), None);
        assert_eq!(delivery_id(Platform::GitHub, &request(&[("X-GitHub-Delivery", "  ")])), None);
    }

    #[test]
    fn form_encoded_deliveries_carry_their_json_in_payload() {
        let request = HookRequest::new(
            [("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned())],
            b"payload=%7B%22zen%22%3A%22x%22%7D".to_vec(),
        );
        assert_eq!(request.json().unwrap(), br#"{"zen":"x"}"#);
        let request = HookRequest::new([], b"{}".to_vec());
        assert_eq!(request.json().unwrap(), b"{}");
    }
}
