//! What only the PostgreSQL store has: URL checks, bounded waits when the
//! server is gone or hangs, recovery when it comes back, migrations under an
//! advisory lock, and row locks held by another process. The behaviour both
//! stores share is checked by the contract modules (`accounts`, `connections`, `idempotency`, `sync`).

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use sigsentry_domain::{ConnectionId, CredentialKind, LookbackDays, Plan, Platform, ProjectId, RepoName, TenantId};
use sigsentry_persistence::{AnyStore, OpenError, migrate_postgres};
use sigsentry_ports::{
    AccountStore, ConnectionStore, HealthCheck, NewConnection, NewCredentials, Project, SealedSecret, StoreError,
    Tenant,
};
use sigsentry_testdb::{TcpProxy, TestDb, upstream_of};
use tokio::net::TcpListener;
use uuid::Uuid;

/// The promise made to callers: an answer, `Unavailable` at worst, within this.
const BOUND: Duration = Duration::from_millis(2_500);

#[tokio::test]
async fn bad_urls_are_refused_naming_database_url_without_the_password() {
    for url in ["postgres://", "postgres://u:hunter2@host:notaport/db", "postgresql://u:hunter2@/db"] {
        let err = AnyStore::open_postgres(url).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, OpenError::InvalidUrl(_)), "{url}: {err:?}");
        assert!(message.contains("DATABASE_URL") && !message.contains("hunter2"), "{message}");
    }
    let err = AnyStore::open("mysql://root:hunter2@127.0.0.1/db").await.unwrap_err();
    assert!(matches!(err, OpenError::InvalidUrl(_)) && !err.to_string().contains("hunter2"), "{err}");
    assert!(matches!(AnyStore::migrate("redis://x").await, Err(OpenError::InvalidUrl(_))));
}

#[tokio::test]
async fn an_unreachable_server_fails_open_quickly() {
    // Nothing listens on a port just freed.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let err = AnyStore::open_postgres(&format!("postgres://postgres:hunter2@127.0.0.1:{port}/x")).await.unwrap_err();
    assert!(matches!(err, OpenError::PgConnect { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(started.elapsed() < BOUND);

    // A server that accepts connections and never answers.
    let hung = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = hung.local_addr().unwrap().port();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let err = AnyStore::open_postgres(&format!("postgres://postgres@127.0.0.1:{port}/x")).await.unwrap_err();
    assert!(matches!(err, OpenError::PgConnect { .. }), "{err:?}");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
}

/// Timed ping.
async fn ping(store: &AnyStore) -> (Result<(), StoreError>, Duration) {
    let started = Instant::now();
    let outcome = store.ping().await;
    (outcome, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_answers_within_bounds_while_the_server_is_away_and_recovers_by_itself() {
    let db = TestDb::postgres().await;
    let mut proxy = TcpProxy::start(upstream_of(db.url())).await;
    let store = AnyStore::open_postgres_with_pool_size(&proxy.url_via(db.url()), 4).await.unwrap();
    // Fill the pool with a few connections, so there are stale ones to throw away later.
    let warm: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn({
                let store = store.clone();
                async move { store.ping().await }
            })
        })
        .collect();
    for task in warm {
        task.await.unwrap().unwrap();
    }

    // The server hangs: connections stay open, answers never come.
    proxy.freeze(true);
    let (outcome, took) = ping(&store).await;
    eprintln!("server hanging: {outcome:?} after {took:?}");
    assert!(matches!(outcome, Err(StoreError::Unavailable(_))), "{outcome:?}");
    assert!(took < BOUND, "took {took:?}");
    proxy.freeze(false);
    let (outcome, took) = ping(&store).await;
    eprintln!("server answering again: {outcome:?} after {took:?}");
    outcome.unwrap();

    // The server goes away: every connection cut, the port closed.
    proxy.stop().await;
    for attempt in 0..3 {
        let (outcome, took) = ping(&store).await;
        eprintln!("server gone, call {attempt}: {outcome:?} after {took:?}");
        assert!(matches!(outcome, Err(StoreError::Unavailable(_))), "{outcome:?}");
        assert!(took < BOUND, "took {took:?}");
    }
    let refused = store.get_project(ProjectId::from_uuid(Uuid::now_v7())).await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");

    // It comes back on the same address: the next call works, with no restart of ours.
    proxy.restart().await;
    let (outcome, took) = ping(&store).await;
    eprintln!("server back: {outcome:?} after {took:?}");
    outcome.unwrap();
    // Every pooled connection is a working one again.
    let calls: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn({
                let store = store.clone();
                async move { store.has_no_tenants().await }
            })
        })
        .collect();
    for call in calls {
        assert!(call.await.unwrap().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let db = TestDb::postgres_unmigrated().await;
    let url = db.url().to_owned();
    let replicas: Vec<_> = (0..4)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    migrate_postgres(&url).await.map(|_| ())
                } else {
                    AnyStore::open_postgres(&url).await.map(|_| ())
                }
            })
        })
        .collect();
    for replica in replicas {
        replica.await.unwrap().unwrap();
    }
    // Scoped: the trait's `load` would shadow `AtomicBool::load` in this file.
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    let applied = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result::<N>(&mut conn)
        .await
        .unwrap()
        .n;
    let embedded =
        diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&sigsentry_persistence::PG_MIGRATIONS)
            .unwrap()
            .len();
    assert_eq!(applied, i64::try_from(embedded).unwrap(), "each migration applied once");
}

fn new_connection(tenant: TenantId, project: ProjectId, id: ConnectionId, repo: &str) -> NewConnection {
    NewConnection {
        id,
        tenant_id: tenant,
        project_id: project,
        platform: Platform::GitHub,
        credentials: NewCredentials {
            kind: CredentialKind::Token,
            hint: None,
            base_url: None,
            sealed: SealedSecret { key_id: "k1".into(), ciphertext: vec![1, 2, 3] },
            installation_id: None,
        },
        repositories: vec![RepoName::parse(Platform::GitHub, repo).unwrap()],
        service_mappings: Vec::new(),
        lookback_days: LookbackDays::new(30).unwrap(),
        webhook_secret: SealedSecret { key_id: "k1".into(), ciphertext: vec![4, 5, 6] },
        created_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_stop_waiting_do_not_break_the_pool() {
    let db = TestDb::postgres().await;
    // Two connections only, so the calls below reuse the one the abandoned write held.
    let store = AnyStore::open_postgres_with_pool_size(db.url(), 2).await.unwrap();
    let (tenant, project) = (TenantId::from_uuid(Uuid::now_v7()), ProjectId::from_uuid(Uuid::now_v7()));
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    store.create_tenant(Tenant { id: tenant, name: "Acme".into(), plan: Plan::Team, created_at: at }).await.unwrap();
    store.create_project(Project { id: project, tenant_id: tenant, name: "web".into(), created_at: at }).await.unwrap();

    // Another replica is mid-write in this project: it holds the project's row lock.
    let mut other_replica = AsyncPgConnection::establish(db.url()).await.unwrap();
    other_replica
        .batch_execute(&format!("BEGIN; SELECT id FROM projects WHERE id = '{project}' FOR NO KEY UPDATE"))
        .await
        .unwrap();
    let id = ConnectionId::from_uuid(Uuid::now_v7());
    let write = store.create_connection(new_connection(tenant, project, id, "acme/a"), 100, None);
    assert!(tokio::time::timeout(Duration::from_millis(200), write).await.is_err(), "waits for the lock");
    // Cycle through the pool while that write still waits: the connection it
    // holds must not be handed out mid-transaction.
    for _ in 0..10 {
        store.ping().await.unwrap();
        assert!(store.get_connection(project, id).await.unwrap().is_none());
    }
    other_replica.batch_execute("COMMIT").await.unwrap();
    // The abandoned write still completes once the lock is gone.
    let mut found = None;
    for _ in 0..100 {
        found = store.get_connection(project, id).await.unwrap();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(found.is_some());
}
