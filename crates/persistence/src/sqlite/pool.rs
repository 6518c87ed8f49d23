//! Opening connections and the pool.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, ConnectionError, ConnectionResult, QueryResult, SqliteConnection};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;

/// The async connection the pool hands out: a blocking SQLite connection
/// whose work runs on tokio's blocking threads.
pub(crate) type AsyncSqlite = SyncConnectionWrapper<SqliteConnection>;

/// The pool of [`AsyncSqlite`] connections.
pub(crate) type SqlitePool = Pool<AsyncSqlite>;

/// Connections per process. SQLite has one writer anyway; more readers than
/// this gain little on a small machine.
pub(crate) const POOL_SIZE: usize = 8;

/// How long a caller waits for a free connection before the store reports
/// itself unavailable, so a stuck database gives a 503 instead of a hang.
pub(crate) const POOL_WAIT: Duration = Duration::from_secs(2);

/// Set on every connection, since SQLite keeps most pragmas per connection.
/// `busy_timeout` comes first so that switching to WAL waits for a lock held
/// by another process instead of failing at once; `foreign_keys` makes the
/// `ON DELETE CASCADE` clauses work; WAL lets readers run beside the writer;
/// `synchronous=NORMAL` is durable enough in WAL mode and much faster.
const PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; \
                       PRAGMA synchronous = NORMAL;";

/// Opens a blocking connection to `path` with the pragmas applied.
pub(crate) fn establish(path: &str) -> ConnectionResult<SqliteConnection> {
    let mut conn = SqliteConnection::establish(path)?;
    configure(&mut conn).map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

fn configure(conn: &mut SqliteConnection) -> QueryResult<()> {
    conn.batch_execute(PRAGMAS)
}

type SetupFuture<'a> = Pin<Box<dyn Future<Output = ConnectionResult<AsyncSqlite>> + Send + 'a>>;

/// The pool's connection factory: opening a file and running the pragmas
/// block, so they run on a blocking thread.
fn setup(path: &str) -> SetupFuture<'_> {
    let path = path.to_owned();
    Box::pin(async move {
        let conn = tokio::task::spawn_blocking(move || establish(&path))
            .await
            .map_err(|e| ConnectionError::BadConnection(format!("the task opening the database failed: {e}")))??;
        // Wrapped here, not on the blocking thread, as the wrapper captures the runtime handle.
        Ok(SyncConnectionWrapper::new(conn))
    })
}

/// Builds the pool for the database file at `path`. No connection is opened yet.
pub(crate) fn build_pool(path: &str) -> Result<SqlitePool, String> {
    let mut config = ManagerConfig::<AsyncSqlite>::default();
    config.custom_setup = Box::new(setup);
    let manager = AsyncDieselConnectionManager::<AsyncSqlite>::new_with_config(path, config);
    // The wait timeout is applied in `Pool::checkout` with tokio rather than by
    // deadpool, whose own timeouts need a runtime feature this crate does not enable.
    Pool::builder(manager).max_size(POOL_SIZE).build().map_err(|e| e.to_string())
}
