//! Idempotency-Key on POST: replays, conflicts, failures, races, scope.
#![allow(clippy::unwrap_used)]

use crate::common::{TestApp, error_fields, error_parts, github, parts};
use futures_util::future::join_all;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use sigsentry_domain::{Permission, Plan};

const LIST: &str = "/v1/config/repos";

async fn post_with_key(app: &TestApp, key: &str, body: &Value) -> Response {
    app.request(Method::POST, LIST).header("idempotency-key", key).json(body).send().await.unwrap()
}

async fn post_raw_with_key(app: &TestApp, key: &str, raw: &str) -> Response {
    app.request(Method::POST, LIST)
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(raw.to_owned())
        .send()
        .await
        .unwrap()
}

/// Status, `Location`, `Idempotent-Replayed` and the raw body text.
async fn capture(response: Response) -> (u16, Option<String>, Option<String>, String) {
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let location = header("location");
    let replayed = header("idempotent-replayed");
    (response.status().as_u16(), location, replayed, response.text().await.unwrap())
}

/// A 201 body without its webhook secret: the secret shows in the first
/// answer only; a replay is that answer without it (the database never
/// holds the secret in clear, so it cannot be replayed).
fn sans_secret(text: &str) -> Value {
    let mut body: Value = serde_json::from_str(text).unwrap();
    if let Some(webhook) = body["data"]["webhook"].as_object_mut() {
        webhook.remove("secret");
    }
    body
}

#[tokio::test]
async fn a_retry_replays_the_first_response_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let body = github(&["acme/checkout-api"]);
    let (status, location, replayed, first) = capture(post_with_key(&app, "create-checkout-1", &body).await).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(replayed, None, "the first response is not a replay");
    let id = serde_json::from_str::<Value>(&first).unwrap()["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(location.as_deref(), Some(format!("/v1/config/repos/{id}").as_str()));
    // The 201 carries the connection as GET shows it.
    assert!(serde_json::from_str::<Value>(&first).unwrap()["data"]["webhook"]["secret"].is_string());
    assert_eq!(sans_secret(&first)["data"], app.connection(&id).await);

    for _ in 0..2 {
        let (status2, location2, replayed2, second) =
            capture(post_with_key(&app, "create-checkout-1", &body).await).await;
        assert_eq!(status2, 201);
        assert_eq!(sans_secret(&second), sans_secret(&first), "the replayed body is the first one");
        assert!(!second.contains("ss_whsec_"), "without the webhook secret");
        assert_eq!(location2, location);
        assert_eq!(replayed2.as_deref(), Some("true"));
    }
    let all = app.all_connections().await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["id"], id.as_str());
}

#[tokio::test]
async fn key_order_and_whitespace_do_not_make_a_different_body() {
    let app = TestApp::spawn().await;
    let first = r#"{"platform":"github","credentials":{"token":"ghp_testtokenvalue0000000001"},"repositories":["acme/a","acme/b"],"lookbackDays":30}"#;
    let second = r#"{
        "lookbackDays": 30,
        "repositories": [ "acme/a", "acme/b" ],
        "credentials": { "token": "ghp_testtokenvalue0000000001" },
        "platform": "github"
    }"#;
    let (status, _, _, a) = capture(post_raw_with_key(&app, "k-order", first).await).await;
    assert_eq!(status, 201, "{a}");
    let (status, _, replayed, b) = capture(post_raw_with_key(&app, "k-order", second).await).await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(sans_secret(&a), sans_secret(&b));
    assert_eq!(app.all_connections().await.len(), 1);

    // Array order is meaningful, though: a different body.
    let third = first.replace(r#"["acme/a","acme/b"]"#, r#"["acme/b","acme/a"]"#);
    let (status, error) = error_parts(post_raw_with_key(&app, "k-order", &third).await).await;
    assert_eq!(status, 409);
    error_fields(&error, "IDEMPOTENCY_KEY_CONFLICT");
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_conflict() {
    let app = TestApp::spawn().await;
    let (status, _) = parts(post_with_key(&app, "k1", &github(&["acme/a"])).await).await;
    assert_eq!(status, 201);
    for body in [github(&["acme/b"]), github(&["acme/a", "acme/b"]), {
        let mut b = github(&["acme/a"]);
        b["lookbackDays"] = json!(31);
        b
    }] {
        let (status, error) = error_parts(post_with_key(&app, "k1", &body).await).await;
        assert_eq!(status, 409, "{body}: {error}");
        error_fields(&error, "IDEMPOTENCY_KEY_CONFLICT");
    }
    // The conflicts created nothing; acme/b is still free.
    assert_eq!(app.all_connections().await.len(), 1);
    app.create(&github(&["acme/b"])).await;
}

#[tokio::test]
async fn different_keys_are_different_requests() {
    let app = TestApp::spawn().await;
    let body = github(&["acme/a"]);
    let (status, _) = parts(post_with_key(&app, "key-one", &body).await).await;
    assert_eq!(status, 201);
    // Not a replay: the body runs again, and its repository is now taken.
    let (status, error) = error_parts(post_with_key(&app, "key-two", &body).await).await;
    assert_eq!(status, 409, "{error}");
    error_fields(&error, "CONFLICT");
    // With other repositories both keys create.
    let (status, second) = parts(post_with_key(&app, "key-three", &github(&["acme/b"])).await).await;
    assert_eq!(status, 201, "{second}");
    // Keys are case-sensitive.
    let (status, third) = parts(post_with_key(&app, "KEY-THREE", &github(&["acme/c"])).await).await;
    assert_eq!(status, 201, "{third}");
    assert_eq!(app.all_connections().await.len(), 3);
}

#[tokio::test]
async fn a_failed_request_may_be_retried_with_its_key() {
    let app = TestApp::spawn().await;
    // A validation failure is not stored...
    let mut bad = github(&["acme/a"]);
    bad["lookbackDays"] = json!(0);
    let (status, error) = error_parts(post_with_key(&app, "retry-me", &bad).await).await;
    assert_eq!(status, 400);
    error_fields(&error, "VALIDATION_ERROR");
    // ...so the same bad body is judged again (no replay header),
    let response = post_with_key(&app, "retry-me", &bad).await;
    assert!(response.headers().get("idempotent-replayed").is_none());
    assert_eq!(response.status(), 400);
    // ...and the corrected body is a first attempt, not a conflict.
    let (status, created, replayed, _) = capture(post_with_key(&app, "retry-me", &github(&["acme/a"])).await).await;
    assert_eq!(status, 201);
    assert!(created.is_some());
    assert_eq!(replayed, None);
    // Now it is stored.
    let (_, _, replayed, _) = capture(post_with_key(&app, "retry-me", &github(&["acme/a"])).await).await;
    assert_eq!(replayed.as_deref(), Some("true"));

    // A conflict failure is not stored either.
    let (status, _) = error_parts(post_with_key(&app, "after-conflict", &github(&["acme/a"])).await).await;
    assert_eq!(status, 409);
    let (status, body) = parts(post_with_key(&app, "after-conflict", &github(&["acme/z"])).await).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_quota_refusal_may_be_retried_with_the_same_key_and_body() {
    let app = TestApp::spawn_with(Plan::Free, &[]).await;
    let full = app.create(&github(&["acme/r1", "acme/r2", "acme/r3", "acme/r4", "acme/r5"])).await;
    let body = github(&["acme/r6"]);
    let (status, error) = error_parts(post_with_key(&app, "quota-retry", &body).await).await;
    assert_eq!(status, 403);
    error_fields(&error, "QUOTA_EXCEEDED");

    assert_eq!(app.delete(&format!("{LIST}/{full}")).await.status(), 200);
    let (status, _, replayed, text) = capture(post_with_key(&app, "quota-retry", &body).await).await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(replayed, None, "the 403 must not have been stored");
}

#[tokio::test]
async fn invalid_keys_are_400() {
    let app = TestApp::spawn().await;
    let body = github(&["acme/a"]);
    let long = "k".repeat(256);
    for key in ["", long.as_str()] {
        let (status, error) = error_parts(post_with_key(&app, key, &body).await).await;
        assert_eq!(status, 400, "{key:?}: {error}");
        assert_eq!(error_fields(&error, "VALIDATION_ERROR"), ["Idempotency-Key"]);
    }
    for key in ["naïve-key".as_bytes(), b"tab\tkey", "\u{e9}t\u{e9}".as_bytes()] {
        let value = reqwest::header::HeaderValue::from_bytes(key).unwrap();
        let response = app.request(Method::POST, LIST).header("idempotency-key", value).json(&body).send().await;
        let (status, error) = error_parts(response.unwrap()).await;
        assert_eq!(status, 400, "{key:?}: {error}");
        assert_eq!(error_fields(&error, "VALIDATION_ERROR"), ["Idempotency-Key"]);
    }
    assert!(app.all_connections().await.is_empty());

    // 255 printable characters, spaces included, are fine.
    let longest = format!("a b~{}", "z".repeat(251));
    assert_eq!(longest.len(), 255);
    let (status, body) = parts(post_with_key(&app, &longest, &body).await).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_parallel_retries_create_one_connection() {
    let app = TestApp::spawn().await;
    let body = github(&["acme/raced"]);
    let requests = (0..10).map(|_| {
        let (app, body) = (&app, &body);
        async move {
            let response = post_with_key(app, "raced-key", body).await;
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let (status, _, replayed, text) = capture(response).await;
            (status, retry_after, text, replayed.is_some())
        }
    });
    let outcomes = join_all(requests).await;
    // Exactly one request did the work; every other 201 says it is a replay.
    let fresh = outcomes.iter().filter(|(s, _, _, replayed)| *s == 201 && !replayed).count();
    assert_eq!(fresh, 1, "{outcomes:?}");
    let results: Vec<(u16, Option<String>, String)> = outcomes.into_iter().map(|(s, r, t, _)| (s, r, t)).collect();
    let created: Vec<&String> = results.iter().filter(|(s, _, _)| *s == 201).map(|(_, _, t)| t).collect();
    assert!(!created.is_empty(), "{results:?}");
    assert!(created.iter().all(|t| sans_secret(t) == sans_secret(created[0])), "201 bodies differ: {created:?}");
    for (status, retry_after, text) in &results {
        match status {
            201 => {}
            409 => {
                let error: Value = serde_json::from_str(text).unwrap();
                error_fields(&error, "IDEMPOTENCY_KEY_IN_USE");
                let secs: u32 =
                    retry_after.as_deref().unwrap_or_else(|| panic!("no Retry-After: {text}")).parse().unwrap();
                assert!(secs >= 1);
            }
            other => panic!("unexpected {other}: {text}"),
        }
    }
    let all = app.all_connections().await;
    assert_eq!(all.len(), 1);
    let id = serde_json::from_str::<Value>(created[0]).unwrap()["data"]["id"].clone();
    assert_eq!(all[0]["id"], id);

    // Once settled, a retry replays.
    let (status, _, replayed, text) = capture(post_with_key(&app, "raced-key", &body).await).await;
    assert_eq!((status, replayed.as_deref()), (201, Some("true")));
    assert_eq!(sans_secret(&text), sans_secret(created[0]));
}

#[tokio::test]
async fn keys_are_scoped_to_the_project() {
    let app = TestApp::spawn().await;
    let body = github(&["acme/a"]);
    let (status, first) = parts(post_with_key(&app, "shared-key", &body).await).await;
    assert_eq!(status, 201);

    let other = app.services.create_project(app.tenant_id, "other").await.unwrap();
    let key = app.key_with(Some(other.id), &[Permission::ConfigRead, Permission::ConfigWrite]).await;
    let response =
        app.request_as(&key, Method::POST, LIST).header("idempotency-key", "shared-key").json(&body).send().await;
    let response = response.unwrap();
    assert!(response.headers().get("idempotent-replayed").is_none());
    let (status, second) = parts(response).await;
    assert_eq!(status, 201, "{second}");
    assert_ne!(second["data"]["id"], first["data"]["id"]);
    assert_eq!(second["data"]["projectId"], other.id.to_string());

    // A tenant-scoped key acting on the first project shares that project's keys.
    let tenant_key = app.key_with(None, &[Permission::ConfigRead, Permission::ConfigWrite]).await;
    let response = app
        .request_as(&tenant_key, Method::POST, LIST)
        .header("x-project-id", app.project_id.to_string())
        .header("idempotency-key", "shared-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    let (status, mut third) = parts(response).await;
    let mut first = first.clone();
    for body in [&mut first, &mut third] {
        if let Some(webhook) = body["data"]["webhook"].as_object_mut() {
            webhook.remove("secret");
        }
    }
    assert_eq!((status, &third), (201, &first));
    assert_eq!(app.all_connections().await.len(), 1);
}

#[tokio::test]
async fn the_stored_fingerprint_is_keyed_so_a_database_copy_cannot_test_token_guesses() {
    let app = TestApp::spawn().await;
    let body = json!({"platform": "github", "credentials": {"token": "ghp_guessable000000000000"}, "repositories": ["acme/a"]});
    assert_eq!(post_with_key(&app, "fingerprint-1", &body).await.status(), 201);

    // The canonical request as the service sees it: method, path, body with sorted keys.
    let canonical = format!("POST /v1/config/repos\n{}", serde_json::to_string(&body).unwrap());
    let unkeyed: String = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut database = std::fs::read(&app.db_path).unwrap();
    database.extend(std::fs::read(app.db_path.with_extension("db-wal")).unwrap_or_default());
    let found = database.windows(unkeyed.len()).any(|w| w == unkeyed.as_bytes());
    assert!(!found, "the fingerprint is a plain SHA-256 of the body: a copy of the database can test token guesses");
    // And the replay still works with the keyed fingerprint.
    let (status, _, replayed, _) = capture(post_with_key(&app, "fingerprint-1", &body).await).await;
    assert_eq!((status, replayed.as_deref()), (201, Some("true")));
}
