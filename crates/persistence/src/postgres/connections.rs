//! Repo connections. Each write that checks the quota or the uniqueness of
//! names first locks the project's row, so that writers of one project (in
//! any replica) run one after the other; the UNIQUE constraints stand behind
//! the checks in case anything slips past them.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sigsentry_domain::{ConnectionId, ProjectId, QuotaExceeded, RepoConnection, RepoName, ServiceMapping, SyncState};
use sigsentry_ports::{
    ConnectionChange, ConnectionStore, IdempotencyCompletion, ListQuery, NewConnection, SealedCredentialsRow,
    SealedSecret, StoreError, WriteConnectionError,
};
use uuid::Uuid;

use super::PgStore;
use super::error::{TxError, violated_unique};
use super::rows::{ConnectionRow, MappingRow, RepoRow, assemble, count_u32, stored_time};
use super::schema::{
    connection_repositories as repos, idempotency_keys, projects, pull_requests as prs, repo_connections as conns,
    service_mappings,
};

/// The UNIQUE constraints of `migrations/postgres` that a name clash trips.
const REPO_NAME_UNIQUE: &str = "connection_repositories_project_id_name_key";
const SERVICE_NAME_UNIQUE: &str = "service_mappings_project_id_service_name";

impl ConnectionStore for PgStore {
    async fn create_connection(
        &self,
        new: NewConnection,
        limit: u32,
        completion: Option<IdempotencyCompletion>,
    ) -> Result<(), WriteConnectionError> {
        self.run(move |c| {
            Box::pin(async move {
                c.transaction::<_, TxError, _>(async |tx| create(tx, &new, limit, completion.as_ref()).await).await
            })
        })
        .await
    }

    async fn get_connection(&self, project: ProjectId, id: ConnectionId) -> Result<Option<RepoConnection>, StoreError> {
        self.run(move |c| {
            Box::pin(async move {
                let rows = conns::table
                    .filter(conns::project_id.eq(project.as_uuid()))
                    .filter(conns::id.eq(id.as_uuid()))
                    .select(ConnectionRow::as_select())
                    .load(c)
                    .await?;
                Ok(load_full(c, rows).await?.pop())
            })
        })
        .await
    }

    async fn list_connections(&self, project: ProjectId, query: ListQuery) -> Result<Vec<RepoConnection>, StoreError> {
        self.run(move |c| {
            Box::pin(async move {
                let mut select = conns::table.filter(conns::project_id.eq(*project.as_uuid())).into_boxed();
                if let Some(platform) = query.platform {
                    select = select.filter(conns::platform.eq(platform.as_str()));
                }
                if let Some(active) = query.is_active {
                    select = select.filter(conns::is_active.eq(active));
                }
                if let Some(after) = query.after {
                    // PostgreSQL orders uuids bytewise, which is the order of UUIDv7 creation times.
                    select = select.filter(conns::id.gt(*after.as_uuid()));
                }
                let rows = select
                    .order(conns::id.asc())
                    .limit(i64::from(query.limit))
                    .select(ConnectionRow::as_select())
                    .load(c)
                    .await?;
                load_full(c, rows).await
            })
        })
        .await
    }

    async fn update_connection(&self, change: ConnectionChange, limit: u32) -> Result<(), WriteConnectionError> {
        self.run(move |c| {
            Box::pin(async move { c.transaction::<_, TxError, _>(async |tx| update(tx, &change, limit).await).await })
        })
        .await
    }

    async fn delete_connection(&self, project: ProjectId, id: ConnectionId) -> Result<bool, StoreError> {
        self.run(move |c| {
            Box::pin(async move {
                // The children go with it (ON DELETE CASCADE).
                let deleted = diesel::delete(
                    conns::table.filter(conns::project_id.eq(*project.as_uuid())).filter(conns::id.eq(*id.as_uuid())),
                )
                .execute(c)
                .await?;
                Ok(deleted > 0)
            })
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
        self.run(move |c| {
            Box::pin(async move {
                c.transaction::<_, TxError, _>(async |tx| {
                    let id = *id.as_uuid();
                    // Locking the connection waits out an update rewriting its
                    // repositories, so the reset below sees the rows it committed.
                    let exists = conns::table
                        .filter(conns::project_id.eq(*project.as_uuid()))
                        .filter(conns::id.eq(id))
                        .select(conns::id)
                        .for_update()
                        .first::<Uuid>(tx)
                        .await
                        .optional()?;
                    if exists.is_none() {
                        return Ok(false);
                    }
                    // Files go with their PRs (ON DELETE CASCADE).
                    diesel::delete(prs::table.filter(prs::connection_id.eq(id))).execute(tx).await?;
                    // Everything a sync learnt goes, the default branch and the
                    // incremental mark included (the next sync fetches the whole
                    // window), and so does any claim: a sync running now must
                    // not refill the cache with what was fetched before the wipe.
                    diesel::update(repos::table.filter(repos::connection_id.eq(id)))
                        .set((
                            repos::sync_state.eq(SyncState::Pending.as_str()),
                            repos::last_synced_at.eq(None::<DateTime<Utc>>),
                            repos::sync_error.eq(None::<String>),
                            repos::default_branch.eq(None::<String>),
                            repos::updated_since.eq(None::<DateTime<Utc>>),
                            repos::lease_token.eq(None::<Uuid>),
                            repos::lease_until.eq(None::<DateTime<Utc>>),
                            repos::next_attempt_at.eq(None::<DateTime<Utc>>),
                            repos::attempts.eq(0),
                        ))
                        .execute(tx)
                        .await?;
                    Ok(true)
                })
                .await
            })
        })
        .await
    }

    async fn credentials_not_under(
        &self,
        active_key_id: &str,
        limit: u32,
    ) -> Result<Vec<SealedCredentialsRow>, StoreError> {
        let active_key_id = active_key_id.to_owned();
        self.run(move |c| {
            Box::pin(async move {
                let rows = conns::table
                    .filter(conns::credential_key_id.ne(&active_key_id))
                    .order(conns::id.asc())
                    .limit(i64::from(limit))
                    .select((
                        conns::id,
                        conns::tenant_id,
                        conns::project_id,
                        conns::credential_key_id,
                        conns::credential_ciphertext,
                    ))
                    .load::<(Uuid, Uuid, Uuid, String, Vec<u8>)>(c)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, tenant, project, key_id, ciphertext)| SealedCredentialsRow {
                        connection_id: ConnectionId::from_uuid(id),
                        tenant_id: sigsentry_domain::TenantId::from_uuid(tenant),
                        project_id: ProjectId::from_uuid(project),
                        sealed: SealedSecret { key_id, ciphertext },
                    })
                    .collect())
            })
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
        self.run(move |c| {
            Box::pin(async move {
                // Compare-and-swap in one statement: a user who rotated the
                // credentials since they were read wins, and this reseal reports `false`.
                let updated = diesel::update(
                    conns::table
                        .filter(conns::id.eq(*connection_id.as_uuid()))
                        .filter(conns::credential_key_id.eq(&old.key_id))
                        .filter(conns::credential_ciphertext.eq(&old.ciphertext)),
                )
                .set((conns::credential_key_id.eq(&new.key_id), conns::credential_ciphertext.eq(&new.ciphertext)))
                .execute(c)
                .await?;
                Ok(updated > 0)
            })
        })
        .await
    }
}

/// Loads the children of `rows` with one query per child table and builds
/// full connections, in the order of `rows`.
async fn load_full(c: &mut AsyncPgConnection, rows: Vec<ConnectionRow>) -> Result<Vec<RepoConnection>, TxError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let repo_rows = repos::table
        .filter(repos::connection_id.eq_any(&ids))
        .order((repos::connection_id, repos::position))
        .select(RepoRow::as_select())
        .load(c)
        .await?;
    let mapping_rows = service_mappings::table
        .filter(service_mappings::connection_id.eq_any(&ids))
        .order((service_mappings::connection_id, service_mappings::position))
        .select(MappingRow::as_select())
        .load(c)
        .await?;
    let mut by_conn_repos: HashMap<Uuid, Vec<RepoRow>> = HashMap::new();
    for row in repo_rows {
        by_conn_repos.entry(row.connection_id).or_default().push(row);
    }
    let mut by_conn_mappings: HashMap<Uuid, Vec<MappingRow>> = HashMap::new();
    for row in mapping_rows {
        by_conn_mappings.entry(row.connection_id).or_default().push(row);
    }
    Ok(assemble(rows, by_conn_repos, by_conn_mappings)?)
}

/// Locks the project's row until the transaction ends: the quota and name
/// checks that follow then see every committed write of the project, and
/// no other writer of the project can commit in between.
///
/// `FOR NO KEY UPDATE` rather than `FOR UPDATE`: it serializes these writers
/// just the same, but does not block the key-share locks that inserting rows
/// referencing the project (API keys) takes.
async fn lock_project(c: &mut AsyncPgConnection, project: Uuid) -> QueryResult<()> {
    projects::table.find(project).select(projects::id).for_no_key_update().first::<Uuid>(c).await.optional()?;
    Ok(())
}

async fn project_repository_count(c: &mut AsyncPgConnection, project: Uuid) -> QueryResult<u32> {
    let n: i64 = repos::table.filter(repos::project_id.eq(project)).count().get_result(c).await?;
    Ok(count_u32(n))
}

/// The first repository or service name of the request that another
/// connection of the project (not `own`) already holds, as a refusal.
async fn find_taken(
    c: &mut AsyncPgConnection,
    project: Uuid,
    own: Uuid,
    repositories: &[RepoName],
    mappings: &[ServiceMapping],
) -> Result<Option<WriteConnectionError>, TxError> {
    let keys: Vec<String> = repositories.iter().map(RepoName::key).collect();
    let held: HashMap<String, Uuid> = repos::table
        .filter(repos::project_id.eq(project))
        .filter(repos::connection_id.ne(own))
        .filter(repos::name_key.eq_any(&keys))
        .select((repos::name_key, repos::connection_id))
        .load::<(String, Uuid)>(c)
        .await?
        .into_iter()
        .collect();
    for (repo, key) in repositories.iter().zip(&keys) {
        if let Some(holder) = held.get(key) {
            return Ok(Some(WriteConnectionError::RepositoryTaken {
                repository: repo.clone(),
                connection_id: ConnectionId::from_uuid(*holder),
            }));
        }
    }
    let names: Vec<&str> = mappings.iter().map(|m| m.service_name.as_str()).collect();
    let held: HashMap<String, Uuid> = service_mappings::table
        .filter(service_mappings::project_id.eq(project))
        .filter(service_mappings::connection_id.ne(own))
        .filter(service_mappings::service_name.eq_any(&names))
        .select((service_mappings::service_name, service_mappings::connection_id))
        .load::<(String, Uuid)>(c)
        .await?
        .into_iter()
        .collect();
    for mapping in mappings {
        if let Some(holder) = held.get(mapping.service_name.as_str()) {
            return Ok(Some(WriteConnectionError::ServiceNameTaken {
                service_name: mapping.service_name.clone(),
                connection_id: ConnectionId::from_uuid(*holder),
            }));
        }
    }
    Ok(None)
}

/// Inserts the child rows of a connection. The checks before make a UNIQUE
/// violation here unexpected; if one slips through anyway it is still
/// reported as the name being taken, naming the holder, rather than as a
/// failure. The inserts run under a savepoint because PostgreSQL refuses
/// every further statement of a transaction after an error, and the holder
/// has to be looked up after one.
async fn insert_children(
    c: &mut AsyncPgConnection,
    project: Uuid,
    own: Uuid,
    repo_rows: &[RepoRow],
    repositories: &[RepoName],
    mappings: &[ServiceMapping],
) -> Result<(), TxError> {
    let mapping_rows: Vec<MappingRow> =
        mappings.iter().enumerate().map(|(i, m)| MappingRow::from_domain(own, project, i, m)).collect();
    diesel::sql_query("SAVEPOINT children").execute(c).await?;
    let mut inserted = diesel::insert_into(repos::table).values(repo_rows).execute(c).await;
    if inserted.is_ok() {
        inserted = diesel::insert_into(service_mappings::table).values(&mapping_rows).execute(c).await;
    }
    match inserted {
        Ok(_) => {
            diesel::sql_query("RELEASE SAVEPOINT children").execute(c).await?;
            Ok(())
        }
        Err(error) if matches!(violated_unique(&error), Some(REPO_NAME_UNIQUE | SERVICE_NAME_UNIQUE)) => {
            diesel::sql_query("ROLLBACK TO SAVEPOINT children").execute(c).await?;
            match find_taken(c, project, own, repositories, mappings).await? {
                Some(taken) => Err(taken.into()),
                None => Err(error.into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

async fn create(
    c: &mut AsyncPgConnection,
    new: &NewConnection,
    limit: u32,
    completion: Option<&IdempotencyCompletion>,
) -> Result<(), TxError> {
    let project = *new.project_id.as_uuid();
    let id = *new.id.as_uuid();
    lock_project(c, project).await?;
    let used = project_repository_count(c, project).await?;
    QuotaExceeded::check(limit, used, count_u32(new.repositories.len()))?;
    if let Some(taken) = find_taken(c, project, id, &new.repositories, &new.service_mappings).await? {
        return Err(taken.into());
    }
    let created_at = stored_time(new.created_at);
    let creds = &new.credentials;
    let row = ConnectionRow {
        id,
        tenant_id: *new.tenant_id.as_uuid(),
        project_id: project,
        platform: new.platform.as_str().to_owned(),
        credential_kind: creds.kind.as_str().to_owned(),
        credential_hint: creds.hint.clone(),
        base_url: creds.base_url.as_ref().map(|u| u.as_str().to_owned()),
        credential_key_id: creds.sealed.key_id.clone(),
        credential_ciphertext: creds.sealed.ciphertext.clone(),
        credentials_updated_at: created_at,
        lookback_days: i32::from(new.lookback_days.get()),
        is_active: true,
        version: 1,
        created_at,
        updated_at: created_at,
    };
    diesel::insert_into(conns::table).values(&row).execute(c).await?;
    let repo_rows: Vec<RepoRow> =
        new.repositories.iter().enumerate().map(|(i, r)| RepoRow::pending(id, project, i, r)).collect();
    insert_children(c, project, id, &repo_rows, &new.repositories, &new.service_mappings).await?;
    if let Some(done) = completion {
        complete_idempotency(c, project, done).await?;
    }
    Ok(())
}

/// Records the response under the claimed key, in the creating transaction,
/// so a retry either finds the creation with its response or neither.
async fn complete_idempotency(
    c: &mut AsyncPgConnection,
    project: Uuid,
    done: &IdempotencyCompletion,
) -> QueryResult<()> {
    let updated = diesel::update(
        idempotency_keys::table
            .filter(idempotency_keys::project_id.eq(project))
            .filter(idempotency_keys::key.eq(done.key.as_str())),
    )
    .set((
        idempotency_keys::state.eq("completed"),
        idempotency_keys::response_status.eq(Some(i32::from(done.response.status))),
        idempotency_keys::response_body.eq(Some(&done.response.body)),
        idempotency_keys::response_location.eq(done.response.location.as_ref()),
    ))
    .execute(c)
    .await?;
    if updated == 0 {
        // The claim was released or purged meanwhile: the creation stands, a
        // retry with this key will simply not be recognised as one.
        tracing::warn!(%project, "idempotency claim vanished before its request completed");
    }
    Ok(())
}

async fn update(c: &mut AsyncPgConnection, change: &ConnectionChange, limit: u32) -> Result<(), TxError> {
    let project = *change.project_id.as_uuid();
    let id = *change.id.as_uuid();
    lock_project(c, project).await?;
    // The connection's own lock keeps a concurrent delete or cache wipe from
    // interleaving with the rewrite of its children.
    let version: Option<i64> = conns::table
        .filter(conns::project_id.eq(project))
        .filter(conns::id.eq(id))
        .select(conns::version)
        .for_update()
        .first(c)
        .await
        .optional()?;
    let Some(version) = version else {
        return Err(WriteConnectionError::NotFound.into());
    };
    if version != change.expected_version {
        return Err(WriteConnectionError::VersionConflict.into());
    }

    let old: Vec<RepoRow> =
        repos::table.filter(repos::connection_id.eq(id)).select(RepoRow::as_select()).load(c).await?;
    let new_keys: HashSet<String> = change.repositories.iter().map(RepoName::key).collect();
    let removed = old.iter().filter(|r| !new_keys.contains(&r.name_key)).count();
    // Repositories this change drops free their slots, so swapping one
    // repository for another at the limit is allowed.
    let used = project_repository_count(c, project).await?.saturating_sub(count_u32(removed));
    QuotaExceeded::check(limit, used, change.added)?;
    if let Some(taken) = find_taken(c, project, id, &change.repositories, &change.service_mappings).await? {
        return Err(taken.into());
    }

    // Delete first, then insert the new lists: rewriting in place would trip
    // over the (connection, position) keys and the project-wide UNIQUEs.
    diesel::delete(repos::table.filter(repos::connection_id.eq(id))).execute(c).await?;
    diesel::delete(service_mappings::table.filter(service_mappings::connection_id.eq(id))).execute(c).await?;
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
        diesel::delete(cached).execute(c).await?;
    } else {
        let removed: Vec<&String> = kept.keys().collect();
        if !removed.is_empty() {
            diesel::delete(cached.filter(prs::repository_key.eq_any(removed))).execute(c).await?;
        }
        for (key, name) in &renamed {
            diesel::update(cached.filter(prs::repository_key.eq(key))).set(prs::repository.eq(name)).execute(c).await?;
        }
    }

    let at = stored_time(change.at);
    let target = conns::table.filter(conns::id.eq(id));
    if let Some(creds) = &change.credentials {
        diesel::update(target)
            .set((
                conns::credential_kind.eq(creds.kind.as_str()),
                conns::credential_hint.eq(creds.hint.as_ref()),
                conns::base_url.eq(creds.base_url.as_ref().map(|u| u.as_str())),
                conns::credential_key_id.eq(&creds.sealed.key_id),
                conns::credential_ciphertext.eq(&creds.sealed.ciphertext),
                conns::credentials_updated_at.eq(at),
            ))
            .execute(c)
            .await?;
    }
    diesel::update(target)
        .set((
            conns::lookback_days.eq(i32::from(change.lookback_days.get())),
            conns::is_active.eq(change.is_active),
            conns::version.eq(version + 1),
            conns::updated_at.eq(at),
        ))
        .execute(c)
        .await?;
    Ok(())
}
