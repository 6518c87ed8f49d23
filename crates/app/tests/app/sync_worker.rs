//! The sync worker over fakes of our own ports: what it records for each
//! platform outcome. (The stores and adapters have their own suites.)
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sigsentry_app::{SyncConfig, SyncWorker};
use sigsentry_crypto::Keyring;
use sigsentry_domain::correlation::LineRange;
use sigsentry_domain::{
    BaseUrl, BaseUrlPolicy, ConnectionId, CredentialKind, Credentials, LookbackDays, Platform, ProjectId, RepoName,
    Secret, TenantId,
};
use sigsentry_ports::{
    Aad, CachedPullRequest, ChangedFile, Clock, CredentialCipher, LeaseStatus, MergedPullRequest, PlatformClient,
    PlatformError, PlatformSession, PullRequestQuery, PullRequestWindow, RateLimitState, RepositoryInfo, StoreError,
    SyncFailure, SyncJob, SyncOutcome, SyncStore, SyncSuccess, Telemetry, TreeSnapshot,
};
use uuid::Uuid;

#[derive(Clone)]
struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

#[derive(Clone, Default)]
struct FakeStore {
    jobs: Arc<Mutex<Vec<SyncJob>>>,
    completed: Arc<Mutex<Vec<SyncSuccess>>>,
    failed: Arc<Mutex<Vec<SyncFailure>>>,
    voided: bool,
    /// What renewing a lease answers (`None`: renewed).
    lease: Arc<Mutex<Option<LeaseStatus>>>,
    renewals: Arc<Mutex<usize>>,
    released: Arc<Mutex<usize>>,
    credential_reports: Arc<Mutex<Vec<sigsentry_ports::CredentialReport>>>,
}

impl sigsentry_ports::CredentialStore for FakeStore {
    async fn record_credential_use(
        &self,
        _: sigsentry_domain::ConnectionId,
        _: DateTime<Utc>,
        report: sigsentry_ports::CredentialReport,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.credential_reports.lock().unwrap().push(report);
        Ok(true)
    }

    async fn installation_refused(&self, _: i64, _: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn claim_renewal(
        &self,
        _: sigsentry_domain::ConnectionId,
        _: &sigsentry_ports::SealedSecret,
        _: Uuid,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<sigsentry_ports::RenewalClaim, StoreError> {
        Err(StoreError::Unexpected("no renewal in these tests".into()))
    }

    async fn finish_renewal(
        &self,
        _: sigsentry_domain::ConnectionId,
        _: Uuid,
        _: sigsentry_ports::RenewalOutcome,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Unexpected("no renewal in these tests".into()))
    }

    async fn abandon_renewal(&self, _: sigsentry_domain::ConnectionId, _: Uuid) -> Result<(), StoreError> {
        Err(StoreError::Unexpected("no renewal in these tests".into()))
    }
}

impl SyncStore for FakeStore {
    async fn claim_due(&self, _: DateTime<Utc>, _: DateTime<Utc>, _: u32, _: u32) -> Result<Vec<SyncJob>, StoreError> {
        Ok(std::mem::take(&mut *self.jobs.lock().unwrap()))
    }
    async fn claim_due_except(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: u32,
        limit: u32,
        except: &[TenantId],
    ) -> Result<Vec<SyncJob>, StoreError> {
        let mut jobs = self.jobs.lock().unwrap();
        let mut taken = Vec::new();
        let mut kept = Vec::new();
        for job in std::mem::take(&mut *jobs) {
            if taken.len() < limit as usize && !except.contains(&job.tenant_id) {
                taken.push(job);
            } else {
                kept.push(job);
            }
        }
        *jobs = kept;
        Ok(taken)
    }
    async fn complete_sync(&self, _: &SyncJob, success: SyncSuccess) -> Result<bool, StoreError> {
        if self.voided {
            return Ok(false);
        }
        self.completed.lock().unwrap().push(success);
        Ok(true)
    }
    async fn fail_sync(&self, _: &SyncJob, failure: SyncFailure) -> Result<bool, StoreError> {
        self.failed.lock().unwrap().push(failure);
        Ok(true)
    }
    async fn request_sync(&self, _: ProjectId, _: ConnectionId) -> Result<bool, StoreError> {
        Ok(true)
    }
    async fn list_pull_requests(
        &self,
        _: ProjectId,
        _: ConnectionId,
        _: PullRequestQuery,
    ) -> Result<Option<Vec<CachedPullRequest>>, StoreError> {
        Ok(Some(Vec::new()))
    }
    async fn renew_lease(&self, _: &SyncJob, _: DateTime<Utc>) -> Result<LeaseStatus, StoreError> {
        *self.renewals.lock().unwrap() += 1;
        Ok(self.lease.lock().unwrap().unwrap_or(LeaseStatus::Renewed))
    }
    async fn release_lease(&self, _: &SyncJob) -> Result<bool, StoreError> {
        *self.released.lock().unwrap() += 1;
        Ok(true)
    }
    async fn next_due(&self, _: u32) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(None)
    }
}

/// The branch and the known revision a `file_tree` call was given.
type TreeCall = (String, Option<String>);

/// Answers every session alike, and records what the worker asked.
#[derive(Clone)]
struct FakePlatform {
    /// `Some`: sessions do not open.
    open: Option<PlatformError>,
    repository: Result<RepositoryInfo, PlatformError>,
    tree: Result<TreeSnapshot, PlatformError>,
    pulls: Result<Vec<MergedPullRequest>, PlatformError>,
    windows: Arc<Mutex<Vec<PullRequestWindow>>>,
    /// The branch and known revision of each `file_tree` call.
    trees: Arc<Mutex<Vec<TreeCall>>>,
    /// The secret of each session opened.
    tokens: Arc<Mutex<Vec<String>>>,
    /// The calls made, each with the number of the session it was made on.
    calls: Arc<Mutex<Vec<(usize, &'static str)>>>,
    /// Listing PRs never ends (a slow or endless platform).
    hang: bool,
}

struct FakeSession {
    platform: FakePlatform,
    number: usize,
}

impl PlatformClient for FakePlatform {
    type Session = FakeSession;

    async fn open(&self, credentials: Credentials) -> Result<FakeSession, PlatformError> {
        if let Some(error) = &self.open {
            return Err(error.clone());
        }
        let mut tokens = self.tokens.lock().unwrap();
        tokens.push(credentials.secret().expect("a token").expose().to_owned());
        Ok(FakeSession { platform: self.clone(), number: tokens.len() })
    }
}

impl FakeSession {
    fn called(&self, call: &'static str) {
        self.platform.calls.lock().unwrap().push((self.number, call));
    }
}

impl PlatformSession for FakeSession {
    async fn verify(&self) -> Result<(), PlatformError> {
        self.called("verify");
        Ok(())
    }
    async fn repository(&self, _: &RepoName) -> Result<RepositoryInfo, PlatformError> {
        self.called("repository");
        self.platform.repository.clone()
    }
    async fn file_tree(&self, _: &RepoName, branch: &str, known: Option<&str>) -> Result<TreeSnapshot, PlatformError> {
        self.called("file_tree");
        self.platform.trees.lock().unwrap().push((branch.to_owned(), known.map(str::to_owned)));
        self.platform.tree.clone()
    }
    async fn merged_pull_requests(
        &self,
        _: &RepoName,
        window: PullRequestWindow,
    ) -> Result<Vec<MergedPullRequest>, PlatformError> {
        self.called("merged_pull_requests");
        self.platform.windows.lock().unwrap().push(window);
        if self.platform.hang {
            // A page every 10 ms, for ever: each one a call the fake counts.
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                self.called("page");
            }
        }
        self.platform.pulls.clone()
    }
    fn rate_limit(&self) -> RateLimitState {
        RateLimitState::default()
    }
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z").unwrap().with_timezone(&Utc)
}

fn keyring() -> Keyring {
    Keyring::from_keys(vec![("k1".into(), [9u8; 32])]).unwrap()
}

fn job(keys: &Keyring, updated_since: Option<DateTime<Utc>>, tamper: bool) -> SyncJob {
    let (tenant_id, project_id, connection_id) = (
        TenantId::from_uuid(Uuid::now_v7()),
        ProjectId::from_uuid(Uuid::now_v7()),
        ConnectionId::from_uuid(Uuid::now_v7()),
    );
    let credentials =
        Credentials::GitHubToken { token: Secret::new("ghp_workertoken000000001".into()).unwrap(), base_url: None };
    let aad = Aad::for_credentials(tenant_id, project_id, connection_id, &credentials);
    let mut sealed = keys.seal(&credentials.sealed_plaintext(), &aad).unwrap();
    if tamper {
        sealed.ciphertext[20] ^= 1;
    }
    SyncJob {
        lease: Uuid::now_v7(),
        connection_id,
        tenant_id,
        project_id,
        platform: Platform::GitHub,
        repository: RepoName::parse(Platform::GitHub, "acme/api").unwrap(),
        credential_kind: CredentialKind::Token,
        base_url: None,
        sealed,
        credentials_set_at: DateTime::<Utc>::UNIX_EPOCH,
        lookback_days: LookbackDays::new(30).unwrap(),
        updated_since,
        known_tree_revision: None,
        attempts: 0,
    }
}

fn platform(
    repository: Result<RepositoryInfo, PlatformError>,
    pulls: Result<Vec<MergedPullRequest>, PlatformError>,
) -> FakePlatform {
    FakePlatform {
        open: None,
        repository,
        tree: Ok(listed("tree1", &["src/checkout.rs"])),
        pulls,
        windows: Arc::default(),
        trees: Arc::default(),
        tokens: Arc::default(),
        calls: Arc::default(),
        hang: false,
    }
}

fn listed(revision: &str, paths: &[&str]) -> TreeSnapshot {
    TreeSnapshot::Listed { revision: revision.into(), paths: paths.iter().map(|p| (*p).to_owned()).collect() }
}

fn main_branch() -> Result<RepositoryInfo, PlatformError> {
    Ok(RepositoryInfo { default_branch: Some("main".into()), private: true })
}

fn worker(store: &FakeStore, platform: &FakePlatform) -> SyncWorker<FakeStore, Keyring, FixedClock, FakePlatform> {
    SyncWorker::new(store.clone(), keyring(), FixedClock(now()), platform.clone(), SyncConfig::default())
}

#[tokio::test]
async fn a_successful_sync_records_branch_prs_window_and_high_water_mark() {
    let store = FakeStore::default();
    let since = now() - TimeDelta::hours(1);
    store.jobs.lock().unwrap().push(job(&keyring(), Some(since), false));
    let pr = MergedPullRequest {
        number: 7,
        title: "Fix checkout".into(),
        author: Some("dev".into()),
        url: "https://github.com/acme/api/pull/7".into(),
        merged_at: now() - TimeDelta::days(2),
        merge_commit_sha: Some("abc123".into()),
        updated_at: now() - TimeDelta::days(2),
        files: vec![ChangedFile {
            path: "src/checkout.rs".into(),
            previous_path: Some("src/cart.rs".into()),
            ranges: vec![LineRange::new(38, 47)],
        }],
    };
    let platform = platform(main_branch(), Ok(vec![pr.clone()]));
    assert_eq!(worker(&store, &platform).run_once().await.unwrap(), 1);

    assert_eq!(platform.tokens.lock().unwrap().as_slice(), ["ghp_workertoken000000001"], "credentials opened");
    assert_eq!(
        platform.calls.lock().unwrap().as_slice(),
        [(1, "repository"), (1, "file_tree"), (1, "merged_pull_requests")],
        "one session for the whole job"
    );
    assert_eq!(platform.trees.lock().unwrap().as_slice(), [("main".to_owned(), None)], "the default branch, listed");
    let window = platform.windows.lock().unwrap()[0];
    assert_eq!(window.merged_since, now() - TimeDelta::days(30));
    assert_eq!(window.updated_since, Some(since), "incremental from the last high-water mark");
    let completed = store.completed.lock().unwrap();
    assert_eq!(completed[0].default_branch.as_deref(), Some("main"));
    assert_eq!(completed[0].file_tree, Some(listed("tree1", &["src/checkout.rs"])));
    assert_eq!(completed[0].pull_requests, vec![pr], "files with their previous paths and ranges");
    assert_eq!(completed[0].updated_since, Some(now() - TimeDelta::seconds(300)));
    assert!(store.failed.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_rate_limit_defers_the_next_attempt_to_the_reset() {
    let store = FakeStore::default();
    store.jobs.lock().unwrap().push(job(&keyring(), None, false));
    let reset = now() + TimeDelta::minutes(20);
    let platform = platform(main_branch(), Err(PlatformError::RateLimited { platform: "GitHub", until: reset }));
    worker(&store, &platform).run_once().await.unwrap();
    let failed = store.failed.lock().unwrap();
    assert_eq!(failed[0].next_attempt_at, reset);
    assert_eq!(failed[0].attempts, 1);
    assert!(failed[0].message.contains("rate limit"), "{}", failed[0].message);
}

#[tokio::test]
async fn rejected_credentials_are_an_error_with_backoff() {
    let store = FakeStore::default();
    let mut claimed = job(&keyring(), None, false);
    claimed.attempts = 2;
    store.jobs.lock().unwrap().push(claimed);
    let platform =
        platform(Err(PlatformError::CredentialsRejected { platform: "GitHub", status: 401 }), Ok(Vec::new()));
    worker(&store, &platform).run_once().await.unwrap();
    let failed = store.failed.lock().unwrap();
    assert_eq!(failed[0].message, "GitHub rejected the credentials (401)");
    assert_eq!(failed[0].attempts, 3);
    let delay = (failed[0].next_attempt_at - now()).num_seconds();
    assert!((120..=150).contains(&delay), "third failure waits 2 minutes (+ jitter): {delay}");
    assert!(platform.windows.lock().unwrap().is_empty(), "no PR fetch after the repository call failed");
}

#[tokio::test]
async fn credentials_that_do_not_open_never_reach_the_platform() {
    let store = FakeStore::default();
    store.jobs.lock().unwrap().push(job(&keyring(), None, true));
    let platform = platform(main_branch(), Ok(Vec::new()));
    worker(&store, &platform).run_once().await.unwrap();
    assert!(platform.tokens.lock().unwrap().is_empty());
    let failed = store.failed.lock().unwrap();
    assert!(
        failed[0].message.starts_with("the stored credentials do not match this connection"),
        "{}",
        failed[0].message
    );
}

#[tokio::test]
async fn credentials_whose_row_now_points_elsewhere_never_reach_the_platform() {
    let store = FakeStore::default();
    let mut moved = job(&keyring(), None, false);
    moved.base_url = Some(BaseUrl::parse("https://evil.example.com", BaseUrlPolicy::default()).unwrap());
    let mut other_kind = job(&keyring(), None, false);
    other_kind.credential_kind = CredentialKind::AppPassword;
    store.jobs.lock().unwrap().extend([moved, other_kind]);
    let platform = platform(main_branch(), Ok(Vec::new()));
    worker(&store, &platform).run_once().await.unwrap();
    assert!(platform.tokens.lock().unwrap().is_empty(), "no session opened");
    let failed = store.failed.lock().unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|f| f.message.contains("nothing was sent")), "{failed:?}");
}

#[tokio::test]
async fn a_voided_claim_writes_nothing() {
    let store = FakeStore { voided: true, ..FakeStore::default() };
    store.jobs.lock().unwrap().push(job(&keyring(), None, false));
    let platform = platform(main_branch(), Ok(Vec::new()));
    assert_eq!(worker(&store, &platform).run_once().await.unwrap(), 1);
    assert!(store.completed.lock().unwrap().is_empty());
    assert!(store.failed.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_session_that_does_not_open_is_an_error() {
    let store = FakeStore::default();
    store.jobs.lock().unwrap().push(job(&keyring(), None, false));
    let unusable =
        PlatformError::Unexpected { platform: "GitHub", detail: "the connection's baseUrl is not a URL".into() };
    let platform = FakePlatform { open: Some(unusable.clone()), ..platform(main_branch(), Ok(Vec::new())) };
    worker(&store, &platform).run_once().await.unwrap();
    assert!(platform.calls.lock().unwrap().is_empty());
    let failed = store.failed.lock().unwrap();
    assert_eq!(failed[0].message, unusable.to_string());
    assert_eq!(failed[0].attempts, 1);
}

#[tokio::test]
async fn a_known_tree_revision_is_passed_on_and_an_unchanged_tree_recorded() {
    let store = FakeStore::default();
    let mut claimed = job(&keyring(), None, false);
    claimed.known_tree_revision = Some("tree1".into());
    store.jobs.lock().unwrap().push(claimed);
    let platform = FakePlatform { tree: Ok(TreeSnapshot::Unchanged), ..platform(main_branch(), Ok(Vec::new())) };
    worker(&store, &platform).run_once().await.unwrap();
    assert_eq!(platform.trees.lock().unwrap().as_slice(), [("main".to_owned(), Some("tree1".to_owned()))]);
    assert_eq!(store.completed.lock().unwrap()[0].file_tree, Some(TreeSnapshot::Unchanged));
}

#[tokio::test]
async fn an_empty_repository_has_no_tree_to_list() {
    let store = FakeStore::default();
    store.jobs.lock().unwrap().push(job(&keyring(), None, false));
    let empty = Ok(RepositoryInfo { default_branch: None, private: false });
    let platform = platform(empty, Ok(Vec::new()));
    worker(&store, &platform).run_once().await.unwrap();
    assert!(platform.trees.lock().unwrap().is_empty(), "no branch: no tree call");
    let completed = store.completed.lock().unwrap();
    assert_eq!(completed[0].file_tree, None);
    assert_eq!(completed[0].default_branch, None);
}

#[tokio::test]
async fn a_tree_that_cannot_be_listed_fails_the_job() {
    let store = FakeStore::default();
    store.jobs.lock().unwrap().push(job(&keyring(), None, false));
    let too_big = PlatformError::Unexpected {
        platform: "GitHub",
        detail: "the default branch has more than 500000 files; their list is not kept".into(),
    };
    let platform = FakePlatform { tree: Err(too_big.clone()), ..platform(main_branch(), Ok(Vec::new())) };
    worker(&store, &platform).run_once().await.unwrap();
    assert!(store.completed.lock().unwrap().is_empty());
    let failed = store.failed.lock().unwrap();
    assert_eq!(failed[0].message, too_big.to_string());
    assert!(platform.windows.lock().unwrap().is_empty(), "no PR fetch after the tree failed");
}

fn hanging_worker(
    store: &FakeStore,
    platform: &FakePlatform,
    job_timeout: Duration,
) -> SyncWorker<FakeStore, Keyring, FixedClock, FakePlatform> {
    let config = SyncConfig { job_timeout, lease_check: Duration::from_millis(20), ..SyncConfig::default() };
    SyncWorker::new(store.clone(), keyring(), FixedClock(now()), platform.clone(), config)
}

fn pages(platform: &FakePlatform) -> usize {
    platform.calls.lock().unwrap().iter().filter(|(_, call)| *call == "page").count()
}

#[tokio::test]
async fn a_sync_past_its_deadline_fails_saying_so_and_calls_no_more() {
    let store = FakeStore::default();
    store.jobs.lock().unwrap().push(job(&keyring(), None, false));
    let platform = FakePlatform { hang: true, ..platform(main_branch(), Ok(Vec::new())) };
    hanging_worker(&store, &platform, Duration::from_millis(200)).run_once().await.unwrap();
    let message = store.failed.lock().unwrap()[0].message.clone();
    assert!(message.starts_with("the sync took longer than"), "{message}");
    assert!(store.completed.lock().unwrap().is_empty());
    assert!(*store.renewals.lock().unwrap() > 0, "the lease was renewed while it ran");
    let after = pages(&platform);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(pages(&platform), after, "the listing was dropped with the job");
}

#[tokio::test]
async fn a_voided_lease_stops_the_sync_and_records_nothing() {
    let store = FakeStore::default();
    store.jobs.lock().unwrap().push(job(&keyring(), None, false));
    *store.lease.lock().unwrap() = Some(LeaseStatus::Voided);
    let platform = FakePlatform { hang: true, ..platform(main_branch(), Ok(Vec::new())) };
    hanging_worker(&store, &platform, Duration::from_secs(600)).run_once().await.unwrap();
    assert!(store.failed.lock().unwrap().is_empty());
    assert!(store.completed.lock().unwrap().is_empty());
    assert_eq!(*store.released.lock().unwrap(), 0, "a voided claim is not ours to give back");
}

#[tokio::test]
async fn a_paused_connection_stops_the_sync_and_gives_the_claim_back() {
    let store = FakeStore::default();
    store.jobs.lock().unwrap().push(job(&keyring(), None, false));
    *store.lease.lock().unwrap() = Some(LeaseStatus::Paused);
    let platform = FakePlatform { hang: true, ..platform(main_branch(), Ok(Vec::new())) };
    hanging_worker(&store, &platform, Duration::from_secs(600)).run_once().await.unwrap();
    assert!(store.failed.lock().unwrap().is_empty());
    assert_eq!(*store.released.lock().unwrap(), 1);
}

#[tokio::test]
async fn stopping_the_worker_stops_running_syncs_and_gives_their_claims_back() {
    let store = FakeStore::default();
    store.jobs.lock().unwrap().push(job(&keyring(), None, false));
    let platform = FakePlatform { hang: true, ..platform(main_branch(), Ok(Vec::new())) };
    let worker = hanging_worker(&store, &platform, Duration::from_secs(600));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move { worker.run(async { stopped.await.unwrap_or(()) }).await });
    while pages(&platform) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(()).unwrap();
    running.await.unwrap();
    assert_eq!(*store.released.lock().unwrap(), 1);
    assert!(store.failed.lock().unwrap().is_empty());
}

/// Records the sync outcomes reported.
#[derive(Default)]
struct Outcomes(Mutex<Vec<SyncOutcome>>);

impl Telemetry for Outcomes {
    fn sync_job(&self, outcome: SyncOutcome, _: Duration) {
        self.0.lock().unwrap().push(outcome);
    }
    fn platform_call(&self, _: &'static str, _: Option<u16>, _: Duration) {}
    fn rate_limit_wait(&self, _: &'static str, _: Duration) {}
}

#[tokio::test]
async fn each_job_is_reported_with_its_outcome() {
    let store = FakeStore::default();
    store.jobs.lock().unwrap().push(job(&keyring(), None, false));
    let hanging = FakePlatform { hang: true, ..platform(main_branch(), Ok(Vec::new())) };
    let outcomes = Arc::new(Outcomes::default());
    let slow = hanging_worker(&store, &hanging, Duration::from_millis(100)).with_telemetry(outcomes.clone());
    slow.run_once().await.unwrap();
    let reset = now() + TimeDelta::minutes(20);
    store.jobs.lock().unwrap().push(job(&keyring(), None, false));
    let limited = platform(main_branch(), Err(PlatformError::RateLimited { platform: "GitHub", until: reset }));
    worker(&store, &limited).with_telemetry(outcomes.clone()).run_once().await.unwrap();
    assert_eq!(*outcomes.0.lock().unwrap(), [SyncOutcome::TimedOut, SyncOutcome::RateLimited]);
}
