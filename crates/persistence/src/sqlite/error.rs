//! The one place where database failures become port errors.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use sigsentry_ports::StoreError;

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

/// Whether a failure is a UNIQUE violation (SQLite's errors do not name the constraint).
pub(crate) fn is_unique_violation(error: &DieselError) -> bool {
    matches!(error, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn locked_is_unavailable_and_the_rest_unexpected() {
        let locked = db(DatabaseErrorKind::Unknown, "database is locked");
        assert!(matches!(map_diesel_error(locked), StoreError::Unavailable(_)));
        let unique = db(DatabaseErrorKind::UniqueViolation, "UNIQUE constraint failed");
        assert!(is_unique_violation(&unique));
        assert!(matches!(map_diesel_error(unique), StoreError::Unexpected(_)));
        assert!(matches!(map_diesel_error(DieselError::NotFound), StoreError::Unexpected(_)));
    }
}
