//! The contract of `CredentialStore`, and the credential-status filter of
//! listings, on both backends.

use chrono::{DateTime, TimeDelta, Utc};
use sigsentry_domain::{CredentialHealth, CredentialKind, CredentialStatus, CredentialUse, InstallationId};
use sigsentry_ports::{
    ConnectionStore, CredentialReport, CredentialStore, ListQuery, NewCredentials, RenewalClaim, RenewalOutcome,
};
use uuid::Uuid;

use crate::support::*;

for_both_backends!(
    new_credentials_are_unknown_and_learn_from_their_use,
    what_is_learnt_of_replaced_credentials_is_dropped,
    the_list_filters_on_the_status_at_its_time,
    one_holder_renews_and_the_others_read_its_result,
    a_refused_renewal_is_not_tried_again_until_new_credentials,
    a_lapsed_claim_is_free_and_its_late_holder_writes_nothing,
    app_connections_keep_their_installation_in_clear,
    an_uninstalled_apps_connections_are_refused,
);

fn report(outcome: Option<CredentialUse>, expires_at: Option<Option<DateTime<Utc>>>) -> CredentialReport {
    CredentialReport { outcome, expires_at }
}

async fn health(fx: &Fixture, id: sigsentry_domain::ConnectionId) -> CredentialHealth {
    fx.store.get_connection(fx.project, id).await.unwrap().unwrap().credentials.health
}

async fn new_credentials_are_unknown_and_learn_from_their_use(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    assert_eq!(health(&fx, id).await, CredentialHealth::UNKNOWN);

    let expiry = t0() + TimeDelta::days(30);
    let at = t0() + secs(5);
    let used = report(Some(CredentialUse::Accepted), Some(Some(expiry)));
    assert!(fx.store.record_credential_use(id, t0(), used, at).await.unwrap());
    let learnt = health(&fx, id).await;
    assert_eq!(
        learnt,
        CredentialHealth { expires_at: Some(expiry), last_use: CredentialUse::Accepted, last_use_at: Some(at) }
    );
    assert_eq!(learnt.status(at), CredentialStatus::Valid);
    assert_eq!(learnt.status(expiry - TimeDelta::days(2)), CredentialStatus::Expiring);

    // A report without an expiry keeps the one known; a refusal is recorded.
    let refused_at = t0() + secs(9);
    let refused = report(Some(CredentialUse::Refused), None);
    assert!(fx.store.record_credential_use(id, t0(), refused, refused_at).await.unwrap());
    let learnt = health(&fx, id).await;
    assert_eq!(learnt.expires_at, Some(expiry));
    assert_eq!(learnt.status(refused_at), CredentialStatus::Rejected);
}

async fn what_is_learnt_of_replaced_credentials_is_dropped(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let used = report(Some(CredentialUse::Refused), None);
    assert!(fx.store.record_credential_use(id, t0(), used, t0()).await.unwrap());

    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let mut change = change_of(&conn, &["acme/a"]);
    change.credentials = Some(credentials());
    change.resync_all = true;
    fx.store.update_connection(change.clone(), 100).await.unwrap();
    assert_eq!(health(&fx, id).await, CredentialHealth::UNKNOWN, "new credentials start afresh");

    // A sync that read the old credentials reports late: nothing is written.
    let late = report(Some(CredentialUse::Refused), Some(None));
    assert!(!fx.store.record_credential_use(id, t0(), late, change.at).await.unwrap());
    assert_eq!(health(&fx, id).await, CredentialHealth::UNKNOWN);
    // One that read the new ones is recorded.
    let fresh = report(Some(CredentialUse::Accepted), None);
    assert!(fx.store.record_credential_use(id, change.at, fresh, change.at).await.unwrap());
    assert_eq!(health(&fx, id).await.last_use, CredentialUse::Accepted);
}

async fn the_list_filters_on_the_status_at_its_time(kind: Kind) {
    let fx = fixture(kind).await;
    let now = t0() + TimeDelta::days(10);
    let unknown = create(&fx, &["acme/unknown"], &[]).await;
    let valid = create(&fx, &["acme/valid"], &[]).await;
    let expiring = create(&fx, &["acme/expiring"], &[]).await;
    let expired = create(&fx, &["acme/expired"], &[]).await;
    let rejected = create(&fx, &["acme/rejected"], &[]).await;
    let record = |id, outcome, expires_at| {
        let store = fx.store.clone();
        async move {
            assert!(store.record_credential_use(id, t0(), report(Some(outcome), expires_at), t0()).await.unwrap());
        }
    };
    record(valid, CredentialUse::Accepted, Some(Some(now + TimeDelta::days(60)))).await;
    record(expiring, CredentialUse::Accepted, Some(Some(now + TimeDelta::days(3)))).await;
    record(expired, CredentialUse::Accepted, Some(Some(now - TimeDelta::days(1)))).await;
    record(rejected, CredentialUse::Refused, Some(Some(now + TimeDelta::days(60)))).await;

    let list = |statuses: &[CredentialStatus], after, limit| {
        let query = ListQuery { credential_status: statuses.to_vec(), now, after, limit, ..all() };
        let store = fx.store.clone();
        let project = fx.project;
        async move { store.list_connections(project, query).await.unwrap().iter().map(|c| c.id).collect::<Vec<_>>() }
    };
    use CredentialStatus as S;
    assert_eq!(list(&[S::Expiring, S::Expired, S::Rejected], None, 100).await, [expiring, expired, rejected]);
    assert_eq!(list(&[S::Unknown], None, 100).await, [unknown]);
    assert_eq!(list(&[S::Valid], None, 100).await, [valid]);
    // Paged in id order, the filter applied before the page is cut.
    assert_eq!(list(&[S::Unknown, S::Expired, S::Rejected], None, 2).await, [unknown, expired]);
    assert_eq!(list(&[S::Unknown, S::Expired, S::Rejected], Some(expired), 2).await, [rejected]);
    // The clock moves: the expiring one has expired.
    let later = ListQuery { credential_status: vec![S::Expired], now: now + TimeDelta::days(4), ..all() };
    let ids: Vec<_> = fx.store.list_connections(fx.project, later).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(ids, [expiring, expired]);
}

async fn one_holder_renews_and_the_others_read_its_result(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let seen = credentials().sealed;
    let other = fx.second_store().await;
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    let until = t0() + secs(120);
    assert_eq!(fx.store.claim_renewal(id, &seen, first, t0(), until).await.unwrap(), RenewalClaim::Claimed);
    assert_eq!(other.claim_renewal(id, &seen, second, t0() + secs(1), until).await.unwrap(), RenewalClaim::Busy(until));
    // Only the holder finishes.
    let renewed = sealed("k1", b"renewed grant");
    let not_holder = RenewalOutcome::Renewed(sealed("k1", b"forged"));
    assert!(!other.finish_renewal(id, second, not_holder, t0()).await.unwrap());
    let done = RenewalOutcome::Renewed(renewed.clone());
    assert!(fx.store.finish_renewal(id, first, done, t0() + secs(2)).await.unwrap());
    // The other sees the renewed credentials instead of spending the old refresh token.
    let claim = other.claim_renewal(id, &seen, second, t0() + secs(3), until).await.unwrap();
    assert_eq!(claim, RenewalClaim::Changed(renewed.clone()));
    let health = health(&fx, id).await;
    assert_eq!((health.last_use, health.expires_at), (CredentialUse::Accepted, None));
    // The next renewal starts from the renewed value.
    assert_eq!(other.claim_renewal(id, &renewed, second, t0() + secs(4), until).await.unwrap(), RenewalClaim::Claimed);
    other.abandon_renewal(id, second).await.unwrap();
    assert_eq!(
        fx.store.claim_renewal(id, &renewed, first, t0() + secs(5), until).await.unwrap(),
        RenewalClaim::Claimed,
        "an abandoned claim is free at once"
    );
    let gone = sigsentry_domain::ConnectionId::from_uuid(Uuid::now_v7());
    assert_eq!(fx.store.claim_renewal(gone, &renewed, first, t0(), until).await.unwrap(), RenewalClaim::Gone);
}

async fn a_refused_renewal_is_not_tried_again_until_new_credentials(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let seen = credentials().sealed;
    let holder = Uuid::now_v7();
    let access_expiry = t0() + secs(300);
    assert_eq!(fx.store.claim_renewal(id, &seen, holder, t0(), t0() + secs(120)).await.unwrap(), RenewalClaim::Claimed);
    let refused = RenewalOutcome::Refused { expires_at: access_expiry };
    assert!(fx.store.finish_renewal(id, holder, refused, t0() + secs(1)).await.unwrap());
    let health = health(&fx, id).await;
    assert_eq!(health.expires_at, Some(access_expiry), "the access token's expiry is what the user must beat");
    assert_eq!(health.status(t0() + secs(2)), CredentialStatus::Rejected);
    let again = fx.store.claim_renewal(id, &seen, Uuid::now_v7(), t0() + secs(3), t0() + secs(200)).await.unwrap();
    assert_eq!(again, RenewalClaim::Refused);

    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    let mut change = change_of(&conn, &["acme/a"]);
    let replacement = NewCredentials { sealed: sealed("k1", b"re-authorized"), ..credentials() };
    change.credentials = Some(replacement.clone());
    fx.store.update_connection(change, 100).await.unwrap();
    let claim = fx.store.claim_renewal(id, &replacement.sealed, holder, t0() + secs(70), t0() + secs(190)).await;
    assert_eq!(claim.unwrap(), RenewalClaim::Claimed);
}

async fn a_lapsed_claim_is_free_and_its_late_holder_writes_nothing(kind: Kind) {
    let fx = fixture(kind).await;
    let id = create(&fx, &["acme/a"], &[]).await;
    let seen = credentials().sealed;
    let (crashed, next) = (Uuid::now_v7(), Uuid::now_v7());
    assert_eq!(
        fx.store.claim_renewal(id, &seen, crashed, t0(), t0() + secs(120)).await.unwrap(),
        RenewalClaim::Claimed
    );
    let claim = fx.store.claim_renewal(id, &seen, next, t0() + secs(121), t0() + secs(241)).await.unwrap();
    assert_eq!(claim, RenewalClaim::Claimed);
    let late = RenewalOutcome::Renewed(sealed("k1", b"late"));
    assert!(!fx.store.finish_renewal(id, crashed, late, t0() + secs(122)).await.unwrap());
    let stored = fx.store.credentials_not_under("none", 10).await.unwrap();
    assert_eq!(stored[0].sealed, seen, "the late holder wrote nothing");
}

async fn app_connections_keep_their_installation_in_clear(kind: Kind) {
    let fx = fixture(kind).await;
    let id = conn_id();
    let mut new = new_connection(&fx, id, &["acme/a"], &[]);
    new.credentials = NewCredentials {
        kind: CredentialKind::GitHubApp,
        hint: Some("installation 12345678".into()),
        installation_id: Some(InstallationId::new(12_345_678).unwrap()),
        ..credentials()
    };
    fx.store.create_connection(new, 100, None).await.unwrap();
    let select = "SELECT COUNT(*) AS n FROM repo_connections WHERE github_installation_id = 12345678";
    assert_eq!(fx.count(select).await, 1);
    let conn = fx.store.get_connection(fx.project, id).await.unwrap().unwrap();
    assert_eq!(conn.credentials.kind, CredentialKind::GitHubApp);
    // Replaced by a token: no installation any more.
    let mut change = change_of(&conn, &["acme/a"]);
    change.credentials = Some(credentials());
    fx.store.update_connection(change, 100).await.unwrap();
    let select = "SELECT COUNT(*) AS n FROM repo_connections WHERE github_installation_id IS NULL";
    assert_eq!(fx.count(select).await, 1);
}

async fn an_uninstalled_apps_connections_are_refused(kind: Kind) {
    let fx = fixture(kind).await;
    let app = |installation: i64| NewCredentials {
        kind: CredentialKind::GitHubApp,
        hint: Some(format!("installation {installation}")),
        installation_id: Some(InstallationId::new(installation).unwrap()),
        ..credentials()
    };
    let (gone, kept) = (conn_id(), conn_id());
    let mut first = new_connection(&fx, gone, &["acme/a"], &[]);
    first.credentials = app(77);
    fx.store.create_connection(first, 100, None).await.unwrap();
    let mut second = new_connection(&fx, kept, &["acme/b"], &[]);
    second.credentials = app(78);
    fx.store.create_connection(second, 100, None).await.unwrap();
    let token = create(&fx, &["acme/c"], &[]).await;

    let at = t0() + secs(60);
    assert_eq!(fx.store.installation_refused(77, at).await.unwrap(), 1);
    assert_eq!(health(&fx, gone).await.status(at), CredentialStatus::Rejected);
    assert_eq!(health(&fx, kept).await, CredentialHealth::UNKNOWN, "another installation");
    assert_eq!(health(&fx, token).await, CredentialHealth::UNKNOWN, "a token");
    assert_eq!(fx.store.installation_refused(99, at).await.unwrap(), 0);
}
