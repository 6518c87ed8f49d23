//! What only the PostgreSQL store has: the connection target and TLS, its
//! pool, its migrations and how its failures read.

pub(crate) mod error;
pub(crate) mod pool;
mod tls;

use diesel::connection::SimpleConnection;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use self::pool::PG_POOL_SIZE;
use self::pool::PgTarget;
use crate::OpenError;

/// The PostgreSQL schema migrations, embedded in the binary.
pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// The key of the session-level advisory lock taken while migrating, so that
/// replicas starting together apply each migration once: the second waits,
/// then finds nothing pending. Any fixed number works if nothing else uses it.
const MIGRATION_LOCK: i64 = 0x5369_6753_656E_7472; // "SigSentr"

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

pub(crate) async fn migrate_target(target: &PgTarget) -> Result<(), OpenError> {
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
