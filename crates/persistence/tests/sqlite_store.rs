//! The SQLite store against the port contracts, each test on a fresh file.

// clippy.toml allows unwrap in test functions only, not in this file's helpers.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use diesel_migrations::MigrationHarness;
use sigsentry_domain::{
    ApiKeyId, BaseUrl, BaseUrlPolicy, BranchName, ConnectionId, CredentialKind, CredentialSummary, IdempotencyKey,
    LookbackDays, PathPrefix, Permission, PermissionSet, Plan, Platform, ProjectId, QuotaExceeded, RepoConnection,
    RepoName, RepoSyncStatus, ServiceMapping, ServiceName, SyncState, TenantId,
};
use sigsentry_persistence::{MIGRATIONS, SqliteStore, sqlite_path};
use sigsentry_ports::{
    AccountStore, ConnectionChange, ConnectionStore, HealthCheck, IdempotencyBegin, IdempotencyCompletion,
    IdempotencyStore, ListQuery, NewApiKey, NewConnection, NewCredentials, Project, SealedSecret, StoreError,
    StoredResponse, Tenant, WriteConnectionError,
};
use tempfile::TempDir;
use uuid::Uuid;

struct Fixture {
    dir: TempDir,
    store: SqliteStore,
    tenant: TenantId,
    project: ProjectId,
}

impl Fixture {
    fn db_path(&self) -> String {
        self.dir.path().join("data/store.db").to_string_lossy().into_owned()
    }

    /// A plain connection beside the pool, to look at or tamper with rows.
    fn raw(&self) -> SqliteConnection {
        let mut conn = SqliteConnection::establish(&self.db_path()).unwrap();
        diesel::sql_query("PRAGMA busy_timeout = 5000").execute(&mut conn).unwrap();
        conn
    }

    fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        diesel::sql_query(sql).get_result::<N>(&mut self.raw()).unwrap().n
    }

    fn exec(&self, sql: &str) {
        diesel::sql_query(sql).execute(&mut self.raw()).unwrap();
    }

    async fn other_project(&self) -> ProjectId {
        let project = ProjectId::from_uuid(Uuid::now_v7());
        let row = Project { id: project, tenant_id: self.tenant, name: "other".into(), created_at: t0() };
        self.store.create_project(row).await.unwrap();
        project
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // A missing directory is created, and the URL prefix is understood.
    let url = format!("sqlite://{}", dir.path().join("data/store.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    let tenant = TenantId::from_uuid(Uuid::now_v7());
    let project = ProjectId::from_uuid(Uuid::now_v7());
    store.create_tenant(Tenant { id: tenant, name: "Acme".into(), plan: Plan::Team, created_at: t0() }).await.unwrap();
    store
        .create_project(Project { id: project, tenant_id: tenant, name: "web".into(), created_at: t0() })
        .await
        .unwrap();
    Fixture { dir, store, tenant, project }
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

#[test]
fn migrations_go_up_down_and_up_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db").to_string_lossy().into_owned();
    let mut conn = SqliteConnection::establish(&path).unwrap();
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let tables = |conn: &mut SqliteConnection| {
        diesel::sql_query(
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name <> '__diesel_schema_migrations'",
        )
        .get_result::<N>(conn)
        .unwrap()
        .n
    };
    assert_eq!(conn.run_pending_migrations(MIGRATIONS).unwrap().len(), 1);
    assert_eq!(tables(&mut conn), 7);
    conn.revert_all_migrations(MIGRATIONS).unwrap();
    assert_eq!(tables(&mut conn), 0, "down drops everything up creates");
    assert_eq!(conn.run_pending_migrations(MIGRATIONS).unwrap().len(), 1);
    assert_eq!(tables(&mut conn), 7);
    assert!(conn.run_pending_migrations(MIGRATIONS).unwrap().is_empty());
}

#[tokio::test]
async fn open_migrates_once_and_refuses_memory() {
    assert_eq!(sqlite_path("sqlite://data/x.db"), "data/x.db");
    assert_eq!(sqlite_path("sqlite:data/x.db"), "data/x.db");
    assert_eq!(sqlite_path("/abs/x.db"), "/abs/x.db");
    let fx = fixture().await;
    // Opening an existing, migrated file again is fine, also while another store has it open.
    let again = SqliteStore::open(&fx.db_path()).await.unwrap();
    again.ping().await.unwrap();
    assert!(SqliteStore::open(":memory:").await.is_err());
    assert!(SqliteStore::open("sqlite://:memory:").await.is_err());
}

#[tokio::test]
async fn pragmas_hold_on_pooled_connections() {
    let fx = fixture().await;
    assert_eq!(fx.count("SELECT count(*) AS n FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
    // Foreign keys are enforced by the pool's connections: a project of an unknown tenant is refused.
    let orphan = Project {
        id: ProjectId::from_uuid(Uuid::now_v7()),
        tenant_id: TenantId::from_uuid(Uuid::now_v7()),
        name: "x".into(),
        created_at: t0(),
    };
    assert!(matches!(fx.store.create_project(orphan).await, Err(StoreError::Unexpected(_))));
}

#[tokio::test]
async fn accounts_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("a.db").to_string_lossy()).await.unwrap();
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

#[tokio::test]
async fn create_and_get_round_trip_every_field() {
    let fx = fixture().await;
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

#[tokio::test]
async fn a_corrupt_row_is_an_unexpected_error_not_a_panic() {
    let fx = fixture().await;
    let id = create(&fx, &["acme/a"], &[]).await;
    fx.exec(&format!("UPDATE repo_connections SET platform = 'svn' WHERE id = '{id}'"));
    assert!(matches!(fx.store.get_connection(fx.project, id).await, Err(StoreError::Unexpected(_))));
}

#[tokio::test]
async fn list_filters_and_pages_in_id_order() {
    let fx = fixture().await;
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

#[tokio::test]
async fn quota_is_enforced_with_the_figures() {
    let fx = fixture().await;
    create(&fx, &["acme/a", "acme/b", "acme/c"], &[]).await;
    let refused =
        fx.store.create_connection(new_connection(&fx, conn_id(), &["acme/d", "acme/e", "acme/f"], &[]), 5, None).await;
    assert_eq!(refused, Err(WriteConnectionError::QuotaExceeded(QuotaExceeded { limit: 5, used: 3, requested: 3 })));
    fx.store.create_connection(new_connection(&fx, conn_id(), &["acme/d", "acme/e"], &[]), 5, None).await.unwrap();
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories"), 5);
    assert_eq!(fx.count("SELECT count(*) AS n FROM repo_connections"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_pass_the_quota() {
    let fx = fixture().await;
    // A second pool on the same file stands in for a second server process.
    let second = SqliteStore::open(&fx.db_path()).await.unwrap();
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
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories"), 5);
}

#[tokio::test]
async fn taken_repositories_and_service_names_name_the_holder() {
    let fx = fixture().await;
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
    assert_eq!(fx.count("SELECT count(*) AS n FROM repo_connections"), 1, "refusals leave nothing behind");
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

#[tokio::test]
async fn update_checks_version_and_existence() {
    let fx = fixture().await;
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

#[tokio::test]
async fn update_keeps_the_state_of_kept_repositories_unless_resyncing_all() {
    let fx = fixture().await;
    let id = create(&fx, &["acme/a", "acme/b"], &[("svc-a", "acme/a")]).await;
    let synced = "2026-11-22T11:00:00.000Z";
    fx.exec(&format!(
        "UPDATE connection_repositories SET sync_state = 'ready', last_synced_at = '{synced}' WHERE connection_id = '{id}'"
    ));
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
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories"), 2);

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

#[tokio::test]
async fn update_quota_counts_added_and_frees_removed() {
    let fx = fixture().await;
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
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories"), 3);
}

#[tokio::test]
async fn delete_removes_the_connection_and_its_children() {
    let fx = fixture().await;
    let id = create(&fx, &["acme/a", "acme/b"], &[("svc", "acme/a")]).await;
    let kept = create(&fx, &["acme/c"], &[("svc-c", "acme/c")]).await;
    let other = fx.other_project().await;
    assert!(!fx.store.delete_connection(other, id).await.unwrap(), "not in that project");
    assert!(fx.store.delete_connection(fx.project, id).await.unwrap());
    assert!(!fx.store.delete_connection(fx.project, id).await.unwrap());
    assert!(fx.store.get_connection(fx.project, id).await.unwrap().is_none());
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories"), 1);
    assert_eq!(fx.count("SELECT count(*) AS n FROM service_mappings"), 1);
    assert!(fx.store.get_connection(fx.project, kept).await.unwrap().is_some());
    // The names are free again.
    create(&fx, &["acme/a"], &[("svc", "acme/a")]).await;
}

#[tokio::test]
async fn invalidate_cache_puts_repositories_back_to_pending() {
    let fx = fixture().await;
    let id = create(&fx, &["acme/a", "acme/b"], &[]).await;
    fx.exec(&format!(
        "UPDATE connection_repositories SET sync_state = 'error', sync_error = 'boom', \
         last_synced_at = '2026-11-22T11:00:00.000Z' WHERE connection_id = '{id}'"
    ));
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

#[tokio::test]
async fn idempotency_claims_replays_and_expires() {
    let fx = fixture().await;
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

#[tokio::test]
async fn a_refused_creation_does_not_complete_the_key() {
    let fx = fixture().await;
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

#[tokio::test]
async fn reseal_only_replaces_the_value_read() {
    let fx = fixture().await;
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

#[tokio::test]
async fn ping_answers() {
    let fx = fixture().await;
    fx.store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_stop_waiting_do_not_break_the_pool() {
    let fx = fixture().await;
    // Another process holds the write lock, so the write below blocks in SQLite's busy wait.
    let mut other_process = fx.raw();
    diesel::connection::SimpleConnection::batch_execute(&mut other_process, "BEGIN IMMEDIATE").unwrap();
    let id = conn_id();
    let write = fx.store.create_connection(new_connection(&fx, id, &["acme/a"], &[]), 100, None);
    assert!(tokio::time::timeout(std::time::Duration::from_millis(200), write).await.is_err());
    // Cycle through every pooled connection while that write still blocks: none may be
    // the one its blocking thread holds.
    for _ in 0..20 {
        fx.store.ping().await.unwrap();
        assert!(fx.store.list_connections(fx.project, all()).await.unwrap().is_empty());
    }
    diesel::connection::SimpleConnection::batch_execute(&mut other_process, "ROLLBACK").unwrap();
    // The abandoned write still completes once the lock is gone: a caller that stops
    // waiting does not cancel it.
    let mut found = None;
    for _ in 0..100 {
        found = fx.store.get_connection(fx.project, id).await.unwrap();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(found.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_is_unavailable() {
    let fx = fixture().await;
    let mut other_process = fx.raw();
    diesel::connection::SimpleConnection::batch_execute(&mut other_process, "BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let refused = fx.store.create_connection(new_connection(&fx, conn_id(), &["acme/a"], &[]), 100, None).await;
    assert!(matches!(refused, Err(WriteConnectionError::Store(StoreError::Unavailable(_)))), "{refused:?}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(4), "waits for the busy timeout first");
    diesel::connection::SimpleConnection::batch_execute(&mut other_process, "ROLLBACK").unwrap();
    // Reads are not blocked by a writer in WAL mode, and writes work again once the lock is gone.
    create(&fx, &["acme/a"], &[]).await;
}
