//! The one store type: opened on either dialect, it runs each task of the
//! port implementations (`accounts`, `connections`, `idempotency`, `sync`)
//! on a pooled connection, in a transaction where the port promises one.

use std::future::Future;

use diesel::SqliteConnection;
use diesel_async::AsyncPgConnection;
use sigsentry_ports::{HealthCheck, StoreError};

use crate::dialect::{Backend, Conn, Pool, db, pg_begin, pg_end, within};
use crate::tx::{FromTxError, TxError};
use crate::{OpenError, postgres, sqlite};

/// The store, on embedded SQLite or on PostgreSQL: [`AnyStore::open`] picks
/// the dialect from the URL's scheme. Cloning is cheap: clones share one pool.
///
/// One type with the dialect inside, rather than one type per dialect: the
/// port implementations are written once, and only what truly differs
/// (connection setup, locks, error maps) looks at the dialect.
#[derive(Clone)]
pub struct AnyStore {
    pool: Pool,
    /// The file, or `user@host:port/database` (never a password), for `Debug`.
    target: String,
}

impl std::fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (size, available) = self.pool.status();
        f.debug_struct("AnyStore")
            .field("backend", &self.pool.backend())
            .field("target", &self.target)
            .field("size", &size)
            .field("available", &available)
            .finish()
    }
}

impl Backend {
    /// The backend a database URL names.
    fn of(url: &str) -> Result<Self, OpenError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            // Only the scheme is echoed: the rest of the URL may hold a password.
            let scheme = url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
            Err(OpenError::InvalidUrl(format!(
                "expected sqlite://PATH (embedded) or postgres://USER@HOST/DATABASE, got a URL of scheme '{scheme}'"
            )))
        }
    }
}

/// `AsyncFnOnce(A) -> R` whose future can be named, so that callers can
/// require it to be `Send` (the work runs in a spawned task). The trick of
/// diesel-async's own `AsyncFunc`, which that crate does not export.
pub(crate) trait Task<A, R>: AsyncFnOnce(A) -> R + FnOnce(A) -> <Self as Task<A, R>>::Fut {
    type Fut: Future<Output = R>;
}

impl<F, A, Fut, R> Task<A, R> for F
where
    F: AsyncFnOnce(A) -> R + FnOnce(A) -> Fut,
    Fut: Future<Output = R>,
{
    type Fut = Fut;
}

impl AnyStore {
    /// Opens (and migrates) the store `database_url` names: `sqlite:` →
    /// [`AnyStore::open_sqlite`], `postgres://` or `postgresql://` →
    /// [`AnyStore::open_postgres`].
    ///
    /// # Errors
    /// [`OpenError::InvalidUrl`] for any other scheme; otherwise as the
    /// dialect's `open_*`.
    pub async fn open(database_url: &str) -> Result<AnyStore, OpenError> {
        match Backend::of(database_url)? {
            Backend::Sqlite => Self::open_sqlite(database_url).await,
            Backend::Postgres => Self::open_postgres(database_url).await,
        }
    }

    /// Applies pending migrations to the database `database_url` names,
    /// without opening a pool (a `migrate` command).
    ///
    /// # Errors
    /// As [`AnyStore::open`].
    pub async fn migrate(database_url: &str) -> Result<(), OpenError> {
        match Backend::of(database_url)? {
            Backend::Sqlite => sqlite::migrate(database_url).await,
            Backend::Postgres => postgres::migrate_postgres(database_url).await,
        }
    }

    /// Opens (creating if missing) and migrates the SQLite database at
    /// `url_or_path` (`sqlite://path`, `sqlite:path` or a plain path), then
    /// checks that a pooled connection works.
    ///
    /// Each pooled connection runs with `journal_mode=WAL`, `foreign_keys=ON`,
    /// `busy_timeout=5000` and `synchronous=NORMAL`. At most 8 connections are
    /// open; a caller waits at most 2 s for one, then gets
    /// [`StoreError::Unavailable`].
    ///
    /// # Errors
    /// [`OpenError`] naming the path and the step that failed.
    pub async fn open_sqlite(url_or_path: &str) -> Result<AnyStore, OpenError> {
        sqlite::migrate(url_or_path).await?;
        let path = sqlite::sqlite_path(url_or_path).to_owned();
        let pool =
            sqlite::pool::build_pool(&path).map_err(|message| OpenError::Pool { path: path.clone(), message })?;
        let store = AnyStore { pool: Pool::Sqlite(pool), target: path.clone() };
        store.ping().await.map_err(|e| OpenError::Pool { path, message: e.to_string() })?;
        Ok(store)
    }

    /// Checks `url` (`postgres://` or `postgresql://`), applies pending
    /// migrations, builds a pool of at most [`crate::PG_POOL_SIZE`]
    /// connections and checks that it hands out a working one.
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
    pub async fn open_postgres(url: &str) -> Result<AnyStore, OpenError> {
        Self::open_postgres_with_pool_size(url, postgres::PG_POOL_SIZE).await
    }

    /// [`AnyStore::open_postgres`] with at most `max_connections` pooled connections (at least 1).
    ///
    /// # Errors
    /// As [`AnyStore::open_postgres`].
    pub async fn open_postgres_with_pool_size(url: &str, max_connections: usize) -> Result<AnyStore, OpenError> {
        let target = postgres::pool::PgTarget::parse(url)?;
        postgres::migrate_target(&target).await?;
        let shown = target.display.clone();
        let pool = postgres::pool::build_pool(&target, max_connections)
            .map_err(|message| OpenError::PgConnect { target: shown.clone(), message })?;
        let store = AnyStore { pool: Pool::Pg(pool), target: shown.clone() };
        store.ping().await.map_err(|e| OpenError::PgConnect { target: shown, message: e.to_string() })?;
        Ok(store)
    }

    /// Whether the data lives in a file of this process's host (SQLite)
    /// rather than on a database server: such a deployment must run as one
    /// replica on one host.
    pub fn is_embedded(&self) -> bool {
        matches!(self.pool, Pool::Sqlite(_))
    }

    /// Runs `task` on a pooled connection, outside a transaction.
    pub(crate) async fn run<T, E, F>(&self, task: F) -> Result<T, E>
    where
        for<'a, 'c> F: AsyncFnOnce(&'a mut Conn<'c>) -> Result<T, TxError>
            + Task<&'a mut Conn<'c>, Result<T, TxError>, Fut: Send>
            + Send
            + 'static,
        T: Send + 'static,
        E: FromTxError,
    {
        self.spawn(false, task).await
    }

    /// Runs `task` on a pooled connection in one transaction, committed
    /// when it returns `Ok` and rolled back when it returns `Err`. On SQLite
    /// it is `BEGIN IMMEDIATE`: the write lock is taken up front, so
    /// concurrent writers (threads or processes) run one after the other and
    /// the checks a write makes (quota, names, leases) hold until it commits.
    /// On PostgreSQL a plain transaction, in which each write locks what it
    /// must (see `dialect::lock_project`).
    pub(crate) async fn write<T, E, F>(&self, task: F) -> Result<T, E>
    where
        for<'a, 'c> F: AsyncFnOnce(&'a mut Conn<'c>) -> Result<T, TxError>
            + Task<&'a mut Conn<'c>, Result<T, TxError>, Fut: Send>
            + Send
            + 'static,
        T: Send + 'static,
        E: FromTxError,
    {
        self.spawn(true, task).await
    }

    /// The work runs in its own tokio task, so when the caller stops waiting
    /// (a client hung up), a transaction still runs to its end instead of
    /// being cut between two statements (diesel-async leaves a cancelled
    /// transaction open on the connection); the connection goes back to the
    /// pool only then.
    ///
    /// On SQLite the whole task runs in one blocking call on the connection's
    /// thread, its statements one after the other (each `db!` arm is a plain
    /// diesel call there, so the task's future completes without waiting on
    /// anything). A statement per `spawn_blocking` hop instead held SQLite's
    /// write lock across the hops and cost a third of the throughput under
    /// load (see the commit that made this change for the figures). The
    /// connection also stays checked out until the blocking work is done,
    /// which diesel-async's recycling needs.
    async fn spawn<T, E, F>(&self, transaction: bool, task: F) -> Result<T, E>
    where
        for<'a, 'c> F: AsyncFnOnce(&'a mut Conn<'c>) -> Result<T, TxError>
            + Task<&'a mut Conn<'c>, Result<T, TxError>, Fut: Send>
            + Send
            + 'static,
        T: Send + 'static,
        E: FromTxError,
    {
        let pool = self.pool.clone();
        let work = tokio::spawn(async move {
            match pool {
                Pool::Sqlite(pool) => {
                    let mut conn = within(sqlite::pool::POOL_WAIT, pool.get()).await?;
                    let runtime = tokio::runtime::Handle::current();
                    let run = move |c: &mut SqliteConnection| runtime.block_on(task(&mut Conn::Sqlite(c)));
                    let outcome = conn
                        .spawn_blocking(move |c| Ok(if transaction { c.immediate_transaction(run) } else { run(c) }));
                    outcome.await?
                }
                Pool::Pg(pool) => {
                    let mut conn = within(postgres::pool::POOL_WAIT, pool.get()).await?;
                    let c: &mut AsyncPgConnection = &mut conn;
                    if !transaction {
                        return task(&mut Conn::Pg(c)).await;
                    }
                    pg_begin(c).await?;
                    let outcome = task(&mut Conn::Pg(c)).await;
                    pg_end(c, outcome).await
                }
            }
        });
        match work.await {
            Ok(outcome) => outcome.map_err(|e| E::from_tx(e, self.pool.backend())),
            Err(e) => Err(StoreError::Unexpected(format!("a database task failed: {e}")).into()),
        }
    }
}

impl HealthCheck for AnyStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(async |c| {
            db!(c, |c| diesel::sql_query("SELECT 1").execute(c))?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_backend() {
        assert_eq!(Backend::of("sqlite://data/x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(Backend::of("sqlite:x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(Backend::of("postgres://u@h/db").ok(), Some(Backend::Postgres));
        assert_eq!(Backend::of("postgresql://u@h/db").ok(), Some(Backend::Postgres));
        let Err(OpenError::InvalidUrl(message)) = Backend::of("mysql://root:hunter2@h/db") else {
            panic!("mysql is not a backend");
        };
        assert!(message.contains("'mysql'") && !message.contains("hunter2"), "{message}");
        assert!(Backend::of("data/x.db").is_err(), "a bare path is ambiguous: say sqlite://");
    }
}
