//! Repo connections. Each write that checks the quota or the uniqueness of
//! names runs in one transaction that serializes the writers of a project
//! (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the project's row locked, see
//! [`lock_project`]), so the checks hold until it commits, across threads,
//! processes and replicas. The quota rule itself is the domain's
//! ([`QuotaExceeded::check_replacement`]); the store supplies the counts.
//! The UNIQUE constraints stand behind the checks in case anything slips past them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, QueryResult, SelectableHelper};
use sigsentry_domain::{
    ConnectionId, CredentialHealth, ProjectId, QuotaExceeded, RepoConnection, RepoName, ServiceMapping, SyncState,
};
use sigsentry_ports::{
    ConnectionChange, ConnectionStore, IdempotencyCompletion, ListQuery, NewConnection, SealedCredentialsRow,
    SealedSecret, StoreError, WriteConnectionError, WriteRefused,
};

use crate::AnyStore;
use crate::decode::{self, count_u32};
use crate::dialect::{Conn, db, end_savepoint, is_name_clash, lock_project, savepoint};
use crate::rows::{ConnectionRow, CredentialStateRow, MappingRow, RepoRow};
use crate::schema::{
    connection_repositories as repos, credential_states, idempotency_keys, pull_requests as prs,
    repo_connections as conns, repository_files as tree_files, service_mappings,
};
use crate::sql_types::{DbId, DbTime};
use crate::tx::TxError;
use crate::webhooks::put_secret;

impl ConnectionStore for AnyStore {
    async fn create_connection(
        &self,
        new: NewConnection,
        limit: u32,
        completion: Option<IdempotencyCompletion>,
    ) -> Result<(), WriteConnectionError> {
        self.write(async move |c| create(c, &new, limit, completion.as_ref()).await).await
    }

    async fn get_connection(&self, project: ProjectId, id: ConnectionId) -> Result<Option<RepoConnection>, StoreError> {
        let (project, id) = (DbId::from(project), DbId::from(id));
        self.run(async move |c| {
            let rows = db!(c, |c| conns::table
                .filter(conns::project_id.eq(project))
                .filter(conns::id.eq(id))
                .select(ConnectionRow::as_select())
                .load(c))?;
            Ok(load_full(c, rows).await?.pop())
        })
        .await
    }

    async fn list_connections(&self, project: ProjectId, query: ListQuery) -> Result<Vec<RepoConnection>, StoreError> {
        let project = DbId::from(project);
        self.run(async move |c| {
            // A macro, not a closure: each dialect boxes its own statement.
            macro_rules! filtered {
                ($limit:expr) => {{
                    let mut select = conns::table.filter(conns::project_id.eq(project)).into_boxed();
                    if let Some(platform) = query.platform {
                        select = select.filter(conns::platform.eq(platform.as_str()));
                    }
                    if let Some(active) = query.is_active {
                        select = select.filter(conns::is_active.eq(active));
                    }
                    if let Some(after) = query.after {
                        // UUIDv7 order is creation order, in both dialects: PostgreSQL
                        // orders uuids bytewise, and hyphenated lowercase text sorts the same.
                        select = select.filter(conns::id.gt(DbId::from(after)));
                    }
                    if let Some(limit) = $limit {
                        select = select.limit(i64::from(limit));
                    }
                    select.order(conns::id.asc())
                }};
            }
            if query.credential_status.is_empty() {
                let rows = db!(c, |c| filtered!(Some(query.limit)).select(ConnectionRow::as_select()).load(c))?;
                return load_full(c, rows).await;
            }
            // The status is the domain's rule over the stored facts and the
            // clock, so it is applied here rather than restated in SQL; a
            // project holds a few hundred connections at most (its quota).
            let ids = db!(c, |c| filtered!(None::<u32>).select(conns::id).load::<DbId>(c))?;
            let states = db!(c, |c| credential_states::table
                .filter(credential_states::connection_id.eq_any(&ids))
                .select(CredentialStateRow::as_select())
                .load(c))?;
            let mut health = HashMap::new();
            for state in states {
                health.insert(state.connection_id, decode::credential_health(Some(state))?);
            }
            let wanted: Vec<DbId> = ids
                .into_iter()
                .filter(|id| {
                    let status = health.get(id).copied().unwrap_or(CredentialHealth::UNKNOWN).status(query.now);
                    query.credential_status.contains(&status)
                })
                .take(query.limit as usize)
                .collect();
            let rows = db!(c, |c| conns::table
                .filter(conns::id.eq_any(&wanted))
                .order(conns::id.asc())
                .select(ConnectionRow::as_select())
                .load(c))?;
            load_full(c, rows).await
        })
        .await
    }

    async fn update_connection(&self, change: ConnectionChange, limit: u32) -> Result<(), WriteConnectionError> {
        self.write(async move |c| update(c, &change, limit).await).await
    }

    async fn delete_connection(&self, project: ProjectId, id: ConnectionId) -> Result<bool, StoreError> {
        let (project, id) = (DbId::from(project), DbId::from(id));
        self.run(async move |c| {
            let target = conns::table.filter(conns::project_id.eq(project)).filter(conns::id.eq(id));
            Ok(db!(c, |c| diesel::delete(target).execute(c))? > 0)
        })
        .await
    }

    async fn invalidate_cache(
        &self,
        project: ProjectId,
        id: ConnectionId,
        _at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // Nothing records when a cache was wiped, so `_at` is unused.
        let (project, id) = (DbId::from(project), DbId::from(id));
        self.write(async move |c| {
            if !lock_connection(c, project, id).await? {
                return Ok(false);
            }
            // Files go with their PRs (ON DELETE CASCADE); the trees' file lists too.
            db!(c, |c| diesel::delete(prs::table.filter(prs::connection_id.eq(id))).execute(c))?;
            db!(c, |c| diesel::delete(tree_files::table.filter(tree_files::connection_id.eq(id))).execute(c))?;
            // Everything a sync learnt goes, the default branch and the
            // incremental mark included (the next sync fetches the whole
            // window), and so does any claim: a sync running now must
            // not refill the cache with what was fetched before the wipe.
            let reset = diesel::update(repos::table.filter(repos::connection_id.eq(id))).set((
                repos::sync_state.eq(SyncState::Pending.as_str()),
                repos::last_synced_at.eq(None::<DbTime>),
                repos::sync_error.eq(None::<String>),
                repos::default_branch.eq(None::<String>),
                repos::updated_since.eq(None::<DbTime>),
                repos::tree_revision.eq(None::<String>),
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

    async fn credentials_not_under(
        &self,
        active_key_id: &str,
        limit: u32,
    ) -> Result<Vec<SealedCredentialsRow>, StoreError> {
        let active_key_id = active_key_id.to_owned();
        self.run(async move |c| {
            let rows = db!(c, |c| conns::table
                .filter(conns::credential_key_id.ne(&active_key_id))
                .order(conns::id.asc())
                .limit(i64::from(limit))
                .select(ConnectionRow::as_select())
                .load(c))?;
            Ok(readable_credentials(&rows))
        })
        .await
    }

    async fn credentials_after(
        &self,
        after: Option<ConnectionId>,
        limit: u32,
    ) -> Result<Vec<SealedCredentialsRow>, StoreError> {
        let mut after = after.map(DbId::from);
        self.run(async move |c| {
            loop {
                let rows = db!(c, |c| {
                    let mut query = conns::table.into_boxed();
                    if let Some(after) = after {
                        query = query.filter(conns::id.gt(after));
                    }
                    query.order(conns::id.asc()).limit(i64::from(limit)).select(ConnectionRow::as_select()).load(c)
                })?;
                let readable = readable_credentials(&rows);
                // A page of rows that all fail to read back is not the end:
                // an empty answer would stop the caller's walk there.
                match rows.last() {
                    Some(last) if readable.is_empty() && rows.len() >= usize::try_from(limit).unwrap_or(usize::MAX) => {
                        after = Some(last.id);
                    }
                    _ => return Ok(readable),
                }
            }
        })
        .await
    }

    async fn credential_key_ids(&self) -> Result<Vec<String>, StoreError> {
        self.run(async move |c| {
            let ids = db!(c, |c| conns::table
                .select(conns::credential_key_id)
                .distinct()
                .order(conns::credential_key_id.asc())
                .load::<String>(c))?;
            Ok(ids)
        })
        .await
    }

    async fn reseal_credentials(
        &self,
        connection_id: ConnectionId,
        old: &SealedSecret,
        new: SealedSecret,
    ) -> Result<bool, StoreError> {
        let old = old.clone();
        let id = DbId::from(connection_id);
        self.run(async move |c| {
            // Compare-and-swap in one statement: a user who rotated the
            // credentials since they were read wins, and this reseal reports `false`.
            let reseal = diesel::update(
                conns::table
                    .filter(conns::id.eq(id))
                    .filter(conns::credential_key_id.eq(&old.key_id))
                    .filter(conns::credential_ciphertext.eq(&old.ciphertext)),
            )
            .set((conns::credential_key_id.eq(&new.key_id), conns::credential_ciphertext.eq(&new.ciphertext)));
            Ok(db!(c, |c| reseal.execute(c))? > 0)
        })
        .await
    }
}

/// The sealed credentials of `rows`; a row that does not read back (a
/// corrupt platform, kind or baseUrl) is left out and logged, so one bad row
/// stops neither a re-encryption nor the start-up check: its sync reports it.
fn readable_credentials(rows: &[ConnectionRow]) -> Vec<SealedCredentialsRow> {
    rows.iter()
        .filter_map(|row| {
            decode::sealed_credentials(row)
                .inspect_err(|error| tracing::warn!(%error, connection_id = %row.id, "stored credentials left out: their row does not read back"))
                .ok()
        })
        .collect()
}

/// Whether connection `id` is in `project`; on PostgreSQL its row is then
/// locked, which waits out an update rewriting its repositories, so what
/// follows sees the rows that update committed. (SQLite's write lock,
/// taken by `BEGIN IMMEDIATE`, already excludes that update.)
pub(crate) async fn lock_connection(c: &mut Conn<'_>, project: DbId, id: DbId) -> QueryResult<bool> {
    let query = conns::table.filter(conns::project_id.eq(project)).filter(conns::id.eq(id)).select(conns::id);
    let found = db!(c, sqlite: |c| query.first::<DbId>(c), pg: |c| query.for_update().first::<DbId>(c)).optional()?;
    Ok(found.is_some())
}

/// Loads the children of `rows` with one query per child table and builds
/// full connections, in the order of `rows`.
async fn load_full(c: &mut Conn<'_>, rows: Vec<ConnectionRow>) -> Result<Vec<RepoConnection>, TxError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<DbId> = rows.iter().map(|r| r.id).collect();
    let repo_rows = db!(c, |c| repos::table
        .filter(repos::connection_id.eq_any(&ids))
        .order((repos::connection_id, repos::position))
        .select(RepoRow::as_select())
        .load(c))?;
    let mapping_rows = db!(c, |c| service_mappings::table
        .filter(service_mappings::connection_id.eq_any(&ids))
        .order((service_mappings::connection_id, service_mappings::position))
        .select(MappingRow::as_select())
        .load(c))?;
    let state_rows = db!(c, |c| credential_states::table
        .filter(credential_states::connection_id.eq_any(&ids))
        .select(CredentialStateRow::as_select())
        .load(c))?;
    Ok(decode::connections(rows, repo_rows, mapping_rows, state_rows)?)
}

/// Repositories the project holds over all its connections.
async fn project_repository_count(c: &mut Conn<'_>, project: DbId) -> QueryResult<u32> {
    let n: i64 = db!(c, |c| repos::table.filter(repos::project_id.eq(project)).count().get_result(c))?;
    Ok(count_u32(n))
}

/// The first repository or service name of the request that another
/// connection of the project (not `own`) already holds, as a refusal.
async fn find_taken(
    c: &mut Conn<'_>,
    project: DbId,
    own: DbId,
    repositories: &[RepoName],
    mappings: &[ServiceMapping],
) -> Result<Option<WriteConnectionError>, TxError> {
    let keys: Vec<String> = repositories.iter().map(RepoName::key).collect();
    let held: HashMap<String, DbId> = db!(c, |c| repos::table
        .filter(repos::project_id.eq(project))
        .filter(repos::connection_id.ne(own))
        .filter(repos::name_key.eq_any(&keys))
        .select((repos::name_key, repos::connection_id))
        .load::<(String, DbId)>(c))?
    .into_iter()
    .collect();
    for (repo, key) in repositories.iter().zip(&keys) {
        if let Some(holder) = held.get(key) {
            return Ok(Some(WriteConnectionError::Refused(WriteRefused::RepositoryTaken {
                repository: repo.clone(),
                connection_id: (*holder).into(),
            })));
        }
    }
    let names: Vec<&str> = mappings.iter().map(|m| m.service_name.as_str()).collect();
    let held: HashMap<String, DbId> = db!(c, |c| service_mappings::table
        .filter(service_mappings::project_id.eq(project))
        .filter(service_mappings::connection_id.ne(own))
        .filter(service_mappings::service_name.eq_any(&names))
        .select((service_mappings::service_name, service_mappings::connection_id))
        .load::<(String, DbId)>(c))?
    .into_iter()
    .collect();
    for mapping in mappings {
        if let Some(holder) = held.get(mapping.service_name.as_str()) {
            return Ok(Some(WriteConnectionError::Refused(WriteRefused::ServiceNameTaken {
                service_name: mapping.service_name.clone(),
                connection_id: (*holder).into(),
            })));
        }
    }
    Ok(None)
}

/// Inserts the child rows of a connection. The checks before make a UNIQUE
/// violation here unexpected; if one slips through anyway it is still
/// reported as the name being taken, naming the holder, rather than as a
/// failure. The holder is looked up after the failed insert, which
/// PostgreSQL allows only after rolling back to a savepoint.
async fn insert_children(
    c: &mut Conn<'_>,
    project: DbId,
    own: DbId,
    repo_rows: &[RepoRow],
    repositories: &[RepoName],
    mappings: &[ServiceMapping],
) -> Result<(), TxError> {
    let mapping_rows: Vec<MappingRow> =
        mappings.iter().enumerate().map(|(i, m)| MappingRow::from_domain(own, project, i, m)).collect();
    savepoint(c).await?;
    let mut inserted = db!(c, |c| diesel::insert_into(repos::table).values(repo_rows).execute(c));
    if inserted.is_ok() {
        inserted = db!(c, |c| diesel::insert_into(service_mappings::table).values(&mapping_rows).execute(c));
    }
    match inserted {
        Ok(_) => Ok(end_savepoint(c, true).await?),
        Err(error) if is_name_clash(c, &error) => {
            end_savepoint(c, false).await?;
            match find_taken(c, project, own, repositories, mappings).await? {
                Some(taken) => Err(taken.into()),
                None => Err(error.into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

async fn create(
    c: &mut Conn<'_>,
    new: &NewConnection,
    limit: u32,
    completion: Option<&IdempotencyCompletion>,
) -> Result<(), TxError> {
    let (project, id) = (DbId::from(new.project_id), DbId::from(new.id));
    lock_project(c, project).await?;
    let keys: Vec<String> = new.repositories.iter().map(RepoName::key).collect();
    QuotaExceeded::check_replacement(limit, project_repository_count(c, project).await?, &[] as &[&str], &keys)?;
    if let Some(taken) = find_taken(c, project, id, &new.repositories, &new.service_mappings).await? {
        return Err(taken.into());
    }
    let row = ConnectionRow::from_domain(new);
    db!(c, |c| diesel::insert_into(conns::table).values(&row).execute(c))?;
    let state = CredentialStateRow::fresh(row.id);
    db!(c, |c| diesel::insert_into(credential_states::table).values(&state).execute(c))?;
    let repo_rows: Vec<RepoRow> =
        new.repositories.iter().enumerate().map(|(i, r)| RepoRow::pending(id, project, i, r)).collect();
    insert_children(c, project, id, &repo_rows, &new.repositories, &new.service_mappings).await?;
    put_secret(c, id, &new.webhook_secret, DbTime::from(new.created_at)).await?;
    if let Some(done) = completion {
        complete_idempotency(c, project, done).await?;
    }
    Ok(())
}

/// Records the response under the claimed key, in the creating transaction,
/// so a retry either finds the creation with its response or neither.
async fn complete_idempotency(c: &mut Conn<'_>, project: DbId, done: &IdempotencyCompletion) -> QueryResult<()> {
    let complete = diesel::update(
        idempotency_keys::table
            .filter(idempotency_keys::project_id.eq(project))
            .filter(idempotency_keys::key.eq(done.key.as_str())),
    )
    .set((
        idempotency_keys::state.eq("completed"),
        idempotency_keys::response_status.eq(Some(i32::from(done.response.status))),
        idempotency_keys::response_body.eq(Some(&done.response.body)),
        idempotency_keys::response_location.eq(done.response.location.as_ref()),
    ));
    if db!(c, |c| complete.execute(c))? == 0 {
        // The claim was released or purged meanwhile: the creation stands, a
        // retry with this key will simply not be recognised as one.
        tracing::warn!(%project, "idempotency claim vanished before its request completed");
    }
    Ok(())
}

async fn update(c: &mut Conn<'_>, change: &ConnectionChange, limit: u32) -> Result<(), TxError> {
    let (project, id) = (DbId::from(change.project_id), DbId::from(change.id));
    lock_project(c, project).await?;
    // On PostgreSQL the connection's own lock keeps a concurrent delete or
    // cache wipe from interleaving with the rewrite of its children.
    let current = conns::table.filter(conns::project_id.eq(project)).filter(conns::id.eq(id)).select(conns::version);
    let version: Option<i64> =
        db!(c, sqlite: |c| current.first(c), pg: |c| current.for_update().first(c)).optional()?;
    let Some(version) = version else {
        return Err(WriteConnectionError::NotFound.into());
    };
    if version != change.expected_version {
        return Err(WriteConnectionError::VersionConflict.into());
    }

    let old: Vec<RepoRow> =
        db!(c, |c| repos::table.filter(repos::connection_id.eq(id)).select(RepoRow::as_select()).load(c))?;
    let before: Vec<&str> = old.iter().map(|r| r.name_key.as_str()).collect();
    let after: Vec<String> = change.repositories.iter().map(RepoName::key).collect();
    QuotaExceeded::check_replacement(limit, project_repository_count(c, project).await?, &before, &after)?;
    let dropped: Vec<String> =
        before.iter().filter(|k| !after.iter().any(|a| a == *k)).map(|k| (*k).to_owned()).collect();
    if let Some(taken) = find_taken(c, project, id, &change.repositories, &change.service_mappings).await? {
        return Err(taken.into());
    }

    // Delete first, then insert the new lists: rewriting in place would trip
    // over the (connection, position) keys and the project-wide UNIQUEs.
    db!(c, |c| diesel::delete(repos::table.filter(repos::connection_id.eq(id))).execute(c))?;
    db!(c, |c| diesel::delete(service_mappings::table.filter(service_mappings::connection_id.eq(id))).execute(c))?;
    let mut kept: HashMap<String, RepoRow> = old.into_iter().map(|r| (r.name_key.clone(), r)).collect();
    let mut renamed: Vec<(String, String)> = Vec::new();
    let repo_rows: Vec<RepoRow> = change
        .repositories
        .iter()
        .enumerate()
        .map(|(i, repo)| {
            let mut row = RepoRow::pending(id, project, i, repo);
            if !change.resync_all
                && let Some(before) = kept.remove(&row.name_key)
            {
                if before.name != row.name {
                    renamed.push((row.name_key.clone(), row.name.clone()));
                }
                row.keep_sync_of(before);
            }
            row
        })
        .collect();
    insert_children(c, project, id, &repo_rows, &change.repositories, &change.service_mappings).await?;

    // The cache follows the repository list. New credentials or a new window
    // make every cached PR suspect: all go, and each repository is fetched
    // whole again. Otherwise only dropped repositories lose theirs (`kept`
    // now holds just those), and a kept one renamed in case is listed under
    // its new spelling. Files go with their PRs (ON DELETE CASCADE).
    let cached = prs::table.filter(prs::connection_id.eq(id));
    if change.resync_all {
        db!(c, |c| diesel::delete(cached).execute(c))?;
    } else {
        let removed: Vec<&String> = kept.keys().collect();
        if !removed.is_empty() {
            db!(c, |c| diesel::delete(cached.filter(prs::repository_key.eq_any(&removed))).execute(c))?;
        }
        for (key, name) in &renamed {
            let rename = diesel::update(cached.filter(prs::repository_key.eq(key))).set(prs::repository.eq(name));
            db!(c, |c| rename.execute(c))?;
        }
    }
    // A dropped repository's file list goes too; a kept one's stays (a sync
    // that lists its tree again replaces what changed).
    if !dropped.is_empty() {
        let doomed = tree_files::table
            .filter(tree_files::connection_id.eq(id))
            .filter(tree_files::repository_key.eq_any(&dropped));
        db!(c, |c| diesel::delete(doomed).execute(c))?;
    }

    let at = DbTime::from(change.at);
    let target = conns::table.filter(conns::id.eq(id));
    if let Some(creds) = &change.credentials {
        let reseal = diesel::update(target).set((
            conns::credential_kind.eq(creds.kind.as_str()),
            conns::credential_hint.eq(creds.hint.as_ref()),
            conns::base_url.eq(creds.base_url.as_ref().map(|u| u.as_str())),
            conns::credential_key_id.eq(&creds.sealed.key_id),
            conns::credential_ciphertext.eq(&creds.sealed.ciphertext),
            conns::credentials_updated_at.eq(at),
            conns::github_installation_id.eq(creds.installation_id.map(i64::from)),
        ));
        db!(c, |c| reseal.execute(c))?;
        // New credentials start afresh: nothing known of them yet, and a
        // renewal of the old ones in flight loses its claim.
        let fresh = CredentialStateRow::fresh(id);
        let replace = diesel::insert_into(credential_states::table)
            .values(&fresh)
            .on_conflict(credential_states::connection_id)
            .do_update()
            .set((
                credential_states::expires_at.eq(None::<DbTime>),
                credential_states::last_use.eq(&fresh.last_use),
                credential_states::last_use_at.eq(None::<DbTime>),
                credential_states::renewal_holder.eq(None::<DbId>),
                credential_states::renewal_until.eq(None::<DbTime>),
            ));
        db!(c, |c| replace.execute(c))?;
    }
    if let Some(secret) = &change.webhook_secret {
        put_secret(c, id, secret, at).await?;
    }
    let bump = diesel::update(target).set((
        conns::lookback_days.eq(i32::from(change.lookback_days.get())),
        conns::is_active.eq(change.is_active),
        conns::version.eq(version + 1),
        conns::updated_at.eq(at),
    ));
    db!(c, |c| bump.execute(c))?;
    Ok(())
}
