//! The PostgreSQL store, for several replicas sharing one database.

mod accounts;
mod connections;
mod error;
mod idempotency;
mod pool;
mod rows;
mod schema;
mod sync;
mod tls;

use std::future::Future;
use std::pin::Pin;

use diesel::connection::SimpleConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use sigsentry_ports::{HealthCheck, StoreError};

use self::error::TxError;
pub use self::pool::PG_POOL_SIZE;
use self::pool::{PgPool, PgTarget};
use crate::OpenError;

/// The PostgreSQL schema migrations, embedded in the binary.
pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// The key of the session-level advisory lock taken while migrating, so that
/// replicas starting together apply each migration once: the second waits,
/// then finds nothing pending. Any fixed number works if nothing else uses it.
const MIGRATION_LOCK: i64 = 0x5369_6753_656E_7472; // "SigSentr"

/// A future borrowing a pooled connection, as the tasks of [`PgStore::run`] return.
pub(crate) type ConnFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, TxError>> + Send + 'c>>;

/// Applies every pending migration to the database at `url`
/// (`postgres://` or `postgresql://`), under an advisory lock so that
/// several processes may run it at once. For a `sigsentry migrate` command.
///
/// # Errors
/// [`OpenError::InvalidUrl`] for a malformed URL, [`OpenError::PgConnect`]
/// when the server cannot be reached, [`OpenError::PgMigrate`] when a
/// migration fails.
pub async fn migrate_postgres(url: &str) -> Result<(), OpenError> {
    let target = PgTarget::parse(url)?;
    migrate_target(&target).await
}

async fn migrate_target(target: &PgTarget) -> Result<(), OpenError> {
    let conn = target
        .connect()
        .await
        .map_err(|e| OpenError::PgConnect { target: target.display.clone(), message: e.to_string() })?;
    let shown = target.display.clone();
    // diesel's migration harness is synchronous: the wrapper blocks on the
    // async connection, which must not happen on a runtime worker thread.
    let applied = tokio::task::spawn_blocking(move || migrate_blocking(conn))
        .await
        .map_err(|e| OpenError::PgMigrate { target: shown.clone(), message: format!("the task failed: {e}") })?
        .map_err(|message| OpenError::PgMigrate { target: shown.clone(), message })?;
    for version in applied {
        tracing::info!(database = %shown, version, "applied PostgreSQL migration");
    }
    Ok(())
}

fn migrate_blocking(conn: AsyncPgConnection) -> Result<Vec<String>, String> {
    let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(conn);
    // A session lock, held on this connection across the per-migration
    // transactions the harness runs, and released by the server should this
    // process die half-way.
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .map_err(|e| format!("cannot take the migration lock: {e}"))?;
    let outcome = conn
        .run_pending_migrations(PG_MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
        .map_err(|e| e.to_string());
    let unlocked = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
    let applied = outcome?;
    // Closing the connection releases the lock anyway; only report it.
    if let Err(e) = unlocked {
        tracing::warn!(error = %e, "cannot release the migration lock; closing the connection will");
    }
    Ok(applied)
}

/// The store on a PostgreSQL database. Cloning is cheap: clones share one pool.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    target: PgTarget,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PgStore")
            .field("target", &self.target.display)
            .field("size", &status.size)
            .field("available", &status.available)
            .finish()
    }
}

impl PgStore {
    /// Checks `url` (`postgres://` or `postgresql://`), applies pending
    /// migrations, builds a pool of at most [`PG_POOL_SIZE`] connections
    /// and checks that it hands out a working one.
    ///
    /// A caller waits at most 2 s for a connection, then gets
    /// [`StoreError::Unavailable`]; connections the server dropped are
    /// replaced on their next use, so the store recovers by itself when the
    /// server comes back.
    ///
    /// # Errors
    /// [`OpenError::InvalidUrl`] naming `DATABASE_URL` for a malformed URL,
    /// [`OpenError::PgConnect`] when the server cannot be reached,
    /// [`OpenError::PgMigrate`] when a migration fails.
    pub async fn open(url: &str) -> Result<PgStore, OpenError> {
        Self::open_with_pool_size(url, PG_POOL_SIZE).await
    }

    /// [`PgStore::open`] with at most `max_connections` pooled connections (at least 1).
    ///
    /// # Errors
    /// As [`PgStore::open`].
    pub async fn open_with_pool_size(url: &str, max_connections: usize) -> Result<PgStore, OpenError> {
        let target = PgTarget::parse(url)?;
        migrate_target(&target).await?;
        let pool = pool::build_pool(&target, max_connections)
            .map_err(|message| OpenError::PgConnect { target: target.display.clone(), message })?;
        let store = PgStore { pool, target };
        store
            .ping()
            .await
            .map_err(|e| OpenError::PgConnect { target: store.target.display.clone(), message: e.to_string() })?;
        Ok(store)
    }

    /// Runs `task` with a pooled connection.
    ///
    /// The work runs in its own tokio task, so when the caller stops waiting
    /// (a client hung up), the transaction still runs to its end instead of
    /// being cut between two statements; the connection goes back to the pool
    /// only then. (A connection dropped mid-transaction would be discarded by
    /// the recycle check, but the work would be lost half-way for no reason.)
    async fn run<T, E, F>(&self, task: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> ConnFuture<'c, T> + Send + 'static,
        T: Send + 'static,
        E: From<TxError> + From<StoreError>,
    {
        let pool = self.pool.clone();
        let work = tokio::spawn(async move {
            let mut conn = pool::checkout(&pool).await?;
            task(&mut conn).await
        });
        match work.await {
            Ok(outcome) => outcome.map_err(E::from),
            Err(e) => Err(StoreError::Unexpected(format!("a database task failed: {e}")).into()),
        }
    }
}

impl HealthCheck for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| {
            Box::pin(async move {
                diesel::sql_query("SELECT 1").execute(c).await?;
                Ok(())
            })
        })
        .await
    }
}
