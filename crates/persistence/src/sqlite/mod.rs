//! What only the embedded SQLite store has: the file path, its pool and
//! pragmas, its migrations and how its failures read.

pub(crate) mod error;
pub(crate) mod pool;

use std::path::Path;

use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::OpenError;

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
