//! The sync worker: keeps each active repository's cache in step with its
//! platform. Any number of workers (threads or processes) may run: each
//! repository is claimed with a lease before it is touched.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt;
use ring::rand::{SecureRandom, SystemRandom};
use sigsentry_domain::{Credentials, next_attempt_at};
use sigsentry_ports::{
    Aad, Clock, CredentialCipher, CredentialStore, PlatformClient, PlatformError, PlatformSession, PullRequestWindow,
    StoreError, SyncFailure, SyncJob, SyncStore, SyncSuccess, TreeSnapshot,
};

use crate::keeper::{StoreKeeper, StoredCredentials};

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// A `ready` repository is synced again after this long.
    pub refresh_interval_secs: u32,
    /// How long a claim holds; a crashed worker's claims lapse after it.
    pub lease_secs: u32,
    /// Repositories claimed per round.
    pub batch: u32,
    /// Repositories synced at once by one worker.
    pub concurrency: usize,
    /// Longest idle sleep: new work from another process is seen within it.
    pub idle_poll: Duration,
    /// Incremental syncs re-read PR updates this far back, so a PR updated
    /// while we fetched, or a platform clock a little behind ours, is not missed.
    pub overlap_secs: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            refresh_interval_secs: 900,
            lease_secs: 600,
            batch: 8,
            concurrency: 4,
            idle_poll: Duration::from_secs(1),
            overlap_secs: 300,
        }
    }
}

/// The worker over a store `S`, cipher `C`, clock `K` and platform client `P`.
#[derive(Debug, Clone)]
pub struct SyncWorker<S, C, K, P> {
    store: S,
    cipher: C,
    clock: K,
    platform: P,
    config: SyncConfig,
}

impl<S: SyncStore + CredentialStore, C: CredentialCipher, K: Clock, P: PlatformClient> SyncWorker<S, C, K, P> {
    /// Wires a worker.
    pub fn new(store: S, cipher: C, clock: K, platform: P, config: SyncConfig) -> Self {
        Self { store, cipher, clock, platform, config }
    }

    /// Claims one batch of due repositories and syncs them. Returns how many
    /// were claimed.
    ///
    /// # Errors
    /// [`StoreError`] when claiming fails; a failure of one repository is
    /// recorded on it, not returned.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let refresh_before = now - TimeDelta::seconds(i64::from(self.config.refresh_interval_secs));
        let jobs = self.store.claim_due(now, refresh_before, self.config.lease_secs, self.config.batch).await?;
        let claimed = jobs.len();
        futures_util::stream::iter(jobs)
            .for_each_concurrent(self.config.concurrency.max(1), |job| async move { self.sync_one(job).await })
            .await;
        Ok(claimed)
    }

    /// Runs rounds until `shutdown` resolves. Idle, it sleeps until the next
    /// repository is due, at most `idle_poll`; on store errors it backs off.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failures: u32 = 0;
        loop {
            let pause = match self.run_once().await {
                Ok(0) => {
                    failures = 0;
                    self.idle_pause().await
                }
                Ok(_) => {
                    failures = 0;
                    Duration::ZERO
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, "sync worker cannot reach the store");
                    Duration::from_millis(500u64.saturating_mul(1 << failures.min(6)))
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn idle_pause(&self) -> Duration {
        let due = self.store.next_due(self.config.refresh_interval_secs).await.ok().flatten();
        let until_due = due.and_then(|due| (due - self.clock.now()).to_std().ok()).unwrap_or(self.config.idle_poll);
        until_due.min(self.config.idle_poll)
    }

    async fn sync_one(&self, job: SyncJob) {
        let started = self.clock.now();
        let keeper = Arc::new(self.keeper(&job));
        let outcome = self.fetch(&job, started, keeper.clone()).await;
        if let Err(error) = keeper.record().await {
            tracing::warn!(%error, connection_id = %job.connection_id, "could not record what the sync learnt of the credentials");
        }
        let recorded = match outcome {
            Ok(success) => {
                let fetched = success.pull_requests.len();
                let files = match &success.file_tree {
                    Some(TreeSnapshot::Listed { paths, .. }) => Some(paths.len()),
                    Some(TreeSnapshot::Unchanged) | None => None,
                };
                let result = self.store.complete_sync(&job, success).await;
                tracing::info!(connection_id = %job.connection_id, repository = %job.repository, fetched, files, "repository synced");
                result
            }
            Err(error) => {
                let attempts = job.attempts.saturating_add(1);
                let failure = SyncFailure {
                    message: error.message,
                    next_attempt_at: next_attempt_at(self.clock.now(), attempts, jitter(), error.retry_not_before),
                    attempts,
                    failed_at: self.clock.now(),
                };
                tracing::warn!(connection_id = %job.connection_id, repository = %job.repository, reason = %failure.message, "repository sync failed");
                self.store.fail_sync(&job, failure).await
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(connection_id = %job.connection_id, repository = %job.repository, "sync result discarded: the claim was voided (deleted, invalidated or changed)");
            }
            Err(error) => {
                // The lease lapses and another round retries.
                tracing::warn!(%error, connection_id = %job.connection_id, "could not record a sync result");
            }
        }
    }

    /// The keeper of the job's credentials: the session reports to it and renews through it.
    fn keeper(&self, job: &SyncJob) -> StoreKeeper<S, C, K> {
        let stored = StoredCredentials {
            connection_id: job.connection_id,
            aad: Aad { tenant_id: job.tenant_id, project_id: job.project_id, connection_id: job.connection_id },
            platform: job.platform,
            kind: job.credential_kind,
            base_url: job.base_url.clone(),
            set_at: job.credentials_set_at,
        };
        StoreKeeper::new(self.store.clone(), self.cipher.clone(), self.clock.clone(), stored, job.sealed.clone())
    }

    async fn fetch(
        &self,
        job: &SyncJob,
        started: DateTime<Utc>,
        keeper: Arc<StoreKeeper<S, C, K>>,
    ) -> Result<SyncSuccess, SyncError> {
        // One platform session for the whole job: the credentials are read once.
        let session = self.platform.open_kept(self.open_credentials(job)?, keeper).await?;
        let info = session.repository(&job.repository).await?;
        // The files at the default branch, unless it has not moved since the
        // stored list; an empty repository has no branch and no files.
        let file_tree = match &info.default_branch {
            Some(branch) => Some(session.file_tree(&job.repository, branch, job.known_tree_revision.as_deref()).await?),
            None => None,
        };
        let window_start = started - TimeDelta::days(i64::from(job.lookback_days.get()));
        let window = PullRequestWindow { merged_since: window_start, updated_since: job.updated_since };
        let pull_requests = session.merged_pull_requests(&job.repository, window).await?;
        Ok(SyncSuccess {
            default_branch: info.default_branch,
            file_tree,
            pull_requests,
            window_start,
            updated_since: Some(started - TimeDelta::seconds(i64::from(self.config.overlap_secs))),
            synced_at: self.clock.now(),
        })
    }

    fn open_credentials(&self, job: &SyncJob) -> Result<Credentials, SyncError> {
        let aad = Aad { tenant_id: job.tenant_id, project_id: job.project_id, connection_id: job.connection_id };
        let plaintext = self.cipher.open(&job.sealed, &aad).map_err(|e| SyncError {
            message: format!("the stored credentials cannot be opened ({e}); check the master keyring"),
            retry_not_before: None,
        })?;
        Credentials::from_sealed_plaintext(job.platform, job.credential_kind, job.base_url.clone(), &plaintext).map_err(
            |_| SyncError {
                message: "the stored credentials are unreadable; set them again".to_owned(),
                retry_not_before: None,
            },
        )
    }
}

/// A failed sync, as recorded: a message for people and the platform's
/// earliest retry time, if it gave one.
struct SyncError {
    message: String,
    retry_not_before: Option<DateTime<Utc>>,
}

impl From<PlatformError> for SyncError {
    fn from(error: PlatformError) -> Self {
        let retry_not_before = match &error {
            PlatformError::RateLimited { until, .. } => Some(*until),
            _ => None,
        };
        SyncError { message: error.to_string(), retry_not_before }
    }
}

fn jitter() -> f64 {
    let mut bytes = [0u8; 2];
    match SystemRandom::new().fill(&mut bytes) {
        Ok(()) => f64::from(u16::from_le_bytes(bytes)) / f64::from(u16::MAX),
        Err(_) => 0.5,
    }
}
