//! The store contract: every test body is written once and runs against
//! both backends (`sqlite::*` and `postgres::*`), each test on a database of
//! its own (see `sigsentry-testdb`). Tests of one backend's own machinery
//! live in `sqlite_store.rs` and `postgres_store.rs`.

// clippy.toml allows unwrap in test functions only, not in this file's helpers.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use sigsentry_domain::{
    ApiKeyId, BaseUrl, BaseUrlPolicy, BranchName, ConnectionId, CredentialKind, CredentialSummary, IdempotencyKey,
    LookbackDays, PathPrefix, Permission, PermissionSet, Plan, Platform, ProjectId, QuotaExceeded, RepoConnection,
    RepoName, RepoSyncStatus, ServiceMapping, ServiceName, SyncState, TenantId,
};
use sigsentry_persistence::{AnyStore, sqlite_path};
use sigsentry_ports::{
    AccountStore, CachedPullRequest, ChangedFile, ConnectionChange, ConnectionStore, HealthCheck, IdempotencyBegin,
    IdempotencyCompletion, IdempotencyStore, ListQuery, MergedPullRequest, NewApiKey, NewConnection, NewCredentials,
    Project, PullRequestQuery, SealedSecret, StoreError, StoredResponse, SyncFailure, SyncJob, SyncStore, SyncSuccess,
    Tenant, WriteConnectionError,
};
use sigsentry_testdb::TestDb;
use uuid::Uuid;

/// Generates one `#[tokio::test]` per backend for each body named.
macro_rules! for_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Postgres).await
                }
            )*
        }
    };
}

for_both_backends!(
    open_again_while_open,
    references_are_enforced,
    accounts_round_trip,
    create_and_get_round_trip_every_field,
    a_corrupt_row_is_an_unexpected_error_not_a_panic,
    list_filters_and_pages_in_id_order,
    quota_is_enforced_with_the_figures,
    concurrent_creates_never_pass_the_quota,
    concurrent_creates_of_one_repository_leave_one_holder,
    taken_repositories_and_service_names_name_the_holder,
    update_checks_version_and_existence,
    concurrent_updates_of_one_version_let_one_win,
    update_keeps_the_state_of_kept_repositories_unless_resyncing_all,
    update_quota_counts_added_and_frees_removed,
    delete_removes_the_connection_and_its_children,
    invalidate_cache_puts_repositories_back_to_pending,
    idempotency_claims_replays_and_expires,
    concurrent_claims_of_one_key_let_one_through,
    a_refused_creation_does_not_complete_the_key,
    reseal_only_replaces_the_value_read,
    ping_answers,
    claims_lease_due_repositories_once,
    pending_repositories_come_first_then_the_stalest,
    concurrent_claims_never_hand_out_a_repository_twice,
    complete_writes_the_cache_and_makes_the_repository_ready,
    a_resync_replaces_prs_and_their_files_and_prunes_the_window,
    a_failure_is_recorded_and_backs_off,
    voided_claims_write_nothing,
    update_keeps_the_cache_of_kept_repositories,
    deleting_a_connection_drops_its_cache_even_mid_sync,
    concurrent_deletes_and_results_neither_fail_nor_leave_rows,
    paused_connections_are_never_claimed,
    an_unreadable_connection_is_set_aside_not_claimed,
    the_listing_orders_filters_and_pages,
    next_due_says_when_the_first_repository_is,
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
}

async fn test_db(kind: Kind) -> TestDb {
    match kind {
        Kind::Sqlite => TestDb::sqlite(),
        Kind::Postgres => TestDb::postgres().await,
    }
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

struct Fixture {
    // Dropped before `db`, whose drop removes the database.
    store: AnyStore,
    db: TestDb,
    tenant: TenantId,
    project: ProjectId,
}

impl Fixture {
    /// A second store on the same database, as another server process would open it.
    async fn second_store(&self) -> AnyStore {
        AnyStore::open(self.db.url()).await.unwrap()
    }

    /// Runs `sql` on a plain connection beside the pool, to look at or tamper with rows.
    /// The SQL must read the same in both dialects (ids and times as quoted literals do).
    async fn raw<T: Send + 'static>(&self, sql: &str, query: RawQuery<T>) -> T {
        let url = self.db.url().to_owned();
        let sql = sql.to_owned();
        if self.db.is_postgres() {
            use diesel_async::{AsyncConnection, AsyncPgConnection};
            let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
            (query.pg)(&mut conn, sql).await
        } else {
            tokio::task::spawn_blocking(move || {
                use diesel::{Connection, RunQueryDsl, SqliteConnection};
                let mut conn = SqliteConnection::establish(sqlite_path(&url)).unwrap();
                diesel::sql_query("PRAGMA busy_timeout = 5000").execute(&mut conn).unwrap();
                (query.sqlite)(&mut conn, sql)
            })
            .await
            .unwrap()
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        self.raw(sql, RawQuery::count()).await
    }

    async fn exec(&self, sql: &str) {
        self.raw(sql, RawQuery::exec()).await;
    }

    async fn other_project(&self) -> ProjectId {
        let project = ProjectId::from_uuid(Uuid::now_v7());
        let row = Project { id: project, tenant_id: self.tenant, name: "other".into(), created_at: t0() };
        self.store.create_project(row).await.unwrap();
        project
    }
}

type PgRun<T> = for<'c> fn(
    &'c mut diesel_async::AsyncPgConnection,
    String,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'c>>;

/// One raw query, spelt for each backend's connection type.
struct RawQuery<T> {
    sqlite: fn(&mut diesel::SqliteConnection, String) -> T,
    pg: PgRun<T>,
}

impl RawQuery<i64> {
    fn count() -> Self {
        RawQuery {
            sqlite: |c, sql| diesel::RunQueryDsl::get_result::<N>(diesel::sql_query(sql), c).unwrap().n,
            pg: |c, sql| {
                Box::pin(async move {
                    diesel_async::RunQueryDsl::get_result::<N>(diesel::sql_query(sql), c).await.unwrap().n
                })
            },
        }
    }
}

impl RawQuery<()> {
    fn exec() -> Self {
        RawQuery {
            sqlite: |c, sql| {
                diesel::RunQueryDsl::execute(diesel::sql_query(sql), c).unwrap();
            },
            pg: |c, sql| {
                Box::pin(async move {
                    diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), c).await.unwrap();
                })
            },
        }
    }
}

async fn fixture(kind: Kind) -> Fixture {
    let db = test_db(kind).await;
    let store = AnyStore::open(db.url()).await.unwrap();
    assert_eq!(store.is_embedded(), kind == Kind::Sqlite);
    let tenant = TenantId::from_uuid(Uuid::now_v7());
    let project = ProjectId::from_uuid(Uuid::now_v7());
    store.create_tenant(Tenant { id: tenant, name: "Acme".into(), plan: Plan::Team, created_at: t0() }).await.unwrap();
    store
        .create_project(Project { id: project, tenant_id: tenant, name: "web".into(), created_at: t0() })
        .await
        .unwrap();
    Fixture { store, db, tenant, project }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap() + TimeDelta::milliseconds(123)
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn repo(name: &str) -> RepoName {
    RepoName::parse(Platform::GitHub, name).unwrap()
}

fn mapping(service: &str, repo_name: &str) -> ServiceMapping {
    ServiceMapping {
        service_name: ServiceName::new(service.into()).unwrap(),
        repo: repo(repo_name),
        path_prefix: PathPrefix::new("src").unwrap(),
        default_branch: Some(BranchName::new("main".into()).unwrap()),
    }
}

fn sealed(key_id: &str, bytes: &[u8]) -> SealedSecret {
    SealedSecret { key_id: key_id.into(), ciphertext: bytes.to_vec() }
}

fn credentials() -> NewCredentials {
    NewCredentials {
        kind: CredentialKind::Token,
        hint: Some("…abcd".into()),
        base_url: Some(BaseUrl::parse("https://ghe.acme.io/api/v3", BaseUrlPolicy { allow_private: false }).unwrap()),
        sealed: sealed("k1", &[1, 2, 3, 0, 255]),
    }
}

fn new_connection(fx: &Fixture, id: ConnectionId, repos: &[&str], services: &[(&str, &str)]) -> NewConnection {
    NewConnection {
        id,
        tenant_id: fx.tenant,
        project_id: fx.project,
        platform: Platform::GitHub,
        credentials: credentials(),
        repositories: repos.iter().map(|r| repo(r)).collect(),
        service_mappings: services.iter().map(|(s, r)| mapping(s, r)).collect(),
        lookback_days: LookbackDays::new(45).unwrap(),
        created_at: t0(),
    }
}

fn conn_id() -> ConnectionId {
    ConnectionId::from_uuid(Uuid::now_v7())
}

async fn create(fx: &Fixture, repos: &[&str], services: &[(&str, &str)]) -> ConnectionId {
    let id = conn_id();
    fx.store.create_connection(new_connection(fx, id, repos, services), 100, None).await.unwrap();
    id
}

fn change_of(conn: &RepoConnection, repos: &[&str], added: u32) -> ConnectionChange {
    ConnectionChange {
        id: conn.id,
        project_id: conn.project_id,
        expected_version: conn.version,
        credentials: None,
        repositories: repos.iter().map(|r| repo(r)).collect(),
        service_mappings: Vec::new(),
        lookback_days: conn.lookback_days,
        is_active: conn.is_active,
        added,
        resync_all: false,
        at: t0() + secs(60),
    }
}

fn all() -> ListQuery {
    ListQuery { platform: None, is_active: None, after: None, limit: 100 }
}

async fn open_again_while_open(kind: Kind) {
    let fx = fixture(kind).await;
    // Opening a migrated database again, while another store has it open, migrates nothing and works.
    let again = fx.second_store().await;
    again.ping().await.unwrap();
    assert!(again.get_project(fx.project).await.unwrap().is_some());
}

async fn references_are_enforced(kind: Kind) {
    let fx = fixture(kind).await;
    // A project of an unknown tenant is refused (SQLite: foreign_keys is on for pooled connections).
    let orphan = Project {
        id: ProjectId::from_uuid(Uuid::now_v7()),
        tenant_id: TenantId::from_uuid(Uuid::now_v7()),
        name: "x".into(),
        created_at: t0(),
    };
    assert!(matches!(fx.store.create_project(orphan).await, Err(StoreError::Unexpected(_))));
}

async fn concurrent_creates_of_one_repository_leave_one_holder(kind: Kind) {
    let fx = fixture(kind).await;
    let second = fx.second_store().await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = if i % 2 == 0 { fx.store.clone() } else { second.clone() };
        let id = conn_id();
        let new = new_connection(&fx, id, &["acme/contested"], &[(&format!("svc-{i}"), "acme/contested")]);
        tasks.push(tokio::spawn(async move { (id, store.create_connection(new, 100, None).await) }));
    }
    let mut winners = Vec::new();
    let mut holders = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (id, Ok(())) => winners.push(id),
            (_, Err(WriteConnectionError::RepositoryTaken { repository, connection_id })) => {
                assert_eq!(repository, repo("acme/contested"));
                holders.push(connection_id);
            }
            (_, Err(other)) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert!(holders.iter().all(|h| *h == winners[0]), "every refusal names the one holder");
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories").await, 1);
}

async fn concurrent_updates_of_one_version_let_one_win(kind: Kind) {
    let fx = fixture(kind).await;
    let second = fx.second_store().await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for i in 0..6u32 {
        let store = if i % 2 == 0 { fx.store.clone() } else { second.clone() };
        let change = change_of(&conn, &["acme/a", &format!("acme/extra-{i}")], 1);
        tasks.push(tokio::spawn(async move { store.update_connection(change, 100).await }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(WriteConnectionError::VersionConflict) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1, "one change per version");
    let after = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!((after.version, after.repositories.len()), (2, 2));
}

async fn concurrent_claims_of_one_key_let_one_through(kind: Kind) {
    let fx = fixture(kind).await;
    let second = fx.second_store().await;
    let key = IdempotencyKey::new("contested").unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { fx.store.clone() } else { second.clone() };
        let (key, project) = (key.clone(), fx.project);
        tasks.push(tokio::spawn(async move { store.begin(project, &key, "fp", t0(), 30, 60).await.unwrap() }));
    }
    let mut claimed = 0;
    for task in tasks {
        match task.await.unwrap() {
            IdempotencyBegin::Claimed => claimed += 1,
            IdempotencyBegin::InFlight { retry_after_secs: 1 } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(claimed, 1);
    assert_eq!(fx.count("SELECT count(*) AS n FROM idempotency_keys").await, 1);
}

async fn accounts_round_trip(kind: Kind) {
    let db = test_db(kind).await;
    let store = AnyStore::open(db.url()).await.unwrap();
    assert!(store.has_no_tenants().await.unwrap());
    let tenant =
        Tenant { id: TenantId::from_uuid(Uuid::now_v7()), name: "Acme".into(), plan: Plan::Business, created_at: t0() };
    store.create_tenant(tenant.clone()).await.unwrap();
    assert!(!store.has_no_tenants().await.unwrap());
    assert_eq!(store.get_tenant(tenant.id).await.unwrap(), Some(tenant.clone()));
    assert_eq!(store.get_tenant(TenantId::from_uuid(Uuid::now_v7())).await.unwrap(), None);
    let project = Project {
        id: ProjectId::from_uuid(Uuid::now_v7()),
        tenant_id: tenant.id,
        name: "web".into(),
        created_at: t0(),
    };
    store.create_project(project.clone()).await.unwrap();
    assert_eq!(store.get_project(project.id).await.unwrap(), Some(project.clone()));
    assert_eq!(store.get_project(ProjectId::from_uuid(Uuid::now_v7())).await.unwrap(), None);

    let key = NewApiKey {
        id: ApiKeyId::from_uuid(Uuid::now_v7()),
        tenant_id: tenant.id,
        project_id: Some(project.id),
        name: "ci".into(),
        key_hash: "ab".repeat(32),
        permissions: PermissionSet::new([Permission::ConfigWrite, Permission::ConfigRead]),
        created_at: t0(),
    };
    store.create_api_key(key.clone()).await.unwrap();
    let grant = store.find_api_key(&key.key_hash).await.unwrap().unwrap();
    assert_eq!(grant.plan, Plan::Business);
    assert_eq!(grant.key.id, key.id);
    assert_eq!(grant.key.project_id, Some(project.id));
    assert_eq!(grant.key.permissions, key.permissions);
    assert_eq!(grant.key.created_at, t0());
    assert_eq!(grant.key.revoked_at, None);
    assert!(store.find_api_key(&"cd".repeat(32)).await.unwrap().is_none());
    // The hash is unique.
    assert!(store.create_api_key(NewApiKey { id: ApiKeyId::from_uuid(Uuid::now_v7()), ..key.clone() }).await.is_err());

    assert!(store.revoke_api_key(key.id, t0() + secs(5)).await.unwrap());
    assert!(store.revoke_api_key(key.id, t0() + secs(9)).await.unwrap(), "revoking twice is fine");
    assert!(store.find_api_key(&key.key_hash).await.unwrap().is_none());
    assert!(!store.revoke_api_key(ApiKeyId::from_uuid(Uuid::now_v7()), t0()).await.unwrap());
}

async fn create_and_get_round_trip_every_field(kind: Kind) {
    let fx = fixture(kind).await;
    let id = conn_id();
    let mut new = new_connection(&fx, id, &["Acme/Checkout", "acme/billing"], &[("checkout-api", "Acme/Checkout")]);
    new.service_mappings.push(ServiceMapping {
        service_name: ServiceName::new("billing worker".into()).unwrap(),
        repo: repo("acme/billing"),
        path_prefix: PathPrefix::root(),
        default_branch: None,
    });
    fx.store.create_connection(new.clone(), 5, None).await.unwrap();
    let got = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let expected = RepoConnection {
        id,
        tenant_id: fx.tenant,
        project_id: fx.project,
        platform: Platform::GitHub,
        credentials: CredentialSummary {
            kind: CredentialKind::Token,
            hint: Some("…abcd".into()),
            base_url: new.credentials.base_url.clone(),
            updated_at: t0(),
        },
        repositories: new.repositories.clone(),
        service_mappings: new.service_mappings.clone(),
        lookback_days: LookbackDays::new(45).unwrap(),
        is_active: true,
        sync: new.repositories.iter().cloned().map(RepoSyncStatus::pending).collect(),
        created_at: t0(),
        updated_at: t0(),
        version: 1,
    };
    assert_eq!(got, expected);
    let stored = fx.store.credentials_not_under("k2", 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].connection_id, id);
    assert_eq!(stored[0].tenant_id, fx.tenant);
    assert_eq!(stored[0].project_id, fx.project);
    assert_eq!(stored[0].sealed, new.credentials.sealed);

    // Another project does not see it.
    let other = fx.other_project().await;
    assert!(fx.store.get_connection(other, id).await.unwrap().is_none());
    assert!(fx.store.get_connection(fx.project, conn_id()).await.unwrap().is_none());
}

async fn a_corrupt_row_is_an_unexpected_error_not_a_panic(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    fx.exec(&format!("UPDATE repo_connections SET platform = 'svn' WHERE id = '{id}'")).await;
    assert!(matches!(fx.store.get_connection(fx.project, id).await, Err(StoreError::Unexpected(_))));
}

async fn list_filters_and_pages_in_id_order(kind: Kind) {
    let fx = fixture(kind).await;
    let mut ids = Vec::new();
    for i in 0..5u128 {
        let id = ConnectionId::from_uuid(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0000 + i));
        let mut new = new_connection(&fx, id, &[&format!("acme/r{i}")], &[]);
        if i == 3 {
            new.platform = Platform::GitLab;
            new.repositories = vec![RepoName::parse(Platform::GitLab, "acme/sub/r3").unwrap()];
        }
        fx.store.create_connection(new, 100, None).await.unwrap();
        ids.push(id);
    }
    // Pause connection 1.
    let c1 = fx.store.get_connection(fx.project, ids[1]).await.unwrap().unwrap();
    let mut pause = change_of(&c1, &["acme/r1"], 0);
    pause.is_active = false;
    fx.store.update_connection(pause, 100).await.unwrap();
    // A connection in another project never shows.
    let other = fx.other_project().await;
    let mut foreign = new_connection(&fx, conn_id(), &["acme/r0"], &[]);
    foreign.project_id = other;
    fx.store.create_connection(foreign, 100, None).await.unwrap();

    let listed = |q: ListQuery| {
        let store = fx.store.clone();
        let project = fx.project;
        async move { store.list_connections(project, q).await.unwrap().into_iter().map(|c| c.id).collect::<Vec<_>>() }
    };
    assert_eq!(listed(all()).await, ids);
    assert_eq!(listed(ListQuery { platform: Some(Platform::GitLab), ..all() }).await, vec![ids[3]]);
    assert_eq!(listed(ListQuery { is_active: Some(false), ..all() }).await, vec![ids[1]]);
    assert_eq!(
        listed(ListQuery { platform: Some(Platform::GitHub), is_active: Some(true), ..all() }).await,
        vec![ids[0], ids[2], ids[4]]
    );
    assert_eq!(listed(ListQuery { limit: 2, ..all() }).await, ids[..2]);
    assert_eq!(listed(ListQuery { after: Some(ids[1]), limit: 2, ..all() }).await, ids[2..4]);
    assert_eq!(listed(ListQuery { after: Some(ids[4]), ..all() }).await, Vec::<ConnectionId>::new());
    // Children come along with each listed connection.
    let full = fx.store.list_connections(fx.project, all()).await.unwrap();
    assert_eq!(full[3].repositories[0].as_str(), "acme/sub/r3");
    assert!(!full[1].is_active);
    assert_eq!(full[1].version, 2);
}

async fn quota_is_enforced_with_the_figures(kind: Kind) {
    let fx = fixture(kind).await;
    create(&fx, &["acme/a", "acme/b", "acme/c"], &[]).await;
    let refused =
        fx.store.create_connection(new_connection(&fx, conn_id(), &["acme/d", "acme/e", "acme/f"], &[]), 5, None).await;
    assert_eq!(refused, Err(WriteConnectionError::QuotaExceeded(QuotaExceeded { limit: 5, used: 3, requested: 3 })));
    fx.store.create_connection(new_connection(&fx, conn_id(), &["acme/d", "acme/e"], &[]), 5, None).await.unwrap();
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories").await, 5);
    assert_eq!(fx.count("SELECT count(*) AS n FROM repo_connections").await, 2);
}

async fn concurrent_creates_never_pass_the_quota(kind: Kind) {
    let fx = fixture(kind).await;
    // A second pool on the same database stands in for a second server process.
    let second = fx.second_store().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { fx.store.clone() } else { second.clone() };
        let new = new_connection(&fx, conn_id(), &[&format!("acme/repo-{i}")], &[]);
        tasks.push(tokio::spawn(async move { store.create_connection(new, 5, None).await }));
    }
    let mut ok = 0;
    let mut over = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(WriteConnectionError::QuotaExceeded(q)) => {
                assert_eq!((q.limit, q.used, q.requested), (5, 5, 1));
                over += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, over), (5, 15));
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories").await, 5);
}

async fn taken_repositories_and_service_names_name_the_holder(kind: Kind) {
    let fx = fixture(kind).await;
    let holder = create(&fx, &["acme/checkout"], &[("checkout-api", "acme/checkout")]).await;
    // Case differs: still the same repository.
    let refused = fx.store.create_connection(new_connection(&fx, conn_id(), &["ACME/Checkout"], &[]), 100, None).await;
    assert_eq!(
        refused,
        Err(WriteConnectionError::RepositoryTaken { repository: repo("ACME/Checkout"), connection_id: holder })
    );
    let refused = fx
        .store
        .create_connection(
            new_connection(&fx, conn_id(), &["acme/other"], &[("checkout-api", "acme/other")]),
            100,
            None,
        )
        .await;
    assert_eq!(
        refused,
        Err(WriteConnectionError::ServiceNameTaken {
            service_name: ServiceName::new("checkout-api".into()).unwrap(),
            connection_id: holder
        })
    );
    assert_eq!(fx.count("SELECT count(*) AS n FROM repo_connections").await, 1, "refusals leave nothing behind");
    // The same names are free in another project.
    let other = fx.other_project().await;
    let mut elsewhere = new_connection(&fx, conn_id(), &["acme/checkout"], &[("checkout-api", "acme/checkout")]);
    elsewhere.project_id = other;
    fx.store.create_connection(elsewhere, 100, None).await.unwrap();

    // Updates are checked too, excluding the connection itself.
    let second = create(&fx, &["acme/second"], &[]).await;
    let conn = fx.store.get_connection(fx.project, second).await.unwrap().unwrap();
    let refused = fx.store.update_connection(change_of(&conn, &["acme/second", "Acme/checkout"], 1), 100).await;
    assert_eq!(
        refused,
        Err(WriteConnectionError::RepositoryTaken { repository: repo("Acme/checkout"), connection_id: holder })
    );
    let mut keep_own = change_of(&conn, &["Acme/Second"], 0);
    keep_own.service_mappings = vec![mapping("second", "Acme/Second")];
    fx.store.update_connection(keep_own, 100).await.unwrap();
}

async fn update_checks_version_and_existence(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    fx.store.update_connection(change_of(&conn, &["acme/a"], 0), 100).await.unwrap();
    assert_eq!(
        fx.store.update_connection(change_of(&conn, &["acme/a"], 0), 100).await,
        Err(WriteConnectionError::VersionConflict)
    );
    let mut gone = change_of(&conn, &["acme/a"], 0);
    gone.id = conn_id();
    assert_eq!(fx.store.update_connection(gone, 100).await, Err(WriteConnectionError::NotFound));
    let mut elsewhere = change_of(&conn, &["acme/a"], 0);
    elsewhere.project_id = fx.other_project().await;
    assert_eq!(fx.store.update_connection(elsewhere, 100).await, Err(WriteConnectionError::NotFound));
    let after = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(after.version, 2);
    assert_eq!(after.updated_at, t0() + secs(60));
}

async fn update_keeps_the_state_of_kept_repositories_unless_resyncing_all(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "acme/b"], &[("svc-a", "acme/a")]).await;
    let synced = "2026-11-22T11:00:00.000Z";
    fx.exec(&format!(
        "UPDATE connection_repositories SET sync_state = 'ready', last_synced_at = '{synced}' WHERE connection_id = '{id}'"
    )).await;
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    // Drop b, keep a (renamed in case), add c, change the mappings and pause.
    let mut change = change_of(&conn, &["acme/c", "Acme/A"], 1);
    change.service_mappings = vec![mapping("svc-c", "acme/c"), mapping("svc-a", "Acme/A")];
    change.is_active = false;
    change.lookback_days = LookbackDays::new(7).unwrap();
    fx.store.update_connection(change.clone(), 100).await.unwrap();
    let after = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(after.repositories, change.repositories);
    assert_eq!(after.service_mappings, change.service_mappings);
    assert_eq!(after.sync[0], RepoSyncStatus::pending(repo("acme/c")));
    assert_eq!(after.sync[1].repository, repo("Acme/A"));
    assert_eq!(after.sync[1].state, SyncState::Ready);
    assert_eq!(after.sync[1].last_synced_at, Some(Utc.with_ymd_and_hms(2026, 11, 22, 11, 0, 0).unwrap()));
    assert!(!after.is_active);
    assert_eq!(after.lookback_days.get(), 7);
    assert_eq!(after.credentials.updated_at, t0(), "credentials untouched");
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories").await, 2);

    // New credentials: everything goes back to pending, and they are stored.
    let mut resync = change_of(&after, &["acme/c", "Acme/A"], 0);
    resync.service_mappings = after.service_mappings.clone();
    resync.resync_all = true;
    resync.credentials = Some(NewCredentials {
        kind: CredentialKind::Token,
        hint: None,
        base_url: None,
        sealed: sealed("k2", b"new secret"),
    });
    resync.at = t0() + secs(120);
    fx.store.update_connection(resync, 100).await.unwrap();
    let after = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert!(
        after.sync.iter().all(|s| s.state == SyncState::Pending && s.last_synced_at.is_none() && s.error.is_none())
    );
    assert_eq!(after.credentials.updated_at, t0() + secs(120));
    assert_eq!(after.credentials.hint, None);
    assert_eq!(after.credentials.base_url, None);
    assert_eq!(after.version, 3);
    assert!(fx.store.credentials_not_under("k2", 10).await.unwrap().is_empty());
}

async fn update_quota_counts_added_and_frees_removed(kind: Kind) {
    let fx = fixture(kind).await;
    create(&fx, &["acme/x", "acme/y"], &[]).await;
    let id = create(&fx, &["acme/a", "acme/b", "acme/c"], &[]).await;
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    // At the limit (5): adding one more is refused...
    assert_eq!(
        fx.store.update_connection(change_of(&conn, &["acme/a", "acme/b", "acme/c", "acme/d"], 1), 5).await,
        Err(WriteConnectionError::QuotaExceeded(QuotaExceeded { limit: 5, used: 5, requested: 1 }))
    );
    // ...but swapping one for another is not.
    fx.store.update_connection(change_of(&conn, &["acme/a", "acme/b", "acme/d"], 1), 5).await.unwrap();
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    // Removing only is never refused, even over the limit.
    fx.store.update_connection(change_of(&conn, &["acme/a"], 0), 1).await.unwrap();
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories").await, 3);
}

async fn delete_removes_the_connection_and_its_children(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "acme/b"], &[("svc", "acme/a")]).await;
    let kept = create(&fx, &["acme/c"], &[("svc-c", "acme/c")]).await;
    let other = fx.other_project().await;
    assert!(!fx.store.delete_connection(other, id).await.unwrap(), "not in that project");
    assert!(fx.store.delete_connection(fx.project, id).await.unwrap());
    assert!(!fx.store.delete_connection(fx.project, id).await.unwrap());
    assert!(fx.store.get_connection(fx.project, id).await.unwrap().is_none());
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories").await, 1);
    assert_eq!(fx.count("SELECT count(*) AS n FROM service_mappings").await, 1);
    assert!(fx.store.get_connection(fx.project, kept).await.unwrap().is_some());
    // The names are free again.
    create(&fx, &["acme/a"], &[("svc", "acme/a")]).await;
}

async fn invalidate_cache_puts_repositories_back_to_pending(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "acme/b"], &[]).await;
    fx.exec(&format!(
        "UPDATE connection_repositories SET sync_state = 'error', sync_error = 'boom', \
         last_synced_at = '2026-11-22T11:00:00.000Z' WHERE connection_id = '{id}'"
    ))
    .await;
    let before = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(before.sync[0].state, SyncState::Error);
    assert_eq!(before.sync[0].error.as_deref(), Some("boom"));
    assert!(!fx.store.invalidate_cache(fx.other_project().await, id, t0()).await.unwrap());
    assert!(!fx.store.invalidate_cache(fx.project, conn_id(), t0()).await.unwrap());
    assert!(fx.store.invalidate_cache(fx.project, id, t0() + secs(1)).await.unwrap());
    let after = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(after.sync, before.repositories.iter().cloned().map(RepoSyncStatus::pending).collect::<Vec<_>>());
    assert_eq!((after.version, after.updated_at), (before.version, before.updated_at), "nothing else moves");
}

async fn idempotency_claims_replays_and_expires(kind: Kind) {
    let fx = fixture(kind).await;
    let key = IdempotencyKey::new("create-1").unwrap();
    let (lease, retention) = (30, 86_400);
    let begin = |fp: &'static str, at: DateTime<Utc>| {
        let store = fx.store.clone();
        let key = key.clone();
        let project = fx.project;
        async move { store.begin(project, &key, fp, at, lease, retention).await.unwrap() }
    };
    assert_eq!(begin("fp1", t0()).await, IdempotencyBegin::Claimed);
    assert_eq!(begin("fp1", t0() + secs(1)).await, IdempotencyBegin::InFlight { retry_after_secs: 1 });
    assert_eq!(begin("fp2", t0() + secs(1)).await, IdempotencyBegin::Mismatch);
    // The same key in another project is another key.
    let other = fx.other_project().await;
    assert_eq!(fx.store.begin(other, &key, "fp9", t0(), lease, retention).await.unwrap(), IdempotencyBegin::Claimed);

    // A failed request releases its claim; the key may be claimed again.
    fx.store.release(fx.project, &key).await.unwrap();
    assert_eq!(begin("fp2", t0() + secs(2)).await, IdempotencyBegin::Claimed);
    // An abandoned claim is taken over after the lease.
    assert_eq!(begin("fp1", t0() + secs(20)).await, IdempotencyBegin::Mismatch);
    assert_eq!(begin("fp1", t0() + secs(40)).await, IdempotencyBegin::Claimed);
    assert_eq!(begin("fp1", t0() + secs(41)).await, IdempotencyBegin::InFlight { retry_after_secs: 1 });

    // Completing in the creating transaction stores the response for replay.
    let response = StoredResponse { status: 201, body: r#"{"id":"x"}"#.into(), location: Some("/v1/x".into()) };
    let completion = IdempotencyCompletion { key: key.clone(), response: response.clone() };
    fx.store.create_connection(new_connection(&fx, conn_id(), &["acme/a"], &[]), 100, Some(completion)).await.unwrap();
    assert_eq!(begin("fp1", t0() + secs(50)).await, IdempotencyBegin::Replay(response.clone()));
    assert_eq!(begin("fp2", t0() + secs(50)).await, IdempotencyBegin::Mismatch);
    // Release never drops a completed record.
    fx.store.release(fx.project, &key).await.unwrap();
    assert_eq!(begin("fp1", t0() + secs(60)).await, IdempotencyBegin::Replay(response));
    // After the retention window the record is gone.
    assert_eq!(begin("fp2", t0() + secs(40 + 86_401)).await, IdempotencyBegin::Claimed);
}

async fn a_refused_creation_does_not_complete_the_key(kind: Kind) {
    let fx = fixture(kind).await;
    create(&fx, &["acme/a"], &[]).await;
    let key = IdempotencyKey::new("k").unwrap();
    assert_eq!(fx.store.begin(fx.project, &key, "fp", t0(), 30, 60).await.unwrap(), IdempotencyBegin::Claimed);
    let completion = IdempotencyCompletion {
        key: key.clone(),
        response: StoredResponse { status: 201, body: "{}".into(), location: None },
    };
    let refused =
        fx.store.create_connection(new_connection(&fx, conn_id(), &["acme/a"], &[]), 100, Some(completion)).await;
    assert!(matches!(refused, Err(WriteConnectionError::RepositoryTaken { .. })));
    assert_eq!(
        fx.store.begin(fx.project, &key, "fp", t0() + secs(1), 30, 60).await.unwrap(),
        IdempotencyBegin::InFlight { retry_after_secs: 1 }
    );
}

async fn reseal_only_replaces_the_value_read(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let old = credentials().sealed;
    let rows = fx.store.credentials_not_under("k2", 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(fx.store.credentials_not_under("k1", 10).await.unwrap().is_empty());
    // A stale read loses.
    assert!(!fx.store.reseal_credentials(id, &sealed("k1", b"stale"), sealed("k2", b"x")).await.unwrap());
    assert!(fx.store.reseal_credentials(id, &old, sealed("k2", b"resealed")).await.unwrap());
    assert!(!fx.store.reseal_credentials(id, &old, sealed("k2", b"again")).await.unwrap());
    assert!(fx.store.credentials_not_under("k2", 10).await.unwrap().is_empty());
    let rows = fx.store.credentials_not_under("k3", 10).await.unwrap();
    assert_eq!(rows[0].sealed, sealed("k2", b"resealed"));
    // Resealing is invisible to users: no new version, same credential time.
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!((conn.version, conn.credentials.updated_at), (1, t0()));
    // The limit holds.
    create(&fx, &["acme/b"], &[]).await;
    assert_eq!(fx.store.credentials_not_under("k3", 1).await.unwrap().len(), 1);
}

async fn ping_answers(kind: Kind) {
    let fx = fixture(kind).await;
    fx.store.ping().await.unwrap();
}

// ---- The repo cache and the sync worker's claims ----

/// The worker's defaults: a ready repository is refreshed after 15 minutes; a claim holds 10.
const INTERVAL: i64 = 900;
const LEASE: u32 = 600;

/// Claims what is due at `now`, as a worker with the default pacing would.
async fn claim_at(fx: &Fixture, now: DateTime<Utc>) -> Vec<SyncJob> {
    fx.store.claim_due(now, now - secs(INTERVAL), LEASE, 100).await.unwrap()
}

/// Claims at `now` and keeps the jobs of connection `id`, by repository name.
async fn claim_of(fx: &Fixture, id: ConnectionId, now: DateTime<Utc>) -> Vec<SyncJob> {
    let mut jobs: Vec<SyncJob> = claim_at(fx, now).await.into_iter().filter(|j| j.connection_id == id).collect();
    jobs.sort_by(|a, b| a.repository.as_str().cmp(b.repository.as_str()));
    jobs
}

fn job_for<'a>(jobs: &'a [SyncJob], name: &str) -> &'a SyncJob {
    jobs.iter().find(|j| j.repository.as_str() == name).unwrap()
}

fn pr(number: u64, merged_at: DateTime<Utc>, files: &[&str]) -> MergedPullRequest {
    MergedPullRequest {
        number,
        title: format!("PR {number}"),
        author: Some("octocat".into()),
        url: format!("https://github.com/acme/x/pull/{number}"),
        merged_at,
        merge_commit_sha: Some(format!("{number:040x}")),
        updated_at: merged_at + secs(5),
        files: files.iter().map(|f| ChangedFile::path_only(*f)).collect(),
    }
}

/// The start of the default 45-day window at `t0`.
fn window() -> DateTime<Utc> {
    t0() - TimeDelta::days(45)
}

fn success(
    pull_requests: Vec<MergedPullRequest>,
    window_start: DateTime<Utc>,
    synced_at: DateTime<Utc>,
) -> SyncSuccess {
    SyncSuccess {
        default_branch: Some("main".into()),
        // TODO(sync-code storage): the stores ignore the file tree for now.
        file_tree: None,
        pull_requests,
        window_start,
        updated_since: Some(synced_at - secs(300)),
        synced_at,
    }
}

fn failure(next_attempt_at: DateTime<Utc>, attempts: u32) -> SyncFailure {
    SyncFailure {
        message: "GitHub rate limit reached".into(),
        next_attempt_at,
        attempts,
        failed_at: next_attempt_at - secs(60),
    }
}

fn query(repository: Option<&str>, prefix: Option<&str>, limit: u32) -> PullRequestQuery {
    PullRequestQuery {
        repository_key: repository.map(str::to_owned),
        path_prefix: prefix.map(str::to_owned),
        after: None,
        limit,
    }
}

async fn listing(fx: &Fixture, id: ConnectionId, q: PullRequestQuery) -> Vec<CachedPullRequest> {
    fx.store.list_pull_requests(fx.project, id, q).await.unwrap().unwrap()
}

/// (repository key, number) of each listed PR, in order.
fn keys(listed: &[CachedPullRequest]) -> Vec<(String, u64)> {
    listed.iter().map(|c| (c.repository.key(), c.pull_request.number)).collect()
}

fn k(key: &str, number: u64) -> (String, u64) {
    (key.to_owned(), number)
}

async fn claims_lease_due_repositories_once(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "Acme/B"], &[]).await;
    let now = t0() + secs(10);
    let jobs = claim_of(&fx, id, now).await;
    assert_eq!(jobs.len(), 2);
    let a = job_for(&jobs, "acme/a");
    let expected = SyncJob {
        lease: a.lease,
        connection_id: id,
        tenant_id: fx.tenant,
        project_id: fx.project,
        platform: Platform::GitHub,
        repository: repo("acme/a"),
        credential_kind: CredentialKind::Token,
        base_url: credentials().base_url,
        sealed: credentials().sealed,
        lookback_days: LookbackDays::new(45).unwrap(),
        updated_since: None,
        // TODO(sync-code storage): the stores keep no file list yet.
        known_tree_revision: None,
        attempts: 0,
    };
    assert_eq!(*a, expected);
    assert_eq!(job_for(&jobs, "Acme/B").repository, repo("Acme/B"), "the name as the connection spells it");
    assert_ne!(jobs[0].lease, jobs[1].lease);
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert!(conn.sync.iter().all(|s| s.state == SyncState::Syncing));

    assert!(claim_at(&fx, now + secs(1)).await.is_empty(), "leased repositories are not handed out again");
    assert!(claim_at(&fx, now + secs(600)).await.is_empty(), "the lease holds to its end");
    let again = claim_of(&fx, id, now + secs(601)).await;
    assert_eq!(again.len(), 2, "an expired lease is free");
    assert!(again.iter().all(|j| jobs.iter().all(|old| old.lease != j.lease)), "with fresh leases");
    // The first worker's results come too late: the newer claim voided them.
    assert!(!fx.store.complete_sync(a, success(vec![pr(1, t0(), &["x"])], window(), now + secs(700))).await.unwrap());
    assert!(!fx.store.fail_sync(a, failure(now + secs(800), 1)).await.unwrap());
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_requests").await, 0);
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert!(conn.sync.iter().all(|s| s.state == SyncState::Syncing && s.error.is_none()));

    // The limit holds.
    create(&fx, &["acme/c", "acme/d", "acme/e"], &[]).await;
    assert_eq!(fx.store.claim_due(now, now - secs(INTERVAL), LEASE, 2).await.unwrap().len(), 2);
}

async fn pending_repositories_come_first_then_the_stalest(kind: Kind) {
    let fx = fixture(kind).await;
    let old = create(&fx, &["acme/old", "acme/older"], &[]).await;
    let jobs = claim_of(&fx, old, t0()).await;
    let done =
        |name: &str, at: DateTime<Utc>| fx.store.complete_sync(job_for(&jobs, name), success(vec![], window(), at));
    assert!(done("acme/old", t0() + secs(20)).await.unwrap());
    assert!(done("acme/older", t0() + secs(10)).await.unwrap());
    create(&fx, &["acme/new"], &[]).await;
    let later = t0() + secs(10_000);
    let one = || fx.store.claim_due(later, later - secs(INTERVAL), LEASE, 1);
    let order = [one().await.unwrap(), one().await.unwrap(), one().await.unwrap(), one().await.unwrap()];
    let names: Vec<Vec<&str>> = order.iter().map(|jobs| jobs.iter().map(|j| j.repository.as_str()).collect()).collect();
    assert_eq!(names, [vec!["acme/new"], vec!["acme/older"], vec!["acme/old"], vec![]]);
}

async fn concurrent_claims_never_hand_out_a_repository_twice(kind: Kind) {
    let fx = fixture(kind).await;
    // A second pool on the same database stands in for a second server process.
    let second = fx.second_store().await;
    for c in 0..3 {
        let names: Vec<String> = (0..10).map(|i| format!("acme/r{c}-{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        create(&fx, &names, &[]).await;
    }
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = if i % 2 == 0 { fx.store.clone() } else { second.clone() };
        tasks.push(tokio::spawn(async move { store.claim_due(t0(), t0() - secs(INTERVAL), LEASE, 7).await.unwrap() }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.unwrap().into_iter().map(|j| (j.connection_id, j.repository.key())));
    }
    let distinct: std::collections::HashSet<_> = claimed.iter().cloned().collect();
    assert_eq!(distinct.len(), claimed.len(), "no repository is claimed twice: {claimed:?}");
    assert_eq!(claimed.len(), 30, "42 claims' worth of room: every due repository is claimed");
    assert!(claim_at(&fx, t0()).await.is_empty());
}

async fn complete_writes_the_cache_and_makes_the_repository_ready(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let jobs = claim_of(&fx, id, t0()).await;
    let synced = t0() + secs(30);
    let mut older = pr(7, t0() - secs(3_600), &["src/b.rs", "src/a.rs", "src/b.rs"]);
    let mut newer = pr(8, t0() - secs(60), &[]);
    newer.author = None;
    newer.merge_commit_sha = None;
    assert!(
        fx.store.complete_sync(&jobs[0], success(vec![older.clone(), newer.clone()], window(), synced)).await.unwrap()
    );
    // A second result under the same claim is refused: the lease was spent.
    assert!(!fx.store.complete_sync(&jobs[0], success(vec![pr(9, t0(), &[])], window(), synced)).await.unwrap());

    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(
        conn.sync,
        vec![RepoSyncStatus {
            repository: repo("acme/a"),
            state: SyncState::Ready,
            last_synced_at: Some(synced),
            error: None,
            default_branch: Some("main".to_owned()),
        }]
    );
    let clean = "SELECT count(*) AS n FROM connection_repositories WHERE default_branch = 'main' AND lease_token IS NULL \
                 AND lease_until IS NULL AND attempts = 0 AND next_attempt_at IS NULL AND updated_since IS NOT NULL";
    assert_eq!(fx.count(clean).await, 1);
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_request_files").await, 2, "paths are de-duplicated");
    let listed = listing(&fx, id, query(None, None, 10)).await;
    older.files = vec![ChangedFile::path_only("src/a.rs"), ChangedFile::path_only("src/b.rs")];
    assert_eq!(
        listed,
        vec![
            CachedPullRequest { repository: repo("acme/a"), pull_request: newer },
            CachedPullRequest { repository: repo("acme/a"), pull_request: older },
        ]
    );

    // Fresh until the refresh interval has passed; then the incremental mark comes with the job.
    assert!(claim_at(&fx, synced + secs(INTERVAL)).await.is_empty());
    let again = claim_of(&fx, id, synced + secs(INTERVAL + 1)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].updated_since, Some(synced - secs(300)));
}

async fn a_resync_replaces_prs_and_their_files_and_prunes_the_window(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let day = TimeDelta::days(1);
    let first = claim_of(&fx, id, t0()).await;
    let prs = vec![pr(1, t0() - day * 10, &["x", "y"]), pr(2, t0() - day * 40, &["z"]), pr(3, t0() - day, &["w"])];
    assert!(fx.store.complete_sync(&first[0], success(prs, window(), t0() + secs(30))).await.unwrap());
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_request_files").await, 4);

    let later = t0() + secs(2_000);
    let second = claim_of(&fx, id, later).await;
    let mut retitled = pr(1, t0() - day * 10, &["y2"]);
    retitled.title = "PR 1, retitled".into();
    retitled.updated_at = later;
    // The window moved past PR 2; PR 3 did not change, so the incremental fetch leaves it out.
    let moved = t0() - day * 20;
    assert!(fx.store.complete_sync(&second[0], success(vec![retitled.clone()], moved, later)).await.unwrap());
    let listed = listing(&fx, id, query(None, None, 10)).await;
    assert_eq!(keys(&listed), [k("acme/a", 3), k("acme/a", 1)]);
    assert_eq!(listed[1].pull_request, retitled, "updated in place, its file set replaced");
    assert_eq!(listed[0].pull_request.files, [ChangedFile::path_only("w")], "an untouched PR keeps its files");
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_requests").await, 2);
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_request_files").await, 2, "old and pruned PRs' files go");
}

async fn a_failure_is_recorded_and_backs_off(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let jobs = claim_of(&fx, id, t0()).await;
    let retry = t0() + secs(120);
    assert!(fx.store.fail_sync(&jobs[0], failure(retry, 1)).await.unwrap());
    assert!(!fx.store.fail_sync(&jobs[0], failure(retry, 1)).await.unwrap(), "the lease was spent");
    assert!(!fx.store.complete_sync(&jobs[0], success(vec![], window(), retry)).await.unwrap());
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(
        (conn.sync[0].state, conn.sync[0].error.as_deref()),
        (SyncState::Error, Some("GitHub rate limit reached"))
    );
    assert_eq!(conn.sync[0].last_synced_at, None);
    let held = "SELECT count(*) AS n FROM connection_repositories WHERE lease_token IS NULL AND lease_until IS NULL \
                AND attempts = 1";
    assert_eq!(fx.count(held).await, 1);
    assert_eq!(fx.store.next_due(900).await.unwrap(), Some(retry));

    assert!(claim_at(&fx, retry - secs(1)).await.is_empty(), "not before the next attempt time");
    let again = claim_of(&fx, id, retry).await;
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    // A second failure counts up; a success clears it all.
    assert!(fx.store.fail_sync(&again[0], failure(retry + secs(240), 2)).await.unwrap());
    let third = claim_of(&fx, id, retry + secs(240)).await;
    assert_eq!(third[0].attempts, 2);
    assert!(fx.store.complete_sync(&third[0], success(vec![], window(), retry + secs(300))).await.unwrap());
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!((conn.sync[0].state, conn.sync[0].error.as_deref()), (SyncState::Ready, None));
    let cleared = "SELECT count(*) AS n FROM connection_repositories WHERE attempts = 0 AND next_attempt_at IS NULL";
    assert_eq!(fx.count(cleared).await, 1);
}

#[derive(Debug, Clone, Copy)]
enum Void {
    RequestSync,
    Invalidate,
    ResyncAll,
    RemoveRepository,
    Delete,
}

async fn voided_claims_write_nothing(kind: Kind) {
    let fx = fixture(kind).await;
    for (i, void) in [Void::RequestSync, Void::Invalidate, Void::ResyncAll, Void::RemoveRepository, Void::Delete]
        .into_iter()
        .enumerate()
    {
        let (name, kept) = (format!("acme/void-{i}"), format!("acme/kept-{i}"));
        let id = create(&fx, &[&name, &kept], &[]).await;
        let base = t0() + secs(10_000 * i64::try_from(i).unwrap());
        // A first sync fills the cache; a second claim is under way when the connection changes.
        let first = claim_of(&fx, id, base).await;
        for job in &first {
            let done = success(vec![pr(1, t0(), &["a"])], window(), base + secs(1));
            assert!(fx.store.complete_sync(job, done).await.unwrap());
        }
        let running = claim_of(&fx, id, base + secs(2_000)).await;
        let job = job_for(&running, &name);
        let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
        match void {
            Void::RequestSync => assert!(fx.store.request_sync(fx.project, id).await.unwrap()),
            Void::Invalidate => assert!(fx.store.invalidate_cache(fx.project, id, base).await.unwrap()),
            Void::ResyncAll => {
                let mut change = change_of(&conn, &[&name, &kept], 0);
                change.resync_all = true;
                change.lookback_days = LookbackDays::new(30).unwrap();
                fx.store.update_connection(change, 100).await.unwrap();
            }
            Void::RemoveRepository => fx.store.update_connection(change_of(&conn, &[&kept], 0), 100).await.unwrap(),
            Void::Delete => assert!(fx.store.delete_connection(fx.project, id).await.unwrap()),
        }
        let late = success(vec![pr(99, t0(), &["late"])], window(), base + secs(2_100));
        assert!(!fx.store.complete_sync(job, late).await.unwrap(), "{void:?}");
        assert!(!fx.store.fail_sync(job, failure(base + secs(3_000), 1)).await.unwrap(), "{void:?}");
        let count = |sql: &str| {
            let sql = format!("SELECT count(*) AS n FROM {sql} connection_id = '{id}'");
            let fx = &fx;
            async move { fx.count(&sql).await }
        };
        assert_eq!(count("pull_requests WHERE number = 99 AND").await, 0, "{void:?}");
        assert_eq!(count("pull_request_files WHERE path = 'late' AND").await, 0, "{void:?}");
        let cached = count("pull_requests WHERE").await;
        match void {
            Void::RequestSync => {
                // The cache stays; both repositories wait, with their incremental marks.
                assert_eq!(cached, 2);
                let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
                assert!(conn.sync.iter().all(|s| s.state == SyncState::Pending && s.last_synced_at.is_some()));
                let next = claim_of(&fx, id, base + secs(2_200)).await;
                assert_eq!(next.len(), 2, "due now, the running claim voided");
                assert!(next.iter().all(|j| j.updated_since == Some(base + secs(1) - secs(300))));
                assert!(!fx.store.request_sync(fx.other_project().await, id).await.unwrap());
                assert!(!fx.store.request_sync(fx.project, conn_id()).await.unwrap());
            }
            Void::Invalidate | Void::ResyncAll => {
                assert_eq!(cached, 0, "{void:?}");
                assert_eq!(count("pull_request_files WHERE").await, 0, "{void:?}");
                let wiped = count(
                    "connection_repositories WHERE sync_state = 'pending' AND updated_since IS NULL \
                     AND default_branch IS NULL AND lease_token IS NULL AND attempts = 0 AND",
                )
                .await;
                assert_eq!(wiped, 2, "{void:?}");
                let next = claim_of(&fx, id, base + secs(2_200)).await;
                assert!(next.len() == 2 && next.iter().all(|j| j.updated_since.is_none()), "{void:?}: a full fetch");
            }
            Void::RemoveRepository => {
                assert_eq!(cached, 1, "the removed repository's PRs go, the kept one's stay");
                // The kept repository's claim survives the update.
                let kept_job = job_for(&running, &kept);
                let done = success(vec![pr(2, t0(), &["b"])], window(), base + secs(2_100));
                assert!(fx.store.complete_sync(kept_job, done).await.unwrap());
                assert_eq!(count("pull_requests WHERE").await, 2);
            }
            Void::Delete => {
                assert_eq!(cached, 0);
                assert_eq!(count("pull_request_files WHERE").await, 0);
                assert_eq!(count("connection_repositories WHERE").await, 0);
            }
        }
    }
}

async fn update_keeps_the_cache_of_kept_repositories(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "acme/b"], &[]).await;
    let jobs = claim_of(&fx, id, t0()).await;
    let synced = t0() + secs(30);
    assert!(
        fx.store
            .complete_sync(job_for(&jobs, "acme/a"), success(vec![pr(1, t0(), &["f1"])], window(), synced))
            .await
            .unwrap()
    );
    assert!(
        fx.store
            .complete_sync(job_for(&jobs, "acme/b"), success(vec![pr(2, t0(), &["f2"])], window(), synced))
            .await
            .unwrap()
    );
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    // Keep a (renamed in case, moved), drop b, add c.
    fx.store.update_connection(change_of(&conn, &["acme/c", "Acme/A"], 1), 100).await.unwrap();
    let listed = listing(&fx, id, query(None, None, 10)).await;
    assert_eq!(keys(&listed), [k("acme/a", 1)]);
    assert_eq!(listed[0].repository, repo("Acme/A"), "listed under its new spelling");
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_request_files").await, 1);
    let kept = "SELECT count(*) AS n FROM connection_repositories WHERE name_key = 'acme/a' AND sync_state = 'ready' \
                AND default_branch = 'main' AND updated_since IS NOT NULL AND last_synced_at IS NOT NULL";
    assert_eq!(fx.count(kept).await, 1);
    let next = claim_of(&fx, id, synced + secs(INTERVAL + 1)).await;
    assert_eq!(next.len(), 2);
    assert_eq!(job_for(&next, "Acme/A").updated_since, Some(synced - secs(300)), "still incremental");
    assert_eq!(job_for(&next, "acme/c").updated_since, None);

    // New credentials: the cache goes, every repository is fetched whole again.
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let mut resync = change_of(&conn, &["acme/c", "Acme/A"], 0);
    resync.resync_all = true;
    resync.credentials =
        Some(NewCredentials { kind: CredentialKind::Token, hint: None, base_url: None, sealed: sealed("k2", b"new") });
    fx.store.update_connection(resync, 100).await.unwrap();
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_requests").await, 0);
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_request_files").await, 0);
    let reset = "SELECT count(*) AS n FROM connection_repositories WHERE sync_state = 'pending' AND lease_token IS NULL \
                 AND updated_since IS NULL AND attempts = 0 AND next_attempt_at IS NULL";
    assert_eq!(fx.count(reset).await, 2);
    let fresh = claim_of(&fx, id, synced + secs(INTERVAL + 2)).await;
    assert_eq!(fresh.len(), 2, "the voided claims do not hold the repositories");
    assert!(fresh.iter().all(|j| j.sealed == sealed("k2", b"new") && j.base_url.is_none()));
}

async fn deleting_a_connection_drops_its_cache_even_mid_sync(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "acme/b"], &[]).await;
    let other = create(&fx, &["acme/c"], &[]).await;
    let jobs = claim_at(&fx, t0()).await;
    for name in ["acme/a", "acme/c"] {
        let done = success(vec![pr(1, t0(), &["f", "g"])], window(), t0() + secs(5));
        assert!(fx.store.complete_sync(job_for(&jobs, name), done).await.unwrap());
    }
    assert!(fx.store.delete_connection(fx.project, id).await.unwrap());
    // b was still syncing: its result finds nothing to write to.
    let late = success(vec![pr(2, t0(), &["h"])], window(), t0() + secs(6));
    assert!(!fx.store.complete_sync(job_for(&jobs, "acme/b"), late).await.unwrap());
    assert!(!fx.store.fail_sync(job_for(&jobs, "acme/b"), failure(t0() + secs(60), 1)).await.unwrap());
    for table in ["pull_requests", "pull_request_files", "connection_repositories"] {
        let gone = fx.count(&format!("SELECT count(*) AS n FROM {table} WHERE connection_id = '{id}'")).await;
        assert_eq!(gone, 0, "{table}");
    }
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_request_files").await, 2, "the other connection's stay");
    assert_eq!(keys(&listing(&fx, other, query(None, None, 10)).await), [k("acme/c", 1)]);
    assert_eq!(fx.store.list_pull_requests(fx.project, id, query(None, None, 10)).await.unwrap(), None);
}

async fn paused_connections_are_never_claimed(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let mut pause = change_of(&conn, &["acme/a"], 0);
    pause.is_active = false;
    fx.store.update_connection(pause, 100).await.unwrap();
    assert!(claim_at(&fx, t0()).await.is_empty());
    assert_eq!(fx.store.next_due(900).await.unwrap(), None, "nothing scheduled");
    assert!(fx.store.request_sync(fx.project, id).await.unwrap());
    assert!(claim_at(&fx, t0()).await.is_empty(), "asking does not unpause");
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let mut resume = change_of(&conn, &["acme/a"], 0);
    resume.is_active = true;
    fx.store.update_connection(resume, 100).await.unwrap();
    assert_eq!(claim_of(&fx, id, t0()).await.len(), 1);
}

async fn an_unreadable_connection_is_set_aside_not_claimed(kind: Kind) {
    let fx = fixture(kind).await;
    let broken = create(&fx, &["acme/a"], &[]).await;
    let fine = create(&fx, &["acme/b"], &[]).await;
    fx.exec(&format!("UPDATE repo_connections SET credential_kind = 'carrier-pigeon' WHERE id = '{broken}'")).await;
    let jobs = claim_at(&fx, t0()).await;
    assert_eq!(jobs.iter().map(|j| j.connection_id).collect::<Vec<_>>(), [fine], "the others still sync");
    let marked = format!(
        "SELECT count(*) AS n FROM connection_repositories WHERE connection_id = '{broken}' AND sync_state = 'error' \
         AND lease_token IS NULL AND attempts = 1 AND sync_error IS NOT NULL"
    );
    assert_eq!(fx.count(&marked).await, 1);
    assert!(claim_at(&fx, t0() + secs(60)).await.is_empty(), "not retried at once");
}

async fn the_listing_orders_filters_and_pages(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "Acme/B"], &[]).await;
    let other = create(&fx, &["acme/z"], &[]).await;
    let empty = create(&fx, &["acme/empty"], &[]).await;
    let jobs = claim_at(&fx, t0()).await;
    let (m1, m2) = (t0() - secs(100), t0() - secs(200));
    let cached = [
        ("acme/a", vec![pr(3, m1, &["src/%odd/x.rs"]), pr(1, m1, &["src/a.rs"]), pr(9, m2, &["docs/a_c.md"])]),
        ("Acme/B", vec![pr(2, m1, &["src/b.rs", "abc.md"]), pr(5, m2 - secs(1), &[])]),
        ("acme/z", vec![pr(1, m1, &["src/a.rs"])]),
    ];
    for (name, prs) in cached {
        assert!(fx.store.complete_sync(job_for(&jobs, name), success(prs, window(), t0())).await.unwrap());
    }
    // Newest merge first; ties by repository key, then number.
    let all = listing(&fx, id, query(None, None, 100)).await;
    let order = [k("acme/a", 1), k("acme/a", 3), k("acme/b", 2), k("acme/a", 9), k("acme/b", 5)];
    assert_eq!(keys(&all), order);
    assert_eq!(all[2].repository, repo("Acme/B"));
    assert_eq!(all[2].pull_request.files, [ChangedFile::path_only("abc.md"), ChangedFile::path_only("src/b.rs")]);

    // Filters: the repository without regard to case; paths by literal prefix ('%' and '_' are not wildcards).
    let only = |repository: Option<&'static str>, prefix: Option<&'static str>| {
        let (fx, q) = (&fx, query(repository, prefix, 100));
        async move { keys(&listing(fx, id, q).await) }
    };
    assert_eq!(only(Some("ACME/b"), None).await, [k("acme/b", 2), k("acme/b", 5)]);
    assert_eq!(only(None, Some("src/")).await, [k("acme/a", 1), k("acme/a", 3), k("acme/b", 2)]);
    assert_eq!(only(None, Some("src/%")).await, [k("acme/a", 3)]);
    assert_eq!(only(None, Some("docs/a_")).await, [k("acme/a", 9)]);
    assert_eq!(only(None, Some("a_c")).await, Vec::<(String, u64)>::new());
    assert_eq!(only(None, Some("abc.md")).await, [k("acme/b", 2)], "a whole path is its own prefix");
    assert_eq!(only(Some("acme/a"), Some("src/a")).await, [k("acme/a", 1)]);
    assert_eq!(only(Some("acme/nope"), None).await, Vec::<(String, u64)>::new());

    // Pages: each strictly after the previous one's last row, ties included.
    let mut paged = Vec::new();
    let mut after = None;
    // Bounded, so a cursor that does not advance fails instead of spinning.
    for _ in 0..=order.len() {
        let q = PullRequestQuery { after: after.clone(), ..query(None, None, 2) };
        let page = listing(&fx, id, q).await;
        let Some(last) = page.last() else { break };
        after = Some((last.pull_request.merged_at, last.repository.key(), last.pull_request.number));
        paged.extend(keys(&page));
    }
    assert_eq!(paged, order, "every row once, in order");
    let after_tie = PullRequestQuery { after: Some((m1, "acme/a".into(), 1)), ..query(None, None, 2) };
    assert_eq!(keys(&listing(&fx, id, after_tie).await), [k("acme/a", 3), k("acme/b", 2)]);
    let filtered_page = PullRequestQuery { after: Some((m1, "acme/a".into(), 3)), ..query(None, Some("src/"), 5) };
    assert_eq!(keys(&listing(&fx, id, filtered_page).await), [k("acme/b", 2)]);

    // Only connections of the project; one with nothing cached lists nothing.
    assert_eq!(keys(&listing(&fx, other, query(None, None, 10)).await), [k("acme/z", 1)]);
    assert!(listing(&fx, empty, query(None, None, 10)).await.is_empty());
    let elsewhere = fx.other_project().await;
    assert_eq!(fx.store.list_pull_requests(elsewhere, id, query(None, None, 10)).await.unwrap(), None);
    assert_eq!(fx.store.list_pull_requests(fx.project, conn_id(), query(None, None, 10)).await.unwrap(), None);
}

async fn next_due_says_when_the_first_repository_is(kind: Kind) {
    let fx = fixture(kind).await;
    assert_eq!(fx.store.next_due(900).await.unwrap(), None);
    let id = create(&fx, &["acme/a", "acme/b"], &[]).await;
    let before = Utc::now();
    let due = fx.store.next_due(900).await.unwrap().unwrap();
    assert!(before <= due && due <= Utc::now(), "pending: now");

    let jobs = claim_of(&fx, id, t0()).await;
    assert_eq!(fx.store.next_due(900).await.unwrap(), Some(t0() + secs(i64::from(LEASE))), "a lease's end");
    let synced = t0() + secs(30);
    assert!(fx.store.complete_sync(job_for(&jobs, "acme/a"), success(vec![], window(), synced)).await.unwrap());
    assert_eq!(fx.store.next_due(900).await.unwrap(), Some(t0() + secs(600)), "the earliest of all");
    assert!(fx.store.fail_sync(job_for(&jobs, "acme/b"), failure(t0() + secs(2_000), 1)).await.unwrap());
    assert_eq!(fx.store.next_due(900).await.unwrap(), Some(synced + secs(900)), "a refresh");
    assert_eq!(fx.store.next_due(60).await.unwrap(), Some(synced + secs(60)));
    assert_eq!(fx.store.next_due(3_600).await.unwrap(), Some(t0() + secs(2_000)), "a retry");
}

async fn concurrent_deletes_and_results_neither_fail_nor_leave_rows(kind: Kind) {
    let fx = fixture(kind).await;
    let second = fx.second_store().await;
    // Results big enough to overlap a cache wipe, a sync request and the
    // delete; any may win, none may fail (a deadlock would surface as an
    // error from one of them).
    let prs: Vec<MergedPullRequest> = (1..=200).map(|n| pr(n, t0(), &["a/x", "b/y", "c/z"])).collect();
    for round in 0..8 {
        let id = create(&fx, &[&format!("acme/race-{round}"), &format!("acme/race-{round}-b")], &[]).await;
        let jobs = claim_of(&fx, id, t0() + secs(round)).await;
        let mut tasks = Vec::new();
        for job in jobs {
            let (store, done) = (second.clone(), success(prs.clone(), window(), t0() + secs(round)));
            tasks.push(tokio::spawn(async move { store.complete_sync(&job, done).await.map(|_| ()) }));
        }
        let (store, project) = (fx.store.clone(), fx.project);
        tasks.push(tokio::spawn(async move { store.invalidate_cache(project, id, t0()).await.map(|_| ()) }));
        let (store, project) = (second.clone(), fx.project);
        tasks.push(tokio::spawn(async move { store.request_sync(project, id).await.map(|_| ()) }));
        let (store, project) = (fx.store.clone(), fx.project);
        tasks.push(tokio::spawn(async move { store.delete_connection(project, id).await.map(|_| ()) }));
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        for table in ["pull_requests", "pull_request_files", "connection_repositories"] {
            let left = fx.count(&format!("SELECT count(*) AS n FROM {table} WHERE connection_id = '{id}'")).await;
            assert_eq!(left, 0, "round {round}: {table}");
        }
    }
}
