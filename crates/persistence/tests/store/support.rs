//! The contract suite's fixture: a store on a database of its own per test,
//! a raw connection beside it, and the values the tests build on.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use sigsentry_domain::{
    BaseUrl, BaseUrlPolicy, BranchName, ConnectionId, CredentialKind, LookbackDays, PathPrefix, Plan, Platform,
    ProjectId, RepoConnection, RepoName, ServiceMapping, ServiceName, TenantId,
};
use sigsentry_persistence::{AnyStore, sqlite_path};
use sigsentry_ports::{
    AccountStore, ConnectionChange, ConnectionStore, ListQuery, NewConnection, NewCredentials, Project, SealedSecret,
    Tenant,
};
use sigsentry_testdb::TestDb;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
}

pub(crate) async fn test_db(kind: Kind) -> TestDb {
    match kind {
        Kind::Sqlite => TestDb::sqlite(),
        Kind::Postgres => TestDb::postgres().await,
    }
}

#[derive(QueryableByName)]
pub(crate) struct N {
    #[diesel(sql_type = BigInt)]
    pub(crate) n: i64,
}

pub(crate) struct Fixture {
    // Dropped before `db`, whose drop removes the database.
    pub(crate) store: AnyStore,
    pub(crate) db: TestDb,
    pub(crate) tenant: TenantId,
    pub(crate) project: ProjectId,
}

impl Fixture {
    /// A second store on the same database, as another server process would open it.
    pub(crate) async fn second_store(&self) -> AnyStore {
        AnyStore::open(self.db.url()).await.unwrap()
    }

    /// Runs `sql` on a plain connection beside the pool, to look at or tamper with rows.
    /// The SQL must read the same in both dialects (ids and times as quoted literals do).
    pub(crate) async fn raw<T: Send + 'static>(&self, sql: &str, query: RawQuery<T>) -> T {
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

    pub(crate) async fn count(&self, sql: &str) -> i64 {
        self.raw(sql, RawQuery::count()).await
    }

    pub(crate) async fn exec(&self, sql: &str) {
        self.raw(sql, RawQuery::exec()).await;
    }

    pub(crate) async fn other_project(&self) -> ProjectId {
        let project = ProjectId::from_uuid(Uuid::now_v7());
        let row = Project { id: project, tenant_id: self.tenant, name: "other".into(), created_at: t0() };
        self.store.create_project(row).await.unwrap();
        project
    }
}

pub(crate) type PgRun<T> = for<'c> fn(
    &'c mut diesel_async::AsyncPgConnection,
    String,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'c>>;

/// One raw query, spelt for each backend's connection type.
pub(crate) struct RawQuery<T> {
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

pub(crate) async fn fixture(kind: Kind) -> Fixture {
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

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap() + TimeDelta::milliseconds(123)
}

pub(crate) fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

pub(crate) fn repo(name: &str) -> RepoName {
    RepoName::parse(Platform::GitHub, name).unwrap()
}

pub(crate) fn mapping(service: &str, repo_name: &str) -> ServiceMapping {
    ServiceMapping {
        service_name: ServiceName::new(service.into()).unwrap(),
        repo: repo(repo_name),
        path_prefix: PathPrefix::new("src").unwrap(),
        default_branch: Some(BranchName::new("main".into()).unwrap()),
    }
}

pub(crate) fn sealed(key_id: &str, bytes: &[u8]) -> SealedSecret {
    SealedSecret { key_id: key_id.into(), ciphertext: bytes.to_vec() }
}

pub(crate) fn credentials() -> NewCredentials {
    NewCredentials {
        kind: CredentialKind::Token,
        hint: Some("…abcd".into()),
        base_url: Some(BaseUrl::parse("https://ghe.acme.io/api/v3", BaseUrlPolicy { allow_private: false }).unwrap()),
        sealed: sealed("k1", &[1, 2, 3, 0, 255]),
        installation_id: None,
    }
}

pub(crate) fn new_connection(
    fx: &Fixture,
    id: ConnectionId,
    repos: &[&str],
    services: &[(&str, &str)],
) -> NewConnection {
    NewConnection {
        id,
        tenant_id: fx.tenant,
        project_id: fx.project,
        platform: Platform::GitHub,
        credentials: credentials(),
        repositories: repos.iter().map(|r| repo(r)).collect(),
        service_mappings: services.iter().map(|(s, r)| mapping(s, r)).collect(),
        lookback_days: LookbackDays::new(45).unwrap(),
        webhook_secret: sealed("k1", b"sealed webhook secret"),
        created_at: t0(),
    }
}

pub(crate) fn conn_id() -> ConnectionId {
    ConnectionId::from_uuid(Uuid::now_v7())
}

pub(crate) async fn create(fx: &Fixture, repos: &[&str], services: &[(&str, &str)]) -> ConnectionId {
    let id = conn_id();
    fx.store.create_connection(new_connection(fx, id, repos, services), 100, None).await.unwrap();
    id
}

pub(crate) fn change_of(conn: &RepoConnection, repos: &[&str]) -> ConnectionChange {
    ConnectionChange {
        id: conn.id,
        project_id: conn.project_id,
        expected_version: conn.version,
        credentials: None,
        repositories: repos.iter().map(|r| repo(r)).collect(),
        service_mappings: Vec::new(),
        lookback_days: conn.lookback_days,
        is_active: conn.is_active,
        webhook_secret: None,
        resync_all: false,
        at: t0() + secs(60),
    }
}

pub(crate) fn all() -> ListQuery {
    ListQuery {
        platform: None,
        is_active: None,
        credential_status: Vec::new(),
        now: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        after: None,
        limit: 100,
    }
}
