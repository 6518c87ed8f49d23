//! Connection settings, opening connections, and the pool.

use std::sync::Arc;
use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls;
use crate::OpenError;

/// The pool of PostgreSQL connections.
pub(crate) type PgPool = Pool<AsyncPgConnection>;

/// PostgreSQL connections per process by default ([`crate::AnyStore::open_postgres`]).
/// Several replicas share the server's `max_connections` (100 by default),
/// so this stays well below it.
pub const PG_POOL_SIZE: usize = 16;

/// How long opening one connection (TCP, TLS handshake, startup, login) may take.
/// Shorter than [`POOL_WAIT`] so that a caller waiting on a dead server gets
/// the connect error rather than a bare timeout.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_500);

/// How long a caller waits for a working connection (a free one that passes
/// the recycle check, or a new one) before the store reports itself
/// unavailable: a 503 within 2 s instead of a hang. A little under 2 s, so
/// that the timer's slack and the task hand-off stay inside the promise.
pub(crate) const POOL_WAIT: Duration = Duration::from_millis(1_900);

/// Unacknowledged data older than this breaks the socket, so a server that
/// vanished without closing the connection (a dead host, a dropped route)
/// fails queries in seconds instead of after the kernel's ~15 minutes.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle pooled connections probe the server this often, so dead ones are
/// noticed even when the recycle check is not reached.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// A parsed, checked `DATABASE_URL` and how to name it in messages.
#[derive(Clone)]
pub(crate) struct PgTarget {
    config: Arc<tokio_postgres::Config>,
    /// rustls, set up for the URL's `sslmode` (see [`tls`]).
    tls: MakeRustlsConnect,
    /// `user@host:port/database`: never the password.
    pub(crate) display: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl PgTarget {
    /// Parses `url` with the driver's own parser, so whatever passes here is
    /// what the connections will use, and sets the timeouts above.
    ///
    /// # Errors
    /// [`OpenError::InvalidUrl`] naming `DATABASE_URL` and what is wrong,
    /// without echoing the URL (it may hold a password).
    pub(crate) fn parse(url: &str) -> Result<Self, OpenError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(OpenError::InvalidUrl(
                "a PostgreSQL URL must start with postgres:// or postgresql://".to_owned(),
            ));
        }
        let (url, verification) = tls::split_sslmode(url);
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| OpenError::InvalidUrl(format!("not a valid PostgreSQL connection URL: {e}")))?;
        if config.get_hosts().is_empty() {
            return Err(OpenError::InvalidUrl("the PostgreSQL URL names no host".to_owned()));
        }
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_user_timeout(TCP_USER_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE);
        if config.get_application_name().is_none() {
            config.application_name("sigsentry-code-repos");
        }
        let display = describe(&config);
        let tls = tls::connector(&config, verification);
        Ok(Self { config: Arc::new(config), tls, display })
    }

    /// Opens one connection, giving up after [`CONNECT_TIMEOUT`] even when
    /// the server accepts TCP but never answers the startup.
    ///
    /// With `sslmode=prefer` (the default), a server whose certificate does
    /// not verify (or whose TLS handshake fails otherwise) is connected to
    /// again without TLS, as libpq's `prefer` falls back.
    pub(crate) async fn connect(&self) -> Result<AsyncPgConnection, ConnectionError> {
        let config = Arc::clone(&self.config);
        let tls = self.tls.clone();
        let shown = self.display.clone();
        let opened = tokio::time::timeout(CONNECT_TIMEOUT, async move {
            let bad = |e: tokio_postgres::Error| ConnectionError::BadConnection(tls::explain(&e));
            let (client, connection) = match config.connect(tls.clone()).await {
                Ok(opened) => opened,
                Err(e) if config.get_ssl_mode() == SslMode::Prefer && tls::is_tls_failure(&e) => {
                    tracing::debug!(database = %shown, error = %tls::explain(&e), "TLS failed with sslmode=prefer; connecting without TLS");
                    let mut plain = (*config).clone();
                    plain.ssl_mode(SslMode::Disable);
                    plain.connect(tls).await.map_err(bad)?
                }
                Err(e) => return Err(bad(e)),
            };
            let mut conn = AsyncPgConnection::try_from_client_and_connection(client, connection).await?;
            // Plan every execution with its values. diesel-async caches
            // prepared statements, and after five runs PostgreSQL may switch
            // to a generic plan that ignores them: correlation's "changes to
            // these files" then walked every PR of the window through the
            // merged_at index (15 ms -> 150 ms on the bench's cache). Planning
            // these small queries costs far less than one bad plan.
            diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, "SET plan_cache_mode = force_custom_plan")
                .await
                .map_err(|e| ConnectionError::BadConnection(format!("cannot set plan_cache_mode: {e}")))?;
            Ok(conn)
        })
        .await;
        opened.unwrap_or_else(|_| {
            Err(ConnectionError::BadConnection(format!(
                "no answer from the server within {} ms",
                CONNECT_TIMEOUT.as_millis()
            )))
        })
    }
}

fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => String::new(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let dbname = config.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{dbname}")
}

/// Builds the pool. No connection is opened yet.
///
/// Every connection taken from the pool is first checked with a `SELECT 1`
/// (`RecyclingMethod::Verified`): one the server dropped (restart, failover)
/// is thrown away and replaced, so the pool heals by itself once the server is
/// back. A connection given back inside a transaction is thrown away too.
pub(crate) fn build_pool(target: &PgTarget, max_size: usize) -> Result<PgPool, String> {
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.recycling_method = RecyclingMethod::Verified;
    let setup_target = target.clone();
    config.custom_setup = Box::new(move |_url| {
        let target = setup_target.clone();
        Box::pin(async move { target.connect().await })
    });
    // The URL is unused by `custom_setup`; the manager only keeps it for its Debug output.
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(&target.display, config);
    // The wait timeout is applied in `Pool::checkout` with tokio rather than by
    // deadpool, whose own timeouts need a runtime feature this crate does not enable.
    Pool::builder(manager).max_size(max_size.max(1)).build().map_err(|e| e.to_string())
}
