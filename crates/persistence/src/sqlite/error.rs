//! The one place where database failures become port errors.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use sigsentry_ports::{StoreError, WriteConnectionError};

/// Maps a diesel failure to a [`StoreError`]: contention and an unreachable
/// file are `Unavailable` (retrying later may work), the rest `Unexpected`.
pub(crate) fn map_diesel_error(error: DieselError) -> StoreError {
    if let DieselError::DatabaseError(kind, info) = &error {
        let message = info.message().to_ascii_lowercase();
        let transient = matches!(kind, DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand)
            || ["database is locked", "database table is locked", "busy", "unable to open", "disk i/o error"]
                .iter()
                .any(|needle| message.contains(needle));
        if transient {
            return StoreError::Unavailable(info.message().to_owned());
        }
    }
    StoreError::Unexpected(error.to_string())
}

pub(crate) use crate::decode::corrupt_row;

/// The error of a task run on a pooled connection. Diesel's transaction
/// helpers need an error type that converts from diesel's; this one also
/// carries refusals (quota, taken names) so they roll the transaction back.
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

impl From<TxError> for StoreError {
    fn from(error: TxError) -> Self {
        match error {
            TxError::Db(error) => map_diesel_error(error),
            TxError::Store(error) | TxError::Write(WriteConnectionError::Store(error)) => error,
            // Only connection writes refuse; reaching here is a bug, not a user error.
            TxError::Write(other) => StoreError::Unexpected(other.to_string()),
        }
    }
}

impl From<TxError> for WriteConnectionError {
    fn from(error: TxError) -> Self {
        match error {
            TxError::Db(error) => WriteConnectionError::Store(map_diesel_error(error)),
            TxError::Store(error) => WriteConnectionError::Store(error),
            TxError::Write(error) => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::DatabaseErrorInformation;

    use super::*;

    #[derive(Debug)]
    struct Info(&'static str);

    impl DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    #[test]
    fn locked_is_unavailable_and_the_rest_unexpected() {
        let locked = DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(Info("database is locked")));
        assert!(matches!(map_diesel_error(locked), StoreError::Unavailable(_)));
        let unique =
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, Box::new(Info("UNIQUE constraint failed")));
        assert!(matches!(map_diesel_error(unique), StoreError::Unexpected(_)));
        assert!(matches!(map_diesel_error(DieselError::NotFound), StoreError::Unexpected(_)));
    }
}
