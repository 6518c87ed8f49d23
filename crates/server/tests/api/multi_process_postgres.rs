//! Two `sigsentry serve` processes on one PostgreSQL database, hit at once.
#![allow(clippy::unwrap_used)]

use crate::processes::{Cluster, SHARED_KEY, Store};
use sigsentry_testdb::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_postgres_database_keep_every_invariant() {
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let cluster =
        Cluster::start(Store { url: db.url().to_owned(), master_key: Some(SHARED_KEY.to_owned()) }, dir.path()).await;
    cluster.assert_invariants().await;
}

/// Two server processes, each with its sync worker, on one PostgreSQL
/// database, both needing a GitLab OAuth grant renewed at the same time: the
/// token endpoint (which rotates refresh tokens and refuses a spent one)
/// sees each refresh token once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_spend_a_refresh_token_once() {
    use std::time::{Duration, Instant};

    use chrono::{TimeDelta, Utc};
    use reqwest::Method;
    use serde_json::json;

    use crate::stubs::Stub;

    let stub = Stub::start();
    {
        let mut state = stub.state.lock().unwrap();
        state.oauth.live = vec!["oauth-race-refresh-000001".to_owned()];
        // Slow enough that the other process comes while the first renews.
        state.oauth.delay_ms = 1500;
    }
    let mut env = stub.env();
    env.push(("SIGSENTRY_GITLAB_OAUTH_CLIENT_ID", "gitlab-client-id".to_owned()));
    env.push(("SIGSENTRY_GITLAB_OAUTH_CLIENT_SECRET", "gitlab-client-secret-0000000001".to_owned()));
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store { url: db.url().to_owned(), master_key: Some(SHARED_KEY.to_owned()) };
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cluster = Cluster::start_with(store, dir.path(), 2, "team", &env).await;

    // Due at once: it expires within the five minutes before which grants are renewed.
    let expires_at = (Utc::now() + TimeDelta::minutes(1)).to_rfc3339();
    let body = json!({
        "platform": "gitlab",
        "credentials": {"oauth": {"accessToken": "oauth-race-access-000001", "refreshToken": "oauth-race-refresh-000001", "expiresAt": expires_at}},
        "repositories": ["acme/platform/api", "acme/platform/b", "acme/platform/c"],
    });
    let (status, created) = cluster.send(0, Method::POST, "/v1/config/repos", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_owned();

    // One worker claimed the repositories and is renewing; ask the other
    // process for a sync now, so its worker (the first is busy) takes them
    // while the refresh is in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    while stub.requests_to("/oauth/token") == 0 {
        assert!(Instant::now() < deadline, "no worker renewed the grant");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) = cluster.send(1, Method::POST, &format!("/v1/config/repos/{id}/sync"), None).await;
    assert_eq!(status, 202);

    let connection = loop {
        let (_, conn) = cluster.send(1, Method::GET, &format!("/v1/config/repos/{id}"), None).await;
        let settled =
            conn["data"]["sync"].as_array().unwrap().iter().all(|s| s["state"] == "ready" || s["state"] == "error");
        if settled && conn["data"]["sync"][0]["state"] == "ready" {
            break conn;
        }
        assert!(Instant::now() < deadline, "the repositories never settled: {conn}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(connection["data"]["credentials"]["status"], "valid", "{connection}");
    // More than one round of jobs used the grant, every call with the renewed token.
    assert!(stub.requests_to("/api/v4/projects/acme%2Fplatform%2Fapi") >= 2);
    assert_eq!(stub.requests_to("/oauth/token"), 1);
    let state = stub.state.lock().unwrap();
    assert_eq!(state.oauth.spent, ["oauth-race-refresh-000001"], "renewed once for both processes");
    assert!(state.oauth.reused.is_empty(), "a spent refresh token was sent again: {:?}", state.oauth.reused);
}
