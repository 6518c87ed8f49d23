//! The traits the Code Repos domain needs from the world.
//!
//! Adapters implement them: `sigsentry-persistence` the stores,
//! `sigsentry-crypto` the cipher. The application services in `sigsentry-app`
//! depend only on these traits, so an embedding team can swap any adapter,
//! and unit tests can use in-memory fakes.
//!
//! Traits are `Clone + Send + Sync + 'static` and their async methods return
//! `impl Future + Send` (no boxing), so callers stay generic and cheap.

mod cipher;
mod clock;
mod code_index;
mod credentials;
mod platform;
mod store;
mod sync;
mod telemetry;
mod webhook;

pub use cipher::{Aad, CipherError, CredentialCipher, SealedSecret, WebhookSecretAad};
pub use clock::{Clock, SystemClock};
pub use code_index::{CodeIndexStore, FileChange, FileRef, IndexedFile};
pub use credentials::{
    BoxFuture, CredentialKeeper, CredentialReport, CredentialStore, DetachedKeeper, OAuthExchange, RefreshError,
    RenewalClaim, RenewalOutcome,
};
pub use platform::{
    ChangedFile, MergedPullRequest, PlatformClient, PlatformError, PlatformSession, PullRequestWindow, RateLimitState,
    RepositoryInfo, TreeSnapshot,
};
pub use store::{
    AccountStore, ApiKeyGrant, ApiKeyRecord, ConnectionChange, ConnectionStore, HealthCheck, IdempotencyBegin,
    IdempotencyCompletion, IdempotencyStore, ListQuery, NewApiKey, NewConnection, NewCredentials, Project,
    SealedCredentialsRow, Store, StoreError, StoredResponse, Tenant, WriteConnectionError, WriteRefused,
};
pub use sync::{CachedPullRequest, LeaseStatus, PullRequestQuery, SyncFailure, SyncJob, SyncStore, SyncSuccess};
pub use telemetry::{NoTelemetry, SyncOutcome, Telemetry};
pub use webhook::{
    DeliveryMark, DeliveryOutcome, HookRepository, SealedWebhookSecretRow, WakeRepository, WebhookStore, WebhookTarget,
};
