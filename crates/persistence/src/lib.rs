//! Store adapters of SigSentry Code Repos: [`AnyStore`] implements every
//! store port of `sigsentry-ports`, on either of two dialects picked from
//! `DATABASE_URL`'s scheme.
//!
//! On an embedded SQLite file a single binary runs without a database
//! server. Several processes may share one file: each write that must hold
//! under concurrency runs as one `BEGIN IMMEDIATE` transaction, which SQLite
//! serializes across processes.
//!
//! On PostgreSQL several replicas run behind a load balancer: the same
//! writes lock the project's row (`SELECT ... FOR NO KEY UPDATE`), and
//! UNIQUE constraints back the checks.
//!
//! The store also holds the repo cache (merged PRs and the paths they
//! touched) and the sync worker's claims on repositories (`SyncStore`): a
//! claim is a lease token on the repository row, and a sync's result is
//! written only while its token is still there, so deleting a connection,
//! wiping its cache or changing its credentials voids a sync already running.
//!
//! One schema (`schema.rs`), one row model (`rows.rs`) and one body per
//! operation serve both dialects; what differs is in `store.rs` (how a task
//! and its transaction run), `dialect.rs` (locks, savepoints), `sqlite/` and
//! `postgres/` (connections, migrations, error maps).
//!
//! ```no_run
//! # async fn run() -> Result<(), sigsentry_persistence::OpenError> {
//! let store = sigsentry_persistence::AnyStore::open("sqlite://data/sigsentry.db").await?;
//! # let _ = store;
//! # Ok(())
//! # }
//! ```

mod accounts;
mod cache;
mod code_index;
mod connections;
mod credentials;
mod decode;
mod dialect;
mod idempotency;
mod open;
mod postgres;
mod rows;
mod schema;
mod sql_types;
mod sqlite;
mod store;
mod sync;
mod tx;
mod webhooks;

pub use open::OpenError;
pub use postgres::{PG_MIGRATIONS, PG_POOL_SIZE, migrate_postgres};
pub use sqlite::{MIGRATIONS, migrate, sqlite_path};
pub use store::AnyStore;
