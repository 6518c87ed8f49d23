//! Webhooks over HTTP: the secret shown once and rotated, each platform's
//! signature checked right and wrong, the order of refusals (404 before
//! 401, 413), duplicates, the GitHub App's endpoint, and a merge announced
//! by webhook reaching `/pull-requests` through the worker.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};
use sigsentry_domain::Plan;
use sigsentry_server::startup::{WorkerHandle, worker};

use crate::common::{TestApp, error_parts, parts};
use crate::stubs::{Stub, StubPr};
use sigsentry_testdb::TestDb;

const TOKEN: &str = "ghp_webhooktests000000000001";
const APP_SECRET: &str = "github-app-hook-secret-0001";

/// `sha256=` + hex HMAC-SHA256 of `body` under `secret`, as GitHub and Bitbucket sign.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    format!("sha256={}", tag.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// A GitHub `pull_request` event: PR `number` of `repository` merged.
pub fn github_merged(repository: &str, number: u64) -> Vec<u8> {
    json!({
        "action": "closed", "number": number,
        "pull_request": {"number": number, "merged": true, "title": "x", "user": {"login": "dev"}},
        "repository": {"full_name": repository, "default_branch": "main", "private": true},
        "sender": {"login": "dev"}, "installation": {"id": 77}
    })
    .to_string()
    .into_bytes()
}

pub async fn deliver(
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = reqwest::Client::new().post(format!("{base}{path}")).body(body);
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        request = request.header("Content-Type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let headers = response.headers().clone();
    let (status, body) = parts(response).await;
    (status, body, headers)
}

/// Creates a connection and returns its id and the secret the 201 showed.
async fn create_with_secret(app: &TestApp, body: &Value) -> (String, String) {
    let (status, created) = parts(app.post_json(body).await).await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let webhook = &created["data"]["webhook"];
    assert_eq!(webhook["url"], format!("{}/v1/hooks/{id}", app.base), "{created}");
    let secret = webhook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ss_whsec_") && secret.len() == 52, "{secret}");
    (id, secret)
}

async fn github_delivery(
    base: &str,
    id: &str,
    secret: &str,
    event: &str,
    delivery: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let signature = sign(secret, &body);
    let headers =
        [("X-GitHub-Event", event), ("X-GitHub-Delivery", delivery), ("X-Hub-Signature-256", signature.as_str())];
    let (status, body, _) = deliver(base, &format!("/v1/hooks/{id}"), &headers, body).await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_is_shown_once_and_github_signatures_are_checked() {
    let app = TestApp::spawn().await;
    let (id, secret) = create_with_secret(
        &app,
        &json!({"platform": "github", "credentials": {"token": TOKEN},
        "repositories": ["acme/api"]}),
    )
    .await;

    // Afterwards only the URL.
    let conn = app.connection(&id).await;
    assert_eq!(conn["webhook"], json!({"url": format!("{}/v1/hooks/{id}", app.base)}));
    let listed = app.all_connections().await;
    assert_eq!(listed[0]["webhook"], conn["webhook"]);
    assert!(!listed[0].to_string().contains(&secret));

    let merged = github_merged("acme/api", 9);
    // Unknown connection first, whatever the signature.
    let unknown = uuid::Uuid::now_v7();
    let (status, body) =
        github_delivery(&app.base, &unknown.to_string(), "wrong", "pull_request", "d0", merged.clone()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("NOT_FOUND")), "{body}");
    // Missing and wrong signatures.
    let (status, body, headers) =
        deliver(&app.base, &format!("/v1/hooks/{id}"), &[("X-GitHub-Event", "pull_request")], merged.clone()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("UNAUTHORIZED")), "{body}");
    assert!(headers.get("www-authenticate").is_none(), "no API key is asked for");
    assert!(body["error"]["requestId"].is_string());
    let (status, _) = github_delivery(&app.base, &id, "not-the-secret", "pull_request", "d1", merged.clone()).await;
    assert_eq!(status, 401);
    // The signature of another body.
    let signature = sign(&secret, b"{}");
    let (status, _, _) = deliver(
        &app.base,
        &format!("/v1/hooks/{id}"),
        &[("X-GitHub-Event", "pull_request"), ("X-Hub-Signature-256", &signature)],
        merged.clone(),
    )
    .await;
    assert_eq!(status, 401);

    // Right: a merge wakes the repository; the same delivery again is a duplicate.
    let (status, body) = github_delivery(&app.base, &id, &secret, "pull_request", "d2", merged.clone()).await;
    assert_eq!((status, body["data"]["action"].as_str()), (202, Some("sync")), "{body}");
    let (status, body) = github_delivery(&app.base, &id, &secret, "pull_request", "d2", merged.clone()).await;
    assert_eq!((status, body["data"]["action"].as_str()), (202, Some("duplicate")), "{body}");
    // Events we do not act on, and repositories the connection does not hold.
    let opened =
        json!({"action": "opened", "pull_request": {"merged": false}, "repository": {"full_name": "acme/api"}});
    let (_, body) =
        github_delivery(&app.base, &id, &secret, "pull_request", "d3", opened.to_string().into_bytes()).await;
    assert_eq!(body["data"]["action"], "ignored");
    let (_, body) =
        github_delivery(&app.base, &id, &secret, "pull_request", "d4", github_merged("acme/other", 1)).await;
    assert_eq!(body["data"]["action"], "ignored");
    let (_, body) =
        github_delivery(&app.base, &id, &secret, "ping", "d5", br#"{"zen": "Keep it simple."}"#.to_vec()).await;
    assert_eq!(body["data"]["action"], "ignored");
    let feature =
        json!({"ref": "refs/heads/feature", "repository": {"full_name": "acme/api", "default_branch": "main"}});
    let (_, body) = github_delivery(&app.base, &id, &secret, "push", "d6", feature.to_string().into_bytes()).await;
    assert_eq!(body["data"]["action"], "ignored", "a push off the default branch");
    let main = json!({"ref": "refs/heads/main", "repository": {"full_name": "acme/api", "default_branch": "main"}});
    let (_, body) = github_delivery(&app.base, &id, &secret, "push", "d7", main.to_string().into_bytes()).await;
    assert_eq!(body["data"]["action"], "sync", "a push to the default branch");

    // GitHub's default content type: the event in a `payload` form field, signed as sent.
    let form = format!("payload={}", url::form_urlencoded::byte_serialize(&merged).collect::<String>());
    let signature = sign(&secret, form.as_bytes());
    let (status, body, _) = deliver(
        &app.base,
        &format!("/v1/hooks/{id}"),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-GitHub-Event", "pull_request"),
            ("X-GitHub-Delivery", "d8"),
            ("X-Hub-Signature-256", &signature),
        ],
        form.into_bytes(),
    )
    .await;
    assert_eq!((status, body["data"]["action"].as_str()), (202, Some("sync")), "{body}");

    // A verified body that is not JSON, or not the event's shape.
    let (status, body) = github_delivery(&app.base, &id, &secret, "pull_request", "d9", b"{nope".to_vec()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("VALIDATION_ERROR")), "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "/");
    let (status, _) =
        github_delivery(&app.base, &id, &secret, "pull_request", "d10", br#"{"action": 1}"#.to_vec()).await;
    assert_eq!(status, 400);
    // A paused connection wakes nothing.
    let (status, _) = parts(app.put_json(&id, &json!({"isActive": false})).await).await;
    assert_eq!(status, 200);
    let (_, body) = github_delivery(&app.base, &id, &secret, "pull_request", "d11", merged.clone()).await;
    assert_eq!(body["data"]["action"], "ignored", "paused");
    // Unsigned garbage is refused before it is read.
    let (status, _, _) =
        deliver(&app.base, &format!("/v1/hooks/{id}"), &[("X-GitHub-Event", "push")], b"{nope".to_vec()).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_5_mib_is_413_and_unknown_connections_are_404_first() {
    let app = TestApp::spawn().await;
    let (id, secret) = create_with_secret(
        &app,
        &json!({"platform": "github", "credentials": {"token": TOKEN},
        "repositories": ["acme/api"]}),
    )
    .await;
    let big = vec![b' '; 5 * 1024 * 1024 + 1];
    let signature = sign(&secret, &big);
    let (status, body, _) =
        deliver(&app.base, &format!("/v1/hooks/{id}"), &[("X-Hub-Signature-256", &signature)], big.clone()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("PAYLOAD_TOO_LARGE")), "{body}");
    let unknown = uuid::Uuid::now_v7();
    let (status, body, _) = deliver(&app.base, &format!("/v1/hooks/{unknown}"), &[], big).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("NOT_FOUND")), "{body}");
    // Just under the limit is read (and, padded JSON, accepted).
    let mut padded = github_merged("acme/api", 1);
    padded.resize(5 * 1024 * 1024, b' ');
    let (status, body) = github_delivery(&app.base, &id, &secret, "pull_request", "big", padded).await;
    assert_eq!((status, body["data"]["action"].as_str()), (202, Some("sync")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_tokens_and_bitbucket_signatures_are_checked() {
    let app = TestApp::spawn().await;
    let (gitlab, gitlab_secret) = create_with_secret(
        &app,
        &json!({"platform": "gitlab",
        "credentials": {"token": "glpat-webhooktests00000001"}, "repositories": ["acme/platform/api"]}),
    )
    .await;
    let merge = json!({"object_kind": "merge_request", "object_attributes": {"action": "merge", "iid": 4},
        "project": {"path_with_namespace": "acme/platform/api", "default_branch": "main"}})
    .to_string()
    .into_bytes();
    let path = format!("/v1/hooks/{gitlab}");
    let event = ("X-Gitlab-Event", "Merge Request Hook");
    let (status, _, _) = deliver(&app.base, &path, &[event, ("X-Gitlab-Token", "wrong")], merge.clone()).await;
    assert_eq!(status, 401);
    let (status, _, _) = deliver(&app.base, &path, &[event], merge.clone()).await;
    assert_eq!(status, 401);
    let (status, _, _) = deliver(
        &app.base,
        &path,
        &[event, ("X-Gitlab-Token", &gitlab_secret[..gitlab_secret.len() - 1])],
        merge.clone(),
    )
    .await;
    assert_eq!(status, 401, "a prefix of the secret is not the secret");
    let token = ("X-Gitlab-Token", gitlab_secret.as_str());
    let (status, body, _) =
        deliver(&app.base, &path, &[event, token, ("Idempotency-Key", "gl-1")], merge.clone()).await;
    assert_eq!((status, body["data"]["action"].as_str()), (202, Some("sync")), "{body}");
    let (_, body, _) = deliver(&app.base, &path, &[event, token, ("Idempotency-Key", "gl-1")], merge.clone()).await;
    assert_eq!(body["data"]["action"], "duplicate");
    let (_, body, _) = deliver(&app.base, &path, &[event, token, ("X-Gitlab-Event-UUID", "gl-uuid-1")], merge).await;
    assert_eq!(body["data"]["action"], "sync");
    let opened =
        json!({"object_attributes": {"action": "open"}, "project": {"path_with_namespace": "acme/platform/api"}});
    let (_, body, _) = deliver(&app.base, &path, &[event, token], opened.to_string().into_bytes()).await;
    assert_eq!(body["data"]["action"], "ignored");
    let push = json!({"ref": "refs/heads/main", "project": {"path_with_namespace": "acme/platform/api", "default_branch": "main"}});
    let (_, body, _) =
        deliver(&app.base, &path, &[("X-Gitlab-Event", "Push Hook"), token], push.to_string().into_bytes()).await;
    assert_eq!(body["data"]["action"], "sync");

    let (bitbucket, bitbucket_secret) = create_with_secret(
        &app,
        &json!({"platform": "bitbucket",
        "credentials": {"username": "dev", "appPassword": "ATBBwebhooktests0000000001"}, "repositories": ["acme/web"]}),
    )
    .await;
    let fulfilled = json!({"repository": {"full_name": "acme/web"}, "pullrequest": {"id": 5, "state": "MERGED"}})
        .to_string()
        .into_bytes();
    let path = format!("/v1/hooks/{bitbucket}");
    let event = ("X-Event-Key", "pullrequest:fulfilled");
    let wrong = sign("wrong", &fulfilled);
    let (status, _, _) = deliver(&app.base, &path, &[event, ("X-Hub-Signature", &wrong)], fulfilled.clone()).await;
    assert_eq!(status, 401);
    // GitHub's header is not Bitbucket's.
    let right = sign(&bitbucket_secret, &fulfilled);
    let (status, _, _) = deliver(&app.base, &path, &[event, ("X-Hub-Signature-256", &right)], fulfilled.clone()).await;
    assert_eq!(status, 401);
    let signed = ("X-Hub-Signature", right.as_str());
    let (status, body, _) =
        deliver(&app.base, &path, &[event, signed, ("X-Request-UUID", "bb-1")], fulfilled.clone()).await;
    assert_eq!((status, body["data"]["action"].as_str()), (202, Some("sync")), "{body}");
    let (_, body, _) = deliver(&app.base, &path, &[event, signed, ("X-Request-UUID", "bb-1")], fulfilled).await;
    assert_eq!(body["data"]["action"], "duplicate");
    let push = json!({"repository": {"full_name": "acme/web"},
        "push": {"changes": [{"new": {"type": "tag", "name": "v1"}}]}})
    .to_string()
    .into_bytes();
    let signature = sign(&bitbucket_secret, &push);
    let (_, body, _) =
        deliver(&app.base, &path, &[("X-Event-Key", "repo:push"), ("X-Hub-Signature", &signature)], push).await;
    assert_eq!(body["data"]["action"], "ignored", "a tag is not a branch");

    // Each connection's secret is its own.
    let signature = sign(&bitbucket_secret, b"{}");
    let (status, _, _) = deliver(
        &app.base,
        &format!("/v1/hooks/{gitlab}"),
        &[("X-Gitlab-Token", bitbucket_secret.as_str()), ("X-Hub-Signature", &signature)],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_shows_a_new_secret_once_and_the_old_one_stops_working() {
    let app = TestApp::spawn().await;
    let (id, old) = create_with_secret(
        &app,
        &json!({"platform": "github", "credentials": {"token": TOKEN},
        "repositories": ["acme/api"]}),
    )
    .await;
    let (status, body) = parts(app.put_json(&id, &json!({"isActive": true})).await).await;
    assert_eq!((status, &body["data"]), (200, &json!({"updated": true})), "no rotation, no webhook");
    let (status, body) = parts(app.put_json(&id, &json!({"rotateWebhookSecret": false})).await).await;
    assert_eq!((status, &body["data"]), (200, &json!({"updated": true})));

    let (status, body) = parts(app.put_json(&id, &json!({"rotateWebhookSecret": true})).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["updated"], true);
    assert_eq!(body["data"]["webhook"]["url"], format!("{}/v1/hooks/{id}", app.base));
    let new = body["data"]["webhook"]["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(!app.connection(&id).await.to_string().contains(&new), "shown once");

    let merged = github_merged("acme/api", 1);
    let (status, _) = github_delivery(&app.base, &id, &old, "pull_request", "r1", merged.clone()).await;
    assert_eq!(status, 401, "the old secret no longer verifies");
    let (status, _) = github_delivery(&app.base, &id, &new, "pull_request", "r2", merged).await;
    assert_eq!(status, 202);

    let (status, body) = error_parts(app.put_json(&id, &json!({"rotateWebhookSecret": "yes"})).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"][0]["field"], "/rotateWebhookSecret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_replay_does_not_show_the_secret_again() {
    let app = TestApp::spawn().await;
    let body = json!({"platform": "github", "credentials": {"token": TOKEN}, "repositories": ["acme/api"]});
    let send = || app.request(Method::POST, "/v1/config/repos").header("Idempotency-Key", "hook-1").json(&body).send();
    let (status, first) = parts(send().await.unwrap()).await;
    assert_eq!(status, 201);
    let secret = first["data"]["webhook"]["secret"].as_str().unwrap();
    let response = send().await.unwrap();
    assert_eq!(response.headers().get("idempotent-replayed").unwrap(), "true");
    let (status, replay) = parts(response).await;
    assert_eq!(status, 201);
    assert_eq!(replay["data"]["id"], first["data"]["id"]);
    assert_eq!(replay["data"]["webhook"], json!({"url": first["data"]["webhook"]["url"]}));
    assert!(!replay.to_string().contains(secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_made_before_webhooks_has_no_secret_until_rotated() {
    let app = TestApp::spawn().await;
    let (id, secret) = create_with_secret(
        &app,
        &json!({"platform": "github", "credentials": {"token": TOKEN},
        "repositories": ["acme/api"]}),
    )
    .await;
    // What the migration leaves a connection made before it: no secret row.
    let db = app.db_path.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::{Connection, RunQueryDsl};
        let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
        diesel::sql_query("DELETE FROM connection_webhooks").execute(&mut conn).unwrap();
    })
    .await
    .unwrap();
    let (status, body) =
        github_delivery(&app.base, &id, &secret, "pull_request", "l1", github_merged("acme/api", 1)).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("rotateWebhookSecret"), "{body}");
    let (_, body) = parts(app.put_json(&id, &json!({"rotateWebhookSecret": true})).await).await;
    let secret = body["data"]["webhook"]["secret"].as_str().unwrap();
    let (status, _) = github_delivery(&app.base, &id, secret, "pull_request", "l2", github_merged("acme/api", 1)).await;
    assert_eq!(status, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_app_endpoint_wakes_the_installations_connections_holding_the_repository() {
    let app = TestApp::spawn().await;
    let (status, body, _) = deliver(&app.base, "/v1/hooks/github", &[], github_merged("acme/api", 1)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("NOT_FOUND")), "not configured: {body}");

    let mut env = crate::credentials::renewal_env();
    env.push(("SIGSENTRY_GITHUB_APP_WEBHOOK_SECRET", APP_SECRET));
    let app = TestApp::spawn_with(Plan::Team, &env).await;
    // A token connection holding the same repository is not the App's to wake.
    app.create(&json!({"platform": "github", "credentials": {"token": TOKEN}, "repositories": ["acme/token"]})).await;
    let token_body = github_merged("acme/token", 1);
    let (created, body) = parts(
        app.post_json(
            &json!({"platform": "github", "credentials": {"installationId": 77}, "repositories": ["acme/api"]}),
        )
        .await,
    )
    .await;
    assert_eq!(created, 201);
    assert!(body["data"]["webhook"].is_null(), "the App's hook serves it: {body}");
    let installed = body["data"]["id"].as_str().unwrap().to_owned();
    let (status, body) = parts(app.put_json(&installed, &json!({"rotateWebhookSecret": true})).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "/rotateWebhookSecret", "{body}");
    let merged = github_merged("Acme/API", 3);
    let hook = |headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let base = app.base.clone();
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            deliver(&base, "/v1/hooks/github", &headers, body).await
        }
    };
    let (status, _, _) = hook(vec![("X-GitHub-Event", "pull_request".into())], merged.clone()).await;
    assert_eq!(status, 401);
    let signed = |event: &'static str, delivery: &'static str, body: &[u8]| {
        vec![
            ("X-GitHub-Event", event.to_owned()),
            ("X-GitHub-Delivery", delivery.to_owned()),
            ("X-Hub-Signature-256", sign(APP_SECRET, body)),
        ]
    };
    let (status, body, _) = hook(signed("pull_request", "a1", &merged), merged.clone()).await;
    assert_eq!((status, body["data"]["action"].as_str()), (202, Some("sync")), "{body}");
    let (_, body, _) = hook(signed("pull_request", "a1", &merged), merged.clone()).await;
    assert_eq!(body["data"]["action"], "duplicate");
    let nobody = github_merged("acme/nobody", 1);
    let (_, body, _) = hook(signed("pull_request", "a2", &nobody), nobody).await;
    assert_eq!(body["data"]["action"], "ignored", "no connection holds it");
    let (_, body, _) = hook(signed("pull_request", "a4", &token_body), token_body).await;
    assert_eq!(body["data"]["action"], "ignored", "only a token connection holds it");
    let added = json!({"action": "added", "installation": {"id": 77}}).to_string().into_bytes();
    let (status, body, _) = hook(signed("installation_repositories", "a5", &added), added).await;
    assert_eq!((status, body["data"]["action"].as_str()), (202, Some("ignored")), "{body}");
    let other = json!({"action": "deleted", "installation": {"id": 78}}).to_string().into_bytes();
    let (_, body, _) = hook(signed("installation", "a6", &other), other).await;
    assert_eq!(body["data"]["action"], "ignored", "no connection of that installation");
    let (_, body) = parts(app.get(&format!("/v1/config/repos/{installed}")).await).await;
    assert_eq!(body["data"]["credentials"]["status"], "unknown", "{body}");
    let installation = json!({"action": "deleted", "installation": {"id": 77}}).to_string().into_bytes();
    let (status, body, _) = hook(signed("installation", "a3", &installation), installation).await;
    assert_eq!((status, body["data"]["action"].as_str()), (202, Some("sync")), "{body}");
    let (_, body) = parts(app.get(&format!("/v1/config/repos/{installed}")).await).await;
    assert_eq!(body["data"]["credentials"]["status"], "rejected", "an uninstalled App's connection: {body}");
    // A connection's own secret does not sign for the App.
    let (_, secret) = create_with_secret(
        &app,
        &json!({"platform": "github", "credentials": {"token": TOKEN},
        "repositories": ["acme/other"]}),
    )
    .await;
    let other = github_merged("acme/other", 1);
    let headers = vec![("X-GitHub-Event", "pull_request".to_owned()), ("X-Hub-Signature-256", sign(&secret, &other))];
    let (status, _, _) = hook(headers, other).await;
    assert_eq!(status, 401);
}

async fn app_with_worker(stub: &Stub, database_url: Option<&str>) -> (TestApp, WorkerHandle) {
    let env = stub.env();
    let mut extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if let Some(url) = database_url {
        extra.push(("DATABASE_URL", url));
    }
    let app = TestApp::spawn_with(Plan::Team, &extra).await;
    let handle = WorkerHandle::spawn(worker(&app.config, &app.services).unwrap());
    (app, handle)
}

async fn pr_numbers(app: &TestApp, id: &str) -> Vec<u64> {
    let (status, body) = parts(app.get(&format!("/v1/config/repos/{id}/pull-requests")).await).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().iter().map(|p| p["number"].as_u64().unwrap()).collect()
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A merge announced by webhook reaches `/pull-requests` through the worker,
/// with one incremental sync; a redelivery does nothing.
async fn a_merge_is_synced_once(database_url: Option<&str>) {
    let stub = Stub::start();
    stub.state.lock().unwrap().accepted = vec![TOKEN.to_owned()];
    let (app, worker) = app_with_worker(&stub, database_url).await;
    let (id, secret) = create_with_secret(
        &app,
        &json!({"platform": "github", "credentials": {"token": TOKEN},
        "repositories": ["acme/api"]}),
    )
    .await;
    wait_until("the first sync", async || app.connection(&id).await["sync"][0]["state"] == "ready").await;
    assert!(pr_numbers(&app, &id).await.is_empty());
    let lists = || stub.requests_to("/repos/acme/api/pulls");
    let before = lists();

    stub.state.lock().unwrap().prs.push(StubPr {
        number: 41,
        title: "Merged just now".into(),
        merged_at: Utc::now(),
        files: vec!["src/main.rs".into()],
    });
    let merged = github_merged("acme/api", 41);
    let (status, body) = github_delivery(&app.base, &id, &secret, "pull_request", "e2e-1", merged.clone()).await;
    assert_eq!((status, body["data"]["action"].as_str()), (202, Some("sync")), "{body}");
    wait_until("the merged PR in the cache", async || pr_numbers(&app, &id).await == [41]).await;
    wait_until("the sync to finish", async || app.connection(&id).await["sync"][0]["state"] == "ready").await;
    assert_eq!(lists(), before + 1, "one incremental sync");

    // The same delivery again (a redelivery): no work.
    let (_, body) = github_delivery(&app.base, &id, &secret, "pull_request", "e2e-1", merged).await;
    assert_eq!(body["data"]["action"], "duplicate");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(lists(), before + 1, "a duplicate delivery syncs nothing");
    assert_eq!(app.connection(&id).await["sync"][0]["state"], "ready");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_merge_announced_by_webhook_is_synced_once_on_sqlite() {
    a_merge_is_synced_once(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_merge_announced_by_webhook_is_synced_once_on_postgres() {
    let db = TestDb::postgres().await;
    a_merge_is_synced_once(Some(db.url())).await;
}

/// Two replicas on one PostgreSQL receive the same delivery at once (a
/// platform retrying while the first attempt is still being answered):
/// one wakes the repository, the other answers `duplicate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_delivery_to_two_replicas_is_handled_once() {
    let db = TestDb::postgres().await;
    let first = TestApp::spawn_with(Plan::Team, &[("DATABASE_URL", db.url())]).await;
    let (id, secret) = create_with_secret(
        &first,
        &json!({"platform": "github", "credentials": {"token": TOKEN},
        "repositories": ["acme/api"]}),
    )
    .await;
    // Another process's view: its own store and pool on the same database.
    let second = TestApp::spawn_with(Plan::Team, &[("DATABASE_URL", db.url())]).await;
    for round in 0..5 {
        let delivery = format!("replicas-{round}");
        let merged = github_merged("acme/api", round);
        let (a, b) = tokio::join!(
            github_delivery(&first.base, &id, &secret, "pull_request", &delivery, merged.clone()),
            github_delivery(&second.base, &id, &secret, "pull_request", &delivery, merged.clone()),
        );
        let mut actions = [a.1["data"]["action"].as_str().unwrap(), b.1["data"]["action"].as_str().unwrap()];
        actions.sort_unstable();
        assert_eq!(actions, ["duplicate", "sync"], "{a:?} {b:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_secrets_are_absent_from_a_postgres_dump() {
    let db = TestDb::postgres().await;
    let app = TestApp::spawn_with(Plan::Team, &[("DATABASE_URL", db.url())]).await;
    let body = json!({"platform": "gitlab", "credentials": {"token": "glpat-webhookdump000000001"},
        "repositories": ["acme/platform/api"]});
    let (status, created) = parts(
        app.request(Method::POST, "/v1/config/repos")
            .header("Idempotency-Key", "dump-1")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let first = created["data"]["webhook"]["secret"].as_str().unwrap().to_owned();
    let (_, rotated) = parts(app.put_json(&id, &json!({"rotateWebhookSecret": true})).await).await;
    let second = rotated["data"]["webhook"]["secret"].as_str().unwrap().to_owned();
    let merge =
        json!({"object_attributes": {"action": "merge"}, "project": {"path_with_namespace": "acme/platform/api"}});
    let (status, _, _) = deliver(
        &app.base,
        &format!("/v1/hooks/{id}"),
        &[("X-Gitlab-Event", "Merge Request Hook"), ("X-Gitlab-Token", &second), ("Idempotency-Key", "dump-delivery")],
        merge.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 202);

    // Every row of every table, as text.
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let tables = client
        .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'", &[])
        .await
        .unwrap();
    let mut dump = String::new();
    for table in tables {
        let name: String = table.get(0);
        for row in client.query(&format!("SELECT t::text FROM \"{name}\" t"), &[]).await.unwrap() {
            dump.push_str(&row.get::<_, String>(0));
            dump.push('\n');
        }
    }
    assert!(dump.contains(&id), "the dump holds the rows");
    assert!(!dump.contains("ss_whsec_"), "no webhook secret in clear");
    for secret in [&first, &second] {
        assert!(!dump.contains(secret.as_str()));
        assert!(!dump.contains(&secret["ss_whsec_".len()..]));
    }
}
