//! Pure types and rules of SigSentry Code Repos.
//!
//! Everything here is plain data and plain functions: no I/O, no async, no
//! framework. A value of one of these types has passed its rules, so code that
//! holds a [`RepoName`] or a [`LookbackDays`] never checks it again.
//!
//! ```
//! use sigsentry_domain::{Platform, RepoName, LookbackDays};
//!
//! let repo = RepoName::parse(Platform::GitLab, "acme/platform/checkout-api").unwrap();
//! assert_eq!(repo.as_str(), "acme/platform/checkout-api");
//! assert!(RepoName::parse(Platform::GitHub, "acme/platform/checkout-api").is_err());
//! assert!(LookbackDays::new(0).is_err());
//! ```

mod access;
mod base_url;
mod connection;
pub mod correlation;
mod credential_status;
mod credentials;
mod idempotency;
mod ids;
mod lookback;
mod mapping;
mod plan;
mod platform;
mod repo_name;
mod sync;
mod validation;

pub use access::{ApiKeySecret, KEY_PREFIX, Permission, PermissionSet};
pub use base_url::{BaseUrl, BaseUrlPolicy, check_ip};
pub use connection::{
    BaseUrlField, ConnectionSpec, ConnectionUpdate, CredentialSummary, CredentialsDraft, MAX_REPOSITORIES,
    MAX_SERVICE_MAPPINGS, MappingDraft, OAuthDraft, PatchDraft, RepoConnection, SpecDraft, corrupt,
};
pub use credential_status::{CredentialHealth, CredentialStatus, CredentialUse, EXPIRING_WITHIN};
pub use credentials::{CredentialKind, Credentials, InstallationId, OAuthTokens, RENEW_BEFORE, RenewalSetup, Secret};
pub use idempotency::IdempotencyKey;
pub use ids::{ApiKeyId, ConnectionId, ProjectId, TenantId};
pub use lookback::LookbackDays;
pub use mapping::{BranchName, PathPrefix, ServiceMapping, ServiceName};
pub use plan::{Plan, QuotaExceeded, QuotaTable};
pub use platform::Platform;
pub use repo_name::RepoName;
pub use sync::{RepoSyncStatus, SyncState, next_attempt_at};
pub use validation::{FieldError, Invalid, ValidationErrors};
