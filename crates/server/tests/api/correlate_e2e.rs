//! Correlation end to end, for each platform and on both stores: a
//! connection syncs from the platform stub (the tree, the PRs and the lines
//! they changed), then `POST /v1/code/correlate` maps the trace's frames to
//! files with links to the platform's web UI and ranks the PR that changed
//! the raising lines first.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::common::{TestApp, parts};
use crate::stubs::{Stub, StubFile, StubPr};
use chrono::{TimeDelta, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use sigsentry_domain::Plan;
use sigsentry_server::startup::{WorkerHandle, worker};
use sigsentry_testdb::TestDb;

const TOKEN: &str = "ghp_correlateendtoend0000001";
const GITLAB_TOKEN: &str = "glpat-correlateendtoend001";
const BITBUCKET_PASSWORD: &str = "ATBBcorrelateendtoend000001";

/// A Rust panic in `checkout::total` (line 42), called from `main`, logged by a pod.
const PANIC: &str = "\
2026-11-29T10:00:00Z shop-7d9f [main] thread 'main' panicked at src/checkout/total.rs:42:9:
2026-11-29T10:00:00Z shop-7d9f [main] attempt to subtract with overflow
2026-11-29T10:00:00Z shop-7d9f [main] stack backtrace:
2026-11-29T10:00:00Z shop-7d9f [main]    0: rust_begin_unwind
2026-11-29T10:00:00Z shop-7d9f [main]              at /rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/std/src/panicking.rs:665:5
2026-11-29T10:00:00Z shop-7d9f [main]    1: shop::checkout::total
2026-11-29T10:00:00Z shop-7d9f [main]              at /build/src/checkout/total.rs:42:9
2026-11-29T10:00:00Z shop-7d9f [main]    2: shop::main
2026-11-29T10:00:00Z shop-7d9f [main]              at /build/src/main.rs:10:5
";

fn seed(stub: &Stub) {
    let now = Utc::now();
    let mut state = stub.state.lock().unwrap();
    state.accepted = vec![TOKEN.to_owned(), GITLAB_TOKEN.to_owned(), format!("dev:{BITBUCKET_PASSWORD}")];
    state.tree = ["README.md", "src/checkout/total.rs", "src/billing/retry.rs", "src/main.rs", "docs/total.rs"]
        .map(str::to_owned)
        .to_vec();
    state.prs = vec![
        StubPr {
            number: 4,
            title: "Reword the README".into(),
            merged_at: now - TimeDelta::hours(2),
            files: vec![StubFile::patched("README.md", "@@ -1,1 +1,1 @@\n-a\n+b\n")],
        },
        StubPr {
            number: 3,
            title: "Discounts in checkout totals".into(),
            merged_at: now - TimeDelta::days(2),
            files: vec![StubFile::patched("src/checkout/total.rs", "@@ -36,7 +38,10 @@ fn total()\n-    a\n+    b\n")],
        },
        StubPr {
            number: 2,
            title: "Tidy the top of total.rs".into(),
            merged_at: now - TimeDelta::days(3),
            files: vec![StubFile::patched("src/checkout/total.rs", "@@ -1,2 +1,3 @@\n a\n+b\n")],
        },
    ];
}

async fn app_on(stub: &Stub, database_url: Option<&str>) -> (TestApp, WorkerHandle) {
    let env = stub.env();
    let mut extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if let Some(url) = database_url {
        extra.push(("DATABASE_URL", url));
    }
    let app = TestApp::spawn_with(Plan::Team, &extra).await;
    let handle = WorkerHandle::spawn(worker(&app.config, &app.services).unwrap());
    (app, handle)
}

async fn wait_ready(app: &TestApp, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let conn = app.connection(id).await;
        if conn["sync"].as_array().unwrap().iter().all(|s| s["state"] == "ready") {
            return;
        }
        assert!(Instant::now() < deadline, "never synced: {conn}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn correlate(app: &TestApp, body: &Value) -> (u16, Value) {
    parts(app.request(Method::POST, "/v1/code/correlate").json(body).send().await.unwrap()).await
}

/// Connects `repository` on `platform`, waits for its sync and checks one correlation.
async fn correlates_on(app: &TestApp, connection: Value, repository: &str, line_url: &str) {
    let id = app.create(&connection).await;
    wait_ready(app, &id).await;
    let (status, body) = correlate(app, &json!({"stacktrace": PANIC, "service": "shop"})).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["language"], "rust", "{data}");
    assert_eq!(data["exception"]["message"], "attempt to subtract with overflow");
    let frames = data["frames"].as_array().unwrap();
    assert_eq!(frames[0]["unmapped"]["reason"], "LIBRARY_FRAME", "{data}");
    let total = frames.iter().find(|f| f["function"] == "shop::checkout::total").unwrap();
    assert_eq!(total["mapping"]["repository"], repository);
    assert_eq!(total["mapping"]["path"], "src/checkout/total.rs", "the longest suffix, not docs/total.rs");
    assert_eq!(total["mapping"]["url"], line_url);
    assert_eq!(total["mapping"]["connectionId"], id);
    assert!(frames.iter().all(|f| f["mapping"].is_object() || f["unmapped"]["message"].is_string()), "{data}");

    let file = &data["suspectFiles"][0];
    assert_eq!(file["path"], "src/checkout/total.rs", "{data}");
    assert_eq!(file["line"], 42);
    let pr = &data["suspectPullRequests"][0];
    assert_eq!(pr["number"], 3, "the PR that changed lines 38-47 around line 42: {data}");
    assert_eq!(pr["title"], "Discounts in checkout totals");
    assert!(pr["reasons"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains("38-47")), "{pr}");
    let numbers: Vec<u64> =
        data["suspectPullRequests"].as_array().unwrap().iter().map(|p| p["number"].as_u64().unwrap()).collect();
    assert!(!numbers.contains(&4), "a PR that changed no frame's file is no suspect: {numbers:?}");
    assert_eq!(app.delete(&format!("/v1/config/repos/{id}")).await.status(), 200);
}

async fn every_platform(database_url: Option<&str>) {
    let stub = Stub::start();
    seed(&stub);
    let (app, worker) = app_on(&stub, database_url).await;
    let mapping =
        |repo: &str| json!([{"serviceName": "shop", "repo": repo, "pathPrefix": "", "defaultBranch": "main"}]);
    correlates_on(
        &app,
        json!({"platform": "github", "credentials": {"token": TOKEN}, "repositories": ["acme/api"], "serviceMappings": mapping("acme/api")}),
        "acme/api",
        "https://github.com/acme/api/blob/main/src/checkout/total.rs#L42",
    )
    .await;
    correlates_on(
        &app,
        json!({"platform": "gitlab", "credentials": {"token": GITLAB_TOKEN}, "repositories": ["acme/platform/api"], "serviceMappings": mapping("acme/platform/api")}),
        "acme/platform/api",
        "https://gitlab.com/acme/platform/api/-/blob/main/src/checkout/total.rs#L42",
    )
    .await;
    correlates_on(
        &app,
        json!({"platform": "bitbucket", "credentials": {"username": "dev", "appPassword": BITBUCKET_PASSWORD}, "repositories": ["acme/web"], "serviceMappings": mapping("acme/web")}),
        "acme/web",
        "https://bitbucket.org/acme/web/src/main/src/checkout/total.rs#lines-42",
    )
    .await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_platform_correlates_on_sqlite() {
    every_platform(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_platform_correlates_on_postgres() {
    let db = TestDb::postgres().await;
    every_platform(Some(db.url())).await;
}

#[tokio::test]
async fn bad_requests_are_400_with_pointers_and_garbage_is_unknown() {
    let app = TestApp::spawn().await;
    for (body, fields) in [
        (json!({}), vec!["/stacktrace", "/frames"]),
        (json!({"stacktrace": "x", "frames": [{"file": "a.py"}]}), vec!["/stacktrace", "/frames"]),
        (json!({"stacktrace": ""}), vec!["/stacktrace"]),
        (json!({"stacktrace": "x", "limit": 0}), vec!["/limit"]),
        (json!({"stacktrace": "x", "limit": 21}), vec!["/limit"]),
        (json!({"stacktrace": "x", "occurredAt": "yesterday"}), vec!["/occurredAt"]),
        (json!({"stacktrace": "x", "service": ""}), vec!["/service"]),
        (json!({"frames": []}), vec!["/frames"]),
        (json!({"frames": [{"line": 3}]}), vec!["/frames/0/file"]),
        (json!({"frames": [{"file": "a.py", "line": 0}]}), vec!["/frames/0/line"]),
        (json!({"stacktrace": "x", "stack_trace": "y"}), vec!["/stack_trace"]),
        (json!({"stacktrace": 42}), vec!["/stacktrace"]),
        (json!({"frames": [{"file": "a.py", "line": 1.5}]}), vec!["/frames/0/line"]),
    ] {
        let (status, error) = correlate(&app, &body).await;
        assert_eq!(status, 400, "{body}: {error}");
        let got: Vec<&str> =
            error["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert_eq!(got, fields, "{body}");
    }
    // JSON Schema's integers: 12.0 is one (schemathesis sent such; it was refused).
    let (status, body) =
        correlate(&app, &json!({"frames": [{"file": "a.py", "line": 12.0, "column": 3.0}], "limit": 5.0})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["frames"][0]["line"], 12);
    let (status, error) = correlate(&app, &json!({"stacktrace": "x".repeat(256 * 1024 + 1)})).await;
    assert_eq!((status, error["error"]["details"][0]["field"].as_str()), (400, Some("/stacktrace")));

    // 256 KiB of garbage reads as no trace at all: 200, `unknown`, and a note.
    let mut garbage = String::new();
    let mut x: u32 = 7;
    while garbage.len() < 256 * 1024 - 8 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        garbage.push(char::from(b' ' + (x >> 16) as u8 % 94));
        if x.is_multiple_of(97) {
            garbage.push('\n');
        }
    }
    let (status, body) = correlate(&app, &json!({"stacktrace": garbage})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["language"], "unknown");
    assert_eq!(body["data"]["frames"], json!([]));
    assert!(!body["data"]["notes"].as_array().unwrap().is_empty());

    // A key without config:read cannot correlate; a project without connections says so.
    let (status, body) = correlate(&app, &json!({"stacktrace": PANIC})).await;
    assert_eq!(status, 200);
    let notes = body["data"]["notes"].to_string();
    assert!(notes.contains("no active repository connection"), "{notes}");
    let frames = body["data"]["frames"].as_array().unwrap();
    let total = frames.iter().find(|f| f["function"] == "shop::checkout::total").unwrap();
    assert_eq!(total["unmapped"]["reason"], "NOT_IN_REPOSITORY", "{total}");
}
