//! What differs between the dialects while the store works, in one place:
//! which connection a task holds, how a PostgreSQL transaction is driven,
//! and the locks PostgreSQL needs where SQLite's single write lock already
//! serializes everything. The bodies in `accounts`, `connections`,
//! `idempotency` and `sync` are written once over [`Conn`] with [`db!`],
//! which expands each statement for both dialects, so both are type-checked.
//!
//! On SQLite a whole task runs on the connection's blocking thread (see
//! `AnyStore::spawn`): its statements are plain blocking diesel calls, one
//! after the other, as the SQLite store always ran them. On PostgreSQL each
//! statement is awaited on the async connection.

use std::future::Future;
use std::time::Duration;

use diesel::SqliteConnection;
use diesel::prelude::*;
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, TransactionManager};
use sigsentry_ports::StoreError;

use crate::postgres::pool::PgPool;
use crate::schema::projects;
use crate::sql_types::DbId;
use crate::sqlite::pool::SqlitePool;
use crate::{postgres, sqlite};

/// The database a URL names, and so how its failures read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Contention and an unreachable database are `Unavailable`; the rest `Unexpected`.
    pub(crate) fn map_diesel_error(self, error: diesel::result::Error) -> StoreError {
        match self {
            Backend::Sqlite => sqlite::error::map_diesel_error(error),
            Backend::Postgres => postgres::error::map_diesel_error(error),
        }
    }
}

/// A pool of either dialect.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

impl Pool {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Pg(_) => Backend::Postgres,
        }
    }

    /// Connections open, and free, now.
    pub(crate) fn status(&self) -> (usize, usize) {
        let status = match self {
            Pool::Sqlite(pool) => pool.status(),
            Pool::Pg(pool) => pool.status(),
        };
        (status.size, status.available)
    }
}

/// Waits at most `wait` for a pool's `checkout`, so that a stuck or
/// unreachable database gives a 503 instead of a hang.
///
/// # Errors
/// [`StoreError::Unavailable`] on timeout or when no connection can be opened.
pub(crate) async fn within<T, E: std::fmt::Display>(
    wait: Duration,
    checkout: impl Future<Output = Result<T, E>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(wait, checkout).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!("cannot get a database connection: {e}"))),
        Err(_) => {
            Err(StoreError::Unavailable(format!("no working database connection within {} ms", wait.as_millis())))
        }
    }
}

/// The connection a task runs on; the store's bodies take `&mut Conn`.
pub(crate) enum Conn<'c> {
    /// SQLite's blocking connection, on the blocking thread the task runs on.
    Sqlite(&'c mut SqliteConnection),
    Pg(&'c mut AsyncPgConnection),
}

/// Runs one statement on whichever connection `$conn` (a `&mut Conn`) is:
/// a blocking call on SQLite, awaited on PostgreSQL. `db!(c, |c|
/// query.load(c))` writes the statement once and expands it for both
/// dialects (each is type-checked; the macro brings the dialect's
/// `RunQueryDsl` into scope, so modules import neither);
/// `db!(c, sqlite: |c| .., pg: |c| ..)` spells it per dialect, for the few
/// that differ (a lock added on one side, a query only one dialect has).
macro_rules! db {
    ($conn:expr, |$c:ident| $body:expr) => {
        $crate::dialect::db!($conn, sqlite: |$c| $body, pg: |$c| $body)
    };
    ($conn:expr, sqlite: |$s:ident| $sqlite:expr, pg: |$p:ident| $pg:expr $(,)?) => {
        match $conn {
            $crate::dialect::Conn::Sqlite($s) => {
                #[allow(unused_imports)]
                use ::diesel::RunQueryDsl as _;
                let $s: &mut ::diesel::SqliteConnection = &mut **$s;
                $sqlite
            }
            $crate::dialect::Conn::Pg($p) => {
                #[allow(unused_imports)]
                use ::diesel_async::RunQueryDsl as _;
                let $p: &mut ::diesel_async::AsyncPgConnection = &mut **$p;
                $pg.await
            }
        }
    };
}
pub(crate) use db;

/// Begins a PostgreSQL transaction: a plain `BEGIN`; each write then locks
/// what it must (see [`lock_project`] and the `FOR UPDATE`s). SQLite's
/// transactions are `BEGIN IMMEDIATE`, run by diesel around the blocking
/// task (see `AnyStore::spawn`).
pub(crate) async fn pg_begin(c: &mut AsyncPgConnection) -> QueryResult<()> {
    AnsiTransactionManager::begin_transaction(c).await
}

/// Ends what [`pg_begin`] began by the task's `outcome`: commits on `Ok`,
/// rolls back on `Err`, as diesel's own transactions do (a rollback that
/// fails because the connection broke reports the original error).
pub(crate) async fn pg_end<T, E: From<diesel::result::Error>>(
    c: &mut AsyncPgConnection,
    outcome: Result<T, E>,
) -> Result<T, E> {
    match outcome {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(c).await?;
            Ok(value)
        }
        Err(error) => match AnsiTransactionManager::rollback_transaction(c).await {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// Locks the project's row until the transaction ends, on PostgreSQL: the
/// quota and name checks that follow then see every committed write of the
/// project, and no other writer of the project can commit in between. On
/// SQLite `BEGIN IMMEDIATE` already holds the database's write lock.
///
/// `FOR NO KEY UPDATE` rather than `FOR UPDATE`: it serializes these writers
/// just the same, but does not block the key-share locks that inserting rows
/// referencing the project (API keys) takes.
pub(crate) async fn lock_project(conn: &mut Conn<'_>, project: DbId) -> QueryResult<()> {
    match conn {
        Conn::Sqlite(_) => Ok(()),
        Conn::Pg(c) => {
            let query = projects::table.find(project).select(projects::id).for_no_key_update();
            query.first::<DbId>(&mut **c).await.optional().map(drop)
        }
    }
}

/// Marks a point to return to should the next statements fail, on
/// PostgreSQL, which refuses every further statement of a transaction after
/// an error; SQLite undoes only the failed statement by itself.
pub(crate) async fn savepoint(conn: &mut Conn<'_>) -> QueryResult<()> {
    match conn {
        Conn::Sqlite(_) => Ok(()),
        Conn::Pg(c) => diesel::sql_query("SAVEPOINT recoverable").execute(&mut **c).await.map(drop),
    }
}

/// Ends what [`savepoint`] began: keeps the statements since, or undoes them.
pub(crate) async fn end_savepoint(conn: &mut Conn<'_>, keep: bool) -> QueryResult<()> {
    let sql = if keep { "RELEASE SAVEPOINT recoverable" } else { "ROLLBACK TO SAVEPOINT recoverable" };
    match conn {
        Conn::Sqlite(_) => Ok(()),
        Conn::Pg(c) => diesel::sql_query(sql).execute(&mut **c).await.map(drop),
    }
}

/// Whether a failed insert hit one of the project-wide name UNIQUEs
/// (repository, service name). SQLite's errors do not name the constraint;
/// any UNIQUE violation there is taken as one, as the caller then looks the
/// holder up and reports the original error if it finds none.
pub(crate) fn is_name_clash(conn: &Conn<'_>, error: &diesel::result::Error) -> bool {
    match conn {
        Conn::Sqlite(_) => sqlite::error::is_unique_violation(error),
        Conn::Pg(_) => postgres::error::is_name_clash(error),
    }
}
