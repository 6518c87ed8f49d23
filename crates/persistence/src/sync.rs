//! The repo cache and the sync worker's claims, for several workers (in
//! several processes or replicas) on one database.
//!
//! Each write is one transaction. On SQLite, `BEGIN IMMEDIATE` serializes
//! them across threads and processes, so two workers never claim one
//! repository, and a result is checked against its lease and written with
//! nothing in between. On PostgreSQL, claims lock the due repository rows
//! with `FOR UPDATE SKIP LOCKED`: a second worker claiming at the same time
//! passes over them instead of waiting, and a row another worker claimed and
//! committed meanwhile is re-checked and no longer due, so no repository is
//! handed out twice.
//!
//! Lock order (PostgreSQL): writes that lock a connection's row lock it
//! before its repository rows. Recording a result takes a `FOR KEY SHARE`
//! lock on the connection first: inserting cached PRs needs that lock anyway
//! (their foreign key), and taking it up front makes a concurrent delete of
//! the connection wait for the result (or the result wait for the delete, and
//! then find nothing), where taking it late would deadlock with the delete's
//! cascade into the repository row this transaction holds.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::SqliteConnection;
use diesel::dsl::{count, count_star, min, sql};
use diesel::sql_types::{Array, BigInt, Bool, Text};
use diesel::sqlite::Sqlite;
use diesel::{
    BoolExpressionMethods, BoxableExpression, ExpressionMethods, OptionalExtension, QueryDsl, QueryResult,
    SelectableHelper,
};
use diesel_async::AsyncPgConnection;
use sigsentry_domain::{ConnectionId, Platform, ProjectId, SyncState, TenantId};
use sigsentry_ports::{
    CachedPullRequest, ChangedFile, LeaseStatus, PullRequestQuery, StoreError, SyncFailure, SyncJob, SyncStore,
    SyncSuccess, TreeSnapshot,
};
use uuid::Uuid;

use crate::AnyStore;
use crate::cache::{
    FILE_CHUNK, PULL_REQUEST_CHUNK, StateTimes, TREE_CHUNK, UNREADABLE_MESSAGE, cursor_number, earliest_due,
    latest_by_number, lease_end, stored_number, unreadable_retry,
};
use crate::connections::lock_connection;
use crate::decode::{self, parse};
use crate::dialect::{Conn, db};
use crate::rows::{ConnectionRow, PullRequestFileRow, PullRequestRow, RepoRow, RepositoryFileRow};
use crate::schema::{
    connection_repositories as repos, pull_request_files as files, pull_requests as prs, repo_connections as conns,
    repository_files as tree_files,
};
use crate::sql_types::{DbId, DbTime, Id};
use crate::tx::TxError;

const PENDING: &str = SyncState::Pending.as_str();
const SYNCING: &str = SyncState::Syncing.as_str();
const READY: &str = SyncState::Ready.as_str();
const ERROR: &str = SyncState::Error.as_str();

impl SyncStore for AnyStore {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        refresh_before: DateTime<Utc>,
        lease_secs: u32,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        self.write(async move |c| claim(c, now, refresh_before, lease_secs, limit, &[]).await).await
    }

    async fn claim_due_except(
        &self,
        now: DateTime<Utc>,
        refresh_before: DateTime<Utc>,
        lease_secs: u32,
        limit: u32,
        except_tenants: &[TenantId],
    ) -> Result<Vec<SyncJob>, StoreError> {
        let except: Vec<DbId> = except_tenants.iter().copied().map(DbId::from).collect();
        self.write(async move |c| claim(c, now, refresh_before, lease_secs, limit, &except).await).await
    }

    async fn complete_sync(&self, job: &SyncJob, success: SyncSuccess) -> Result<bool, StoreError> {
        let job = job.clone();
        self.write(async move |c| complete(c, &job, success).await).await
    }

    async fn fail_sync(&self, job: &SyncJob, failure: SyncFailure) -> Result<bool, StoreError> {
        let (connection_id, key, lease) = (DbId::from(job.connection_id), job.repository.key(), DbId(job.lease));
        self.run(async move |c| {
            // One statement: the lease check and the write are atomic.
            let record = diesel::update(
                repos::table
                    .filter(repos::connection_id.eq(connection_id))
                    .filter(repos::name_key.eq(&key))
                    .filter(repos::lease_token.eq(lease)),
            )
            .set((
                repos::sync_state.eq(ERROR),
                // The backoff decides when to try again, not a request made meanwhile.
                repos::sync_again.eq(false),
                repos::sync_error.eq(Some(&failure.message)),
                repos::next_attempt_at.eq(DbTime(failure.next_attempt_at)),
                repos::attempts.eq(i32::try_from(failure.attempts).unwrap_or(i32::MAX)),
                repos::lease_token.eq(None::<DbId>),
                repos::lease_until.eq(None::<DbTime>),
            ));
            Ok(db!(c, |c| record.execute(c))? > 0)
        })
        .await
    }

    async fn request_sync(&self, project: ProjectId, id: ConnectionId) -> Result<bool, StoreError> {
        let (project, id) = (DbId::from(project), DbId::from(id));
        self.write(async move |c| {
            if !lock_connection(c, project, id).await? {
                return Ok(false);
            }
            // Repeated requests are absorbed: a pending repository is
            // already first in line, and a running sync is neither
            // restarted nor doubled; it is followed by one more (its reads
            // may predate what the caller knows), however many requests come.
            let running = repos::table.filter(repos::connection_id.eq(id)).filter(repos::sync_state.eq(SYNCING));
            db!(c, |c| diesel::update(running).set(repos::sync_again.eq(true)).execute(c))?;
            // Otherwise the cache, the last sync time and the incremental
            // mark stay; the backoff goes, so the repository is due now.
            let idle = repos::table
                .filter(repos::connection_id.eq(id))
                .filter(repos::sync_state.ne(PENDING))
                .filter(repos::sync_state.ne(SYNCING));
            let reset = diesel::update(idle).set((
                repos::sync_state.eq(PENDING),
                repos::sync_error.eq(None::<String>),
                repos::lease_token.eq(None::<DbId>),
                repos::lease_until.eq(None::<DbTime>),
                repos::next_attempt_at.eq(None::<DbTime>),
                repos::attempts.eq(0),
            ));
            db!(c, |c| reset.execute(c))?;
            Ok(true)
        })
        .await
    }

    async fn list_pull_requests(
        &self,
        project: ProjectId,
        id: ConnectionId,
        query: PullRequestQuery,
    ) -> Result<Option<Vec<CachedPullRequest>>, StoreError> {
        let (project, id) = (DbId::from(project), DbId::from(id));
        self.run(async move |c| list(c, project, id, query).await).await
    }

    async fn renew_lease(&self, job: &SyncJob, until: DateTime<Utc>) -> Result<LeaseStatus, StoreError> {
        let (connection_id, key, lease) = (DbId::from(job.connection_id), job.repository.key(), DbId(job.lease));
        self.run(async move |c| {
            let held = repos::table
                .filter(repos::connection_id.eq(connection_id))
                .filter(repos::name_key.eq(&key))
                .filter(repos::lease_token.eq(lease));
            // One statement renews only while the connection is active; the
            // rare miss then tells a pause from a lost lease.
            let renew = diesel::update(held.filter(repos::connection_id.eq_any(active_connections())))
                .set(repos::lease_until.eq(DbTime(until)));
            if db!(c, |c| renew.execute(c))? > 0 {
                return Ok(LeaseStatus::Renewed);
            }
            let still_held = db!(c, |c| held.select(repos::position).first::<i32>(c)).optional()?;
            Ok(if still_held.is_some() { LeaseStatus::Paused } else { LeaseStatus::Voided })
        })
        .await
    }

    async fn release_lease(&self, job: &SyncJob) -> Result<bool, StoreError> {
        let (connection_id, key, lease) = (DbId::from(job.connection_id), job.repository.key(), DbId(job.lease));
        self.run(async move |c| {
            let release = diesel::update(
                repos::table
                    .filter(repos::connection_id.eq(connection_id))
                    .filter(repos::name_key.eq(&key))
                    .filter(repos::lease_token.eq(lease)),
            )
            .set((
                repos::sync_state.eq(PENDING),
                repos::lease_token.eq(None::<DbId>),
                repos::lease_until.eq(None::<DbTime>),
            ));
            Ok(db!(c, |c| release.execute(c))? > 0)
        })
        .await
    }

    async fn next_due(&self, refresh_interval_secs: u32) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(async move |c| {
            let rows = db!(c, |c| repos::table
                .filter(repos::connection_id.eq_any(active_connections()))
                .group_by(repos::sync_state)
                .select((
                    repos::sync_state,
                    count_star(),
                    min(repos::last_synced_at),
                    count(repos::last_synced_at),
                    min(repos::next_attempt_at),
                    count(repos::next_attempt_at),
                    min(repos::lease_until),
                    count(repos::lease_until),
                ))
                .load::<StateRow>(c))?;
            let mut states = Vec::with_capacity(rows.len());
            for (state, rows, last, last_n, next, next_n, lease, lease_n) in rows {
                let Ok(state) = SyncState::parse(&state) else { continue };
                let (earliest, with_time) = match state {
                    SyncState::Ready => (last, last_n),
                    SyncState::Error => (next, next_n),
                    SyncState::Syncing => (lease, lease_n),
                    SyncState::Pending => (None, 0),
                };
                states.push(StateTimes { state, rows, earliest: earliest.map(DbTime::into), with_time });
            }
            Ok(earliest_due(&states, Utc::now(), refresh_interval_secs))
        })
        .await
    }
}

/// One aggregate row of [`SyncStore::next_due`]: state, rows, then the
/// minimum and non-NULL count of `last_synced_at`, `next_attempt_at` and `lease_until`.
type StateRow = (String, i64, Option<DbTime>, i64, Option<DbTime>, i64, Option<DbTime>, i64);

/// The ids of active (not paused) connections, as a subquery. A subquery
/// rather than a join, so that `FOR UPDATE` locks the repository rows only.
#[diesel::dsl::auto_type]
fn active_connections() -> _ {
    let active: bool = true;
    conns::table.filter(conns::is_active.eq(active)).select(conns::id)
}

async fn claim(
    c: &mut Conn<'_>,
    now: DateTime<Utc>,
    refresh_before: DateTime<Utc>,
    lease_secs: u32,
    limit: u32,
    except_tenants: &[DbId],
) -> Result<Vec<SyncJob>, TxError> {
    let (at, stale_before) = (DbTime(now), DbTime(refresh_before));
    // Due: pending; ready and stale; failed with its backoff over; or claimed
    // by a worker whose lease ran out (it died or hung). A missing time
    // counts as passed, so a row in a state no write of ours leaves never sticks.
    let due = repos::sync_state
        .eq(PENDING)
        .or(repos::sync_state.eq(READY).and(repos::last_synced_at.is_null().or(repos::last_synced_at.lt(stale_before))))
        .or(repos::sync_state.eq(ERROR).and(repos::next_attempt_at.is_null().or(repos::next_attempt_at.le(at))))
        .or(repos::sync_state.eq(SYNCING).and(repos::lease_until.is_null().or(repos::lease_until.lt(at))));
    // Pending first (a user is waiting: new or asked for), then the stalest
    // cache (never synced first: NULLs are put first explicitly, as the
    // dialects sort them differently), then creation order.
    let passed_over = conns::table.filter(conns::tenant_id.eq_any(except_tenants)).select(conns::id);
    let query = repos::table
        .filter(repos::connection_id.eq_any(active_connections()))
        .filter(diesel::dsl::not(repos::connection_id.eq_any(passed_over)))
        .filter(due)
        .order((
            repos::sync_state.ne(PENDING).asc(),
            repos::last_synced_at.is_not_null().asc(),
            repos::last_synced_at.asc(),
            repos::connection_id.asc(),
            repos::position.asc(),
        ))
        .limit(i64::from(limit));
    let rows: Vec<RepoRow> = db!(c,
        sqlite: |c| query.select(RepoRow::as_select()).load(c),
        pg: |c| query.select(RepoRow::as_select()).for_update().skip_locked().load(c))?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<DbId> = rows.iter().map(|r| r.connection_id).collect();
    let connections: HashMap<DbId, ConnectionRow> =
        db!(c, |c| conns::table.filter(conns::id.eq_any(&ids)).select(ConnectionRow::as_select()).load(c))?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
    let until = DbTime(lease_end(now, lease_secs));
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        let target =
            repos::table.filter(repos::connection_id.eq(row.connection_id)).filter(repos::position.eq(row.position));
        let lease = Uuid::now_v7();
        let job = connections
            .get(&row.connection_id)
            .ok_or_else(|| StoreError::Unexpected("a claimed repository has no connection".to_owned()))
            .and_then(|conn| decode::sync_job(conn, &row, lease));
        match job {
            Ok(job) => {
                // This sync answers every request made so far.
                let take = diesel::update(target).set((
                    repos::sync_state.eq(SYNCING),
                    repos::lease_token.eq(DbId(lease)),
                    repos::lease_until.eq(until),
                    repos::sync_again.eq(false),
                ));
                db!(c, |c| take.execute(c))?;
                jobs.push(job);
            }
            Err(error) => {
                tracing::warn!(%error, connection_id = %row.connection_id, repository = %row.name, "cannot sync a repository whose connection does not read back");
                let set_aside = diesel::update(target).set((
                    repos::sync_state.eq(ERROR),
                    repos::sync_error.eq(Some(UNREADABLE_MESSAGE)),
                    repos::next_attempt_at.eq(DbTime(unreadable_retry(now))),
                    repos::attempts.eq(row.attempts.saturating_add(1)),
                    repos::lease_token.eq(None::<DbId>),
                    repos::lease_until.eq(None::<DbTime>),
                ));
                db!(c, |c| set_aside.execute(c))?;
            }
        }
    }
    Ok(jobs)
}

/// Whether connection `id` still exists, with a key-share lock on its row
/// on PostgreSQL (see the module's lock order). On SQLite the write lock
/// already excludes a concurrent delete, and the lease check that follows
/// finds a deleted connection's repositories gone: no query is needed.
async fn hold_connection(c: &mut Conn<'_>, id: DbId) -> QueryResult<bool> {
    match c {
        Conn::Sqlite(_) => Ok(true),
        Conn::Pg(c) => {
            use diesel_async::RunQueryDsl;
            let query = conns::table.filter(conns::id.eq(id)).select(conns::id).for_key_share();
            Ok(query.first::<DbId>(&mut **c).await.optional()?.is_some())
        }
    }
}

async fn complete(c: &mut Conn<'_>, job: &SyncJob, success: SyncSuccess) -> Result<bool, TxError> {
    let connection_id = DbId::from(job.connection_id);
    let key = job.repository.key();
    if !hold_connection(c, connection_id).await? {
        return Ok(false);
    }
    let repository = repos::table.filter(repos::connection_id.eq(connection_id)).filter(repos::name_key.eq(&key));
    // The lease is the whole check: a deleted connection, a removed
    // repository, a wiped cache, new credentials or a newer claim all clear
    // it. On PostgreSQL the row stays locked, so none of them can slip in
    // before this transaction ends.
    let leased = repository.filter(repos::lease_token.eq(DbId(job.lease))).select((repos::name, repos::sync_again));
    let claimed: Option<(String, bool)> =
        db!(c, sqlite: |c| leased.first(c), pg: |c| leased.for_update().first(c)).optional()?;
    let Some((name, sync_again)) = claimed else {
        return Ok(false);
    };

    let pull_requests = latest_by_number(success.pull_requests);
    let cached = prs::table.filter(prs::connection_id.eq(connection_id)).filter(prs::repository_key.eq(&key));
    // Replacing a PR is deleting it (its files go with it, ON DELETE
    // CASCADE) and inserting it again with its current file set.
    let numbers = pull_requests.iter().map(|pr| stored_number(pr.number)).collect::<Result<Vec<i64>, _>>()?;
    for chunk in numbers.chunks(PULL_REQUEST_CHUNK) {
        db!(c, |c| diesel::delete(cached.filter(prs::number.eq_any(chunk))).execute(c))?;
    }
    let rows = pull_requests
        .iter()
        .map(|pr| PullRequestRow::from_domain(connection_id, &key, &name, pr))
        .collect::<Result<Vec<_>, _>>()?;
    for chunk in rows.chunks(PULL_REQUEST_CHUNK) {
        db!(c, |c| diesel::insert_into(prs::table).values(chunk).execute(c))?;
    }
    let file_rows: Vec<PullRequestFileRow> = pull_requests
        .iter()
        .zip(&numbers)
        .flat_map(|(pr, number)| {
            pr.files.iter().map(|file| PullRequestFileRow::from_domain(connection_id, &key, *number, file))
        })
        .collect();
    for chunk in file_rows.chunks(FILE_CHUNK) {
        db!(c, |c| diesel::insert_into(files::table).values(chunk).execute(c))?;
    }
    // The window moved on: older merges leave the cache.
    db!(c, |c| diesel::delete(cached.filter(prs::merged_at.lt(DbTime(success.window_start)))).execute(c))?;
    let tree_revision = match success.file_tree {
        // The branch's tree did not change: the stored list stands.
        Some(TreeSnapshot::Unchanged) => job.known_tree_revision.clone(),
        Some(TreeSnapshot::Listed { revision, paths }) => {
            replace_files(c, connection_id, &key, &paths).await?;
            Some(revision)
        }
        // An empty repository: no branch, no files.
        None => {
            replace_files(c, connection_id, &key, &[]).await?;
            None
        }
    };

    // A sync asked for while this one ran follows it at once.
    let state = if sync_again { PENDING } else { READY };
    let ready = diesel::update(repository).set((
        repos::sync_state.eq(state),
        repos::sync_again.eq(false),
        repos::last_synced_at.eq(DbTime(success.synced_at)),
        repos::sync_error.eq(None::<String>),
        repos::attempts.eq(0),
        repos::next_attempt_at.eq(None::<DbTime>),
        repos::default_branch.eq(success.default_branch),
        repos::updated_since.eq(success.updated_since.map(DbTime)),
        repos::tree_revision.eq(tree_revision),
        repos::lease_token.eq(None::<DbId>),
        repos::lease_until.eq(None::<DbTime>),
    ));
    db!(c, |c| ready.execute(c))?;
    Ok(true)
}

/// Makes the stored file list of a repository `paths`, writing only the
/// difference: a branch moves by a few files between syncs, and rewriting a
/// 200,000-path list every time would be most of the sync's work.
async fn replace_files(c: &mut Conn<'_>, connection_id: DbId, key: &str, paths: &[String]) -> Result<(), TxError> {
    let stored_query = tree_files::table
        .filter(tree_files::connection_id.eq(connection_id))
        .filter(tree_files::repository_key.eq(key))
        .select(tree_files::path);
    let stored: HashSet<String> = db!(c, |c| stored_query.load::<String>(c))?.into_iter().collect();
    let wanted: HashSet<&str> = paths.iter().map(String::as_str).collect();
    let gone: Vec<&str> = stored.iter().map(String::as_str).filter(|p| !wanted.contains(p)).collect();
    for chunk in gone.chunks(TREE_CHUNK) {
        let doomed = tree_files::table
            .filter(tree_files::connection_id.eq(connection_id))
            .filter(tree_files::repository_key.eq(key))
            .filter(tree_files::path.eq_any(chunk));
        db!(c, |c| diesel::delete(doomed).execute(c))?;
    }
    let new: Vec<RepositoryFileRow> = paths
        .iter()
        .filter(|p| !stored.contains(p.as_str()))
        .map(|p| RepositoryFileRow::new(connection_id, key, p))
        .collect();
    for chunk in new.chunks(TREE_CHUNK) {
        db!(c, |c| diesel::insert_into(tree_files::table).values(chunk).execute(c))?;
    }
    Ok(())
}

async fn list(
    c: &mut Conn<'_>,
    project: DbId,
    id: DbId,
    query: PullRequestQuery,
) -> Result<Option<Vec<CachedPullRequest>>, TxError> {
    let platform = db!(c, |c| conns::table
        .filter(conns::project_id.eq(project))
        .filter(conns::id.eq(id))
        .select(conns::platform)
        .first::<String>(c))
    .optional()?;
    let Some(platform) = platform else {
        return Ok(None);
    };
    let platform: Platform = parse(&platform, "connection platform")?;
    let rows: Vec<PullRequestRow> = db!(c, |c| {
        let mut select = prs::table.filter(prs::connection_id.eq(id)).into_boxed();
        if let Some(key) = &query.repository_key {
            // Keys are ASCII-folded names (RepoName::key); fold the filter the same way.
            select = select.filter(prs::repository_key.eq(key.to_ascii_lowercase()));
        }
        if let Some(prefix) = &query.path_prefix {
            // A plain comparison, not LIKE, so '%' and '_' in the prefix are
            // literal; `path` compares bytewise (SQLite; PostgreSQL: COLLATE
            // "C"). `path >= prefix` lets the primary key index seek to the
            // first candidate; the substr() test decides.
            select = select.filter(
                sql::<Bool>(
                    "EXISTS (SELECT 1 FROM pull_request_files f WHERE f.connection_id = pull_requests.connection_id \
                     AND f.repository_key = pull_requests.repository_key AND f.number = pull_requests.number \
                     AND f.path >= ",
                )
                .bind::<Text, _>(prefix.clone())
                .sql(" AND substr(f.path, 1, length(")
                .bind::<Text, _>(prefix.clone())
                .sql(")) = ")
                .bind::<Text, _>(prefix.clone())
                .sql(")"),
            );
        }
        if let Some((merged_at, key, number)) = &query.after {
            // Strictly after (merged_at, key, number) in the listing's order:
            // merged_at descending, then key and number ascending.
            let merged_at = DbTime(*merged_at);
            select = select.filter(
                prs::merged_at.lt(merged_at).or(prs::merged_at.eq(merged_at).and(
                    prs::repository_key
                        .gt(key.clone())
                        .or(prs::repository_key.eq(key.clone()).and(prs::number.gt(cursor_number(*number)))),
                )),
            );
        }
        select
            .order((prs::merged_at.desc(), prs::repository_key.asc(), prs::number.asc()))
            .limit(i64::from(query.limit))
            .select(PullRequestRow::as_select())
            .load(c)
    })?;
    let mut paths = db!(c, sqlite: |c| page_files_sqlite(c, id, &rows), pg: |c| page_files_pg(c, id, &rows))?;
    let listed = rows
        .into_iter()
        .map(|row| {
            let files = paths.remove(&(row.repository_key.clone(), row.number)).unwrap_or_default();
            decode::pull_request(row, platform, files)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(listed))
}

/// The files of the PRs of one page, by (repository key, number).
type PagePaths = HashMap<(String, i64), Vec<ChangedFile>>;

fn by_pull_request(found: Vec<PullRequestFileRow>) -> PagePaths {
    let mut paths = PagePaths::new();
    for file in found {
        paths.entry((file.repository_key.clone(), file.number)).or_default().push(file.into_domain());
    }
    paths
}

/// The paths of the PRs of one page in one query, on SQLite: per repository
/// of the page, `repository_key = k AND number IN (...)`, OR-ed.
fn page_files_sqlite(c: &mut SqliteConnection, id: DbId, rows: &[PullRequestRow]) -> QueryResult<PagePaths> {
    use diesel::RunQueryDsl;
    let mut numbers: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for row in rows {
        numbers.entry(row.repository_key.as_str()).or_default().push(row.number);
    }
    type Predicate = Box<dyn BoxableExpression<files::table, Sqlite, SqlType = Bool>>;
    let Some(page) = numbers
        .into_iter()
        .map(|(key, numbers)| -> Predicate {
            Box::new(files::repository_key.eq(key.to_owned()).and(files::number.eq_any(numbers)))
        })
        .reduce(|a, b| Box::new(a.or(b)))
    else {
        return Ok(PagePaths::new());
    };
    let found = files::table
        .filter(files::connection_id.eq(id))
        .filter(page)
        .select(PullRequestFileRow::as_select())
        .load(c)?;
    Ok(by_pull_request(found))
}

/// The paths of the PRs of one page in one query, on PostgreSQL: the page's
/// (repository key, number) pairs go in as two arrays, zipped by `unnest`,
/// so the statement has one shape whatever the page holds.
async fn page_files_pg(c: &mut AsyncPgConnection, id: DbId, rows: &[PullRequestRow]) -> QueryResult<PagePaths> {
    use diesel_async::RunQueryDsl;
    if rows.is_empty() {
        return Ok(PagePaths::new());
    }
    let keys: Vec<&str> = rows.iter().map(|r| r.repository_key.as_str()).collect();
    let numbers: Vec<i64> = rows.iter().map(|r| r.number).collect();
    let found = diesel::sql_query(
        "SELECT connection_id, repository_key, number, path, previous_path, ranges FROM pull_request_files \
         WHERE connection_id = $1 AND (repository_key, number) IN (SELECT * FROM unnest($2::text[], $3::bigint[]))",
    )
    .bind::<Id, _>(id)
    .bind::<Array<Text>, _>(keys)
    .bind::<Array<BigInt>, _>(numbers)
    .load(c)
    .await?;
    Ok(by_pull_request(found))
}
