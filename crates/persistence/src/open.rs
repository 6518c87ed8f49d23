//! Why a store could not be opened or migrated, for either backend.

use std::path::PathBuf;

/// Why the database could not be opened or migrated. The messages name the
/// file or the server (never a password) and the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database URL is malformed or of an unknown scheme.
    #[error("DATABASE_URL is invalid: {0}")]
    InvalidUrl(String),
    /// An in-memory database would be a different, empty database on each
    /// pooled connection.
    #[error("'{0}' is an in-memory SQLite database; the store needs a file path")]
    InMemory(String),
    /// The directory for the file could not be created.
    #[error("cannot create the directory {} for the SQLite database: {source}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file could not be opened or configured.
    #[error("cannot open the SQLite database at {path}: {source}")]
    Connect {
        /// The database file.
        path: String,
        /// Why.
        source: diesel::ConnectionError,
    },
    /// A migration failed; the schema is left as it was before that migration.
    #[error("cannot migrate the SQLite database at {path}: {message}")]
    Migrate {
        /// The database file.
        path: String,
        /// Why.
        message: String,
    },
    /// The connection pool could not be built or did not hand out a working connection.
    #[error("cannot set up the connection pool for the SQLite database at {path}: {message}")]
    Pool {
        /// The database file.
        path: String,
        /// Why.
        message: String,
    },
    /// The blocking task doing the work panicked or was cancelled.
    #[error("the task opening the SQLite database at {path} failed: {message}")]
    Task {
        /// The database file.
        path: String,
        /// Why.
        message: String,
    },
    /// The PostgreSQL server did not answer, refused the login, or the pool
    /// did not hand out a working connection.
    #[error("cannot connect to PostgreSQL at {target}: {message}")]
    PgConnect {
        /// `user@host:port/database`, without the password.
        target: String,
        /// Why.
        message: String,
    },
    /// A PostgreSQL migration failed; each migration runs in its own
    /// transaction, so the schema is left at the last one that succeeded.
    #[error("cannot migrate the PostgreSQL database at {target}: {message}")]
    PgMigrate {
        /// `user@host:port/database`, without the password.
        target: String,
        /// Why.
        message: String,
    },
}
