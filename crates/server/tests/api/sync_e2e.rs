//! The whole loop: a connection is created, the worker in the process syncs
//! it from a local platform stub, and the API shows the state and the cached
//! pull requests; invalidation, pause, bad tokens and rate limits too.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::common::{TestApp, parts};
use crate::stubs::{Stub, StubFile, StubPr};
use chrono::{TimeDelta, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use sigsentry_domain::Plan;
use sigsentry_server::startup::{WorkerHandle, worker};

const TOKEN: &str = "ghp_syncendtoend000000000001";
const BITBUCKET_PASSWORD: &str = "ATBBsyncendtoend000000000001";

async fn app_with_worker(stub: &Stub) -> (TestApp, WorkerHandle) {
    let env = stub.env();
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(Plan::Team, &extra).await;
    let handle = WorkerHandle::spawn(worker(&app.config, &app.services).unwrap());
    (app, handle)
}

fn seed(stub: &Stub) {
    let now = Utc::now();
    let mut state = stub.state.lock().unwrap();
    state.accepted =
        vec![TOKEN.to_owned(), "glpat-syncendtoend00000001".to_owned(), format!("dev:{BITBUCKET_PASSWORD}")];
    state.tree =
        ["README.md", "src/checkout/total.rs", "src/billing/retry.rs", "src/main.rs"].map(str::to_owned).to_vec();
    state.prs = vec![
        StubPr {
            number: 3,
            title: "Fix checkout rounding".into(),
            merged_at: now - TimeDelta::days(1),
            files: vec![
                StubFile::patched("src/checkout/total.rs", "@@ -36,7 +38,10 @@ fn total()\n-    a\n+    b\n"),
                "README.md".into(),
            ],
        },
        StubPr {
            number: 2,
            title: "Billing retries".into(),
            merged_at: now - TimeDelta::days(5),
            files: vec![StubFile::renamed(
                "src/billing/retries.rs",
                "src/billing/retry.rs",
                Some("@@ -1,2 +1,3 @@\n a\n+b\n"),
            )],
        },
        StubPr {
            number: 1,
            title: "Too old".into(),
            merged_at: now - TimeDelta::days(45),
            files: vec!["src/old.rs".into()],
        },
    ];
}

/// Polls the connection until every repository is in `state` (or fails after a while).
async fn wait_for(app: &TestApp, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let conn = app.connection(id).await;
        if conn["sync"].as_array().unwrap().iter().all(|s| s["state"] == state) {
            return conn;
        }
        assert!(Instant::now() < deadline, "never reached {state}: {conn}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pull_requests(app: &TestApp, id: &str, query: &str) -> Value {
    let (status, body) = parts(app.get(&format!("/v1/config/repos/{id}/pull-requests{query}")).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_connection_syncs_and_its_pull_requests_are_listed() {
    let stub = Stub::start();
    seed(&stub);
    let (app, worker) = app_with_worker(&stub).await;
    let id = app.create(&json!({"platform": "github", "credentials": {"token": TOKEN}, "repositories": ["acme/api"], "lookbackDays": 30})).await;

    let conn = wait_for(&app, &id, "ready").await;
    assert!(conn["sync"][0]["lastSyncedAt"].is_string(), "{conn}");
    assert_eq!(conn["sync"][0]["error"], Value::Null);
    assert_eq!(conn["sync"][0]["defaultBranch"], "main", "learned from the platform");

    let body = pull_requests(&app, &id, "").await;
    let numbers: Vec<u64> = body["data"].as_array().unwrap().iter().map(|p| p["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [3, 2], "newest merge first; the PR merged outside the window is not kept");
    let first = &body["data"][0];
    assert_eq!(first["repository"], "acme/api");
    assert_eq!(first["title"], "Fix checkout rounding");
    assert_eq!(first["author"], "dev");
    assert_eq!(first["url"], "https://github.com/acme/api/pull/3");
    assert_eq!(first["mergeCommitSha"], "sha3");
    assert_eq!(first["files"], json!(["README.md", "src/checkout/total.rs"]));
    let revision = stub.state.lock().unwrap().tree_revision();
    assert_eq!(stub.requests_to("/repos/acme/api/branches/main"), 1, "the default branch's revision");
    assert_eq!(stub.requests_to(&format!("/repos/acme/api/git/trees/{revision}")), 1, "its files, listed once");
    assert_eq!(stub.requests_to("/repos/acme/api/pulls/3/files"), 1);

    let only_billing = pull_requests(&app, &id, "?path=src/billing/").await;
    assert_eq!(only_billing["data"].as_array().unwrap().len(), 1);
    assert_eq!(only_billing["data"][0]["number"], 2);
    let paged = pull_requests(&app, &id, "?limit=1").await;
    let cursor = paged["meta"]["nextCursor"].as_str().unwrap().to_owned();
    let next = pull_requests(&app, &id, &format!("?limit=1&cursor={cursor}")).await;
    assert_eq!(next["data"][0]["number"], 2);
    assert_eq!(next["meta"]["nextCursor"], Value::Null);

    // Invalidation wipes the cache and the worker fetches it again.
    let seen_before = stub.state.lock().unwrap().seen.len();
    let (status, _) = parts(app.delete(&format!("/v1/config/repos/{id}/cache")).await).await;
    assert_eq!(status, 200);
    wait_for(&app, &id, "ready").await;
    assert!(stub.state.lock().unwrap().seen.len() > seen_before, "the platform was asked again");
    assert_eq!(pull_requests(&app, &id, "").await["data"].as_array().unwrap().len(), 2);

    // A GitLab connection with a subgroup path syncs as well.
    let gitlab = app
        .create(&json!({"platform": "gitlab", "credentials": {"token": "glpat-syncendtoend00000001"}, "repositories": ["acme/platform/api"]}))
        .await;
    wait_for(&app, &gitlab, "ready").await;
    assert_eq!(pull_requests(&app, &gitlab, "?repo=ACME/platform/api").await["data"].as_array().unwrap().len(), 2);
    assert_eq!(stub.requests_to("/api/v4/projects/acme%2Fplatform%2Fapi/repository/tree"), 1);

    // And a Bitbucket one, its diffstat and raw diff behind redirects.
    let bitbucket = app
        .create(&json!({"platform": "bitbucket", "credentials": {"username": "dev", "appPassword": BITBUCKET_PASSWORD}, "repositories": ["acme/web"]}))
        .await;
    wait_for(&app, &bitbucket, "ready").await;
    let listed = pull_requests(&app, &bitbucket, "").await;
    let numbers: Vec<u64> = listed["data"].as_array().unwrap().iter().map(|p| p["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [3, 2]);
    assert_eq!(listed["data"][1]["files"], json!(["src/billing/retry.rs"]), "a renamed file under its new path");
    assert_eq!(stub.requests_to(&format!("/repositories/acme/web/src/{revision}/")), 1);
    assert_eq!(stub.requests_to("/repositories/acme/web/diff/3"), 1, "the raw diff, through its redirect");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_show_in_words_and_pause_stops_syncing() {
    let stub = Stub::start();
    seed(&stub);
    let (app, worker) = app_with_worker(&stub).await;

    let rejected = app
        .create(&json!({"platform": "github", "credentials": {"token": "ghp_wrongtoken00000000000001"}, "repositories": ["acme/api"]}))
        .await;
    let conn = wait_for(&app, &rejected, "error").await;
    assert_eq!(conn["sync"][0]["error"], "GitHub rejected the credentials (401)");

    // Rotating to a good token makes it pending and then ready.
    let (status, _) = parts(app.put_json(&rejected, &json!({"credentials": {"token": TOKEN}})).await).await;
    assert_eq!(status, 200);
    wait_for(&app, &rejected, "ready").await;

    // A rate limit is reported with its reset time.
    let reset = Utc::now() + TimeDelta::minutes(30);
    stub.state.lock().unwrap().github_rate_limited_until = Some(reset.timestamp());
    let (status, _) =
        parts(app.request(Method::POST, &format!("/v1/config/repos/{rejected}/sync")).send().await.unwrap()).await;
    assert_eq!(status, 202);
    let conn = wait_for(&app, &rejected, "error").await;
    let error = conn["sync"][0]["error"].as_str().unwrap();
    assert!(error.contains("rate limit"), "{error}");

    // A paused connection is not synced, even when asked.
    stub.state.lock().unwrap().github_rate_limited_until = None;
    let (status, _) = parts(app.put_json(&rejected, &json!({"isActive": false})).await).await;
    assert_eq!(status, 200);
    let (status, _) =
        parts(app.request(Method::POST, &format!("/v1/config/repos/{rejected}/sync")).send().await.unwrap()).await;
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.connection(&rejected).await["sync"][0]["state"], "pending");
    worker.stop().await;
}
