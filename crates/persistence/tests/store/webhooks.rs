//! The contract of `WebhookStore` (webhook secrets, deliveries seen, waking
//! repositories), on both backends.

use chrono::{DateTime, TimeDelta, Utc};
use sigsentry_domain::{ConnectionId, SyncState};
use sigsentry_ports::{
    ConnectionStore, DeliveryMark, DeliveryOutcome, SyncFailure, SyncStore, SyncSuccess, TreeSnapshot, WakeRepository,
    WebhookStore,
};

use crate::support::*;

for_both_backends!(
    the_secret_is_stored_sealed_with_the_connection_and_rotated_by_an_update,
    a_target_names_its_repositories_and_branches_and_unknown_ids_are_none,
    a_delivery_is_accepted_once_until_it_expires,
    waking_makes_ready_and_failed_repositories_due_and_absorbs_pending_ones,
    a_merge_announced_during_a_sync_makes_it_run_once_more,
    github_connections_holding_a_repository_are_found_across_projects,
    webhook_secrets_reseal_only_if_unchanged,
);

const LEASE: u32 = 600;

fn mark(source: &str, delivery: &str, expires_at: DateTime<Utc>) -> Option<DeliveryMark> {
    Some(DeliveryMark { source: source.into(), delivery: delivery.into(), expires_at })
}

fn wake(id: ConnectionId, key: &str) -> Vec<WakeRepository> {
    vec![WakeRepository { connection_id: id, repository_key: key.into() }]
}

fn synced(at: DateTime<Utc>) -> SyncSuccess {
    SyncSuccess {
        default_branch: Some("main".into()),
        file_tree: Some(TreeSnapshot::Unchanged),
        pull_requests: Vec::new(),
        window_start: at - TimeDelta::days(45),
        updated_since: Some(at - secs(300)),
        synced_at: at,
    }
}

async fn states(fx: &Fixture, id: ConnectionId) -> Vec<SyncState> {
    fx.store.get_connection(fx.project, id).await.unwrap().unwrap().sync.iter().map(|s| s.state).collect()
}

/// Claims and completes every due repository at `at`, so they are `ready`.
async fn sync_all(fx: &Fixture, at: DateTime<Utc>) {
    for job in fx.store.claim_due(at, at, LEASE, 100).await.unwrap() {
        assert!(fx.store.complete_sync(&job, synced(at)).await.unwrap());
    }
}

async fn the_secret_is_stored_sealed_with_the_connection_and_rotated_by_an_update(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let target = fx.store.webhook_target(id).await.unwrap().unwrap();
    assert_eq!(target.secret, Some(sealed("k1", b"sealed webhook secret")));

    // A change without a new secret keeps the old one.
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    fx.store.update_connection(change_of(&conn, &["acme/a"]), 100).await.unwrap();
    assert_eq!(
        fx.store.webhook_target(id).await.unwrap().unwrap().secret,
        Some(sealed("k1", b"sealed webhook secret"))
    );

    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let rotate = sigsentry_ports::ConnectionChange {
        webhook_secret: Some(sealed("k2", b"rotated")),
        ..change_of(&conn, &["acme/a"])
    };
    fx.store.update_connection(rotate, 100).await.unwrap();
    assert_eq!(fx.store.webhook_target(id).await.unwrap().unwrap().secret, Some(sealed("k2", b"rotated")));
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_webhooks").await, 1);

    // A connection made before webhooks (no row) gets its first secret the same way.
    fx.exec("DELETE FROM connection_webhooks").await;
    assert_eq!(fx.store.webhook_target(id).await.unwrap().unwrap().secret, None);
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let first = sigsentry_ports::ConnectionChange {
        webhook_secret: Some(sealed("k2", b"first")),
        ..change_of(&conn, &["acme/a"])
    };
    fx.store.update_connection(first, 100).await.unwrap();
    assert_eq!(fx.store.webhook_target(id).await.unwrap().unwrap().secret, Some(sealed("k2", b"first")));

    assert!(fx.store.delete_connection(fx.project, id).await.unwrap());
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_webhooks").await, 0, "the secret goes with it");
}

async fn a_target_names_its_repositories_and_branches_and_unknown_ids_are_none(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "Acme/B"], &[]).await;
    sync_all(&fx, t0() + secs(1)).await;
    let target = fx.store.webhook_target(id).await.unwrap().unwrap();
    assert_eq!((target.connection_id, target.tenant_id, target.project_id), (id, fx.tenant, fx.project));
    assert!(target.is_active);
    let names: Vec<(&str, Option<&str>)> =
        target.repositories.iter().map(|r| (r.name.as_str(), r.default_branch.as_deref())).collect();
    assert_eq!(names, [("acme/a", Some("main")), ("Acme/B", Some("main"))]);
    assert_eq!(fx.store.webhook_target(conn_id()).await.unwrap(), None);
}

async fn a_delivery_is_accepted_once_until_it_expires(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let now = t0();
    let first = fx.store.accept_delivery(mark("c1", "d1", now + secs(60)), wake(id, "acme/a"), now).await.unwrap();
    assert!(matches!(first, DeliveryOutcome::Accepted { .. }));
    let again = fx.store.accept_delivery(mark("c1", "d1", now + secs(60)), wake(id, "acme/a"), now).await.unwrap();
    assert_eq!(again, DeliveryOutcome::Duplicate);
    // Another store on the same database (another replica) sees it too.
    let other = fx.second_store().await;
    let elsewhere = other.accept_delivery(mark("c1", "d1", now + secs(60)), Vec::new(), now + secs(1)).await.unwrap();
    assert_eq!(elsewhere, DeliveryOutcome::Duplicate);
    // The same id at another endpoint is another delivery.
    let other_source = fx.store.accept_delivery(mark("c2", "d1", now + secs(60)), Vec::new(), now).await.unwrap();
    assert_eq!(other_source, DeliveryOutcome::Accepted { woken: 0 });
    // Once expired it is forgotten (and purged).
    let later = now + secs(61);
    let after = fx.store.accept_delivery(mark("c1", "d1", later + secs(60)), Vec::new(), later).await.unwrap();
    assert_eq!(after, DeliveryOutcome::Accepted { woken: 0 });
    assert_eq!(fx.count("SELECT count(*) AS n FROM webhook_deliveries").await, 1, "the expired marks went");
    // Without an id nothing is remembered.
    assert!(matches!(
        fx.store.accept_delivery(None, Vec::new(), later).await.unwrap(),
        DeliveryOutcome::Accepted { .. }
    ));
}

async fn waking_makes_ready_and_failed_repositories_due_and_absorbs_pending_ones(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "acme/b"], &[]).await;
    let now = t0() + secs(1);
    // Pending (never synced): nothing to wake.
    let outcome = fx.store.accept_delivery(None, wake(id, "acme/a"), now).await.unwrap();
    assert_eq!(outcome, DeliveryOutcome::Accepted { woken: 0 });
    sync_all(&fx, now).await;
    assert_eq!(states(&fx, id).await, [SyncState::Ready, SyncState::Ready]);
    assert!(fx.store.claim_due(now + secs(2), now, LEASE, 100).await.unwrap().is_empty(), "fresh caches are not due");

    let outcome = fx.store.accept_delivery(None, wake(id, "acme/a"), now + secs(2)).await.unwrap();
    assert_eq!(outcome, DeliveryOutcome::Accepted { woken: 1 });
    assert_eq!(states(&fx, id).await, [SyncState::Pending, SyncState::Ready], "only the named repository");
    let jobs = fx.store.claim_due(now + secs(3), now, LEASE, 100).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].repository, repo("acme/a"));
    assert!(jobs[0].updated_since.is_some(), "an incremental sync: the cache stays");

    // A failed repository waiting out its backoff is due now, its failure count kept.
    let failure = SyncFailure {
        message: "boom".into(),
        next_attempt_at: now + secs(3600),
        attempts: 3,
        failed_at: now + secs(3),
    };
    assert!(fx.store.fail_sync(&jobs[0], failure).await.unwrap());
    fx.store.accept_delivery(None, wake(id, "acme/a"), now + secs(4)).await.unwrap();
    let jobs = fx.store.claim_due(now + secs(5), now, LEASE, 100).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].attempts, 3);

    // A paused connection's repositories are never claimed, woken or not.
    assert!(fx.store.complete_sync(&jobs[0], synced(now + secs(5))).await.unwrap());
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let pause = sigsentry_ports::ConnectionChange { is_active: false, ..change_of(&conn, &["acme/a", "acme/b"]) };
    fx.store.update_connection(pause, 100).await.unwrap();
    fx.store.accept_delivery(None, wake(id, "acme/b"), now + secs(6)).await.unwrap();
    assert!(fx.store.claim_due(now + secs(7), now, LEASE, 100).await.unwrap().is_empty());
}

async fn a_merge_announced_during_a_sync_makes_it_run_once_more(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let now = t0() + secs(1);
    let jobs = fx.store.claim_due(now, now, LEASE, 100).await.unwrap();
    assert_eq!(jobs.len(), 1);
    // Twice: a second announcement adds nothing.
    for _ in 0..2 {
        let outcome = fx.store.accept_delivery(None, wake(id, "acme/a"), now + secs(1)).await.unwrap();
        assert_eq!(outcome, DeliveryOutcome::Accepted { woken: 0 }, "the running sync is not voided");
    }
    assert_eq!(states(&fx, id).await, [SyncState::Syncing]);
    assert!(fx.store.complete_sync(&jobs[0], synced(now + secs(2))).await.unwrap(), "its result is kept");
    assert_eq!(states(&fx, id).await, [SyncState::Pending], "and it runs once more");
    let again = fx.store.claim_due(now + secs(3), now, LEASE, 100).await.unwrap();
    assert_eq!(again.len(), 1);
    assert!(fx.store.complete_sync(&again[0], synced(now + secs(4))).await.unwrap());
    assert_eq!(states(&fx, id).await, [SyncState::Ready], "once only");
}

async fn github_connections_holding_a_repository_are_found_across_projects(kind: Kind) {
    let fx = fixture(kind).await;
    let app = |installation: i64| sigsentry_ports::NewCredentials {
        kind: sigsentry_domain::CredentialKind::GitHubApp,
        hint: Some(format!("installation {installation}")),
        installation_id: Some(sigsentry_domain::InstallationId::new(installation).unwrap()),
        ..credentials()
    };
    let here = conn_id();
    let mut mine = new_connection(&fx, here, &["acme/a", "acme/b"], &[]);
    mine.credentials = app(7);
    fx.store.create_connection(mine, 100, None).await.unwrap();
    let there = conn_id();
    let mut elsewhere = new_connection(&fx, there, &["Acme/A"], &[]);
    elsewhere.project_id = fx.other_project().await;
    elsewhere.credentials = app(7);
    fx.store.create_connection(elsewhere, 100, None).await.unwrap();
    // A token connection and another installation hold acme/a too: not theirs to wake.
    let token = create(&fx, &["acme/other-token"], &[]).await;
    let _ = token;
    let other_installation = conn_id();
    let mut other = new_connection(&fx, other_installation, &["acme/c"], &[]);
    other.credentials = app(8);
    fx.store.create_connection(other, 100, None).await.unwrap();

    let mut found = fx.store.github_connections_holding("ACME/a", Some(7)).await.unwrap();
    found.sort();
    let mut expected = vec![here, there];
    expected.sort();
    assert_eq!(found, expected, "the installation's connections, across projects");
    assert_eq!(fx.store.github_connections_holding("acme/b", Some(7)).await.unwrap(), [here]);
    assert!(fx.store.github_connections_holding("acme/a", Some(8)).await.unwrap().is_empty(), "another installation");
    assert!(fx.store.github_connections_holding("acme/other-token", Some(7)).await.unwrap().is_empty(), "a token");
    assert!(fx.store.github_connections_holding("acme/a", None).await.unwrap().is_empty(), "no installation, no one");
    assert!(fx.store.github_connections_holding("acme/zzz", Some(7)).await.unwrap().is_empty());
    // Paused connections are left out.
    let conn = fx.store.get_connection(fx.project, here).await.unwrap().unwrap();
    let pause = sigsentry_ports::ConnectionChange { is_active: false, ..change_of(&conn, &["acme/a", "acme/b"]) };
    fx.store.update_connection(pause, 100).await.unwrap();
    assert_eq!(fx.store.github_connections_holding("acme/a", Some(7)).await.unwrap(), [there]);
}

async fn webhook_secrets_reseal_only_if_unchanged(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let old = fx.store.webhook_secrets_not_under("k9", 10).await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!((old[0].connection_id, old[0].tenant_id, old[0].project_id), (id, fx.tenant, fx.project));
    assert!(fx.store.webhook_secrets_not_under("k1", 10).await.unwrap().is_empty());
    assert!(!fx.store.reseal_webhook_secret(id, &sealed("k1", b"stale"), sealed("k9", b"x")).await.unwrap());
    assert!(fx.store.reseal_webhook_secret(id, &old[0].sealed, sealed("k9", b"resealed")).await.unwrap());
    assert_eq!(fx.store.webhook_target(id).await.unwrap().unwrap().secret, Some(sealed("k9", b"resealed")));
}
