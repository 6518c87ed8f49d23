//! TLS to PostgreSQL, as the URL's `sslmode` asks. The test server has
//! `ssl=on` with a self-signed certificate: `require` encrypts without
//! verifying it, `prefer` (the default) falls back to plaintext when it does
//! not verify, and `verify-full` and `verify-ca` refuse it.

use chrono::{TimeZone, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sigsentry_domain::{Plan, TenantId};
use sigsentry_persistence::{AnyStore, OpenError, migrate_postgres};
use sigsentry_ports::{AccountStore, HealthCheck, Tenant};
use sigsentry_testdb::TestDb;
use uuid::Uuid;

fn with_sslmode(url: &str, mode: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode={mode}")
}

#[derive(QueryableByName, Debug)]
struct Sessions {
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    encrypted: i64,
}

/// The store's sessions on this test's database, seen from another
/// connection: how many, and how many of them over TLS.
async fn store_sessions(url: &str) -> Sessions {
    let mut observer = AsyncPgConnection::establish(url).await.unwrap();
    diesel::sql_query(
        "SELECT count(*) AS total, count(*) FILTER (WHERE s.ssl) AS encrypted \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.datname = current_database() AND a.application_name = 'sigsentry-code-repos'",
    )
    .get_result(&mut observer)
    .await
    .unwrap()
}

#[tokio::test]
async fn sslmode_require_encrypts_without_verifying_the_certificate() {
    let db = TestDb::postgres().await;
    let url = with_sslmode(db.url(), "require");
    migrate_postgres(&url).await.unwrap();
    let store = AnyStore::open_postgres_with_pool_size(&url, 2).await.unwrap();

    let id = TenantId::from_uuid(Uuid::now_v7());
    let tenant = Tenant {
        id,
        name: "Acme".into(),
        plan: Plan::Team,
        created_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
    };
    store.create_tenant(tenant.clone()).await.unwrap();
    assert_eq!(store.get_tenant(id).await.unwrap(), Some(tenant));

    let sessions = store_sessions(db.url()).await;
    assert!(sessions.total >= 1, "{sessions:?}");
    assert_eq!(sessions.encrypted, sessions.total, "every pooled session is over TLS");
}

#[tokio::test]
async fn the_default_falls_back_to_plaintext_when_the_certificate_does_not_verify() {
    let db = TestDb::postgres().await;
    let store = AnyStore::open_postgres_with_pool_size(db.url(), 1).await.unwrap();
    store.ping().await.unwrap();
    let sessions = store_sessions(db.url()).await;
    assert!(sessions.total >= 1 && sessions.encrypted == 0, "{sessions:?}");
}

#[tokio::test]
async fn verify_modes_refuse_a_self_signed_certificate() {
    let db = TestDb::postgres().await;
    for mode in ["verify-full", "verify-ca"] {
        let err = AnyStore::open_postgres(&with_sslmode(db.url(), mode)).await.unwrap_err();
        assert!(matches!(err, OpenError::PgConnect { .. }), "{mode}: {err:?}");
        // The why, not only tokio-postgres's "error performing TLS handshake".
        assert!(err.to_string().contains("invalid peer certificate"), "{mode}: {err}");
    }
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    ssl: bool,
}

#[tokio::test]
async fn the_test_server_offers_tls() {
    // The tests above mean something only if the server speaks TLS.
    let db = TestDb::postgres().await;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let Flag { ssl } =
        diesel::sql_query("SELECT current_setting('ssl')::bool AS ssl").get_result(&mut conn).await.unwrap();
    assert!(ssl, "the test server must run with ssl=on");
}
