//! What only the SQLite store has: file paths, pragmas, refusing an
//! in-memory database, and SQLite's single write lock. The behaviour both
//! stores share is checked by the contract modules (`accounts`, `connections`, `idempotency`, `sync`).

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use sigsentry_domain::{
    BaseUrl, BaseUrlPolicy, ConnectionId, CredentialKind, LookbackDays, Plan, Platform, ProjectId, RepoName, TenantId,
};
use sigsentry_persistence::{AnyStore, sqlite_path};
use sigsentry_ports::{
    AccountStore, ConnectionStore, HealthCheck, ListQuery, NewConnection, NewCredentials, Project, SealedSecret,
    StoreError, Tenant, WriteConnectionError,
};
use tempfile::TempDir;
use uuid::Uuid;

struct Fixture {
    dir: TempDir,
    store: AnyStore,
    tenant: TenantId,
    project: ProjectId,
}

impl Fixture {
    fn db_path(&self) -> String {
        self.dir.path().join("data/store.db").to_string_lossy().into_owned()
    }

    /// A plain connection beside the pool, as another process would hold one.
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
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // A missing directory is created, and the URL prefix is understood.
    let url = format!("sqlite://{}", dir.path().join("data/store.db").display());
    let store = AnyStore::open_sqlite(&url).await.unwrap();
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

fn new_connection(fx: &Fixture, id: ConnectionId, repos: &[&str], _services: &[(&str, &str)]) -> NewConnection {
    NewConnection {
        id,
        tenant_id: fx.tenant,
        project_id: fx.project,
        platform: Platform::GitHub,
        credentials: NewCredentials {
            kind: CredentialKind::Token,
            hint: None,
            base_url: Some(
                BaseUrl::parse("https://ghe.acme.io/api/v3", BaseUrlPolicy { allow_private: false }).unwrap(),
            ),
            sealed: SealedSecret { key_id: "k1".into(), ciphertext: vec![1, 2, 3] },
            installation_id: None,
        },
        repositories: repos.iter().map(|r| RepoName::parse(Platform::GitHub, r).unwrap()).collect(),
        service_mappings: Vec::new(),
        lookback_days: LookbackDays::new(45).unwrap(),
        webhook_secret: SealedSecret { key_id: "k1".into(), ciphertext: vec![4, 5, 6] },
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

fn all() -> ListQuery {
    ListQuery {
        platform: None,
        is_active: None,
        credential_status: Vec::new(),
        now: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        after: None,
        limit: 100,
    }
}

#[tokio::test]
async fn open_migrates_once_and_refuses_memory() {
    assert_eq!(sqlite_path("sqlite://data/x.db"), "data/x.db");
    assert_eq!(sqlite_path("sqlite:data/x.db"), "data/x.db");
    assert_eq!(sqlite_path("/abs/x.db"), "/abs/x.db");
    let fx = fixture().await;
    // Opening an existing, migrated file again is fine, also while another store has it open.
    let again = AnyStore::open_sqlite(&fx.db_path()).await.unwrap();
    again.ping().await.unwrap();
    assert!(AnyStore::open_sqlite(":memory:").await.is_err());
    assert!(AnyStore::open_sqlite("sqlite://:memory:").await.is_err());
}

#[tokio::test]
async fn pragmas_hold_on_pooled_connections() {
    let fx = fixture().await;
    assert_eq!(fx.count("SELECT count(*) AS n FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
    // foreign_keys on pooled connections is checked by the contract suite (references_are_enforced).
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

/// What the planner makes of correlation's two lookups on a database that
/// never saw ANALYZE: the migrations' fixed statistics must lead it to the
/// path and name indexes. Without them it walked every PR of the window
/// through the `merged_at` index (240 ms instead of 10 on the bench's cache).
#[tokio::test]
async fn correlation_lookups_are_planned_by_path_and_name_from_the_start() {
    #[derive(QueryableByName)]
    struct Step {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }
    let fx = fixture().await;
    let plan = |sql: &str| -> String {
        let steps = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}")).load::<Step>(&mut fx.raw()).unwrap();
        steps.into_iter().map(|s| s.detail).collect::<Vec<_>>().join(" | ")
    };
    let changes = |matches: &str| {
        format!(
            "SELECT f.path, p.number FROM pull_request_files f JOIN pull_requests p \
             ON p.connection_id = f.connection_id AND p.repository_key = f.repository_key AND p.number = f.number \
             WHERE f.connection_id = 'c' AND f.connection_id IN (SELECT id FROM repo_connections WHERE project_id = 'p') \
             AND f.repository_key = 'acme/a' AND {matches} AND p.merged_at >= '2026-01-01' AND p.merged_at <= '2026-12-01' \
             ORDER BY p.merged_at DESC, p.number DESC LIMIT 20000"
        )
    };
    let by_path = plan(&changes("f.path IN ('a.py', 'b.py', 'c.py')"));
    assert!(by_path.contains("pull_request_files_connection_id_path"), "{by_path}");
    let by_previous = plan(&changes("f.previous_path IN ('a.py', 'b.py') AND f.path NOT IN ('a.py', 'b.py')"));
    assert!(by_previous.contains("pull_request_files_connection_id_previous_path"), "{by_previous}");
    for steps in [&by_path, &by_previous] {
        assert!(!steps.contains("merged_at"), "no walk over the window's PRs: {steps}");
    }
    let named = plan(
        "SELECT path FROM repository_files WHERE connection_id IN (SELECT id FROM repo_connections WHERE project_id = 'p') \
         AND name_key IN ('a.py', '__init__.py') LIMIT 50000",
    );
    assert!(named.contains("repository_files_connection_id_name_key"), "{named}");
}
