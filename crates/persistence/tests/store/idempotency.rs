//! The contract of `IdempotencyStore`, on both backends.

use chrono::{DateTime, Utc};
use sigsentry_domain::IdempotencyKey;
use sigsentry_ports::{
    ConnectionStore, IdempotencyBegin, IdempotencyCompletion, IdempotencyStore, StoredResponse, WriteConnectionError,
};

use crate::support::*;

for_both_backends!(
    idempotency_claims_replays_and_expires,
    concurrent_claims_of_one_key_let_one_through,
    a_refused_creation_does_not_complete_the_key,
);

async fn idempotency_claims_replays_and_expires(kind: Kind) {
    let fx = fixture(kind).await;
    let key = IdempotencyKey::new("create-1").unwrap();
    let (lease, retention) = (30, 86_400);
    let begin = |fp: &'static str, at: DateTime<Utc>| {
        let store = fx.store.clone();
        let key = key.clone();
        let project = fx.project;
        async move { store.begin(project, &key, fp, at, lease, retention).await.unwrap() }
    };
    assert_eq!(begin("fp1", t0()).await, IdempotencyBegin::Claimed);
    assert_eq!(begin("fp1", t0() + secs(1)).await, IdempotencyBegin::InFlight { retry_after_secs: 1 });
    assert_eq!(begin("fp2", t0() + secs(1)).await, IdempotencyBegin::Mismatch);
    // The same key in another project is another key.
    let other = fx.other_project().await;
    assert_eq!(fx.store.begin(other, &key, "fp9", t0(), lease, retention).await.unwrap(), IdempotencyBegin::Claimed);

    // A failed request releases its claim; the key may be claimed again.
    fx.store.release(fx.project, &key).await.unwrap();
    assert_eq!(begin("fp2", t0() + secs(2)).await, IdempotencyBegin::Claimed);
    // An abandoned claim is taken over after the lease.
    assert_eq!(begin("fp1", t0() + secs(20)).await, IdempotencyBegin::Mismatch);
    assert_eq!(begin("fp1", t0() + secs(40)).await, IdempotencyBegin::Claimed);
    assert_eq!(begin("fp1", t0() + secs(41)).await, IdempotencyBegin::InFlight { retry_after_secs: 1 });

    // Completing in the creating transaction stores the response for replay.
    let response = StoredResponse { status: 201, body: r#"{"id":"x"}"#.into(), location: Some("/v1/x".into()) };
    let completion = IdempotencyCompletion { key: key.clone(), response: response.clone() };
    fx.store.create_connection(new_connection(&fx, conn_id(), &["acme/a"], &[]), 100, Some(completion)).await.unwrap();
    assert_eq!(begin("fp1", t0() + secs(50)).await, IdempotencyBegin::Replay(response.clone()));
    assert_eq!(begin("fp2", t0() + secs(50)).await, IdempotencyBegin::Mismatch);
    // Release never drops a completed record.
    fx.store.release(fx.project, &key).await.unwrap();
    assert_eq!(begin("fp1", t0() + secs(60)).await, IdempotencyBegin::Replay(response));
    // After the retention window the record is gone.
    assert_eq!(begin("fp2", t0() + secs(40 + 86_401)).await, IdempotencyBegin::Claimed);
}

async fn concurrent_claims_of_one_key_let_one_through(kind: Kind) {
    let fx = fixture(kind).await;
    let second = fx.second_store().await;
    let key = IdempotencyKey::new("contested").unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { fx.store.clone() } else { second.clone() };
        let (key, project) = (key.clone(), fx.project);
        tasks.push(tokio::spawn(async move { store.begin(project, &key, "fp", t0(), 30, 60).await.unwrap() }));
    }
    let mut claimed = 0;
    for task in tasks {
        match task.await.unwrap() {
            IdempotencyBegin::Claimed => claimed += 1,
            IdempotencyBegin::InFlight { retry_after_secs: 1 } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(claimed, 1);
    assert_eq!(fx.count("SELECT count(*) AS n FROM idempotency_keys").await, 1);
}

async fn a_refused_creation_does_not_complete_the_key(kind: Kind) {
    let fx = fixture(kind).await;
    create(&fx, &["acme/a"], &[]).await;
    let key = IdempotencyKey::new("k").unwrap();
    assert_eq!(fx.store.begin(fx.project, &key, "fp", t0(), 30, 60).await.unwrap(), IdempotencyBegin::Claimed);
    let completion = IdempotencyCompletion {
        key: key.clone(),
        response: StoredResponse { status: 201, body: "{}".into(), location: None },
    };
    let refused =
        fx.store.create_connection(new_connection(&fx, conn_id(), &["acme/a"], &[]), 100, Some(completion)).await;
    assert!(matches!(refused, Err(WriteConnectionError::RepositoryTaken { .. })));
    assert_eq!(
        fx.store.begin(fx.project, &key, "fp", t0() + secs(1), 30, 60).await.unwrap(),
        IdempotencyBegin::InFlight { retry_after_secs: 1 }
    );
}
