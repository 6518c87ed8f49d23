//! The error of a task run on a pooled connection. Diesel's query methods
//! need an error type that converts from diesel's; this one also carries
//! refusals (quota, taken names) so they roll the transaction back. A
//! diesel failure becomes a [`StoreError`] only at the end of the task,
//! where the store knows its dialect ([`Backend::map_diesel_error`]).

use diesel::result::Error as DieselError;
use sigsentry_ports::{StoreError, WriteConnectionError};

use crate::dialect::Backend;

/// A failed task: the database, a corrupt row or a refused write.
#[derive(Debug)]
pub(crate) enum TxError {
    /// The database failed.
    Db(DieselError),
    /// A stored row is corrupt, or the store failed otherwise.
    Store(StoreError),
    /// A connection write was refused.
    Write(WriteConnectionError),
}

impl From<DieselError> for TxError {
    fn from(error: DieselError) -> Self {
        Self::Db(error)
    }
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<WriteConnectionError> for TxError {
    fn from(error: WriteConnectionError) -> Self {
        Self::Write(error)
    }
}

impl From<sigsentry_domain::QuotaExceeded> for TxError {
    fn from(error: sigsentry_domain::QuotaExceeded) -> Self {
        Self::Write(WriteConnectionError::QuotaExceeded(error))
    }
}

/// A port error a [`TxError`] of a store of `backend` becomes.
pub(crate) trait FromTxError: From<StoreError> {
    fn from_tx(error: TxError, backend: Backend) -> Self;
}

impl FromTxError for StoreError {
    fn from_tx(error: TxError, backend: Backend) -> Self {
        match error {
            TxError::Db(error) => backend.map_diesel_error(error),
            TxError::Store(error) | TxError::Write(WriteConnectionError::Store(error)) => error,
            // Only connection writes refuse; reaching here is a bug, not a user error.
            TxError::Write(other) => StoreError::Unexpected(other.to_string()),
        }
    }
}

impl FromTxError for WriteConnectionError {
    fn from_tx(error: TxError, backend: Backend) -> Self {
        match error {
            TxError::Db(error) => WriteConnectionError::Store(backend.map_diesel_error(error)),
            TxError::Store(error) => WriteConnectionError::Store(error),
            TxError::Write(error) => error,
        }
    }
}
