//! The sync worker: keeps each active repository's cache in step with its
//! platform. Any number of workers (threads or processes) may run: each
//! repository is claimed with a lease before it is touched.
//!
//! Each claimed repository is synced by its own task, at most
//! [`SyncConfig::concurrency`] at once; a free slot is filled as soon as it
//! frees, so a slow repository holds one slot, never a round, and one
//! tenant holds at most [`SyncConfig::per_tenant`] slots. A job runs
//! under a deadline, and beside it a watcher renews its lease every
//! [`SyncConfig::lease_check`]: when the connection is deleted or paused, or
//! the lease is voided, the job's future is dropped within that tick, and
//! with it every platform call it had in flight, so its credentials are
//! used no more.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt;
use ring::rand::{SecureRandom, SystemRandom};
use sigsentry_domain::{Credentials, TenantId, next_attempt_at};
use sigsentry_ports::{
    CipherError, Clock, CredentialCipher, CredentialStore, LeaseStatus, NoTelemetry, PlatformClient, PlatformError,
    PlatformSession, PullRequestWindow, StoreError, SyncFailure, SyncJob, SyncOutcome, SyncStore, SyncSuccess,
    Telemetry, TreeSnapshot,
};
use tokio::sync::watch;
use tokio::task::{self, JoinSet};

use crate::keeper::{StoreKeeper, StoredCredentials};

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// A `ready` repository is synced again after this long.
    pub refresh_interval_secs: u32,
    /// How long a claim holds unless renewed; a crashed worker's claims
    /// lapse after it. A running job renews it every [`Self::lease_check`].
    pub lease_secs: u32,
    /// Repositories claimed by one [`SyncWorker::run_once`].
    pub batch: u32,
    /// Repositories synced at once by one worker.
    pub concurrency: usize,
    /// Of those, the most one tenant may have running; its other due
    /// repositories wait while others' are claimed.
    pub per_tenant: usize,
    /// Longest idle sleep: new work from another process is seen within it.
    pub idle_poll: Duration,
    /// Incremental syncs re-read PR updates this far back, so a PR updated
    /// while we fetched, or a platform clock a little behind ours, is not missed.
    pub overlap_secs: u32,
    /// Longest one repository's sync may take; past it the sync fails,
    /// saying so, and is tried again later with the usual backoff.
    pub job_timeout: Duration,
    /// How often a running job's claim is checked (and its lease renewed):
    /// a deleted or paused connection stops its sync within about this long.
    pub lease_check: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            refresh_interval_secs: 900,
            lease_secs: 120,
            batch: 8,
            concurrency: 4,
            per_tenant: 3,
            idle_poll: Duration::from_secs(1),
            overlap_secs: 300,
            job_timeout: Duration::from_secs(300),
            lease_check: Duration::from_secs(1),
        }
    }
}

/// The worker over a store `S`, cipher `C`, clock `K` and platform client `P`.
#[derive(Clone)]
pub struct SyncWorker<S, C, K, P> {
    store: S,
    cipher: C,
    clock: K,
    platform: P,
    config: SyncConfig,
    telemetry: Arc<dyn Telemetry>,
}

impl<S, C, K, P> fmt::Debug for SyncWorker<S, C, K, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncWorker").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The jobs a worker runs, and how many of them each tenant has.
#[derive(Default)]
struct Running {
    tasks: JoinSet<()>,
    tenants: HashMap<task::Id, TenantId>,
    per_tenant: HashMap<TenantId, usize>,
}

impl Running {
    fn started(&mut self, task: task::Id, tenant: TenantId) {
        self.tenants.insert(task, tenant);
        *self.per_tenant.entry(tenant).or_default() += 1;
    }

    fn ended(&mut self, ended: Result<(task::Id, ()), task::JoinError>) {
        let task = match ended {
            Ok((task, ())) => task,
            Err(error) => error.id(),
        };
        if let Some(tenant) = self.tenants.remove(&task)
            && let Some(count) = self.per_tenant.get_mut(&tenant)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_tenant.remove(&tenant);
            }
        }
    }

    fn of(&self, tenant: TenantId) -> usize {
        self.per_tenant.get(&tenant).copied().unwrap_or(0)
    }

    fn full_tenants(&self, cap: usize) -> Vec<TenantId> {
        self.per_tenant.iter().filter(|(_, running)| **running >= cap).map(|(tenant, _)| *tenant).collect()
    }
}

/// How a job's run ended, before it is recorded.
enum Ended {
    /// The platform calls finished, well or not.
    Fetched(Result<SyncSuccess, SyncError>),
    /// The deadline passed first.
    TimedOut,
    /// The watcher found the claim paused or voided.
    Stopped(LeaseStatus),
    /// The worker is shutting down.
    ShuttingDown,
}

impl<S: SyncStore + CredentialStore, C: CredentialCipher, K: Clock, P: PlatformClient> SyncWorker<S, C, K, P> {
    /// Wires a worker.
    pub fn new(store: S, cipher: C, clock: K, platform: P, config: SyncConfig) -> Self {
        Self { store, cipher, clock, platform, config, telemetry: Arc::new(NoTelemetry) }
    }

    /// Reports sync jobs (outcome, duration) to `telemetry`.
    #[must_use]
    pub fn with_telemetry(mut self, telemetry: Arc<dyn Telemetry>) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Claims one batch of due repositories and syncs them, each under its
    /// deadline and watcher, [`SyncConfig::concurrency`] at once, and waits
    /// for all. Returns how many were claimed. ([`Self::run`] does not wait
    /// for batches; this is for tests and one-off runs.)
    ///
    /// # Errors
    /// [`StoreError`] when claiming fails; a failure of one repository is
    /// recorded on it, not returned.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let jobs = self.claim(self.config.batch).await?;
        let claimed = jobs.len();
        let (_stop, stopping) = watch::channel(false);
        futures_util::stream::iter(jobs)
            .for_each_concurrent(self.config.concurrency.max(1), |job| self.sync_one(job, stopping.clone()))
            .await;
        Ok(claimed)
    }

    /// Syncs due repositories until `shutdown` resolves: whenever a slot is
    /// free it claims as many as there are free slots, and syncs each in its
    /// own task; a tenant with [`SyncConfig::per_tenant`] syncs running is
    /// passed over, so one tenant's backlog never takes every slot. Idle, it
    /// sleeps until the next repository is due, at most `idle_poll`, or
    /// until a running job ends; on store errors it backs off. At shutdown
    /// running jobs stop and give their claims back.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let slots = self.config.concurrency.max(1);
        let (stop, stopping) = watch::channel(false);
        let mut running = Running::default();
        let mut failures: u32 = 0;
        loop {
            while let Some(ended) = running.tasks.try_join_next_with_id() {
                running.ended(ended);
            }
            let free = slots.saturating_sub(running.tasks.len());
            // `None`: every slot is busy; wait for one to free.
            let pause = if free == 0 {
                None
            } else {
                let full = running.full_tenants(self.config.per_tenant.max(1));
                match self.claim_except(u32::try_from(free).unwrap_or(u32::MAX), &full).await {
                    Ok(jobs) => {
                        failures = 0;
                        let claimed = jobs.len();
                        for job in jobs {
                            if running.of(job.tenant_id) >= self.config.per_tenant.max(1) {
                                // Claimed in the same batch as its tenant's others: back to the queue.
                                let _ = self.store.release_lease(&job).await;
                                continue;
                            }
                            let (worker, stopping, tenant) = (self.clone(), stopping.clone(), job.tenant_id);
                            let task = running.tasks.spawn(async move { worker.sync_one(job, stopping).await });
                            running.started(task.id(), tenant);
                        }
                        // A full claim may leave more due work: claim again at once.
                        Some(if claimed == free { Duration::ZERO } else { self.idle_pause().await })
                    }
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        tracing::warn!(%error, "sync worker cannot reach the store");
                        Some(Duration::from_millis(500u64.saturating_mul(1 << failures.min(6))))
                    }
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                Some(ended) = running.tasks.join_next_with_id(), if !running.tasks.is_empty() => running.ended(ended),
                () = tokio::time::sleep(pause.unwrap_or_default()), if pause.is_some() => {}
            }
        }
        // Jobs stop at their next await and give their claims back.
        let _ = stop.send(true);
        while running.tasks.join_next().await.is_some() {}
    }

    async fn claim_except(&self, limit: u32, except_tenants: &[TenantId]) -> Result<Vec<SyncJob>, StoreError> {
        let now = self.clock.now();
        let refresh_before = now - TimeDelta::seconds(i64::from(self.config.refresh_interval_secs));
        self.store.claim_due_except(now, refresh_before, self.config.lease_secs, limit, except_tenants).await
    }

    async fn claim(&self, limit: u32) -> Result<Vec<SyncJob>, StoreError> {
        let now = self.clock.now();
        let refresh_before = now - TimeDelta::seconds(i64::from(self.config.refresh_interval_secs));
        self.store.claim_due(now, refresh_before, self.config.lease_secs, limit).await
    }

    async fn idle_pause(&self) -> Duration {
        let due = self.store.next_due(self.config.refresh_interval_secs).await.ok().flatten();
        let until_due = due.and_then(|due| (due - self.clock.now()).to_std().ok()).unwrap_or(self.config.idle_poll);
        until_due.min(self.config.idle_poll)
    }

    /// Runs one job under its deadline and watcher, and records how it ended.
    async fn sync_one(&self, job: SyncJob, mut stopping: watch::Receiver<bool>) {
        let began = Instant::now();
        let started = self.clock.now();
        let keeper = Arc::new(self.keeper(&job));
        // Dropping the losers drops the fetch, and every request it had in flight.
        let ended = tokio::select! {
            result = self.fetch(&job, started, keeper.clone()) => Ended::Fetched(result),
            () = tokio::time::sleep(self.config.job_timeout) => Ended::TimedOut,
            status = self.watch_lease(&job) => Ended::Stopped(status),
            _ = stopping.wait_for(|stop| *stop) => Ended::ShuttingDown,
        };
        // What the calls made taught of the credentials (expiry, refusal, a
        // renewed grant), whatever became of the job.
        if let Err(error) = keeper.record().await {
            tracing::warn!(%error, connection_id = %job.connection_id, "could not record what the sync learnt of the credentials");
        }
        let (outcome, recorded) = match ended {
            Ended::Fetched(Ok(success)) => {
                let fetched = success.pull_requests.len();
                let files = match &success.file_tree {
                    Some(TreeSnapshot::Listed { paths, .. }) => Some(paths.len()),
                    Some(TreeSnapshot::Unchanged) | None => None,
                };
                let result = self.store.complete_sync(&job, success).await;
                tracing::info!(connection_id = %job.connection_id, repository = %job.repository, fetched, files, "repository synced");
                (SyncOutcome::Ready, result)
            }
            Ended::Fetched(Err(error)) => (error.outcome, self.fail(&job, error).await),
            Ended::TimedOut => {
                let secs = self.config.job_timeout.as_secs();
                let message =
                    format!("the sync took longer than {secs} seconds and was stopped; it will be tried again");
                let error = SyncError { message, retry_not_before: None, outcome: SyncOutcome::TimedOut };
                (SyncOutcome::TimedOut, self.fail(&job, error).await)
            }
            Ended::Stopped(LeaseStatus::Paused) | Ended::ShuttingDown => {
                tracing::info!(connection_id = %job.connection_id, repository = %job.repository, "sync stopped (connection paused or worker stopping); claim given back");
                (SyncOutcome::Voided, self.store.release_lease(&job).await)
            }
            Ended::Stopped(LeaseStatus::Voided | LeaseStatus::Renewed) => (SyncOutcome::Voided, Ok(false)),
        };
        let outcome = match recorded {
            Ok(true) => outcome,
            Ok(false) => {
                tracing::info!(connection_id = %job.connection_id, repository = %job.repository, "sync stopped or its result discarded: the claim was voided (deleted, invalidated or changed)");
                SyncOutcome::Voided
            }
            Err(error) => {
                // The lease lapses and another round retries.
                tracing::warn!(%error, connection_id = %job.connection_id, "could not record a sync result");
                outcome
            }
        };
        self.telemetry.sync_job(outcome, began.elapsed());
    }

    async fn fail(&self, job: &SyncJob, error: SyncError) -> Result<bool, StoreError> {
        let attempts = job.attempts.saturating_add(1);
        let failure = SyncFailure {
            message: error.message,
            next_attempt_at: next_attempt_at(self.clock.now(), attempts, jitter(), error.retry_not_before),
            attempts,
            failed_at: self.clock.now(),
        };
        tracing::warn!(connection_id = %job.connection_id, repository = %job.repository, reason = %failure.message.escape_debug(), "repository sync failed");
        self.store.fail_sync(job, failure).await
    }

    /// Renews the job's lease every [`SyncConfig::lease_check`] while it
    /// holds; resolves (never `Renewed`) once the connection is paused or
    /// the lease is gone. While the store cannot be reached the job goes on
    /// until the lease it last secured would have run out.
    async fn watch_lease(&self, job: &SyncJob) -> LeaseStatus {
        let lease = TimeDelta::seconds(i64::from(self.config.lease_secs));
        let mut held_until = self.clock.now() + lease;
        loop {
            tokio::time::sleep(self.config.lease_check).await;
            let now = self.clock.now();
            match self.store.renew_lease(job, now + lease).await {
                Ok(LeaseStatus::Renewed) => held_until = now + lease,
                Ok(status) => return status,
                Err(error) if now >= held_until => {
                    tracing::warn!(%error, connection_id = %job.connection_id, "sync stopped: its lease ran out while the store was unreachable");
                    return LeaseStatus::Voided;
                }
                Err(error) => {
                    tracing::warn!(%error, connection_id = %job.connection_id, "could not renew a sync's lease")
                }
            }
        }
    }

    /// The keeper of the job's credentials: the session reports to it and renews through it.
    fn keeper(&self, job: &SyncJob) -> StoreKeeper<S, C, K> {
        let stored = StoredCredentials { aad: job.aad(), set_at: job.credentials_set_at };
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

    /// The job's credentials, if they open with everything the row says
    /// about them bound in: a row whose platform, kind or `baseUrl` was
    /// changed behind our back fails here, before any request.
    fn open_credentials(&self, job: &SyncJob) -> Result<Credentials, SyncError> {
        let aad = job.aad();
        let failed = |message: &str| SyncError {
            message: message.to_owned(),
            retry_not_before: None,
            outcome: SyncOutcome::Failed,
        };
        let plaintext = self.cipher.open(&job.sealed, &aad).map_err(|error| match error {
            CipherError::UnknownKey(_) => failed(
                "the stored credentials were sealed with a master key that is not in the keyring; nothing was sent",
            ),
            CipherError::Tampered | CipherError::Failed => failed(
                "the stored credentials do not match this connection (its platform, credential kind or baseUrl \
                 changed since they were sealed, or they predate `sigsentry credentials reencrypt`); nothing was \
                 sent: set the credentials again",
            ),
        })?;
        Credentials::from_sealed_plaintext(job.platform, job.credential_kind, job.base_url.clone(), &plaintext)
            .map_err(|_| failed("the stored credentials are unreadable; set them again"))
    }
}

/// A failed sync, as recorded: a message for people, the platform's
/// earliest retry time if it gave one, and the outcome operators count.
struct SyncError {
    message: String,
    retry_not_before: Option<DateTime<Utc>>,
    outcome: SyncOutcome,
}

impl From<PlatformError> for SyncError {
    fn from(error: PlatformError) -> Self {
        let (retry_not_before, outcome) = match &error {
            PlatformError::RateLimited { until, .. } => (Some(*until), SyncOutcome::RateLimited),
            PlatformError::CredentialsRejected { .. } => (None, SyncOutcome::CredentialsRejected),
            _ => (None, SyncOutcome::Failed),
        };
        SyncError { message: error.to_string(), retry_not_before, outcome }
    }
}

fn jitter() -> f64 {
    let mut bytes = [0u8; 2];
    match SystemRandom::new().fill(&mut bytes) {
        Ok(()) => f64::from(u16::from_le_bytes(bytes)) / f64::from(u16::MAX),
        Err(_) => 0.5,
    }
}
