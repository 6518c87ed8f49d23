//! The one place where PostgreSQL failures become port errors.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use sigsentry_ports::StoreError;

/// Server messages that mean "try again later": the server is going down or
/// coming up, the connection broke, or the transaction lost a race that a
/// retry would win. They carry SQLSTATEs diesel folds into `Unknown`.
const TRANSIENT: &[&str] = &[
    "terminating connection",
    "the database system is",
    "too many connections",
    "no more connections allowed",
    "deadlock detected",
    "could not serialize access",
    "canceling statement due to",
    "connection closed",
    "connection reset",
    "server closed the connection",
    "broken pipe",
    "timed out",
];

/// Maps a diesel failure to a [`StoreError`]: an unreachable or restarting
/// server and lost races are `Unavailable` (retrying later may work), the
/// rest `Unexpected`.
pub(crate) fn map_diesel_error(error: DieselError) -> StoreError {
    match &error {
        DieselError::DatabaseError(kind, info) => {
            let message = info.message().to_ascii_lowercase();
            let transient = matches!(
                kind,
                DatabaseErrorKind::ClosedConnection
                    | DatabaseErrorKind::UnableToSendCommand
                    | DatabaseErrorKind::SerializationFailure
            ) || TRANSIENT.iter().any(|needle| message.contains(needle));
            if transient {
                return StoreError::Unavailable(info.message().to_owned());
            }
        }
        // A connection that died mid-transaction leaves diesel unable to roll back.
        DieselError::BrokenTransactionManager => return StoreError::Unavailable(error.to_string()),
        DieselError::RollbackErrorOnCommit { commit_error, .. } => {
            if let StoreError::Unavailable(message) = map_diesel_error(clone_kind(commit_error)) {
                return StoreError::Unavailable(message);
            }
        }
        _ => {}
    }
    StoreError::Unexpected(error.to_string())
}

/// Enough of a boxed commit error to classify it (diesel errors are not `Clone`).
fn clone_kind(error: &DieselError) -> DieselError {
    match error {
        DieselError::DatabaseError(kind, info) => {
            DieselError::DatabaseError(*kind, Box::new(info.message().to_owned()))
        }
        DieselError::BrokenTransactionManager => DieselError::BrokenTransactionManager,
        other => DieselError::QueryBuilderError(other.to_string().into()),
    }
}

/// The UNIQUE constraints of `migrations/postgres` that a name clash trips.
const REPO_NAME_UNIQUE: &str = "connection_repositories_project_id_name_key";
const SERVICE_NAME_UNIQUE: &str = "service_mappings_project_id_service_name";

/// Whether a failure violated the project-wide UNIQUE on repositories or on service names.
pub(crate) fn is_name_clash(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            matches!(info.constraint_name(), Some(REPO_NAME_UNIQUE | SERVICE_NAME_UNIQUE))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn a_going_away_server_is_unavailable_and_the_rest_unexpected() {
        let shutdown = db(DatabaseErrorKind::Unknown, "terminating connection due to administrator command");
        assert!(matches!(map_diesel_error(shutdown), StoreError::Unavailable(_)));
        let closed = db(DatabaseErrorKind::UnableToSendCommand, "connection closed");
        assert!(matches!(map_diesel_error(closed), StoreError::Unavailable(_)));
        assert!(matches!(map_diesel_error(DieselError::BrokenTransactionManager), StoreError::Unavailable(_)));
        let unique = db(DatabaseErrorKind::UniqueViolation, "duplicate key value violates unique constraint");
        assert!(matches!(map_diesel_error(unique), StoreError::Unexpected(_)));
        assert!(matches!(map_diesel_error(DieselError::NotFound), StoreError::Unexpected(_)));
    }
}
