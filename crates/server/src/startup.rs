//! Building and running the HTTP server; tests start it on port 0.

use std::net::TcpListener;
use std::sync::Arc;

use std::time::Duration;

use actix_web::HttpServer;
use actix_web::dev::Server;
use anyhow::Context;
use sigsentry_app::{CodeRepos, ServiceConfig, SyncConfig, SyncWorker, WebhookSecret};
use sigsentry_crypto::Keyring;
use sigsentry_domain::BaseUrlPolicy;
use sigsentry_http::{HttpSettings, HttpShared};
use sigsentry_persistence::AnyStore;
use sigsentry_platforms::{ClientSecret, GitHubAppConfig, OAuthClientConfig, PlatformClients, PlatformConfig};
use sigsentry_ports::{NoTelemetry, SystemClock, Telemetry};
use sigsentry_telemetry::Metrics;

use crate::config::Config;
use crate::master_key;

/// The services as wired in this binary.
pub type Services = CodeRepos<AnyStore, Keyring, SystemClock>;

/// The sync worker as wired in this binary.
pub type Worker = SyncWorker<AnyStore, Keyring, SystemClock, PlatformClients>;

/// A sync worker over the same store and keyring as `services`, reporting nowhere.
///
/// # Errors
/// The outbound HTTP client cannot be built.
pub fn worker(config: &Config, services: &Services) -> anyhow::Result<Worker> {
    worker_reporting(config, services, Arc::new(NoTelemetry))
}

/// A sync worker as [`worker`], reporting its jobs (outcome, duration), its
/// platform calls (platform, status) and rate-limit waits to `telemetry`.
///
/// # Errors
/// The outbound HTTP client cannot be built.
pub fn worker_reporting(config: &Config, services: &Services, telemetry: Arc<dyn Telemetry>) -> anyhow::Result<Worker> {
    let platform = PlatformClients::new(PlatformConfig {
        github_api_url: config.platform_roots.github_api_url.clone(),
        gitlab_url: config.platform_roots.gitlab_url.clone(),
        bitbucket_api_url: config.platform_roots.bitbucket_api_url.clone(),
        policy: BaseUrlPolicy { allow_private: config.allow_private_base_urls },
        github_app: config.renewal.github_app.as_ref().map(|app| GitHubAppConfig {
            app_id: app.app_id.clone(),
            private_key_pem: ClientSecret::new(app.private_key_pem.expose().clone()),
        }),
        gitlab_oauth: config.renewal.gitlab_oauth.as_ref().map(oauth_client),
        bitbucket_oauth: config.renewal.bitbucket_oauth.as_ref().map(oauth_client),
        bitbucket_token_url: config.renewal.bitbucket_token_url.clone(),
        ..PlatformConfig::default()
    })
    .context("cannot set up the platform clients (SIGSENTRY_GITHUB_APP_PRIVATE_KEY must be an RSA key in PEM)")?
    .with_telemetry(Arc::clone(&telemetry));
    let sync = SyncConfig {
        refresh_interval_secs: config.sync_interval_secs,
        job_timeout: Duration::from_secs(u64::from(config.sync_job_timeout_secs)),
        concurrency: usize::try_from(config.sync_concurrency).unwrap_or(usize::MAX),
        per_tenant: usize::try_from(config.sync_tenant_concurrency).unwrap_or(usize::MAX),
        ..SyncConfig::default()
    };
    let worker = SyncWorker::new(services.store().clone(), services.cipher().clone(), SystemClock, platform, sync);
    Ok(worker.with_telemetry(telemetry))
}

fn oauth_client(client: &crate::config::OAuthClientConfig) -> OAuthClientConfig {
    OAuthClientConfig {
        client_id: client.client_id.clone(),
        client_secret: ClientSecret::new(client.client_secret.expose().clone()),
        redirect_uri: client.redirect_uri.clone(),
    }
}

/// A running worker; [`WorkerHandle::stop`] stops its running syncs (their
/// claims given back) and waits for it.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    /// Starts `worker` on the current runtime.
    pub fn spawn(worker: Worker) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            worker
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self { stop, task }
    }

    /// Asks the worker to stop and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Opens the store (applying migrations) and loads the keyring.
///
/// # Errors
/// A store that cannot be opened or a keyring that cannot be loaded.
pub async fn services(config: &Config) -> anyhow::Result<Services> {
    // The keyring first: a PostgreSQL replica without one must not touch the database.
    let keyring = master_key::load(config)?;
    let store = AnyStore::open(config.database_url.as_str()).await.context("cannot open the store (DATABASE_URL)")?;
    Ok(CodeRepos::new(store, keyring, SystemClock, service_config(config)))
}

fn service_config(config: &Config) -> ServiceConfig {
    ServiceConfig {
        quotas: config.quotas,
        base_url_policy: BaseUrlPolicy { allow_private: config.allow_private_base_urls },
        github_app_webhook_secret: config
            .github_app_webhook_secret
            .as_ref()
            .map(|secret| WebhookSecret::from_config(secret.expose().clone())),
        renewal: config.renewal.setup(),
        ..ServiceConfig::default()
    }
}

/// A bound, not yet running, server (and its metrics listener, if apart).
pub struct Application {
    port: u16,
    server: Server,
    metrics_server: Option<(u16, Server)>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
    }
}

impl Application {
    /// Binds `config.listen` (port 0 picks a free port) and builds the server.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub fn build(config: &Config, services: Services, metrics: Metrics) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .with_context(|| format!("cannot listen on {} (SIGSENTRY_LISTEN)", config.listen))?;
        let address = listener.local_addr()?;
        let port = address.port();
        let settings = HttpSettings {
            public_url: config.public_url.clone().unwrap_or_else(|| format!("http://{address}")),
            rate_limit_per_minute: config.rate_limit_per_minute,
            body_timeout: Duration::from_secs(u64::from(config.body_timeout_secs)),
            serve_metrics: config.metrics_listen.is_none(),
        };
        // Built once: every worker thread counts into one limiter and one registry.
        let shared = HttpShared::new(settings, metrics.clone());
        let server = HttpServer::new(move || sigsentry_http::build_app(services.clone(), shared.clone()))
            .listen(listener)?
            .shutdown_timeout(10)
            .run();
        let metrics_server = match config.metrics_listen {
            None => None,
            Some(address) => {
                let listener = TcpListener::bind(address)
                    .with_context(|| format!("cannot listen on {address} (SIGSENTRY_METRICS_LISTEN)"))?;
                let port = listener.local_addr()?.port();
                let server = HttpServer::new(move || sigsentry_http::metrics_app(metrics.clone()))
                    .workers(1)
                    .listen(listener)?
                    .run();
                Some((port, server))
            }
        };
        Ok(Self { port, server, metrics_server })
    }

    /// The port of the metrics listener, when it has its own.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(port, _)| *port)
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or Ctrl-C, then drains in-flight requests.
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        match self.metrics_server {
            None => self.server.await,
            Some((_, metrics)) => {
                // A server serves only while polled: the metrics one runs beside.
                let stop = metrics.handle();
                let metrics = tokio::spawn(metrics);
                let served = self.server.await;
                stop.stop(true).await;
                let _ = metrics.await;
                served
            }
        }
    }
}
