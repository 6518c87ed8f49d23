//! The repo cache and the sync worker's claims. Each write is one
//! `BEGIN IMMEDIATE` transaction: SQLite's single write lock serializes them
//! across threads and processes, so two workers never claim one repository,
//! and a result is checked against its lease and written with nothing in between.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use diesel::dsl::{count, count_star, min, sql};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use sigsentry_domain::{ConnectionId, Platform, ProjectId, SyncState};
use sigsentry_ports::{CachedPullRequest, PullRequestQuery, StoreError, SyncFailure, SyncJob, SyncStore, SyncSuccess};
use uuid::Uuid;

use super::SqliteStore;
use super::error::TxError;
use super::rows::{ConnectionRow, PullRequestFileRow, PullRequestRow, RepoRow, fmt_time, parse, parse_time, sync_job};
use super::schema::{
    connection_repositories as repos, pull_request_files as files, pull_requests as prs, repo_connections as conns,
};
use crate::cache::{
    FILE_CHUNK, PULL_REQUEST_CHUNK, StateTimes, UNREADABLE_MESSAGE, cursor_number, earliest_due, latest_by_number,
    lease_end, stored_number, unreadable_retry,
};

const PENDING: &str = SyncState::Pending.as_str();
const SYNCING: &str = SyncState::Syncing.as_str();
const READY: &str = SyncState::Ready.as_str();
const ERROR: &str = SyncState::Error.as_str();

impl SyncStore for SqliteStore {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        refresh_before: DateTime<Utc>,
        lease_secs: u32,
        limit: u32,
    ) -> Result<Vec<SyncJob>, StoreError> {
        self.run(move |c| c.immediate_transaction(|c| claim(c, now, refresh_before, lease_secs, limit))).await
    }

    async fn complete_sync(&self, job: &SyncJob, success: SyncSuccess) -> Result<bool, StoreError> {
        let job = job.clone();
        self.run(move |c| c.immediate_transaction(|c| complete(c, &job, success))).await
    }

    async fn fail_sync(&self, job: &SyncJob, failure: SyncFailure) -> Result<bool, StoreError> {
        let (connection_id, key, lease) = (job.connection_id.to_string(), job.repository.key(), job.lease.to_string());
        self.run(move |c| {
            // One statement: the lease check and the write are atomic.
            let updated = diesel::update(
                repos::table
                    .filter(repos::connection_id.eq(&connection_id))
                    .filter(repos::name_key.eq(&key))
                    .filter(repos::lease_token.eq(&lease)),
            )
            .set((
                repos::sync_state.eq(ERROR),
                repos::sync_error.eq(Some(&failure.message)),
                repos::next_attempt_at.eq(Some(fmt_time(failure.next_attempt_at))),
                repos::attempts.eq(i64::from(failure.attempts)),
                repos::lease_token.eq(None::<String>),
                repos::lease_until.eq(None::<String>),
            ))
            .execute(c)?;
            Ok(updated > 0)
        })
        .await
    }

    async fn request_sync(&self, project: ProjectId, id: ConnectionId) -> Result<bool, StoreError> {
        self.run(move |c| {
            c.immediate_transaction(|c| {
                let id = id.to_string();
                if connection_platform(c, &project.to_string(), &id)?.is_none() {
                    return Ok(false);
                }
                // The cache, the last sync time and the incremental mark stay;
                // the backoff and any claim go, so the repository is due now
                // and a sync already running cannot overwrite the new one.
                diesel::update(repos::table.filter(repos::connection_id.eq(&id)))
                    .set((
                        repos::sync_state.eq(PENDING),
                        repos::sync_error.eq(None::<String>),
                        repos::lease_token.eq(None::<String>),
                        repos::lease_until.eq(None::<String>),
                        repos::next_attempt_at.eq(None::<String>),
                        repos::attempts.eq(0),
                    ))
                    .execute(c)?;
                Ok(true)
            })
        })
        .await
    }

    async fn list_pull_requests(
        &self,
        project: ProjectId,
        id: ConnectionId,
        query: PullRequestQuery,
    ) -> Result<Option<Vec<CachedPullRequest>>, StoreError> {
        self.run(move |c| list(c, &project.to_string(), &id.to_string(), query)).await
    }

    async fn next_due(&self, refresh_interval_secs: u32) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(move |c| {
            let rows = repos::table
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
                .load::<StateRow>(c)?;
            let mut states = Vec::with_capacity(rows.len());
            for (state, rows, last, last_n, next, next_n, lease, lease_n) in rows {
                let Ok(state) = SyncState::parse(&state) else { continue };
                let (earliest, with_time) = match state {
                    SyncState::Ready => (last, last_n),
                    SyncState::Error => (next, next_n),
                    SyncState::Syncing => (lease, lease_n),
                    SyncState::Pending => (None, 0),
                };
                let earliest = earliest.as_deref().map(|t| parse_time(t, "repository due time")).transpose()?;
                states.push(StateTimes { state, rows, earliest, with_time });
            }
            Ok(earliest_due(&states, Utc::now(), refresh_interval_secs))
        })
        .await
    }
}

/// One aggregate row of [`SyncStore::next_due`]: state, rows, then the
/// minimum and non-NULL count of `last_synced_at`, `next_attempt_at` and `lease_until`.
type StateRow = (String, i64, Option<String>, i64, Option<String>, i64, Option<String>, i64);

/// The ids of active (not paused) connections, as a subquery.
fn active_connections() -> conns::BoxedQuery<'static, diesel::sqlite::Sqlite, diesel::sql_types::Text> {
    conns::table.filter(conns::is_active.eq(true)).select(conns::id).into_boxed()
}

/// The platform of connection `id` if it is in `project`.
fn connection_platform(c: &mut SqliteConnection, project: &str, id: &str) -> Result<Option<Platform>, TxError> {
    let platform = conns::table
        .filter(conns::project_id.eq(project))
        .filter(conns::id.eq(id))
        .select(conns::platform)
        .first::<String>(c)
        .optional()?;
    Ok(platform.map(|p| parse(&p, "connection platform")).transpose()?)
}

fn claim(
    c: &mut SqliteConnection,
    now: DateTime<Utc>,
    refresh_before: DateTime<Utc>,
    lease_secs: u32,
    limit: u32,
) -> Result<Vec<SyncJob>, TxError> {
    let now_s = fmt_time(now);
    // Due: pending; ready and stale; failed with its backoff over; or claimed
    // by a worker whose lease ran out (it died or hung). A missing time
    // counts as passed, so a row in a state no write of ours leaves never sticks.
    let due = repos::sync_state
        .eq(PENDING)
        .or(repos::sync_state
            .eq(READY)
            .and(repos::last_synced_at.is_null().or(repos::last_synced_at.lt(fmt_time(refresh_before)))))
        .or(repos::sync_state
            .eq(ERROR)
            .and(repos::next_attempt_at.is_null().or(repos::next_attempt_at.le(now_s.clone()))))
        .or(repos::sync_state.eq(SYNCING).and(repos::lease_until.is_null().or(repos::lease_until.lt(now_s.clone()))));
    // Pending first (a user is waiting: new or asked for), then the stalest
    // cache (never synced first; NULLs sort first in SQLite), then creation order.
    let rows: Vec<RepoRow> = repos::table
        .filter(repos::connection_id.eq_any(active_connections()))
        .filter(due)
        .order((
            repos::sync_state.ne(PENDING).asc(),
            repos::last_synced_at.asc(),
            repos::connection_id.asc(),
            repos::position.asc(),
        ))
        .limit(i64::from(limit))
        .select(RepoRow::as_select())
        .load(c)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.connection_id.as_str()).collect();
    let connections: HashMap<String, ConnectionRow> = conns::table
        .filter(conns::id.eq_any(&ids))
        .select(ConnectionRow::as_select())
        .load(c)?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let until = fmt_time(lease_end(now, lease_secs));
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        let target =
            repos::table.filter(repos::connection_id.eq(&row.connection_id)).filter(repos::position.eq(row.position));
        let lease = Uuid::now_v7();
        let job = connections
            .get(&row.connection_id)
            .ok_or_else(|| StoreError::Unexpected("a claimed repository has no connection".to_owned()))
            .and_then(|conn| sync_job(conn, &row, lease));
        match job {
            Ok(job) => {
                diesel::update(target)
                    .set((
                        repos::sync_state.eq(SYNCING),
                        repos::lease_token.eq(Some(lease.to_string())),
                        repos::lease_until.eq(Some(&until)),
                    ))
                    .execute(c)?;
                jobs.push(job);
            }
            Err(error) => {
                tracing::warn!(%error, connection_id = %row.connection_id, repository = %row.name, "cannot sync a repository whose connection does not read back");
                diesel::update(target)
                    .set((
                        repos::sync_state.eq(ERROR),
                        repos::sync_error.eq(Some(UNREADABLE_MESSAGE)),
                        repos::next_attempt_at.eq(Some(fmt_time(unreadable_retry(now)))),
                        repos::attempts.eq(row.attempts.saturating_add(1)),
                        repos::lease_token.eq(None::<String>),
                        repos::lease_until.eq(None::<String>),
                    ))
                    .execute(c)?;
            }
        }
    }
    Ok(jobs)
}

fn complete(c: &mut SqliteConnection, job: &SyncJob, success: SyncSuccess) -> Result<bool, TxError> {
    let connection_id = job.connection_id.to_string();
    let key = job.repository.key();
    let repository = repos::table.filter(repos::connection_id.eq(&connection_id)).filter(repos::name_key.eq(&key));
    // The lease is the whole check: a deleted connection, a removed
    // repository, a wiped cache, new credentials or a newer claim all clear it.
    let name: Option<String> =
        repository.filter(repos::lease_token.eq(job.lease.to_string())).select(repos::name).first(c).optional()?;
    let Some(name) = name else {
        return Ok(false);
    };

    // TODO(sync-code storage): `success.file_tree` (the repository's file list) is not stored yet.
    let pull_requests = latest_by_number(success.pull_requests);
    let cached = prs::table.filter(prs::connection_id.eq(&connection_id)).filter(prs::repository_key.eq(&key));
    // Replacing a PR is deleting it (its files go with it, ON DELETE
    // CASCADE) and inserting it again with its current file set.
    let numbers = pull_requests.iter().map(|pr| stored_number(pr.number)).collect::<Result<Vec<i64>, _>>()?;
    for chunk in numbers.chunks(PULL_REQUEST_CHUNK) {
        diesel::delete(cached.filter(prs::number.eq_any(chunk))).execute(c)?;
    }
    let rows = pull_requests
        .iter()
        .map(|pr| PullRequestRow::from_domain(&connection_id, &key, &name, pr))
        .collect::<Result<Vec<_>, _>>()?;
    for chunk in rows.chunks(PULL_REQUEST_CHUNK) {
        diesel::insert_into(prs::table).values(chunk).execute(c)?;
    }
    let file_rows: Vec<PullRequestFileRow> = pull_requests
        .iter()
        .zip(&numbers)
        .flat_map(|(pr, number)| {
            // TODO(sync-code storage): only `ChangedFile::path` is stored; `previous_path` and `ranges` are dropped.
            pr.files.iter().map(|file| PullRequestFileRow {
                connection_id: connection_id.clone(),
                repository_key: key.clone(),
                number: *number,
                path: file.path.clone(),
            })
        })
        .collect();
    for chunk in file_rows.chunks(FILE_CHUNK) {
        diesel::insert_into(files::table).values(chunk).execute(c)?;
    }
    // The window moved on: older merges leave the cache.
    diesel::delete(cached.filter(prs::merged_at.lt(fmt_time(success.window_start)))).execute(c)?;

    diesel::update(repository)
        .set((
            repos::sync_state.eq(READY),
            repos::last_synced_at.eq(Some(fmt_time(success.synced_at))),
            repos::sync_error.eq(None::<String>),
            repos::attempts.eq(0),
            repos::next_attempt_at.eq(None::<String>),
            repos::default_branch.eq(success.default_branch),
            repos::updated_since.eq(success.updated_since.map(fmt_time)),
            repos::lease_token.eq(None::<String>),
            repos::lease_until.eq(None::<String>),
        ))
        .execute(c)?;
    Ok(true)
}

fn list(
    c: &mut SqliteConnection,
    project: &str,
    id: &str,
    query: PullRequestQuery,
) -> Result<Option<Vec<CachedPullRequest>>, TxError> {
    let Some(platform) = connection_platform(c, project, id)? else {
        return Ok(None);
    };
    let mut select = prs::table.filter(prs::connection_id.eq(id)).into_boxed();
    if let Some(key) = &query.repository_key {
        // Keys are ASCII-folded names (RepoName::key); fold the filter the same way.
        select = select.filter(prs::repository_key.eq(key.to_ascii_lowercase()));
    }
    if let Some(prefix) = query.path_prefix {
        // A plain comparison, not LIKE, so '%' and '_' in the prefix are
        // literal. `path >= prefix` lets the primary key index seek to the
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
            .bind::<Text, _>(prefix)
            .sql(")"),
        );
    }
    if let Some((merged_at, key, number)) = query.after {
        // Strictly after (merged_at, key, number) in the listing's order:
        // merged_at descending, then key and number ascending.
        let merged_at = fmt_time(merged_at);
        select = select.filter(
            prs::merged_at.lt(merged_at.clone()).or(prs::merged_at.eq(merged_at).and(
                prs::repository_key
                    .gt(key.clone())
                    .or(prs::repository_key.eq(key).and(prs::number.gt(cursor_number(number)))),
            )),
        );
    }
    let rows: Vec<PullRequestRow> = select
        .order((prs::merged_at.desc(), prs::repository_key.asc(), prs::number.asc()))
        .limit(i64::from(query.limit))
        .select(PullRequestRow::as_select())
        .load(c)?;
    let mut paths = page_files(c, id, &rows)?;
    let listed = rows
        .into_iter()
        .map(|row| {
            let files = paths.remove(&(row.repository_key.clone(), row.number)).unwrap_or_default();
            row.into_domain(platform, files)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(listed))
}

/// The paths of the PRs of one page, in one query: per repository of the
/// page, `repository_key = k AND number IN (...)`, OR-ed.
fn page_files(
    c: &mut SqliteConnection,
    id: &str,
    rows: &[PullRequestRow],
) -> Result<HashMap<(String, i64), Vec<String>>, TxError> {
    let mut numbers: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for row in rows {
        numbers.entry(row.repository_key.as_str()).or_default().push(row.number);
    }
    type Predicate = Box<dyn BoxableExpression<files::table, diesel::sqlite::Sqlite, SqlType = Bool>>;
    let Some(page) = numbers
        .into_iter()
        .map(|(key, numbers)| -> Predicate {
            Box::new(files::repository_key.eq(key.to_owned()).and(files::number.eq_any(numbers)))
        })
        .reduce(|a, b| Box::new(a.or(b)))
    else {
        return Ok(HashMap::new());
    };
    let found: Vec<PullRequestFileRow> = files::table
        .filter(files::connection_id.eq(id))
        .filter(page)
        .select(PullRequestFileRow::as_select())
        .load(c)?;
    let mut paths: HashMap<(String, i64), Vec<String>> = HashMap::new();
    for file in found {
        paths.entry((file.repository_key, file.number)).or_default().push(file.path);
    }
    Ok(paths)
}
