//! Application services: the domain's rules carried out over the ports.
//!
//! [`CodeRepos`] is what an adapter (HTTP, CLI) calls. It is generic over the
//! store, cipher and clock so an embedding team can bring its own, and so
//! tests can run it on fakes.

mod accounts;
mod api_keys;
mod auth;
mod cache;
mod connections;
mod correlate;
mod errors;
mod keeper;
mod reencrypt;
mod service;
mod sync;
mod webhooks;

use sigsentry_domain::{BaseUrlPolicy, QuotaTable, RenewalSetup};
use sigsentry_ports::{Clock, CredentialCipher, Store};

pub use accounts::{AccountError, CreatedKey, FirstRun};
pub use api_keys::{generate_api_key, hash_api_key};
pub use auth::{AccessRequest, Caller, ProjectScope};
pub use cache::{PullRequestFilter, PullRequestPage, decode_pr_cursor};
pub use connections::{ConnectionFilter, ConnectionPage, CreateOutcome, Fingerprinted, decode_cursor, encode_cursor};
pub use correlate::{CorrelateError, CorrelatedFrame, Correlation, FrameLink, SuspectFileLink};
pub use errors::{AccessError, CreateError, NotFoundOr, UpdateError};
pub use service::CodeReposApi;
// What callers of the services see of the ports: values, not traits.
pub use reencrypt::{KeyringCheck, KeyringCheckError, ReencryptError, ReencryptReport};
pub use sigsentry_ports::{
    CachedPullRequest, CipherError, MergedPullRequest, StoreError, StoredResponse, WriteRefused,
};
pub use sync::{SyncConfig, SyncWorker};
pub use webhooks::{HookAction, HookEndpoint, HookError, HookRequest, HookTarget, MAX_HOOK_BODY_BYTES, WebhookSecret};

/// Settings of the services that operators may change.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Repositories per project, by plan.
    pub quotas: QuotaTable,
    /// What a `baseUrl` may point at.
    pub base_url_policy: BaseUrlPolicy,
    /// Seconds after which an idempotency claim that never completed is abandoned.
    pub idempotency_lease_secs: u32,
    /// Seconds a completed idempotent response is kept (at least a day).
    pub idempotency_retention_secs: u32,
    /// The GitHub App's webhook secret; without it `POST /v1/hooks/github` is 404.
    pub github_app_webhook_secret: Option<WebhookSecret>,
    /// Which self-renewing credential kinds the operator configured; the
    /// others are refused when set.
    pub renewal: RenewalSetup,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            quotas: QuotaTable::default(),
            base_url_policy: BaseUrlPolicy::default(),
            idempotency_lease_secs: 60,
            idempotency_retention_secs: 24 * 60 * 60,
            github_app_webhook_secret: None,
            renewal: RenewalSetup::default(),
        }
    }
}

/// The Code Repos services over a store `S`, a cipher `C` and a clock `K`.
#[derive(Debug, Clone)]
pub struct CodeRepos<S, C, K> {
    store: S,
    cipher: C,
    clock: K,
    config: ServiceConfig,
}

impl<S: Store, C: CredentialCipher, K: Clock> CodeRepos<S, C, K> {
    /// Wires the services.
    pub fn new(store: S, cipher: C, clock: K, config: ServiceConfig) -> Self {
        Self { store, cipher, clock, config }
    }

    /// The store, for health checks.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The cipher, for the sync worker.
    pub fn cipher(&self) -> &C {
        &self.cipher
    }

    /// The settings in force.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }
}

/// A fresh time-ordered UUID (v7).
fn new_uuid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
