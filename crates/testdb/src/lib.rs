//! A fresh database per test, cheap.
//!
//! [`TestDb::postgres`] clones a new database from a template that was
//! migrated once per migration set (the template's name carries a hash of
//! `migrations/postgres`), and drops it when the [`TestDb`] is dropped. Tests
//! so run in parallel, each on its own database, and a panicking test leaves
//! nothing behind for the next one. [`TestDb::sqlite`] gives a temporary file
//! instead, so a suite can be written once for both backends.
//!
//! The server comes from `SIGSENTRY_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); its user must be allowed
//! to create databases. When nothing answers there, [`TestDb::postgres`]
//! panics: a test that needs PostgreSQL never passes by skipping.
//!
//! ```no_run
//! # async fn run() {
//! let db = sigsentry_testdb::TestDb::postgres().await;
//! let url = db.url(); // postgres://postgres@127.0.0.1:5432/sigsentry_test_…
//! # let _ = url;
//! # }
//! ```

mod proxy;

pub use proxy::{TcpProxy, upstream_of};

use std::time::Duration;

use diesel::Connection;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tempfile::TempDir;
use tokio_postgres::{Client, NoTls};

/// The variable naming the server (a database the user may connect to, and
/// create databases from).
pub const ADMIN_URL_VAR: &str = "SIGSENTRY_TEST_DATABASE_URL";

/// The server of the development machines and CI.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The migrations the template is built with: the same files the store embeds.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Set by build.rs from the contents of `migrations/postgres`.
const MIGRATIONS_HASH: &str = env!("SIGSENTRY_PG_MIGRATIONS_HASH");

/// Serializes template creation across test binaries running in parallel;
/// only this crate takes it.
const TEMPLATE_LOCK: i64 = 0x5369_6754_6573_7444; // "SigTestD"

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A database for one test: a fresh PostgreSQL database, or a SQLite file in
/// a temporary directory. Dropping it removes it.
#[derive(Debug)]
pub struct TestDb {
    url: String,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Postgres {
        /// Where to connect to drop the database.
        admin_url: String,
        /// The database's name.
        name: String,
    },
    Sqlite {
        /// Deleted with the file inside on drop.
        _dir: TempDir,
    },
}

impl TestDb {
    /// A new, migrated, empty PostgreSQL database of its own.
    ///
    /// # Panics
    /// When PostgreSQL does not answer at `SIGSENTRY_TEST_DATABASE_URL` (or
    /// the default), saying how to start it; or when a database cannot be
    /// created or migrated.
    pub async fn postgres() -> TestDb {
        let admin_url = std::env::var(ADMIN_URL_VAR).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let admin = connect_admin(&admin_url).await;
        let template = ensure_template(&admin, &admin_url).await;
        let name = format!("sigsentry_test_{}", uuid::Uuid::now_v7().simple());
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name} from {template}: {}", shown(&e)));
        TestDb { url: database_url(&admin_url, &name), backend: Backend::Postgres { admin_url, name } }
    }

    /// A new, empty PostgreSQL database of its own, not migrated: for tests
    /// of the migrations themselves.
    ///
    /// # Panics
    /// As [`TestDb::postgres`].
    pub async fn postgres_unmigrated() -> TestDb {
        let admin_url = std::env::var(ADMIN_URL_VAR).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let admin = connect_admin(&admin_url).await;
        let name = format!("sigsentry_test_{}", uuid::Uuid::now_v7().simple());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {}", shown(&e)));
        TestDb { url: database_url(&admin_url, &name), backend: Backend::Postgres { admin_url, name } }
    }

    /// A `sqlite://` URL of a file (not yet created) in a new temporary
    /// directory, removed on drop. The store opening it migrates it.
    ///
    /// # Panics
    /// When no temporary directory can be made.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        TestDb { url, backend: Backend::Sqlite { _dir: dir } }
    }

    /// The URL of this test's database, for `DATABASE_URL` or a store's `open`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this is a PostgreSQL database (rather than a SQLite file).
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }
}

/// Runs `sql` (statements without results) on the database at `url`
/// (`sqlite://PATH` or `postgres://...`), behind the store's back: for tests
/// of what the service does with a row someone changed in the table.
///
/// # Panics
/// When the database cannot be reached or the SQL fails.
pub async fn execute(url: &str, sql: &str) {
    if let Some(path) = url.strip_prefix("sqlite://") {
        use diesel::connection::SimpleConnection;
        let mut connection = diesel::SqliteConnection::establish(path)
            .unwrap_or_else(|e| panic!("cannot open the SQLite database {path}: {e}"));
        connection
            .batch_execute(&format!("PRAGMA busy_timeout = 10000; {sql}"))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        return;
    }
    let (client, connection) =
        tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| panic!("cannot connect: {}", shown(&e)));
    tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {}", shown(&e)));
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Backend::Postgres { admin_url, name } = &self.backend else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on;
        // a thread with a runtime of its own can.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let admin = try_connect(&admin_url).await.ok()?;
                // FORCE ends the test's own pooled connections, still open.
                admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("sigsentry-testdb: could not drop a test database; drop the sigsentry_test_* databases by hand");
        }
    }
}

async fn try_connect(url: &str) -> Result<Client, String> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{ADMIN_URL_VAR} is not a valid URL: {e}"))?;
    let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls))
        .await
        .map_err(|_| format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))?
        .map_err(|e| shown(&e))?;
    tokio::spawn(async move {
        // Ends with the client; an error here shows as a failed query there.
        let _ = connection.await;
    });
    Ok(client)
}

async fn connect_admin(admin_url: &str) -> Client {
    match try_connect(admin_url).await {
        Ok(client) => client,
        Err(e) => panic!(
            "PostgreSQL is required for this test, and it did not answer at {} ({e}). Start the local \
             cluster with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
             or set {ADMIN_URL_VAR} to a server where the user may create databases.",
            redact(admin_url)
        ),
    }
}

/// The template for the current migrations, built on first use. Under an
/// advisory lock, so test binaries running at once build it once; built
/// under another name and renamed when complete, so a run killed half-way
/// leaves no half-migrated template behind.
async fn ensure_template(admin: &Client, admin_url: &str) -> String {
    let template = format!("sigsentry_tmpl_{MIGRATIONS_HASH}");
    let building = format!("{template}_building");
    let fail = |step: &str, e: &dyn std::fmt::Display| -> ! {
        panic!("cannot prepare the template database {template} ({step}): {e}")
    };
    admin
        .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
        .await
        .unwrap_or_else(|e| fail("lock", &shown(&e)));
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await
        .unwrap_or_else(|e| fail("look-up", &shown(&e)))
        .is_some();
    if !exists {
        // One statement per call: a multi-statement batch is one implicit
        // transaction, and CREATE DATABASE refuses to run inside one.
        for sql in [format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"), format!("CREATE DATABASE {building}")] {
            admin.batch_execute(&sql).await.unwrap_or_else(|e| fail("create", &shown(&e)));
        }
        let url = database_url(admin_url, &building);
        let migrated = tokio::task::spawn_blocking(move || -> Result<(), String> {
            // The harness is synchronous; the wrapper blocks on the async connection.
            let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).map_err(|e| e.to_string())?;
            conn.run_pending_migrations(MIGRATIONS).map(|_| ()).map_err(|e| e.to_string())
        })
        .await;
        match migrated {
            Ok(Ok(())) => {}
            Ok(Err(e)) => fail("migrate", &e),
            Err(e) => fail("migrate", &e),
        }
        // No connection may stay on a template; CREATE DATABASE ... TEMPLATE refuses otherwise.
        for sql in [
            format!("ALTER DATABASE {building} RENAME TO {template}"),
            format!("ALTER DATABASE {template} WITH ALLOW_CONNECTIONS false"),
        ] {
            admin.batch_execute(&sql).await.unwrap_or_else(|e| fail("rename", &shown(&e)));
        }
    }
    admin
        .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
        .await
        .unwrap_or_else(|e| fail("unlock", &shown(&e)));
    template
}

/// A driver error with the server's message, which its `Display` leaves out.
fn shown(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => error.to_string(),
    }
}

/// `admin_url` with its database replaced by `name`.
fn database_url(admin_url: &str, name: &str) -> String {
    match url::Url::parse(admin_url) {
        Ok(mut url) => {
            url.set_path(&format!("/{name}"));
            url.into()
        }
        Err(e) => panic!("{ADMIN_URL_VAR} is not a URL: {e}"),
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.into()
        }
        Err(_) => "(an unparsable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_swap_the_database_and_hide_the_password() {
        assert_eq!(
            database_url("postgres://u:pw@127.0.0.1:5432/postgres?sslmode=disable", "t1"),
            "postgres://u:pw@127.0.0.1:5432/t1?sslmode=disable"
        );
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    }

    #[tokio::test]
    async fn a_database_is_made_migrated_and_dropped() {
        let db = TestDb::postgres().await;
        let client = try_connect(db.url()).await.unwrap();
        let row = client.query_one("SELECT count(*) FROM __diesel_schema_migrations", &[]).await.unwrap();
        assert!(row.get::<_, i64>(0) >= 1);
        drop(client);
        let name = db.url().rsplit('/').next().unwrap().to_owned();
        drop(db);
        let admin = try_connect(DEFAULT_ADMIN_URL).await.unwrap();
        let left = admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await.unwrap();
        assert!(left.is_none(), "dropped with the TestDb");
        assert!(!TestDb::sqlite().is_postgres());
    }
}
