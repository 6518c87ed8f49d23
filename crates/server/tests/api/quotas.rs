//! Repositories per project, by plan, also under concurrent requests.
#![allow(clippy::unwrap_used)]

use crate::common::{TestApp, error_fields, error_parts, github, parts};
use futures_util::future::join_all;
use serde_json::{Value, json};
use sigsentry_domain::{Permission, Plan};

fn repositories_in(connections: &[Value]) -> Vec<String> {
    connections
        .iter()
        .flat_map(|c| c["repositories"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()))
        .collect()
}

async fn quota_refusal(app: &TestApp, body: &Value) -> Value {
    let (status, error) = error_parts(app.post_json(body).await).await;
    assert_eq!(status, 403, "{error}");
    error_fields(&error, "QUOTA_EXCEEDED");
    error["error"]["details"][0].clone()
}

fn figures(detail: &Value) -> (Value, Value, Value) {
    (detail["limit"].clone(), detail["used"].clone(), detail["requested"].clone())
}

#[tokio::test]
async fn the_free_plan_holds_five_repositories() {
    let app = TestApp::spawn_with(Plan::Free, &[]).await;
    app.create(&github(&["acme/r1", "acme/r2", "acme/r3"])).await;
    // Two more than fit in one request: refused whole.
    let detail = quota_refusal(&app, &github(&["acme/r4", "acme/r5", "acme/r6"])).await;
    assert_eq!(figures(&detail), (json!(5), json!(3), json!(3)));
    app.create(&github(&["acme/r4", "acme/r5"])).await;

    let detail = quota_refusal(&app, &github(&["acme/r6"])).await;
    assert_eq!(figures(&detail), (json!(5), json!(5), json!(1)));
    assert!(detail["message"].as_str().is_some_and(|m| !m.is_empty()));

    let all = app.all_connections().await;
    assert_eq!(all.len(), 2);
    assert_eq!(repositories_in(&all).len(), 5);
}

#[tokio::test]
async fn quotas_are_per_project() {
    let app = TestApp::spawn_with(Plan::Free, &[]).await;
    app.create(&github(&["acme/r1", "acme/r2", "acme/r3", "acme/r4", "acme/r5"])).await;
    quota_refusal(&app, &github(&["acme/r6"])).await;

    let other = app.services.create_project(app.tenant_id, "other").await.unwrap();
    let key = app.key_with(Some(other.id), &[Permission::ConfigRead, Permission::ConfigWrite]).await;
    let response = app
        .request_as(&key, reqwest::Method::POST, "/v1/config/repos")
        .json(&github(&["acme/r1", "acme/r2", "acme/r3", "acme/r4", "acme/r5"]))
        .send()
        .await
        .unwrap();
    let (status, body) = parts(response).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn operators_may_override_the_limits() {
    let app = TestApp::spawn_with(Plan::Free, &[("SIGSENTRY_QUOTAS", "free=2")]).await;
    app.create(&github(&["acme/r1"])).await;
    app.create(&github(&["acme/r2"])).await;
    let detail = quota_refusal(&app, &github(&["acme/r3"])).await;
    assert_eq!(figures(&detail), (json!(2), json!(2), json!(1)));

    // The other plans keep their defaults.
    let app = TestApp::spawn_with(Plan::Team, &[("SIGSENTRY_QUOTAS", "free=2")]).await;
    let names: Vec<String> = (0..50).map(|i| format!("acme/r{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    app.create(&github(&names)).await;
    let detail = quota_refusal(&app, &github(&["acme/one-more"])).await;
    assert_eq!(figures(&detail), (json!(50), json!(50), json!(1)));
}

#[tokio::test]
async fn deleting_a_connection_frees_its_repositories() {
    let app = TestApp::spawn_with(Plan::Free, &[]).await;
    let first = app.create(&github(&["acme/r1", "acme/r2", "acme/r3"])).await;
    app.create(&github(&["acme/r4", "acme/r5"])).await;
    quota_refusal(&app, &github(&["acme/r6", "acme/r7"])).await;

    let (status, _) = parts(app.delete(&format!("/v1/config/repos/{first}")).await).await;
    assert_eq!(status, 200);
    app.create(&github(&["acme/r6", "acme/r7", "acme/r1"])).await;
    let detail = quota_refusal(&app, &github(&["acme/r8"])).await;
    assert_eq!(figures(&detail), (json!(5), json!(5), json!(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_posts_create_exactly_what_fits() {
    let app = TestApp::spawn_with(Plan::Free, &[]).await;
    let requests = (0..20).map(|i| {
        let app = &app;
        async move {
            let body = github(&[&format!("acme/parallel-{i}")]);
            parts(app.post_json(&body).await).await
        }
    });
    let results = join_all(requests).await;
    let created = results.iter().filter(|(status, _)| *status == 201).count();
    let refused: Vec<&Value> = results.iter().filter(|(status, _)| *status == 403).map(|(_, body)| body).collect();
    let others: Vec<&(u16, Value)> = results.iter().filter(|(status, _)| ![201, 403].contains(status)).collect();
    assert!(others.is_empty(), "unexpected answers: {others:?}");
    assert_eq!((created, refused.len()), (5, 15));
    for body in refused {
        error_fields(body, "QUOTA_EXCEEDED");
        assert_eq!(body["error"]["details"][0]["limit"], 5);
    }

    let all = app.all_connections().await;
    assert_eq!(all.len(), 5);
    let mut repos = repositories_in(&all);
    assert_eq!(repos.len(), 5);
    // The ones that exist are the ones that were answered 201.
    let mut answered: Vec<String> = results
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, body)| body["data"]["repositories"][0].as_str().unwrap().to_owned())
        .collect();
    repos.sort();
    answered.sort();
    assert_eq!(repos, answered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_posts_of_several_repositories_never_pass_the_limit() {
    let app = TestApp::spawn_with(Plan::Free, &[]).await;
    // 12 requests of 2 repositories against a limit of 5: at most 2 fit.
    let requests = (0..12).map(|i| {
        let app = &app;
        async move {
            let body = github(&[&format!("acme/pair-{i}-a"), &format!("acme/pair-{i}-b")]);
            parts(app.post_json(&body).await).await.0
        }
    });
    let statuses = join_all(requests).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 10, "{statuses:?}");
    assert_eq!(repositories_in(&app.all_connections().await).len(), 4);
    // The fifth slot is still free.
    app.create(&github(&["acme/last"])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_puts_never_pass_the_limit() {
    let app = TestApp::spawn_with(Plan::Free, &[]).await;
    // Four connections of one repository each: one slot left.
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(app.create(&github(&[&format!("acme/base-{i}")])).await);
    }
    let requests = ids.iter().enumerate().map(|(i, id)| {
        let app = &app;
        async move {
            let body = json!({"repositories": [format!("acme/base-{i}"), format!("acme/extra-{i}")]});
            parts(app.put_json(id, &body).await).await
        }
    });
    let results = join_all(requests).await;
    let statuses: Vec<u16> = results.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{results:?}");
    for (status, body) in &results {
        if *status != 200 {
            assert_eq!(*status, 403, "{body}");
            error_fields(body, "QUOTA_EXCEEDED");
        }
    }
    assert_eq!(repositories_in(&app.all_connections().await).len(), 5);
}
