//! Store adapters of SigSentry Code Repos.
//!
//! [`SqliteStore`] implements every store port of `sigsentry-ports` on an
//! embedded SQLite file, so a single binary runs without a database server.
//! Several processes may share one file: each write that must hold under
//! concurrency runs as one `BEGIN IMMEDIATE` transaction, which SQLite
//! serializes across processes.
//!
//! ```no_run
//! # async fn run() -> Result<(), sigsentry_persistence::OpenError> {
//! let store = sigsentry_persistence::SqliteStore::open("sqlite://data/sigsentry.db").await?;
//! # let _ = store;
//! # Ok(())
//! # }
//! ```

mod sqlite;

pub use sqlite::{MIGRATIONS, OpenError, SqliteStore, migrate, sqlite_path};
