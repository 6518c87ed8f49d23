//! The error of a task run on a pooled connection, shared by both dialects.
//! Diesel's transaction helpers need an error type that converts from
//! diesel's; this one also carries refusals (quota, taken names) so they
//! roll the transaction back. Only the mapping of a diesel failure to a
//! [`StoreError`] differs by dialect: that is the [`Dialect`] parameter.

use std::convert::Infallible;
use std::marker::PhantomData;

use diesel::result::Error as DieselError;
use sigsentry_ports::{StoreError, WriteConnectionError};

/// How one database's failures read as port errors.
pub(crate) trait Dialect {
    /// Contention and an unreachable database are `Unavailable`; the rest `Unexpected`.
    fn map_diesel_error(error: DieselError) -> StoreError;
}

/// A failed task: the database, a corrupt row or a refused write.
#[derive(Debug)]
pub(crate) enum TxError<D> {
    /// The database failed.
    Db(DieselError),
    /// A stored row is corrupt, or the store failed otherwise.
    Store(StoreError),
    /// A connection write was refused.
    Write(WriteConnectionError),
    /// Never built: carries the dialect at the type level.
    #[allow(dead_code)]
    Dialect(Infallible, PhantomData<D>),
}

impl<D> From<DieselError> for TxError<D> {
    fn from(error: DieselError) -> Self {
        Self::Db(error)
    }
}

impl<D> From<StoreError> for TxError<D> {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl<D> From<WriteConnectionError> for TxError<D> {
    fn from(error: WriteConnectionError) -> Self {
        Self::Write(error)
    }
}

impl<D> From<sigsentry_domain::QuotaExceeded> for TxError<D> {
    fn from(error: sigsentry_domain::QuotaExceeded) -> Self {
        Self::Write(WriteConnectionError::QuotaExceeded(error))
    }
}

impl<D: Dialect> From<TxError<D>> for StoreError {
    fn from(error: TxError<D>) -> Self {
        match error {
            TxError::Db(error) => D::map_diesel_error(error),
            TxError::Store(error) | TxError::Write(WriteConnectionError::Store(error)) => error,
            // Only connection writes refuse; reaching here is a bug, not a user error.
            TxError::Write(other) => StoreError::Unexpected(other.to_string()),
            TxError::Dialect(never, _) => match never {},
        }
    }
}

impl<D: Dialect> From<TxError<D>> for WriteConnectionError {
    fn from(error: TxError<D>) -> Self {
        match error {
            TxError::Db(error) => WriteConnectionError::Store(D::map_diesel_error(error)),
            TxError::Store(error) => WriteConnectionError::Store(error),
            TxError::Write(error) => error,
            TxError::Dialect(never, _) => match never {},
        }
    }
}
