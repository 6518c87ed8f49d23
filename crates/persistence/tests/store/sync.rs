//! The contract of `SyncStore` (the repo cache and the sync worker's claims), on both backends.

use chrono::{DateTime, TimeDelta, Utc};
use sigsentry_domain::correlation::LineRange;
use sigsentry_domain::{
    ConnectionId, CredentialKind, LookbackDays, Plan, Platform, ProjectId, RepoSyncStatus, SyncState, TenantId,
};
use sigsentry_ports::{
    AccountStore, CachedPullRequest, ChangedFile, ConnectionStore, LeaseStatus, MergedPullRequest, NewCredentials,
    Project, PullRequestQuery, SyncFailure, SyncJob, SyncStore, SyncSuccess, Tenant, TreeSnapshot,
};

use crate::support::*;

for_both_backends!(
    claims_lease_due_repositories_once,
    the_file_list_is_kept_and_replaced_only_when_listed,
    changed_lines_and_renames_are_kept_per_file,
    pending_repositories_come_first_then_the_stalest,
    concurrent_claims_never_hand_out_a_repository_twice,
    complete_writes_the_cache_and_makes_the_repository_ready,
    a_resync_replaces_prs_and_their_files_and_prunes_the_window,
    a_failure_is_recorded_and_backs_off,
    voided_claims_write_nothing,
    repeated_sync_requests_are_absorbed,
    update_keeps_the_cache_of_kept_repositories,
    deleting_a_connection_drops_its_cache_even_mid_sync,
    paused_connections_are_never_claimed,
    an_unreadable_connection_is_set_aside_not_claimed,
    the_listing_orders_filters_and_pages,
    next_due_says_when_the_first_repository_is,
    concurrent_deletes_and_results_neither_fail_nor_leave_rows,
    leases_are_renewed_while_they_hold,
    a_released_claim_is_pending_and_due_again,
    claims_can_pass_over_tenants,
);

/// The worker's defaults: a ready repository is refreshed after 15 minutes; a claim holds 10.
const INTERVAL: i64 = 900;

const LEASE: u32 = 600;

/// Claims what is due at `now`, as a worker with the default pacing would.
async fn claim_at(fx: &Fixture, now: DateTime<Utc>) -> Vec<SyncJob> {
    fx.store.claim_due(now, now - secs(INTERVAL), LEASE, 100).await.unwrap()
}

/// Claims at `now` and keeps the jobs of connection `id`, by repository name.
async fn claim_of(fx: &Fixture, id: ConnectionId, now: DateTime<Utc>) -> Vec<SyncJob> {
    let mut jobs: Vec<SyncJob> = claim_at(fx, now).await.into_iter().filter(|j| j.connection_id == id).collect();
    jobs.sort_by(|a, b| a.repository.as_str().cmp(b.repository.as_str()));
    jobs
}

fn job_for<'a>(jobs: &'a [SyncJob], name: &str) -> &'a SyncJob {
    jobs.iter().find(|j| j.repository.as_str() == name).unwrap()
}

fn pr(number: u64, merged_at: DateTime<Utc>, files: &[&str]) -> MergedPullRequest {
    MergedPullRequest {
        number,
        title: format!("PR {number}"),
        author: Some("octocat".into()),
        url: format!("https://github.com/acme/x/pull/{number}"),
        merged_at,
        merge_commit_sha: Some(format!("{number:040x}")),
        updated_at: merged_at + secs(5),
        files: files.iter().map(|f| ChangedFile::path_only(*f)).collect(),
    }
}

/// The start of the default 45-day window at `t0`.
fn window() -> DateTime<Utc> {
    t0() - TimeDelta::days(45)
}

fn success(
    pull_requests: Vec<MergedPullRequest>,
    window_start: DateTime<Utc>,
    synced_at: DateTime<Utc>,
) -> SyncSuccess {
    SyncSuccess {
        default_branch: Some("main".into()),
        pull_requests,
        window_start,
        updated_since: Some(synced_at - secs(300)),
        synced_at,
        file_tree: Some(TreeSnapshot::Unchanged),
    }
}

fn failure(next_attempt_at: DateTime<Utc>, attempts: u32) -> SyncFailure {
    SyncFailure {
        message: "GitHub rate limit reached".into(),
        next_attempt_at,
        attempts,
        failed_at: next_attempt_at - secs(60),
    }
}

fn query(repository: Option<&str>, prefix: Option<&str>, limit: u32) -> PullRequestQuery {
    PullRequestQuery {
        repository_key: repository.map(str::to_owned),
        path_prefix: prefix.map(str::to_owned),
        after: None,
        limit,
    }
}

async fn listing(fx: &Fixture, id: ConnectionId, q: PullRequestQuery) -> Vec<CachedPullRequest> {
    fx.store.list_pull_requests(fx.project, id, q).await.unwrap().unwrap()
}

/// (repository key, number) of each listed PR, in order.
fn keys(listed: &[CachedPullRequest]) -> Vec<(String, u64)> {
    listed.iter().map(|c| (c.repository.key(), c.pull_request.number)).collect()
}

fn k(key: &str, number: u64) -> (String, u64) {
    (key.to_owned(), number)
}

async fn claims_lease_due_repositories_once(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "Acme/B"], &[]).await;
    let now = t0() + secs(10);
    let jobs = claim_of(&fx, id, now).await;
    assert_eq!(jobs.len(), 2);
    let a = job_for(&jobs, "acme/a");
    let expected = SyncJob {
        lease: a.lease,
        connection_id: id,
        tenant_id: fx.tenant,
        project_id: fx.project,
        platform: Platform::GitHub,
        repository: repo("acme/a"),
        credential_kind: CredentialKind::Token,
        base_url: credentials().base_url,
        sealed: credentials().sealed,
        credentials_set_at: t0(),
        lookback_days: LookbackDays::new(45).unwrap(),
        updated_since: None,
        known_tree_revision: None,
        attempts: 0,
    };
    assert_eq!(*a, expected);
    assert_eq!(job_for(&jobs, "Acme/B").repository, repo("Acme/B"), "the name as the connection spells it");
    assert_ne!(jobs[0].lease, jobs[1].lease);
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert!(conn.sync.iter().all(|s| s.state == SyncState::Syncing));

    assert!(claim_at(&fx, now + secs(1)).await.is_empty(), "leased repositories are not handed out again");
    assert!(claim_at(&fx, now + secs(600)).await.is_empty(), "the lease holds to its end");
    let again = claim_of(&fx, id, now + secs(601)).await;
    assert_eq!(again.len(), 2, "an expired lease is free");
    assert!(again.iter().all(|j| jobs.iter().all(|old| old.lease != j.lease)), "with fresh leases");
    // The first worker's results come too late: the newer claim voided them.
    assert!(!fx.store.complete_sync(a, success(vec![pr(1, t0(), &["x"])], window(), now + secs(700))).await.unwrap());
    assert!(!fx.store.fail_sync(a, failure(now + secs(800), 1)).await.unwrap());
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_requests").await, 0);
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert!(conn.sync.iter().all(|s| s.state == SyncState::Syncing && s.error.is_none()));

    // The limit holds.
    create(&fx, &["acme/c", "acme/d", "acme/e"], &[]).await;
    assert_eq!(fx.store.claim_due(now, now - secs(INTERVAL), LEASE, 2).await.unwrap().len(), 2);
}

async fn pending_repositories_come_first_then_the_stalest(kind: Kind) {
    let fx = fixture(kind).await;
    let old = create(&fx, &["acme/old", "acme/older"], &[]).await;
    let jobs = claim_of(&fx, old, t0()).await;
    let done =
        |name: &str, at: DateTime<Utc>| fx.store.complete_sync(job_for(&jobs, name), success(vec![], window(), at));
    assert!(done("acme/old", t0() + secs(20)).await.unwrap());
    assert!(done("acme/older", t0() + secs(10)).await.unwrap());
    create(&fx, &["acme/new"], &[]).await;
    let later = t0() + secs(10_000);
    let one = || fx.store.claim_due(later, later - secs(INTERVAL), LEASE, 1);
    let order = [one().await.unwrap(), one().await.unwrap(), one().await.unwrap(), one().await.unwrap()];
    let names: Vec<Vec<&str>> = order.iter().map(|jobs| jobs.iter().map(|j| j.repository.as_str()).collect()).collect();
    assert_eq!(names, [vec!["acme/new"], vec!["acme/older"], vec!["acme/old"], vec![]]);
}

async fn concurrent_claims_never_hand_out_a_repository_twice(kind: Kind) {
    let fx = fixture(kind).await;
    // A second pool on the same database stands in for a second server process.
    let second = fx.second_store().await;
    for c in 0..3 {
        let names: Vec<String> = (0..10).map(|i| format!("acme/r{c}-{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        create(&fx, &names, &[]).await;
    }
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = if i % 2 == 0 { fx.store.clone() } else { second.clone() };
        tasks.push(tokio::spawn(async move { store.claim_due(t0(), t0() - secs(INTERVAL), LEASE, 7).await.unwrap() }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.unwrap().into_iter().map(|j| (j.connection_id, j.repository.key())));
    }
    let distinct: std::collections::HashSet<_> = claimed.iter().cloned().collect();
    assert_eq!(distinct.len(), claimed.len(), "no repository is claimed twice: {claimed:?}");
    assert_eq!(claimed.len(), 30, "42 claims' worth of room: every due repository is claimed");
    assert!(claim_at(&fx, t0()).await.is_empty());
}

async fn complete_writes_the_cache_and_makes_the_repository_ready(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let jobs = claim_of(&fx, id, t0()).await;
    let synced = t0() + secs(30);
    let mut older = pr(7, t0() - secs(3_600), &["src/b.rs", "src/a.rs", "src/b.rs"]);
    let mut newer = pr(8, t0() - secs(60), &[]);
    newer.author = None;
    newer.merge_commit_sha = None;
    assert!(
        fx.store.complete_sync(&jobs[0], success(vec![older.clone(), newer.clone()], window(), synced)).await.unwrap()
    );
    // A second result under the same claim is refused: the lease was spent.
    assert!(!fx.store.complete_sync(&jobs[0], success(vec![pr(9, t0(), &[])], window(), synced)).await.unwrap());

    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(
        conn.sync,
        vec![RepoSyncStatus {
            repository: repo("acme/a"),
            state: SyncState::Ready,
            last_synced_at: Some(synced),
            error: None,
            default_branch: Some("main".to_owned()),
        }]
    );
    let clean = "SELECT count(*) AS n FROM connection_repositories WHERE default_branch = 'main' AND lease_token IS NULL \
                 AND lease_until IS NULL AND attempts = 0 AND next_attempt_at IS NULL AND updated_since IS NOT NULL";
    assert_eq!(fx.count(clean).await, 1);
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_request_files").await, 2, "paths are de-duplicated");
    let listed = listing(&fx, id, query(None, None, 10)).await;
    older.files = vec![ChangedFile::path_only("src/a.rs"), ChangedFile::path_only("src/b.rs")];
    assert_eq!(
        listed,
        vec![
            CachedPullRequest { repository: repo("acme/a"), pull_request: newer },
            CachedPullRequest { repository: repo("acme/a"), pull_request: older },
        ]
    );

    // Fresh until the refresh interval has passed; then the incremental mark comes with the job.
    assert!(claim_at(&fx, synced + secs(INTERVAL)).await.is_empty());
    let again = claim_of(&fx, id, synced + secs(INTERVAL + 1)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].updated_since, Some(synced - secs(300)));
}

async fn a_resync_replaces_prs_and_their_files_and_prunes_the_window(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let day = TimeDelta::days(1);
    let first = claim_of(&fx, id, t0()).await;
    let prs = vec![pr(1, t0() - day * 10, &["x", "y"]), pr(2, t0() - day * 40, &["z"]), pr(3, t0() - day, &["w"])];
    assert!(fx.store.complete_sync(&first[0], success(prs, window(), t0() + secs(30))).await.unwrap());
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_request_files").await, 4);

    let later = t0() + secs(2_000);
    let second = claim_of(&fx, id, later).await;
    let mut retitled = pr(1, t0() - day * 10, &["y2"]);
    retitled.title = "PR 1, retitled".into();
    retitled.updated_at = later;
    // The window moved past PR 2; PR 3 did not change, so the incremental fetch leaves it out.
    let moved = t0() - day * 20;
    assert!(fx.store.complete_sync(&second[0], success(vec![retitled.clone()], moved, later)).await.unwrap());
    let listed = listing(&fx, id, query(None, None, 10)).await;
    assert_eq!(keys(&listed), [k("acme/a", 3), k("acme/a", 1)]);
    assert_eq!(listed[1].pull_request, retitled, "updated in place, its file set replaced");
    assert_eq!(listed[0].pull_request.files, [ChangedFile::path_only("w")], "an untouched PR keeps its files");
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_requests").await, 2);
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_request_files").await, 2, "old and pruned PRs' files go");
}

async fn a_failure_is_recorded_and_backs_off(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let jobs = claim_of(&fx, id, t0()).await;
    let retry = t0() + secs(120);
    assert!(fx.store.fail_sync(&jobs[0], failure(retry, 1)).await.unwrap());
    assert!(!fx.store.fail_sync(&jobs[0], failure(retry, 1)).await.unwrap(), "the lease was spent");
    assert!(!fx.store.complete_sync(&jobs[0], success(vec![], window(), retry)).await.unwrap());
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(
        (conn.sync[0].state, conn.sync[0].error.as_deref()),
        (SyncState::Error, Some("GitHub rate limit reached"))
    );
    assert_eq!(conn.sync[0].last_synced_at, None);
    let held = "SELECT count(*) AS n FROM connection_repositories WHERE lease_token IS NULL AND lease_until IS NULL \
                AND attempts = 1";
    assert_eq!(fx.count(held).await, 1);
    assert_eq!(fx.store.next_due(900).await.unwrap(), Some(retry));

    assert!(claim_at(&fx, retry - secs(1)).await.is_empty(), "not before the next attempt time");
    let again = claim_of(&fx, id, retry).await;
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    // A second failure counts up; a success clears it all.
    assert!(fx.store.fail_sync(&again[0], failure(retry + secs(240), 2)).await.unwrap());
    let third = claim_of(&fx, id, retry + secs(240)).await;
    assert_eq!(third[0].attempts, 2);
    assert!(fx.store.complete_sync(&third[0], success(vec![], window(), retry + secs(300))).await.unwrap());
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!((conn.sync[0].state, conn.sync[0].error.as_deref()), (SyncState::Ready, None));
    let cleared = "SELECT count(*) AS n FROM connection_repositories WHERE attempts = 0 AND next_attempt_at IS NULL";
    assert_eq!(fx.count(cleared).await, 1);
}

#[derive(Debug, Clone, Copy)]
enum Void {
    Invalidate,
    ResyncAll,
    RemoveRepository,
    Delete,
}

async fn voided_claims_write_nothing(kind: Kind) {
    let fx = fixture(kind).await;
    for (i, void) in [Void::Invalidate, Void::ResyncAll, Void::RemoveRepository, Void::Delete].into_iter().enumerate() {
        let (name, kept) = (format!("acme/void-{i}"), format!("acme/kept-{i}"));
        let id = create(&fx, &[&name, &kept], &[]).await;
        let base = t0() + secs(10_000 * i64::try_from(i).unwrap());
        // A first sync fills the cache; a second claim is under way when the connection changes.
        let first = claim_of(&fx, id, base).await;
        for job in &first {
            let done = success(vec![pr(1, t0(), &["a"])], window(), base + secs(1));
            assert!(fx.store.complete_sync(job, done).await.unwrap());
        }
        let running = claim_of(&fx, id, base + secs(2_000)).await;
        let job = job_for(&running, &name);
        let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
        match void {
            Void::Invalidate => assert!(fx.store.invalidate_cache(fx.project, id, base).await.unwrap()),
            Void::ResyncAll => {
                let mut change = change_of(&conn, &[&name, &kept]);
                change.resync_all = true;
                change.lookback_days = LookbackDays::new(30).unwrap();
                fx.store.update_connection(change, 100).await.unwrap();
            }
            Void::RemoveRepository => fx.store.update_connection(change_of(&conn, &[&kept]), 100).await.unwrap(),
            Void::Delete => assert!(fx.store.delete_connection(fx.project, id).await.unwrap()),
        }
        let late = success(vec![pr(99, t0(), &["late"])], window(), base + secs(2_100));
        assert!(!fx.store.complete_sync(job, late).await.unwrap(), "{void:?}");
        assert!(!fx.store.fail_sync(job, failure(base + secs(3_000), 1)).await.unwrap(), "{void:?}");
        let count = |sql: &str| {
            let sql = format!("SELECT count(*) AS n FROM {sql} connection_id = '{id}'");
            let fx = &fx;
            async move { fx.count(&sql).await }
        };
        assert_eq!(count("pull_requests WHERE number = 99 AND").await, 0, "{void:?}");
        assert_eq!(count("pull_request_files WHERE path = 'late' AND").await, 0, "{void:?}");
        let cached = count("pull_requests WHERE").await;
        match void {
            Void::Invalidate | Void::ResyncAll => {
                assert_eq!(cached, 0, "{void:?}");
                assert_eq!(count("pull_request_files WHERE").await, 0, "{void:?}");
                let wiped = count(
                    "connection_repositories WHERE sync_state = 'pending' AND updated_since IS NULL \
                     AND default_branch IS NULL AND lease_token IS NULL AND attempts = 0 AND",
                )
                .await;
                assert_eq!(wiped, 2, "{void:?}");
                let next = claim_of(&fx, id, base + secs(2_200)).await;
                assert!(next.len() == 2 && next.iter().all(|j| j.updated_since.is_none()), "{void:?}: a full fetch");
            }
            Void::RemoveRepository => {
                assert_eq!(cached, 1, "the removed repository's PRs go, the kept one's stay");
                // The kept repository's claim survives the update.
                let kept_job = job_for(&running, &kept);
                let done = success(vec![pr(2, t0(), &["b"])], window(), base + secs(2_100));
                assert!(fx.store.complete_sync(kept_job, done).await.unwrap());
                assert_eq!(count("pull_requests WHERE").await, 2);
            }
            Void::Delete => {
                assert_eq!(cached, 0);
                assert_eq!(count("pull_request_files WHERE").await, 0);
                assert_eq!(count("connection_repositories WHERE").await, 0);
            }
        }
    }
}

async fn update_keeps_the_cache_of_kept_repositories(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "acme/b"], &[]).await;
    let jobs = claim_of(&fx, id, t0()).await;
    let synced = t0() + secs(30);
    assert!(
        fx.store
            .complete_sync(job_for(&jobs, "acme/a"), success(vec![pr(1, t0(), &["f1"])], window(), synced))
            .await
            .unwrap()
    );
    assert!(
        fx.store
            .complete_sync(job_for(&jobs, "acme/b"), success(vec![pr(2, t0(), &["f2"])], window(), synced))
            .await
            .unwrap()
    );
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    // Keep a (renamed in case, moved), drop b, add c.
    fx.store.update_connection(change_of(&conn, &["acme/c", "Acme/A"]), 100).await.unwrap();
    let listed = listing(&fx, id, query(None, None, 10)).await;
    assert_eq!(keys(&listed), [k("acme/a", 1)]);
    assert_eq!(listed[0].repository, repo("Acme/A"), "listed under its new spelling");
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_request_files").await, 1);
    let kept = "SELECT count(*) AS n FROM connection_repositories WHERE name_key = 'acme/a' AND sync_state = 'ready' \
                AND default_branch = 'main' AND updated_since IS NOT NULL AND last_synced_at IS NOT NULL";
    assert_eq!(fx.count(kept).await, 1);
    let next = claim_of(&fx, id, synced + secs(INTERVAL + 1)).await;
    assert_eq!(next.len(), 2);
    assert_eq!(job_for(&next, "Acme/A").updated_since, Some(synced - secs(300)), "still incremental");
    assert_eq!(job_for(&next, "acme/c").updated_since, None);

    // New credentials: the cache goes, every repository is fetched whole again.
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let mut resync = change_of(&conn, &["acme/c", "Acme/A"]);
    resync.resync_all = true;
    resync.credentials = Some(NewCredentials {
        kind: CredentialKind::Token,
        hint: None,
        base_url: None,
        sealed: sealed("k2", b"new"),
        installation_id: None,
    });
    fx.store.update_connection(resync, 100).await.unwrap();
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_requests").await, 0);
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_request_files").await, 0);
    let reset = "SELECT count(*) AS n FROM connection_repositories WHERE sync_state = 'pending' AND lease_token IS NULL \
                 AND updated_since IS NULL AND attempts = 0 AND next_attempt_at IS NULL";
    assert_eq!(fx.count(reset).await, 2);
    let fresh = claim_of(&fx, id, synced + secs(INTERVAL + 2)).await;
    assert_eq!(fresh.len(), 2, "the voided claims do not hold the repositories");
    assert!(fresh.iter().all(|j| j.sealed == sealed("k2", b"new") && j.base_url.is_none()));
}

async fn deleting_a_connection_drops_its_cache_even_mid_sync(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "acme/b"], &[]).await;
    let other = create(&fx, &["acme/c"], &[]).await;
    let jobs = claim_at(&fx, t0()).await;
    for name in ["acme/a", "acme/c"] {
        let done = success(vec![pr(1, t0(), &["f", "g"])], window(), t0() + secs(5));
        assert!(fx.store.complete_sync(job_for(&jobs, name), done).await.unwrap());
    }
    assert!(fx.store.delete_connection(fx.project, id).await.unwrap());
    // b was still syncing: its result finds nothing to write to.
    let late = success(vec![pr(2, t0(), &["h"])], window(), t0() + secs(6));
    assert!(!fx.store.complete_sync(job_for(&jobs, "acme/b"), late).await.unwrap());
    assert!(!fx.store.fail_sync(job_for(&jobs, "acme/b"), failure(t0() + secs(60), 1)).await.unwrap());
    for table in ["pull_requests", "pull_request_files", "connection_repositories"] {
        let gone = fx.count(&format!("SELECT count(*) AS n FROM {table} WHERE connection_id = '{id}'")).await;
        assert_eq!(gone, 0, "{table}");
    }
    assert_eq!(fx.count("SELECT count(*) AS n FROM pull_request_files").await, 2, "the other connection's stay");
    assert_eq!(keys(&listing(&fx, other, query(None, None, 10)).await), [k("acme/c", 1)]);
    assert_eq!(fx.store.list_pull_requests(fx.project, id, query(None, None, 10)).await.unwrap(), None);
}

async fn repeated_sync_requests_are_absorbed(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/idle", "acme/busy"], &[]).await;
    for job in &claim_of(&fx, id, t0()).await {
        assert!(
            fx.store.complete_sync(job, success(vec![pr(1, t0(), &["a"])], window(), t0() + secs(1))).await.unwrap()
        );
    }
    assert!(fx.store.request_sync(fx.project, id).await.unwrap());
    let states = async |fx: &Fixture| {
        let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
        conn.sync.iter().map(|s| s.state).collect::<Vec<_>>()
    };
    assert_eq!(states(&fx).await, [SyncState::Pending; 2], "the cache stays, both wait");
    // Asking again while pending changes nothing: one claim each, incremental.
    assert!(fx.store.request_sync(fx.project, id).await.unwrap());
    let jobs = claim_of(&fx, id, t0() + secs(100)).await;
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.updated_since == Some(t0() + secs(1) - secs(300))), "the incremental mark stays");
    // Requests while both run: neither sync is voided or doubled.
    for _ in 0..5 {
        assert!(fx.store.request_sync(fx.project, id).await.unwrap());
    }
    assert!(claim_at(&fx, t0() + secs(101)).await.is_empty(), "no second claim beside a running one");
    let (busy, idle) = (job_for(&jobs, "acme/busy"), job_for(&jobs, "acme/idle"));
    assert!(
        fx.store.complete_sync(busy, success(vec![pr(2, t0(), &["b"])], window(), t0() + secs(110))).await.unwrap()
    );
    assert!(fx.store.fail_sync(idle, failure(t0() + secs(1_000), 1)).await.unwrap());
    assert_eq!(
        states(&fx).await,
        [SyncState::Error, SyncState::Pending],
        "a failure keeps its backoff; a success is followed by one more sync"
    );
    let follow_up = claim_of(&fx, id, t0() + secs(120)).await;
    assert_eq!(follow_up.iter().map(|j| j.repository.as_str()).collect::<Vec<_>>(), ["acme/busy"]);
    assert!(fx.store.complete_sync(&follow_up[0], success(vec![], window(), t0() + secs(130))).await.unwrap());
    assert!(claim_at(&fx, t0() + secs(140)).await.is_empty(), "five requests made one more sync, not five");
    let cached = format!("SELECT count(*) AS n FROM pull_requests WHERE connection_id = '{id}'");
    assert_eq!(fx.count(&cached).await, 3, "the running sync's PRs were kept");
}

async fn paused_connections_are_never_claimed(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let mut pause = change_of(&conn, &["acme/a"]);
    pause.is_active = false;
    fx.store.update_connection(pause, 100).await.unwrap();
    assert!(claim_at(&fx, t0()).await.is_empty());
    assert_eq!(fx.store.next_due(900).await.unwrap(), None, "nothing scheduled");
    assert!(fx.store.request_sync(fx.project, id).await.unwrap());
    assert!(claim_at(&fx, t0()).await.is_empty(), "asking does not unpause");
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let mut resume = change_of(&conn, &["acme/a"]);
    resume.is_active = true;
    fx.store.update_connection(resume, 100).await.unwrap();
    assert_eq!(claim_of(&fx, id, t0()).await.len(), 1);
}

async fn an_unreadable_connection_is_set_aside_not_claimed(kind: Kind) {
    let fx = fixture(kind).await;
    let broken = create(&fx, &["acme/a"], &[]).await;
    let fine = create(&fx, &["acme/b"], &[]).await;
    fx.exec(&format!("UPDATE repo_connections SET credential_kind = 'carrier-pigeon' WHERE id = '{broken}'")).await;
    let jobs = claim_at(&fx, t0()).await;
    assert_eq!(jobs.iter().map(|j| j.connection_id).collect::<Vec<_>>(), [fine], "the others still sync");
    let marked = format!(
        "SELECT count(*) AS n FROM connection_repositories WHERE connection_id = '{broken}' AND sync_state = 'error' \
         AND lease_token IS NULL AND attempts = 1 AND sync_error IS NOT NULL"
    );
    assert_eq!(fx.count(&marked).await, 1);
    assert!(claim_at(&fx, t0() + secs(60)).await.is_empty(), "not retried at once");
}

async fn the_listing_orders_filters_and_pages(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "Acme/B"], &[]).await;
    let other = create(&fx, &["acme/z"], &[]).await;
    let empty = create(&fx, &["acme/empty"], &[]).await;
    let jobs = claim_at(&fx, t0()).await;
    let (m1, m2) = (t0() - secs(100), t0() - secs(200));
    let cached = [
        ("acme/a", vec![pr(3, m1, &["src/%odd/x.rs"]), pr(1, m1, &["src/a.rs"]), pr(9, m2, &["docs/a_c.md"])]),
        ("Acme/B", vec![pr(2, m1, &["src/b.rs", "abc.md"]), pr(5, m2 - secs(1), &[])]),
        ("acme/z", vec![pr(1, m1, &["src/a.rs"])]),
    ];
    for (name, prs) in cached {
        assert!(fx.store.complete_sync(job_for(&jobs, name), success(prs, window(), t0())).await.unwrap());
    }
    // Newest merge first; ties by repository key, then number.
    let all = listing(&fx, id, query(None, None, 100)).await;
    let order = [k("acme/a", 1), k("acme/a", 3), k("acme/b", 2), k("acme/a", 9), k("acme/b", 5)];
    assert_eq!(keys(&all), order);
    assert_eq!(all[2].repository, repo("Acme/B"));
    assert_eq!(all[2].pull_request.files, [ChangedFile::path_only("abc.md"), ChangedFile::path_only("src/b.rs")]);

    // Filters: the repository without regard to case; paths by literal prefix ('%' and '_' are not wildcards).
    let only = |repository: Option<&'static str>, prefix: Option<&'static str>| {
        let (fx, q) = (&fx, query(repository, prefix, 100));
        async move { keys(&listing(fx, id, q).await) }
    };
    assert_eq!(only(Some("ACME/b"), None).await, [k("acme/b", 2), k("acme/b", 5)]);
    assert_eq!(only(None, Some("src/")).await, [k("acme/a", 1), k("acme/a", 3), k("acme/b", 2)]);
    assert_eq!(only(None, Some("src/%")).await, [k("acme/a", 3)]);
    assert_eq!(only(None, Some("docs/a_")).await, [k("acme/a", 9)]);
    assert_eq!(only(None, Some("a_c")).await, Vec::<(String, u64)>::new());
    assert_eq!(only(None, Some("abc.md")).await, [k("acme/b", 2)], "a whole path is its own prefix");
    assert_eq!(only(Some("acme/a"), Some("src/a")).await, [k("acme/a", 1)]);
    assert_eq!(only(Some("acme/nope"), None).await, Vec::<(String, u64)>::new());

    // Pages: each strictly after the previous one's last row, ties included.
    let mut paged = Vec::new();
    let mut after = None;
    // Bounded, so a cursor that does not advance fails instead of spinning.
    for _ in 0..=order.len() {
        let q = PullRequestQuery { after: after.clone(), ..query(None, None, 2) };
        let page = listing(&fx, id, q).await;
        let Some(last) = page.last() else { break };
        after = Some((last.pull_request.merged_at, last.repository.key(), last.pull_request.number));
        paged.extend(keys(&page));
    }
    assert_eq!(paged, order, "every row once, in order");
    let after_tie = PullRequestQuery { after: Some((m1, "acme/a".into(), 1)), ..query(None, None, 2) };
    assert_eq!(keys(&listing(&fx, id, after_tie).await), [k("acme/a", 3), k("acme/b", 2)]);
    let filtered_page = PullRequestQuery { after: Some((m1, "acme/a".into(), 3)), ..query(None, Some("src/"), 5) };
    assert_eq!(keys(&listing(&fx, id, filtered_page).await), [k("acme/b", 2)]);

    // Only connections of the project; one with nothing cached lists nothing.
    assert_eq!(keys(&listing(&fx, other, query(None, None, 10)).await), [k("acme/z", 1)]);
    assert!(listing(&fx, empty, query(None, None, 10)).await.is_empty());
    let elsewhere = fx.other_project().await;
    assert_eq!(fx.store.list_pull_requests(elsewhere, id, query(None, None, 10)).await.unwrap(), None);
    assert_eq!(fx.store.list_pull_requests(fx.project, conn_id(), query(None, None, 10)).await.unwrap(), None);
}

async fn next_due_says_when_the_first_repository_is(kind: Kind) {
    let fx = fixture(kind).await;
    assert_eq!(fx.store.next_due(900).await.unwrap(), None);
    let id = create(&fx, &["acme/a", "acme/b"], &[]).await;
    let before = Utc::now();
    let due = fx.store.next_due(900).await.unwrap().unwrap();
    assert!(before <= due && due <= Utc::now(), "pending: now");

    let jobs = claim_of(&fx, id, t0()).await;
    assert_eq!(fx.store.next_due(900).await.unwrap(), Some(t0() + secs(i64::from(LEASE))), "a lease's end");
    let synced = t0() + secs(30);
    assert!(fx.store.complete_sync(job_for(&jobs, "acme/a"), success(vec![], window(), synced)).await.unwrap());
    assert_eq!(fx.store.next_due(900).await.unwrap(), Some(t0() + secs(600)), "the earliest of all");
    assert!(fx.store.fail_sync(job_for(&jobs, "acme/b"), failure(t0() + secs(2_000), 1)).await.unwrap());
    assert_eq!(fx.store.next_due(900).await.unwrap(), Some(synced + secs(900)), "a refresh");
    assert_eq!(fx.store.next_due(60).await.unwrap(), Some(synced + secs(60)));
    assert_eq!(fx.store.next_due(3_600).await.unwrap(), Some(t0() + secs(2_000)), "a retry");
}

async fn concurrent_deletes_and_results_neither_fail_nor_leave_rows(kind: Kind) {
    let fx = fixture(kind).await;
    let second = fx.second_store().await;
    // Results big enough to overlap a cache wipe, a sync request and the
    // delete; any may win, none may fail (a deadlock would surface as an
    // error from one of them).
    let prs: Vec<MergedPullRequest> = (1..=200).map(|n| pr(n, t0(), &["a/x", "b/y", "c/z"])).collect();
    for round in 0..8 {
        let id = create(&fx, &[&format!("acme/race-{round}"), &format!("acme/race-{round}-b")], &[]).await;
        let jobs = claim_of(&fx, id, t0() + secs(round)).await;
        let mut tasks = Vec::new();
        for job in jobs {
            let (store, done) = (second.clone(), success(prs.clone(), window(), t0() + secs(round)));
            tasks.push(tokio::spawn(async move { store.complete_sync(&job, done).await.map(|_| ()) }));
        }
        let (store, project) = (fx.store.clone(), fx.project);
        tasks.push(tokio::spawn(async move { store.invalidate_cache(project, id, t0()).await.map(|_| ()) }));
        let (store, project) = (second.clone(), fx.project);
        tasks.push(tokio::spawn(async move { store.request_sync(project, id).await.map(|_| ()) }));
        let (store, project) = (fx.store.clone(), fx.project);
        tasks.push(tokio::spawn(async move { store.delete_connection(project, id).await.map(|_| ()) }));
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        for table in ["pull_requests", "pull_request_files", "connection_repositories"] {
            let left = fx.count(&format!("SELECT count(*) AS n FROM {table} WHERE connection_id = '{id}'")).await;
            assert_eq!(left, 0, "round {round}: {table}");
        }
    }
}

fn listed(revision: &str, paths: &[&str]) -> Option<TreeSnapshot> {
    Some(TreeSnapshot::Listed { revision: revision.to_owned(), paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

async fn tree_of(fx: &Fixture, key: &str) -> Vec<String> {
    let sql = format!("SELECT count(*) AS n FROM repository_files WHERE repository_key = '{key}'");
    let n = fx.count(&sql).await;
    let mut paths = Vec::new();
    for path in ["a.py", "b.py", "src/c.py", "src/d.py", "x.rs"] {
        let one = format!("{sql} AND path = '{path}'");
        if fx.count(&one).await == 1 {
            paths.push(path.to_owned());
        }
    }
    assert_eq!(n as usize, paths.len(), "only known test paths are stored");
    paths
}

async fn the_file_list_is_kept_and_replaced_only_when_listed(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "acme/b"], &[]).await;
    let jobs = claim_of(&fx, id, t0()).await;
    let synced = t0() + secs(30);
    let mut first = success(vec![], window(), synced);
    first.file_tree = listed("r1", &["a.py", "b.py", "src/c.py"]);
    assert!(fx.store.complete_sync(job_for(&jobs, "acme/a"), first).await.unwrap());
    let mut other = success(vec![], window(), synced);
    other.file_tree = listed("q1", &["x.rs"]);
    assert!(fx.store.complete_sync(job_for(&jobs, "acme/b"), other).await.unwrap());
    assert_eq!(tree_of(&fx, "acme/a").await, ["a.py", "b.py", "src/c.py"]);
    let names = "SELECT count(*) AS n FROM repository_files WHERE path = 'src/c.py' AND name_key = 'c.py'";
    assert_eq!(fx.count(names).await, 1, "files are indexed by their lower-cased name");

    // The next job knows the revision; an unchanged tree keeps the list.
    let later = synced + secs(INTERVAL + 1);
    let jobs = claim_of(&fx, id, later).await;
    assert_eq!(job_for(&jobs, "acme/a").known_tree_revision.as_deref(), Some("r1"));
    assert!(fx.store.complete_sync(job_for(&jobs, "acme/a"), success(vec![], window(), later)).await.unwrap());
    assert_eq!(tree_of(&fx, "acme/a").await, ["a.py", "b.py", "src/c.py"]);

    // A new listing replaces it: removed paths go, new ones come, kept ones stay.
    let again = later + secs(INTERVAL + 1);
    let jobs = claim_of(&fx, id, again).await;
    assert_eq!(job_for(&jobs, "acme/a").known_tree_revision.as_deref(), Some("r1"));
    let mut moved = success(vec![], window(), again);
    moved.file_tree = listed("r2", &["a.py", "src/c.py", "src/d.py"]);
    assert!(fx.store.complete_sync(job_for(&jobs, "acme/a"), moved).await.unwrap());
    assert_eq!(tree_of(&fx, "acme/a").await, ["a.py", "src/c.py", "src/d.py"]);
    assert_eq!(tree_of(&fx, "acme/b").await, ["x.rs"], "another repository's list is untouched");

    // Dropping a repository drops its list; wiping the cache drops them all and the revisions.
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    fx.store.update_connection(change_of(&conn, &["acme/a"]), 100).await.unwrap();
    assert!(tree_of(&fx, "acme/b").await.is_empty());
    assert_eq!(tree_of(&fx, "acme/a").await.len(), 3);
    assert!(fx.store.invalidate_cache(fx.project, id, again).await.unwrap());
    assert_eq!(fx.count("SELECT count(*) AS n FROM repository_files").await, 0);
    let jobs = claim_of(&fx, id, again + secs(1)).await;
    assert_eq!(job_for(&jobs, "acme/a").known_tree_revision, None, "the next sync lists the tree again");
}

async fn changed_lines_and_renames_are_kept_per_file(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let jobs = claim_of(&fx, id, t0()).await;
    let mut renaming = pr(7, t0() - secs(3600), &[]);
    renaming.files = vec![
        ChangedFile {
            path: "src/cart.py".into(),
            previous_path: Some("cart.py".into()),
            ranges: vec![LineRange::new(38, 47), LineRange::new(100, 100)],
        },
        ChangedFile::path_only("assets/logo.png"),
    ];
    assert!(fx.store.complete_sync(&jobs[0], success(vec![renaming.clone()], window(), t0())).await.unwrap());
    let listed = listing(&fx, id, query(None, None, 10)).await;
    let mut expected = renaming.files.clone();
    expected.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(listed[0].pull_request.files, expected);
}

async fn leases_are_renewed_while_they_hold(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "acme/b"], &[]).await;
    let jobs = claim_of(&fx, id, t0()).await;
    let (a, b) = (job_for(&jobs, "acme/a"), job_for(&jobs, "acme/b"));
    // Renewed past the first lease: a claim at its old end finds nothing due.
    let renewed_until = t0() + secs(i64::from(LEASE) * 2);
    assert_eq!(fx.store.renew_lease(a, renewed_until).await.unwrap(), LeaseStatus::Renewed);
    let later = t0() + secs(i64::from(LEASE) + 1);
    let taken: Vec<String> = claim_of(&fx, id, later).await.iter().map(|j| j.repository.to_string()).collect();
    assert_eq!(taken, ["acme/b"], "the renewed lease holds; the other lapsed and was taken over");
    assert_eq!(fx.store.renew_lease(b, renewed_until).await.unwrap(), LeaseStatus::Voided, "taken over");

    // Paused: the lease still holds, but the job must stop.
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let mut pause = change_of(&conn, &["acme/a", "acme/b"]);
    pause.is_active = false;
    fx.store.update_connection(pause, 100).await.unwrap();
    assert_eq!(fx.store.renew_lease(a, renewed_until).await.unwrap(), LeaseStatus::Paused);

    // Invalidated, then deleted: gone.
    assert!(fx.store.invalidate_cache(fx.project, id, t0()).await.unwrap());
    assert_eq!(fx.store.renew_lease(a, renewed_until).await.unwrap(), LeaseStatus::Voided);
    let other = create(&fx, &["acme/c"], &[]).await;
    let jobs = claim_of(&fx, other, t0()).await;
    assert!(fx.store.delete_connection(fx.project, other).await.unwrap());
    assert_eq!(fx.store.renew_lease(&jobs[0], renewed_until).await.unwrap(), LeaseStatus::Voided);
}

async fn a_released_claim_is_pending_and_due_again(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let first = claim_of(&fx, id, t0()).await;
    let done = success(vec![pr(1, t0(), &["a"])], window(), t0() + secs(1));
    assert!(fx.store.complete_sync(&first[0], done).await.unwrap());
    let running = claim_of(&fx, id, t0() + secs(INTERVAL + 10)).await;
    assert!(fx.store.release_lease(&running[0]).await.unwrap());
    assert!(!fx.store.release_lease(&running[0]).await.unwrap(), "no longer ours");
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(conn.sync[0].state, SyncState::Pending);
    assert!(conn.sync[0].last_synced_at.is_some(), "the cache and its time stay");
    let again = claim_of(&fx, id, t0() + secs(INTERVAL + 11)).await;
    assert_eq!(again.len(), 1, "due at once");
    assert_eq!(again[0].updated_since, first_mark(), "incremental, as before");
}

fn first_mark() -> Option<DateTime<Utc>> {
    Some(t0() + secs(1) - secs(300))
}

async fn claims_can_pass_over_tenants(kind: Kind) {
    let fx = fixture(kind).await;
    let busy = create(&fx, &["acme/a", "acme/b"], &[]).await;
    // Another tenant's connection.
    let other_tenant = TenantId::from_uuid(uuid::Uuid::now_v7());
    let other_project = ProjectId::from_uuid(uuid::Uuid::now_v7());
    fx.store
        .create_tenant(Tenant { id: other_tenant, name: "Other".into(), plan: Plan::Team, created_at: t0() })
        .await
        .unwrap();
    let project = Project { id: other_project, tenant_id: other_tenant, name: "p".into(), created_at: t0() };
    fx.store.create_project(project).await.unwrap();
    let mut theirs = new_connection(&fx, conn_id(), &["acme/c"], &[]);
    theirs.tenant_id = other_tenant;
    theirs.project_id = other_project;
    let theirs_id = theirs.id;
    fx.store.create_connection(theirs, 100, None).await.unwrap();

    let now = t0();
    let jobs = fx.store.claim_due_except(now, now - secs(INTERVAL), LEASE, 10, &[fx.tenant]).await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.connection_id).collect::<Vec<_>>(), [theirs_id], "the busy tenant waits");
    let jobs = fx.store.claim_due_except(now, now - secs(INTERVAL), LEASE, 10, &[]).await.unwrap();
    assert!(jobs.len() == 2 && jobs.iter().all(|j| j.connection_id == busy), "then its turn comes");
}
