//! The embedded SQLite store.

mod accounts;
mod connections;
mod error;
mod idempotency;
mod pool;
mod rows;
mod schema;
mod sync;

use std::path::Path;

use diesel::{RunQueryDsl, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use sigsentry_ports::{HealthCheck, StoreError};

use crate::OpenError;

use self::error::TxError;
use self::pool::SqlitePool;

/// The SQLite schema migrations, embedded in the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// The file path inside a database URL: `sqlite://data/x.db`, `sqlite:data/x.db`
/// and `data/x.db` all name `data/x.db`.
pub fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url)
}

/// Creates the database file (and its directory) if missing and applies
/// every pending migration. Safe to run from several processes at once: the
/// migrations run in one `BEGIN IMMEDIATE` transaction.
///
/// # Errors
/// [`OpenError`] naming the path and the step that failed.
pub async fn migrate(url: &str) -> Result<(), OpenError> {
    let path = prepare_path(url)?;
    let task_path = path.clone();
    tokio::task::spawn_blocking(move || migrate_blocking(&task_path))
        .await
        .map_err(|e| OpenError::Task { path, message: e.to_string() })?
}

fn prepare_path(url: &str) -> Result<String, OpenError> {
    let path = sqlite_path(url);
    if path.is_empty() || path == ":memory:" || path.contains("mode=memory") {
        return Err(OpenError::InMemory(url.to_owned()));
    }
    // A `file:` URI is left to SQLite; only plain paths get their directory made.
    if !path.starts_with("file:")
        && let Some(dir) = Path::new(path).parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir { dir: dir.to_owned(), source })?;
    }
    Ok(path.to_owned())
}

fn migrate_blocking(path: &str) -> Result<(), OpenError> {
    let mut conn = pool::establish(path).map_err(|source| OpenError::Connect { path: path.to_owned(), source })?;
    let failed = |message: String| OpenError::Migrate { path: path.to_owned(), message };
    let applied = conn
        .immediate_transaction::<_, MigrateError, _>(|c| {
            c.run_pending_migrations(MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
                .map_err(|e| MigrateError::Harness(e.to_string()))
        })
        .map_err(|e| failed(e.to_string()))?;
    for version in applied {
        tracing::info!(path, version, "applied SQLite migration");
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum MigrateError {
    #[error("{0}")]
    Db(#[from] diesel::result::Error),
    #[error("{0}")]
    Harness(String),
}

/// The store on an embedded SQLite file. Cloning is cheap: clones share one pool.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("SqliteStore").field("size", &status.size).field("available", &status.available).finish()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url_or_path`
    /// (`sqlite://path`, `sqlite:path` or a plain path), then checks that a
    /// pooled connection works.
    ///
    /// Each pooled connection runs with `journal_mode=WAL`, `foreign_keys=ON`,
    /// `busy_timeout=5000` and `synchronous=NORMAL`. At most 8 connections are
    /// open; a caller waits at most 2 s for one, then gets
    /// [`StoreError::Unavailable`].
    ///
    /// # Errors
    /// [`OpenError`] naming the path and the step that failed.
    pub async fn open(url_or_path: &str) -> Result<SqliteStore, OpenError> {
        migrate(url_or_path).await?;
        let path = sqlite_path(url_or_path).to_owned();
        let pool = pool::build_pool(&path).map_err(|message| OpenError::Pool { path: path.clone(), message })?;
        let store = SqliteStore { pool };
        store.ping().await.map_err(|e| OpenError::Pool { path, message: e.to_string() })?;
        Ok(store)
    }

    /// Runs `task` with a pooled connection on a blocking thread, as diesel
    /// is synchronous. The task owns its inputs (`'static`) for that reason.
    ///
    /// The work runs in its own tokio task, so when the caller stops waiting
    /// (a client hung up), the connection still goes back to the pool only
    /// once the blocking work is done: diesel-async panics when it recycles a
    /// connection that a blocking thread still holds.
    async fn run<T, E>(
        &self,
        task: impl FnOnce(&mut SqliteConnection) -> Result<T, TxError> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<TxError> + From<StoreError>,
    {
        let pool = self.pool.clone();
        let work = tokio::spawn(async move {
            let mut conn = pool::checkout(&pool).await?;
            conn.spawn_blocking(move |c| Ok(task(c))).await.map_err(TxError::Db)?
        });
        match work.await {
            Ok(outcome) => outcome.map_err(E::from),
            Err(e) => Err(StoreError::Unexpected(format!("a database task failed: {e}")).into()),
        }
    }
}

impl HealthCheck for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| {
            diesel::sql_query("SELECT 1").execute(c)?;
            Ok(())
        })
        .await
    }
}
