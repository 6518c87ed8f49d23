//! The sync and pull-request endpoints' own contract: auth, scope, ids,
//! query parameters (no worker runs here, so states stay put).
#![allow(clippy::unwrap_used)]

use crate::common::{TestApp, detail_at, error_fields, error_parts, github, parts};
use reqwest::Method;
use serde_json::json;
use sigsentry_domain::{Permission, Plan};

#[tokio::test]
async fn sync_and_pull_requests_follow_the_api_rules() {
    let app = TestApp::spawn().await;
    let id = app.create(&github(&["acme/checkout-api"])).await;
    let sync = format!("/v1/config/repos/{id}/sync");
    let prs = format!("/v1/config/repos/{id}/pull-requests");

    // Asking for a sync is accepted and leaves the repository pending.
    let (status, body) = parts(app.request(Method::POST, &sync).send().await.unwrap()).await;
    assert_eq!((status, body["data"]["syncRequested"].clone()), (202, json!(true)));
    assert_eq!(app.connection(&id).await["sync"][0]["state"], "pending");

    // Nothing cached yet: an empty page.
    let (status, body) = parts(app.get(&prs).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["meta"]["nextCursor"], serde_json::Value::Null);

    // Auth and scope.
    let (status, body) = error_parts(app.anonymous(Method::POST, &sync).send().await.unwrap()).await;
    assert_eq!(status, 401);
    error_fields(&body, "UNAUTHORIZED");
    let reader = app.key_with(Some(app.project_id), &[Permission::ConfigRead]).await;
    let (status, body) = error_parts(app.request_as(&reader, Method::POST, &sync).send().await.unwrap()).await;
    assert_eq!(status, 403);
    error_fields(&body, "FORBIDDEN");
    let (status, _) = parts(app.request_as(&reader, Method::GET, &prs).send().await.unwrap()).await;
    assert_eq!(status, 200, "reading the cache needs config:read only");

    // Another project's connection does not exist for this key.
    let other_tenant = app.services.create_tenant("other", Plan::Team).await.unwrap();
    let other_project = app.services.create_project(other_tenant.id, "p").await.unwrap();
    let other_key = app
        .services
        .create_api_key(
            other_tenant.id,
            Some(other_project.id),
            sigsentry_domain::PermissionSet::new([Permission::ConfigWrite]),
            "k",
        )
        .await
        .unwrap()
        .secret;
    for (method, path) in [(Method::POST, &sync), (Method::GET, &prs)] {
        let (status, body) = error_parts(app.request_as(&other_key, method, path).send().await.unwrap()).await;
        assert_eq!(status, 404, "{path}");
        error_fields(&body, "NOT_FOUND");
    }

    // Ids and query parameters.
    let (status, body) =
        error_parts(app.request(Method::POST, "/v1/config/repos/nope/sync").send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(detail_at(&body, "id").is_some(), "{body}");
    for (query, field) in [("limit=0", "limit"), ("cursor=zzz", "cursor"), ("repo=", "repo"), ("paths=src", "paths")] {
        let (status, body) = error_parts(app.get(&format!("{prs}?{query}")).await).await;
        assert_eq!(status, 400, "{query}");
        assert!(detail_at(&body, field).is_some(), "{query}: {body}");
    }
    let (status, body) = error_parts(app.request(Method::GET, &sync).send().await.unwrap()).await;
    assert_eq!(status, 405);
    error_fields(&body, "METHOD_NOT_ALLOWED");
}
