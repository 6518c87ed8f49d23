//! The contract of `ConnectionStore`, on both backends.

use chrono::{TimeZone, Utc};
use sigsentry_domain::{
    ConnectionId, CredentialHealth, CredentialKind, CredentialSummary, LookbackDays, PathPrefix, Platform,
    QuotaExceeded, RepoConnection, RepoName, RepoSyncStatus, ServiceMapping, ServiceName, SyncState,
};
use sigsentry_ports::{ConnectionStore, ListQuery, NewCredentials, StoreError, WriteConnectionError, WriteRefused};
use uuid::Uuid;

use crate::support::*;

for_both_backends!(
    create_and_get_round_trip_every_field,
    a_corrupt_row_is_an_unexpected_error_not_a_panic,
    list_filters_and_pages_in_id_order,
    quota_is_enforced_with_the_figures,
    concurrent_creates_never_pass_the_quota,
    concurrent_creates_of_one_repository_leave_one_holder,
    taken_repositories_and_service_names_name_the_holder,
    update_checks_version_and_existence,
    concurrent_updates_of_one_version_let_one_win,
    update_keeps_the_state_of_kept_repositories_unless_resyncing_all,
    update_quota_counts_added_and_frees_removed,
    delete_removes_the_connection_and_its_children,
    invalidate_cache_puts_repositories_back_to_pending,
    reseal_only_replaces_the_value_read,
);

async fn create_and_get_round_trip_every_field(kind: Kind) {
    let fx = fixture(kind).await;
    let id = conn_id();
    let mut new = new_connection(&fx, id, &["Acme/Checkout", "acme/billing"], &[("checkout-api", "Acme/Checkout")]);
    new.service_mappings.push(ServiceMapping {
        service_name: ServiceName::new("billing worker".into()).unwrap(),
        repo: repo("acme/billing"),
        path_prefix: PathPrefix::root(),
        default_branch: None,
    });
    fx.store.create_connection(new.clone(), 5, None).await.unwrap();
    let got = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let expected = RepoConnection {
        id,
        tenant_id: fx.tenant,
        project_id: fx.project,
        platform: Platform::GitHub,
        credentials: CredentialSummary {
            kind: CredentialKind::Token,
            hint: Some("…abcd".into()),
            base_url: new.credentials.base_url.clone(),
            updated_at: t0(),
            health: CredentialHealth::UNKNOWN,
        },
        repositories: new.repositories.clone(),
        service_mappings: new.service_mappings.clone(),
        lookback_days: LookbackDays::new(45).unwrap(),
        is_active: true,
        sync: new.repositories.iter().cloned().map(RepoSyncStatus::pending).collect(),
        created_at: t0(),
        updated_at: t0(),
        version: 1,
    };
    assert_eq!(got, expected);
    let stored = fx.store.credentials_not_under("k2", 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].connection_id, id);
    assert_eq!(stored[0].tenant_id, fx.tenant);
    assert_eq!(stored[0].project_id, fx.project);
    assert_eq!(stored[0].sealed, new.credentials.sealed);
    assert_eq!(stored[0].platform, Platform::GitHub, "what the sealed value binds comes with it");
    assert_eq!(stored[0].credential_kind, new.credentials.kind);
    assert_eq!(stored[0].base_url, new.credentials.base_url);

    // Another project does not see it.
    let other = fx.other_project().await;
    assert!(fx.store.get_connection(other, id).await.unwrap().is_none());
    assert!(fx.store.get_connection(fx.project, conn_id()).await.unwrap().is_none());
}

async fn a_corrupt_row_is_an_unexpected_error_not_a_panic(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    fx.exec(&format!("UPDATE repo_connections SET platform = 'svn' WHERE id = '{id}'")).await;
    assert!(matches!(fx.store.get_connection(fx.project, id).await, Err(StoreError::Unexpected(_))));
}

async fn list_filters_and_pages_in_id_order(kind: Kind) {
    let fx = fixture(kind).await;
    let mut ids = Vec::new();
    for i in 0..5u128 {
        let id = ConnectionId::from_uuid(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0000 + i));
        let mut new = new_connection(&fx, id, &[&format!("acme/r{i}")], &[]);
        if i == 3 {
            new.platform = Platform::GitLab;
            new.repositories = vec![RepoName::parse(Platform::GitLab, "acme/sub/r3").unwrap()];
        }
        fx.store.create_connection(new, 100, None).await.unwrap();
        ids.push(id);
    }
    // Pause connection 1.
    let c1 = fx.store.get_connection(fx.project, ids[1]).await.unwrap().unwrap();
    let mut pause = change_of(&c1, &["acme/r1"]);
    pause.is_active = false;
    fx.store.update_connection(pause, 100).await.unwrap();
    // A connection in another project never shows.
    let other = fx.other_project().await;
    let mut foreign = new_connection(&fx, conn_id(), &["acme/r0"], &[]);
    foreign.project_id = other;
    fx.store.create_connection(foreign, 100, None).await.unwrap();

    let listed = |q: ListQuery| {
        let store = fx.store.clone();
        let project = fx.project;
        async move { store.list_connections(project, q).await.unwrap().into_iter().map(|c| c.id).collect::<Vec<_>>() }
    };
    assert_eq!(listed(all()).await, ids);
    assert_eq!(listed(ListQuery { platform: Some(Platform::GitLab), ..all() }).await, vec![ids[3]]);
    assert_eq!(listed(ListQuery { is_active: Some(false), ..all() }).await, vec![ids[1]]);
    assert_eq!(
        listed(ListQuery { platform: Some(Platform::GitHub), is_active: Some(true), ..all() }).await,
        vec![ids[0], ids[2], ids[4]]
    );
    assert_eq!(listed(ListQuery { limit: 2, ..all() }).await, ids[..2]);
    assert_eq!(listed(ListQuery { after: Some(ids[1]), limit: 2, ..all() }).await, ids[2..4]);
    assert_eq!(listed(ListQuery { after: Some(ids[4]), ..all() }).await, Vec::<ConnectionId>::new());
    // Children come along with each listed connection.
    let full = fx.store.list_connections(fx.project, all()).await.unwrap();
    assert_eq!(full[3].repositories[0].as_str(), "acme/sub/r3");
    assert!(!full[1].is_active);
    assert_eq!(full[1].version, 2);
}

async fn quota_is_enforced_with_the_figures(kind: Kind) {
    let fx = fixture(kind).await;
    create(&fx, &["acme/a", "acme/b", "acme/c"], &[]).await;
    let refused =
        fx.store.create_connection(new_connection(&fx, conn_id(), &["acme/d", "acme/e", "acme/f"], &[]), 5, None).await;
    assert_eq!(
        refused,
        Err(WriteConnectionError::Refused(WriteRefused::Quota(QuotaExceeded { limit: 5, used: 3, requested: 3 })))
    );
    fx.store.create_connection(new_connection(&fx, conn_id(), &["acme/d", "acme/e"], &[]), 5, None).await.unwrap();
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories").await, 5);
    assert_eq!(fx.count("SELECT count(*) AS n FROM repo_connections").await, 2);
}

async fn concurrent_creates_never_pass_the_quota(kind: Kind) {
    let fx = fixture(kind).await;
    // A second pool on the same database stands in for a second server process.
    let second = fx.second_store().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { fx.store.clone() } else { second.clone() };
        let new = new_connection(&fx, conn_id(), &[&format!("acme/repo-{i}")], &[]);
        tasks.push(tokio::spawn(async move { store.create_connection(new, 5, None).await }));
    }
    let mut ok = 0;
    let mut over = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(WriteConnectionError::Refused(WriteRefused::Quota(q))) => {
                assert_eq!((q.limit, q.used, q.requested), (5, 5, 1));
                over += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, over), (5, 15));
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories").await, 5);
}

async fn concurrent_creates_of_one_repository_leave_one_holder(kind: Kind) {
    let fx = fixture(kind).await;
    let second = fx.second_store().await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = if i % 2 == 0 { fx.store.clone() } else { second.clone() };
        let id = conn_id();
        let new = new_connection(&fx, id, &["acme/contested"], &[(&format!("svc-{i}"), "acme/contested")]);
        tasks.push(tokio::spawn(async move { (id, store.create_connection(new, 100, None).await) }));
    }
    let mut winners = Vec::new();
    let mut holders = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (id, Ok(())) => winners.push(id),
            (_, Err(WriteConnectionError::Refused(WriteRefused::RepositoryTaken { repository, connection_id }))) => {
                assert_eq!(repository, repo("acme/contested"));
                holders.push(connection_id);
            }
            (_, Err(other)) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert!(holders.iter().all(|h| *h == winners[0]), "every refusal names the one holder");
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories").await, 1);
}

async fn taken_repositories_and_service_names_name_the_holder(kind: Kind) {
    let fx = fixture(kind).await;
    let holder = create(&fx, &["acme/checkout"], &[("checkout-api", "acme/checkout")]).await;
    // Case differs: still the same repository.
    let refused = fx.store.create_connection(new_connection(&fx, conn_id(), &["ACME/Checkout"], &[]), 100, None).await;
    assert_eq!(
        refused,
        Err(WriteConnectionError::Refused(WriteRefused::RepositoryTaken {
            repository: repo("ACME/Checkout"),
            connection_id: holder
        }))
    );
    let refused = fx
        .store
        .create_connection(
            new_connection(&fx, conn_id(), &["acme/other"], &[("checkout-api", "acme/other")]),
            100,
            None,
        )
        .await;
    assert_eq!(
        refused,
        Err(WriteConnectionError::Refused(WriteRefused::ServiceNameTaken {
            service_name: ServiceName::new("checkout-api".into()).unwrap(),
            connection_id: holder
        }))
    );
    assert_eq!(fx.count("SELECT count(*) AS n FROM repo_connections").await, 1, "refusals leave nothing behind");
    // The same names are free in another project.
    let other = fx.other_project().await;
    let mut elsewhere = new_connection(&fx, conn_id(), &["acme/checkout"], &[("checkout-api", "acme/checkout")]);
    elsewhere.project_id = other;
    fx.store.create_connection(elsewhere, 100, None).await.unwrap();

    // Updates are checked too, excluding the connection itself.
    let second = create(&fx, &["acme/second"], &[]).await;
    let conn = fx.store.get_connection(fx.project, second).await.unwrap().unwrap();
    let refused = fx.store.update_connection(change_of(&conn, &["acme/second", "Acme/checkout"]), 100).await;
    assert_eq!(
        refused,
        Err(WriteConnectionError::Refused(WriteRefused::RepositoryTaken {
            repository: repo("Acme/checkout"),
            connection_id: holder
        }))
    );
    let mut keep_own = change_of(&conn, &["Acme/Second"]);
    keep_own.service_mappings = vec![mapping("second", "Acme/Second")];
    fx.store.update_connection(keep_own, 100).await.unwrap();
}

async fn update_checks_version_and_existence(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    fx.store.update_connection(change_of(&conn, &["acme/a"]), 100).await.unwrap();
    assert_eq!(
        fx.store.update_connection(change_of(&conn, &["acme/a"]), 100).await,
        Err(WriteConnectionError::VersionConflict)
    );
    let mut gone = change_of(&conn, &["acme/a"]);
    gone.id = conn_id();
    assert_eq!(fx.store.update_connection(gone, 100).await, Err(WriteConnectionError::NotFound));
    let mut elsewhere = change_of(&conn, &["acme/a"]);
    elsewhere.project_id = fx.other_project().await;
    assert_eq!(fx.store.update_connection(elsewhere, 100).await, Err(WriteConnectionError::NotFound));
    let after = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(after.version, 2);
    assert_eq!(after.updated_at, t0() + secs(60));
}

async fn concurrent_updates_of_one_version_let_one_win(kind: Kind) {
    let fx = fixture(kind).await;
    let second = fx.second_store().await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for i in 0..6u32 {
        let store = if i % 2 == 0 { fx.store.clone() } else { second.clone() };
        let change = change_of(&conn, &["acme/a", &format!("acme/extra-{i}")]);
        tasks.push(tokio::spawn(async move { store.update_connection(change, 100).await }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(WriteConnectionError::VersionConflict) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1, "one change per version");
    let after = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!((after.version, after.repositories.len()), (2, 2));
}

async fn update_keeps_the_state_of_kept_repositories_unless_resyncing_all(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "acme/b"], &[("svc-a", "acme/a")]).await;
    let synced = "2026-11-22T11:00:00.000Z";
    fx.exec(&format!(
        "UPDATE connection_repositories SET sync_state = 'ready', last_synced_at = '{synced}' WHERE connection_id = '{id}'"
    )).await;
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    // Drop b, keep a (renamed in case), add c, change the mappings and pause.
    let mut change = change_of(&conn, &["acme/c", "Acme/A"]);
    change.service_mappings = vec![mapping("svc-c", "acme/c"), mapping("svc-a", "Acme/A")];
    change.is_active = false;
    change.lookback_days = LookbackDays::new(7).unwrap();
    fx.store.update_connection(change.clone(), 100).await.unwrap();
    let after = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(after.repositories, change.repositories);
    assert_eq!(after.service_mappings, change.service_mappings);
    assert_eq!(after.sync[0], RepoSyncStatus::pending(repo("acme/c")));
    assert_eq!(after.sync[1].repository, repo("Acme/A"));
    assert_eq!(after.sync[1].state, SyncState::Ready);
    assert_eq!(after.sync[1].last_synced_at, Some(Utc.with_ymd_and_hms(2026, 11, 22, 11, 0, 0).unwrap()));
    assert!(!after.is_active);
    assert_eq!(after.lookback_days.get(), 7);
    assert_eq!(after.credentials.updated_at, t0(), "credentials untouched");
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories").await, 2);

    // New credentials: everything goes back to pending, and they are stored.
    let mut resync = change_of(&after, &["acme/c", "Acme/A"]);
    resync.service_mappings = after.service_mappings.clone();
    resync.resync_all = true;
    resync.credentials = Some(NewCredentials {
        kind: CredentialKind::Token,
        hint: None,
        base_url: None,
        sealed: sealed("k2", b"new secret"),
        installation_id: None,
    });
    resync.at = t0() + secs(120);
    fx.store.update_connection(resync, 100).await.unwrap();
    let after = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert!(
        after.sync.iter().all(|s| s.state == SyncState::Pending && s.last_synced_at.is_none() && s.error.is_none())
    );
    assert_eq!(after.credentials.updated_at, t0() + secs(120));
    assert_eq!(after.credentials.hint, None);
    assert_eq!(after.credentials.base_url, None);
    assert_eq!(after.version, 3);
    assert!(fx.store.credentials_not_under("k2", 10).await.unwrap().is_empty());
}

async fn update_quota_counts_added_and_frees_removed(kind: Kind) {
    let fx = fixture(kind).await;
    create(&fx, &["acme/x", "acme/y"], &[]).await;
    let id = create(&fx, &["acme/a", "acme/b", "acme/c"], &[]).await;
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    // At the limit (5): adding one more is refused...
    assert_eq!(
        fx.store.update_connection(change_of(&conn, &["acme/a", "acme/b", "acme/c", "acme/d"]), 5).await,
        Err(WriteConnectionError::Refused(WriteRefused::Quota(QuotaExceeded { limit: 5, used: 5, requested: 1 })))
    );
    // ...but swapping one for another is not.
    fx.store.update_connection(change_of(&conn, &["acme/a", "acme/b", "acme/d"]), 5).await.unwrap();
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    // Removing only is never refused, even over the limit.
    fx.store.update_connection(change_of(&conn, &["acme/a"]), 1).await.unwrap();
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories").await, 3);
}

async fn delete_removes_the_connection_and_its_children(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "acme/b"], &[("svc", "acme/a")]).await;
    let kept = create(&fx, &["acme/c"], &[("svc-c", "acme/c")]).await;
    let other = fx.other_project().await;
    assert!(!fx.store.delete_connection(other, id).await.unwrap(), "not in that project");
    assert!(fx.store.delete_connection(fx.project, id).await.unwrap());
    assert!(!fx.store.delete_connection(fx.project, id).await.unwrap());
    assert!(fx.store.get_connection(fx.project, id).await.unwrap().is_none());
    assert_eq!(fx.count("SELECT count(*) AS n FROM connection_repositories").await, 1);
    assert_eq!(fx.count("SELECT count(*) AS n FROM service_mappings").await, 1);
    assert!(fx.store.get_connection(fx.project, kept).await.unwrap().is_some());
    // The names are free again.
    create(&fx, &["acme/a"], &[("svc", "acme/a")]).await;
}

async fn invalidate_cache_puts_repositories_back_to_pending(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a", "acme/b"], &[]).await;
    fx.exec(&format!(
        "UPDATE connection_repositories SET sync_state = 'error', sync_error = 'boom', \
         last_synced_at = '2026-11-22T11:00:00.000Z' WHERE connection_id = '{id}'"
    ))
    .await;
    let before = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(before.sync[0].state, SyncState::Error);
    assert_eq!(before.sync[0].error.as_deref(), Some("boom"));
    assert!(!fx.store.invalidate_cache(fx.other_project().await, id, t0()).await.unwrap());
    assert!(!fx.store.invalidate_cache(fx.project, conn_id(), t0()).await.unwrap());
    assert!(fx.store.invalidate_cache(fx.project, id, t0() + secs(1)).await.unwrap());
    let after = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(after.sync, before.repositories.iter().cloned().map(RepoSyncStatus::pending).collect::<Vec<_>>());
    assert_eq!((after.version, after.updated_at), (before.version, before.updated_at), "nothing else moves");
}

async fn reseal_only_replaces_the_value_read(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let old = credentials().sealed;
    let rows = fx.store.credentials_not_under("k2", 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(fx.store.credentials_not_under("k1", 10).await.unwrap().is_empty());
    // A stale read loses.
    assert!(!fx.store.reseal_credentials(id, &sealed("k1", b"stale"), sealed("k2", b"x")).await.unwrap());
    assert!(fx.store.reseal_credentials(id, &old, sealed("k2", b"resealed")).await.unwrap());
    assert!(!fx.store.reseal_credentials(id, &old, sealed("k2", b"again")).await.unwrap());
    assert!(fx.store.credentials_not_under("k2", 10).await.unwrap().is_empty());
    let rows = fx.store.credentials_not_under("k3", 10).await.unwrap();
    assert_eq!(rows[0].sealed, sealed("k2", b"resealed"));
    // Resealing is invisible to users: no new version, same credential time.
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!((conn.version, conn.credentials.updated_at), (1, t0()));
    // The limit holds.
    let second = create(&fx, &["acme/b"], &[]).await;
    assert_eq!(fx.store.credentials_not_under("k3", 1).await.unwrap().len(), 1);

    // Every row once, in id order, whatever its key; and the keys in use.
    let first_page = fx.store.credentials_after(None, 1).await.unwrap();
    assert_eq!(first_page.iter().map(|r| r.connection_id).collect::<Vec<_>>(), [id]);
    let rest = fx.store.credentials_after(Some(id), 10).await.unwrap();
    assert_eq!(rest.iter().map(|r| r.connection_id).collect::<Vec<_>>(), [second]);
    assert!(fx.store.credentials_after(Some(second), 10).await.unwrap().is_empty());
    assert_eq!(fx.store.credential_key_ids().await.unwrap(), ["k1", "k2"]);
    // A row that does not read back is passed over, even a whole page of them.
    fx.exec(&format!("UPDATE repo_connections SET credential_kind = 'carrier-pigeon' WHERE id = '{id}'")).await;
    let page = fx.store.credentials_after(None, 1).await.unwrap();
    assert_eq!(page.iter().map(|r| r.connection_id).collect::<Vec<_>>(), [second]);
}
