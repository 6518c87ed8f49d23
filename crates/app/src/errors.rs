//! Why an operation of the services failed: one enum per operation, sharing
//! the port's [`WriteRefused`] for the refusals only the store can decide
//! atomically.
//! The HTTP adapter maps each variant to the envelope in one place.

use sigsentry_domain::{Permission, ValidationErrors};
use sigsentry_ports::{CipherError, StoreError, WriteRefused};

/// Why a request may not act on the project it asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No key, a malformed one, an unknown or revoked one. Deliberately one case.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// The key lacks the permission of the endpoint.
    #[error("this API key lacks the {0} permission")]
    MissingPermission(Permission),
    /// A tenant-scoped key sent no `X-Project-Id`.
    #[error("X-Project-Id is required with a tenant-scoped API key")]
    ProjectHeaderMissing,
    /// `X-Project-Id` is not a UUID.
    #[error("X-Project-Id must be a UUID")]
    ProjectHeaderInvalid,
    /// No such project in the key's tenant.
    #[error("no project with that id in your tenant")]
    ProjectNotFound,
    /// A project-scoped key named another project.
    #[error("this API key is limited to another project")]
    OtherProject,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a create request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The body broke rules.
    #[error("validation failed: {0}")]
    Validation(ValidationErrors),
    /// The store refused the write.
    #[error(transparent)]
    Refused(WriteRefused),
    /// The key was used with another body.
    #[error("the idempotency key was used with a different request")]
    IdempotencyMismatch,
    /// The key's first request is still running.
    #[error("a request with this idempotency key is still in progress")]
    IdempotencyInFlight {
        /// Seconds to wait before retrying.
        retry_after_secs: u32,
    },
    /// Sealing the credentials failed.
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an update failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// No such connection in the project.
    #[error("no connection with that id in this project")]
    NotFound,
    /// The merged result broke rules.
    #[error("validation failed: {0}")]
    Validation(ValidationErrors),
    /// The store refused the write.
    #[error(transparent)]
    Refused(WriteRefused),
    /// The connection kept changing under us.
    #[error("the connection was changed concurrently; retry")]
    Contended,
    /// Sealing the credentials failed.
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A lookup of one connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotFoundOr {
    /// No such connection in the project.
    #[error("no connection with that id in this project")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
