//! What differs between the dialects while the store works, in one place:
//! which connection a task holds, how a write transaction begins, and the
//! locks PostgreSQL needs where SQLite's single write lock already
//! serializes everything. The bodies in `accounts`, `connections`,
//! `idempotency` and `sync` are written once over [`Conn`] with [`db!`],
//! which expands each statement for both dialects, so both are type-checked.

use std::future::Future;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AnsiTransactionManager, AsyncConnection, AsyncPgConnection, RunQueryDsl, TransactionManager};
use sigsentry_ports::StoreError;

use crate::postgres::pool::PgPool;
use crate::schema::projects;
use crate::sql_types::DbId;
use crate::sqlite::pool::{AsyncSqlite, SqlitePool};
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

    /// A working pooled connection, waiting at most the dialect's
    /// `POOL_WAIT` for one, so that a stuck or unreachable database gives a
    /// 503 instead of a hang.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] on timeout or when none can be opened.
    pub(crate) async fn checkout(&self) -> Result<Conn, StoreError> {
        Ok(match self {
            Pool::Sqlite(pool) => Conn::Sqlite(within(sqlite::pool::POOL_WAIT, pool.get()).await?),
            Pool::Pg(pool) => Conn::Pg(within(postgres::pool::POOL_WAIT, pool.get()).await?),
        })
    }
}

async fn within<T, E: std::fmt::Display>(
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

/// A pooled connection of either dialect; the store's bodies take `&mut Conn`.
// One lives in each running task's future and is never moved around: its
// size does not matter, and boxing the larger variant would cost an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Conn {
    /// A blocking SQLite connection whose statements each run on a blocking thread.
    Sqlite(Object<AsyncSqlite>),
    Pg(Object<AsyncPgConnection>),
}

/// Runs one statement on whichever connection `$conn` (a `&mut Conn`) is,
/// and awaits it. `db!(c, |c| query.load(c))` writes the statement once
/// and expands it for both dialects (each is type-checked);
/// `db!(c, sqlite: |c| .., pg: |c| ..)` spells it per dialect, for the
/// few that differ (a query built once outside, a lock added on one side).
macro_rules! db {
    ($conn:expr, |$c:ident| $body:expr) => {
        $crate::dialect::db!($conn, sqlite: |$c| $body, pg: |$c| $body)
    };
    ($conn:expr, sqlite: |$s:ident| $sqlite:expr, pg: |$p:ident| $pg:expr $(,)?) => {
        match $conn {
            $crate::dialect::Conn::Sqlite($s) => {
                let $s: &mut $crate::sqlite::pool::AsyncSqlite = &mut **$s;
                $sqlite.await
            }
            $crate::dialect::Conn::Pg($p) => {
                let $p: &mut ::diesel_async::AsyncPgConnection = &mut **$p;
                $pg.await
            }
        }
    };
}
pub(crate) use db;

/// Inserts `$rows` (a slice of rows) into `$table` in one multi-row
/// statement. diesel builds SQLite's multi-row INSERT only for its blocking
/// connection, not through diesel-async, so on SQLite the insert runs on the
/// connection's blocking thread directly (one hop, as any statement), with
/// the rows cloned for that thread.
macro_rules! insert_all {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            $crate::dialect::Conn::Sqlite(c) => {
                let rows = $rows.to_vec();
                c.spawn_blocking(move |c| {
                    ::diesel::RunQueryDsl::execute(::diesel::insert_into($table).values(&rows), c)
                })
                .await
            }
            $crate::dialect::Conn::Pg(c) => {
                ::diesel_async::RunQueryDsl::execute(::diesel::insert_into($table).values($rows), &mut **c).await
            }
        }
    };
}
pub(crate) use insert_all;

/// Begins a write transaction. SQLite takes its single write lock up front
/// (`BEGIN IMMEDIATE`): concurrent writers, threads or processes, then run
/// one after the other, and the checks a write makes (quota, names, leases)
/// hold until it commits. PostgreSQL begins a plain transaction; each write
/// locks what it must (see [`lock_project`] and the `FOR UPDATE`s).
pub(crate) async fn begin(conn: &mut Conn) -> QueryResult<()> {
    db!(conn,
        sqlite: |c| c.spawn_blocking(|c| diesel::connection::AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")),
        pg: |c| AnsiTransactionManager::begin_transaction(c))
}

/// Commits what [`begin`] began.
pub(crate) async fn commit(conn: &mut Conn) -> QueryResult<()> {
    db!(conn, |c| commit_on(c))
}

/// Rolls back what [`begin`] began.
pub(crate) async fn rollback(conn: &mut Conn) -> QueryResult<()> {
    db!(conn, |c| rollback_on(c))
}

async fn commit_on<C: AsyncConnection>(c: &mut C) -> QueryResult<()> {
    C::TransactionManager::commit_transaction(c).await
}

async fn rollback_on<C: AsyncConnection>(c: &mut C) -> QueryResult<()> {
    C::TransactionManager::rollback_transaction(c).await
}

/// Locks the project's row until the transaction ends, on PostgreSQL: the
/// quota and name checks that follow then see every committed write of the
/// project, and no other writer of the project can commit in between. On
/// SQLite `BEGIN IMMEDIATE` already holds the database's write lock.
///
/// `FOR NO KEY UPDATE` rather than `FOR UPDATE`: it serializes these writers
/// just the same, but does not block the key-share locks that inserting rows
/// referencing the project (API keys) takes.
pub(crate) async fn lock_project(conn: &mut Conn, project: DbId) -> QueryResult<()> {
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
pub(crate) async fn savepoint(conn: &mut Conn) -> QueryResult<()> {
    match conn {
        Conn::Sqlite(_) => Ok(()),
        Conn::Pg(c) => diesel::sql_query("SAVEPOINT recoverable").execute(&mut **c).await.map(drop),
    }
}

/// Ends what [`savepoint`] began: keeps the statements since, or undoes them.
pub(crate) async fn end_savepoint(conn: &mut Conn, keep: bool) -> QueryResult<()> {
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
pub(crate) fn is_name_clash(conn: &Conn, error: &diesel::result::Error) -> bool {
    match conn {
        Conn::Sqlite(_) => sqlite::error::is_unique_violation(error),
        Conn::Pg(_) => postgres::error::is_name_clash(error),
    }
}
