//! The application services over a fake of the store port: what they make
//! of the store's answers, where no database could easily produce them (an
//! update that keeps losing its race) or where the logic is the service's
//! own (how correlation asks the store and assembles its answer).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sigsentry_app::{CodeRepos, ProjectScope, ServiceConfig, UpdateError};
use sigsentry_crypto::Keyring;
use sigsentry_domain::correlation::{CorrelationDraft, LineRange, Unmapped};
use sigsentry_domain::{
    ApiKeyId, BranchName, ConnectionId, CredentialKind, CredentialSummary, IdempotencyKey, LookbackDays, PatchDraft,
    PathPrefix, Plan, Platform, ProjectId, RepoConnection, RepoName, RepoSyncStatus, ServiceMapping, ServiceName,
    SyncState, TenantId,
};
use sigsentry_ports::{
    AccountStore, ApiKeyGrant, CachedPullRequest, Clock, CodeIndexStore, ConnectionChange, ConnectionStore, FileChange,
    FileRef, HealthCheck, IdempotencyBegin, IdempotencyCompletion, IdempotencyStore, IndexedFile, LeaseStatus,
    ListQuery, NewApiKey, NewConnection, Project, PullRequestQuery, SealedCredentialsRow, SealedSecret, StoreError,
    SyncFailure, SyncJob, SyncStore, SyncSuccess, Tenant, WriteConnectionError,
};
use sigsentry_ports::{
    DeliveryMark, DeliveryOutcome, SealedWebhookSecretRow, WakeRepository, WebhookStore, WebhookTarget,
};
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

#[derive(Clone)]
struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        t0()
    }
}

/// A store that holds connections in memory, answers every update with a
/// lost race, and serves scripted code-index rows, recording the questions.
#[derive(Clone, Default)]
struct FakeStore {
    connections: Arc<Mutex<Vec<RepoConnection>>>,
    updates: Arc<Mutex<usize>>,
    files: Arc<Mutex<Vec<IndexedFile>>>,
    changes: Arc<Mutex<Vec<FileChange>>>,
    asked_names: Arc<Mutex<Vec<Vec<String>>>>,
    asked_files: Arc<Mutex<Vec<Vec<String>>>>,
}

fn unused<T>() -> Result<T, StoreError> {
    Err(StoreError::Unexpected("not used by these tests".into()))
}

impl AccountStore for FakeStore {
    async fn create_tenant(&self, _: Tenant) -> Result<(), StoreError> {
        unused()
    }
    async fn get_tenant(&self, _: TenantId) -> Result<Option<Tenant>, StoreError> {
        unused()
    }
    async fn create_project(&self, _: Project) -> Result<(), StoreError> {
        unused()
    }
    async fn get_project(&self, _: ProjectId) -> Result<Option<Project>, StoreError> {
        unused()
    }
    async fn create_api_key(&self, _: NewApiKey) -> Result<(), StoreError> {
        unused()
    }
    async fn revoke_api_key(&self, _: ApiKeyId, _: DateTime<Utc>) -> Result<bool, StoreError> {
        unused()
    }
    async fn find_api_key(&self, _: &str) -> Result<Option<ApiKeyGrant>, StoreError> {
        unused()
    }
    async fn has_no_tenants(&self) -> Result<bool, StoreError> {
        unused()
    }
}

impl ConnectionStore for FakeStore {
    async fn create_connection(
        &self,
        _: NewConnection,
        _: u32,
        _: Option<IdempotencyCompletion>,
    ) -> Result<(), WriteConnectionError> {
        Err(unused::<()>().unwrap_err().into())
    }
    async fn get_connection(&self, _: ProjectId, id: ConnectionId) -> Result<Option<RepoConnection>, StoreError> {
        Ok(self.connections.lock().unwrap().iter().find(|c| c.id == id).cloned())
    }
    async fn list_connections(&self, _: ProjectId, query: ListQuery) -> Result<Vec<RepoConnection>, StoreError> {
        let all = self.connections.lock().unwrap();
        Ok(all
            .iter()
            .filter(|c| query.is_active.is_none_or(|active| c.is_active == active))
            .filter(|c| query.after.is_none_or(|after| c.id > after))
            .take(query.limit as usize)
            .cloned()
            .collect())
    }
    async fn update_connection(&self, _: ConnectionChange, _: u32) -> Result<(), WriteConnectionError> {
        *self.updates.lock().unwrap() += 1;
        Err(WriteConnectionError::VersionConflict)
    }
    async fn delete_connection(&self, _: ProjectId, _: ConnectionId) -> Result<bool, StoreError> {
        unused()
    }
    async fn invalidate_cache(&self, _: ProjectId, _: ConnectionId, _: DateTime<Utc>) -> Result<bool, StoreError> {
        unused()
    }
    async fn credentials_not_under(&self, _: &str, _: u32) -> Result<Vec<SealedCredentialsRow>, StoreError> {
        unused()
    }
    async fn credentials_after(
        &self,
        _: Option<ConnectionId>,
        _: u32,
    ) -> Result<Vec<SealedCredentialsRow>, StoreError> {
        unused()
    }
    async fn credential_key_ids(&self) -> Result<Vec<String>, StoreError> {
        unused()
    }
    async fn reseal_credentials(&self, _: ConnectionId, _: &SealedSecret, _: SealedSecret) -> Result<bool, StoreError> {
        unused()
    }
}

impl IdempotencyStore for FakeStore {
    async fn begin(
        &self,
        _: ProjectId,
        _: &IdempotencyKey,
        _: &str,
        _: DateTime<Utc>,
        _: u32,
        _: u32,
    ) -> Result<IdempotencyBegin, StoreError> {
        unused()
    }
    async fn release(&self, _: ProjectId, _: &IdempotencyKey) -> Result<(), StoreError> {
        unused()
    }
}

impl HealthCheck for FakeStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl sigsentry_ports::CredentialStore for FakeStore {
    async fn record_credential_use(
        &self,
        _: sigsentry_domain::ConnectionId,
        _: DateTime<Utc>,
        _: sigsentry_ports::CredentialReport,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        unused()
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
        unused()
    }

    async fn finish_renewal(
        &self,
        _: sigsentry_domain::ConnectionId,
        _: Uuid,
        _: sigsentry_ports::RenewalOutcome,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        unused()
    }

    async fn abandon_renewal(&self, _: sigsentry_domain::ConnectionId, _: Uuid) -> Result<(), StoreError> {
        unused()
    }
}

impl SyncStore for FakeStore {
    async fn claim_due(&self, _: DateTime<Utc>, _: DateTime<Utc>, _: u32, _: u32) -> Result<Vec<SyncJob>, StoreError> {
        unused()
    }
    async fn claim_due_except(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: u32,
        _: u32,
        _: &[TenantId],
    ) -> Result<Vec<SyncJob>, StoreError> {
        unused()
    }
    async fn complete_sync(&self, _: &SyncJob, _: SyncSuccess) -> Result<bool, StoreError> {
        unused()
    }
    async fn fail_sync(&self, _: &SyncJob, _: SyncFailure) -> Result<bool, StoreError> {
        unused()
    }
    async fn request_sync(&self, _: ProjectId, _: ConnectionId) -> Result<bool, StoreError> {
        unused()
    }
    async fn list_pull_requests(
        &self,
        _: ProjectId,
        _: ConnectionId,
        _: PullRequestQuery,
    ) -> Result<Option<Vec<CachedPullRequest>>, StoreError> {
        unused()
    }
    async fn renew_lease(&self, _: &SyncJob, _: DateTime<Utc>) -> Result<LeaseStatus, StoreError> {
        unused()
    }
    async fn release_lease(&self, _: &SyncJob) -> Result<bool, StoreError> {
        unused()
    }
    async fn next_due(&self, _: u32) -> Result<Option<DateTime<Utc>>, StoreError> {
        unused()
    }
}

impl WebhookStore for FakeStore {
    async fn webhook_target(&self, _: ConnectionId) -> Result<Option<WebhookTarget>, StoreError> {
        unused()
    }
    async fn github_connections_holding(&self, _: &str, _: Option<i64>) -> Result<Vec<ConnectionId>, StoreError> {
        unused()
    }
    async fn accept_delivery(
        &self,
        _: Option<DeliveryMark>,
        _: Vec<WakeRepository>,
        _: DateTime<Utc>,
    ) -> Result<DeliveryOutcome, StoreError> {
        unused()
    }
    async fn webhook_secrets_not_under(&self, _: &str, _: u32) -> Result<Vec<SealedWebhookSecretRow>, StoreError> {
        unused()
    }
    async fn reseal_webhook_secret(
        &self,
        _: ConnectionId,
        _: &SealedSecret,
        _: SealedSecret,
    ) -> Result<bool, StoreError> {
        unused()
    }
}

impl CodeIndexStore for FakeStore {
    async fn files_named(&self, _: ProjectId, names: &[String], _: u32) -> Result<Vec<IndexedFile>, StoreError> {
        self.asked_names.lock().unwrap().push(names.to_vec());
        let files = self.files.lock().unwrap();
        Ok(files
            .iter()
            .filter(|f| names.iter().any(|n| f.path.to_ascii_lowercase().ends_with(&format!("/{n}")) || f.path == *n))
            .cloned()
            .collect())
    }
    async fn changes_to(
        &self,
        _: ProjectId,
        files: &[FileRef],
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        _: u32,
    ) -> Result<Vec<FileChange>, StoreError> {
        self.asked_files.lock().unwrap().push(files.iter().map(|f| f.path.clone()).collect());
        let changes = self.changes.lock().unwrap();
        Ok(changes
            .iter()
            .filter(|c| c.merged_at >= since && c.merged_at <= until)
            .filter(|c| files.iter().any(|f| f.path == c.path || c.previous_path.as_ref() == Some(&f.path)))
            .cloned()
            .collect())
    }
}

fn services(store: FakeStore) -> CodeRepos<FakeStore, Keyring, FixedClock> {
    let keyring = Keyring::from_keys(vec![("k".into(), [7; 32])]).unwrap();
    CodeRepos::new(store, keyring, FixedClock, ServiceConfig::default())
}

fn scope() -> ProjectScope {
    ProjectScope {
        key_id: ApiKeyId::from_uuid(Uuid::nil()),
        tenant_id: TenantId::from_uuid(Uuid::nil()),
        project_id: ProjectId::from_uuid(Uuid::nil()),
        plan: Plan::Team,
    }
}

fn connection(n: u128, repo: &str, synced: bool, lookback_days: i64, service: Option<&str>) -> RepoConnection {
    let name = RepoName::parse(Platform::GitHub, repo).unwrap();
    let mut sync = RepoSyncStatus::pending(name.clone());
    if synced {
        sync.state = SyncState::Ready;
        sync.last_synced_at = Some(t0());
        sync.default_branch = Some("trunk".into());
    }
    RepoConnection {
        id: ConnectionId::from_uuid(Uuid::from_u128(n)),
        tenant_id: TenantId::from_uuid(Uuid::nil()),
        project_id: ProjectId::from_uuid(Uuid::nil()),
        platform: Platform::GitHub,
        credentials: CredentialSummary {
            kind: CredentialKind::Token,
            hint: None,
            base_url: None,
            updated_at: t0(),
            health: sigsentry_domain::CredentialHealth::UNKNOWN,
        },
        repositories: vec![name.clone()],
        service_mappings: service
            .map(|s| ServiceMapping {
                service_name: ServiceName::new(s.into()).unwrap(),
                repo: name.clone(),
                path_prefix: PathPrefix::new("src/").unwrap(),
                default_branch: Some(BranchName::new("main".into()).unwrap()),
            })
            .into_iter()
            .collect(),
        lookback_days: LookbackDays::new(lookback_days).unwrap(),
        is_active: true,
        sync: vec![sync],
        created_at: t0(),
        updated_at: t0(),
        version: 3,
    }
}

fn file(n: u128, repo: &str, path: &str) -> IndexedFile {
    IndexedFile {
        connection_id: ConnectionId::from_uuid(Uuid::from_u128(n)),
        repository_key: repo.into(),
        path: path.into(),
    }
}

fn change(n: u128, repo: &str, number: u64, days_ago: i64, path: &str, previous: Option<&str>) -> FileChange {
    FileChange {
        connection_id: ConnectionId::from_uuid(Uuid::from_u128(n)),
        repository_key: repo.into(),
        number,
        title: format!("PR {number}"),
        author: None,
        url: format!("https://github.com/{repo}/pull/{number}"),
        merged_at: t0() - TimeDelta::days(days_ago),
        path: path.into(),
        previous_path: previous.map(Into::into),
        ranges: vec![LineRange::new(40, 44)],
    }
}

#[tokio::test]
async fn an_update_that_keeps_losing_its_race_is_contended_after_five_tries() {
    let store = FakeStore::default();
    let stored = connection(1, "acme/shop", true, 30, None);
    store.connections.lock().unwrap().push(stored.clone());
    let outcome = services(store.clone())
        .update_connection(scope(), stored.id, PatchDraft { is_active: Some(false), ..PatchDraft::default() }, true)
        .await;
    assert_eq!(outcome, Err(UpdateError::Contended));
    assert_eq!(*store.updates.lock().unwrap(), 5, "recomputed and retried, then gave up");
}

const TRACE: &str = "Traceback (most recent call last):
  File \"/srv/app/src/web/views.py\", line 10, in handle
    return total(cart)
  File \"/srv/app/src/checkout/cart.py\", line 42, in total
    rate = rates[self.currency]
KeyError: 'currency'
";

#[tokio::test]
async fn correlation_asks_for_candidates_follows_renames_and_keeps_each_window() {
    let store = FakeStore::default();
    store
        .connections
        .lock()
        .unwrap()
        .extend([connection(1, "acme/shop", true, 30, Some("checkout")), connection(2, "acme/other", false, 30, None)]);
    store.files.lock().unwrap().extend([
        file(1, "acme/shop", "src/checkout/cart.py"),
        file(1, "acme/shop", "src/web/views.py"),
        file(1, "acme/shop", "docs/cart.py"),
    ]);
    store.changes.lock().unwrap().extend([
        change(1, "acme/shop", 7, 2, "src/checkout/cart.py", Some("src/cart.py")),
        change(1, "acme/shop", 5, 20, "src/cart.py", None),
        // Outside this connection's 30-day window: never a suspect.
        change(1, "acme/shop", 3, 45, "src/checkout/cart.py", None),
    ]);
    let draft =
        CorrelationDraft { stacktrace: Some(TRACE.into()), service: Some("checkout".into()), ..Default::default() };
    let answer = services(store.clone()).correlate(scope(), draft).await.unwrap();

    // The store was asked only for files named like the frames.
    let names = store.asked_names.lock().unwrap().clone();
    assert_eq!(names, [vec!["cart.py".to_owned(), "views.py".to_owned()]]);
    // Then for changes to the mapped files, and to the earlier name a rename recorded.
    let asked = store.asked_files.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(asked[1], ["src/cart.py"]);

    let raised = &answer.frames[0];
    let link = raised.mapping.as_ref().unwrap();
    assert_eq!(link.path, "src/checkout/cart.py", "inside the service's pathPrefix, not docs/cart.py");
    assert_eq!(link.url, "https://github.com/acme/shop/blob/main/src/checkout/cart.py#L42", "the mapping's branch");
    let numbers: Vec<u64> = answer.suspect_pull_requests.iter().map(|p| p.number).collect();
    assert_eq!(numbers.first(), Some(&7));
    assert!(numbers.contains(&5), "a change under the file's earlier name counts: {numbers:?}");
    assert!(!numbers.contains(&3), "merged before the connection's window: {numbers:?}");
    assert!(
        answer.notes.iter().any(|n| n.contains("acme/other")),
        "the unsynced repository is named: {:?}",
        answer.notes
    );
}

#[tokio::test]
async fn an_unknown_service_is_noted_and_every_repository_searched() {
    let store = FakeStore::default();
    store.connections.lock().unwrap().push(connection(1, "acme/shop", false, 30, None));
    let draft = CorrelationDraft { stacktrace: Some(TRACE.into()), service: Some("nope".into()), ..Default::default() };
    let answer = services(store).correlate(scope(), draft).await.unwrap();
    assert!(answer.notes.iter().any(|n| n.contains("'nope' matches no service mapping")), "{:?}", answer.notes);
    let Err(Unmapped::NotSynced { repositories }) = &answer.frames[0].mapping else {
        panic!("{:?}", answer.frames[0].mapping);
    };
    assert_eq!(repositories, &["acme/shop"], "named as the connection spells it");
}
