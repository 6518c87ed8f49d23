//! Webhooks: the secrets that authenticate a platform's deliveries, the
//! deliveries already seen, and the repositories a delivery wakes.

use std::future::Future;

use chrono::{DateTime, Utc};
use sigsentry_domain::{ConnectionId, Platform, ProjectId, RepoName, TenantId};

use crate::{SealedSecret, StoreError};

/// A repository of a connection as a webhook needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRepository {
    /// Its name, as the connection spells it.
    pub name: RepoName,
    /// Its default branch, learned at sync (`None` before the first one).
    pub default_branch: Option<String>,
}

/// What `POST /v1/hooks/{connectionId}` needs of its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The connection.
    pub connection_id: ConnectionId,
    /// Its tenant (associated data of the sealed secret).
    pub tenant_id: TenantId,
    /// Its project.
    pub project_id: ProjectId,
    /// The platform whose signature scheme applies.
    pub platform: Platform,
    /// `false` when paused: nothing is woken.
    pub is_active: bool,
    /// Its repositories.
    pub repositories: Vec<HookRepository>,
    /// The sealed webhook secret; `None` for a connection made before
    /// webhooks existed, until its secret is rotated.
    pub secret: Option<SealedSecret>,
}

/// A delivery to remember, so that its redelivery is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryMark {
    /// The endpoint that received it (a connection id, or `github-app`).
    pub source: String,
    /// A digest of the platform's delivery id (fixed length, whatever was sent).
    pub delivery: String,
    /// Forgotten after this.
    pub expires_at: DateTime<Utc>,
}

/// One repository of one connection to sync now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WakeRepository {
    /// The connection.
    pub connection_id: ConnectionId,
    /// The repository's key ([`RepoName::key`]).
    pub repository_key: String,
}

/// What accepting a delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The delivery was seen before (and has not expired): nothing was done.
    Duplicate,
    /// Recorded; this many repositories became due now (the others were
    /// already pending, or syncing and marked to sync once more).
    Accepted {
        /// Repositories put back to `pending`.
        woken: u32,
    },
}

/// Webhook secrets and deliveries.
pub trait WebhookStore: Clone + Send + Sync + 'static {
    /// The connection a per-connection webhook names, with its sealed secret;
    /// `None` when no such connection exists (in any project).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn webhook_target(
        &self,
        id: ConnectionId,
    ) -> impl Future<Output = Result<Option<WebhookTarget>, StoreError>> + Send;

    /// The active GitHub connections made through App installation
    /// `installation_id` that hold the repository with key `repository_key`:
    /// whom the GitHub App's hook wakes. None without an installation id.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn github_connections_holding(
        &self,
        repository_key: &str,
        installation_id: Option<i64>,
    ) -> impl Future<Output = Result<Vec<ConnectionId>, StoreError>> + Send;

    /// In one transaction: forgets deliveries expired by `now`; records
    /// `delivery` (if given), answering [`DeliveryOutcome::Duplicate`] with
    /// nothing done when it is already recorded; and makes each repository
    /// of `wake` due now: a `ready` or failed one becomes `pending` (its
    /// backoff cleared, its failure count kept), a `pending` one stays, and a
    /// `syncing` one is marked to sync once more when its sync completes.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn accept_delivery(
        &self,
        delivery: Option<DeliveryMark>,
        wake: Vec<WakeRepository>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<DeliveryOutcome, StoreError>> + Send;

    /// Up to `limit` sealed webhook secrets not sealed with `active_key_id`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn webhook_secrets_not_under(
        &self,
        active_key_id: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<SealedWebhookSecretRow>, StoreError>> + Send;

    /// Replaces a sealed webhook secret if it is still `old` (a rotation by
    /// a user meanwhile wins). `false` when it changed.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn reseal_webhook_secret(
        &self,
        connection_id: ConnectionId,
        old: &SealedSecret,
        new: SealedSecret,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A connection's sealed webhook secret as stored, for re-encryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedWebhookSecretRow {
    /// The connection.
    pub connection_id: ConnectionId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its project.
    pub project_id: ProjectId,
    /// The sealed secret.
    pub sealed: SealedSecret,
}

impl SealedWebhookSecretRow {
    /// What the sealed secret is bound to.
    pub fn aad(&self) -> crate::WebhookSecretAad {
        crate::WebhookSecretAad {
            tenant_id: self.tenant_id,
            project_id: self.project_id,
            connection_id: self.connection_id,
        }
    }
}
