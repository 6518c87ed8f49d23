//! Store adapters of SigSentry Code Repos.
//!
//! [`SqliteStore`] implements every store port of `sigsentry-ports` on an
//! embedded SQLite file, so a single binary runs without a database server.
//! Several processes may share one file: each write that must hold under
//! concurrency runs as one `BEGIN IMMEDIATE` transaction, which SQLite
//! serializes across processes.
//!
//! [`PgStore`] implements the same ports on PostgreSQL, for several replicas
//! behind a load balancer: the same writes lock the project's row
//! (`SELECT ... FOR UPDATE`), and UNIQUE constraints back the checks.
//!
//! Both also hold the repo cache (merged PRs and the paths they touched) and
//! the sync worker's claims on repositories (`SyncStore`): a claim is a lease
//! token on the repository row, and a sync's result is written only while
//! its token is still there, so deleting a connection, wiping its cache or
//! changing its credentials voids a sync already running.
//!
//! [`AnyStore`] picks one of them from `DATABASE_URL`'s scheme.
//!
//! ```no_run
//! # async fn run() -> Result<(), sigsentry_persistence::OpenError> {
//! let store = sigsentry_persistence::AnyStore::open("sqlite://data/sigsentry.db").await?;
//! # let _ = store;
//! # Ok(())
//! # }
//! ```

mod any;
mod cache;
mod decode;
mod open;
mod postgres;
mod sqlite;
mod tx;

pub use any::AnyStore;
pub use open::OpenError;
pub use postgres::{PG_MIGRATIONS, PG_POOL_SIZE, PgStore, migrate_postgres};
pub use sqlite::{MIGRATIONS, SqliteStore, migrate, sqlite_path};
