//! PUT: partial updates, merged validation, credentials rotation, quota.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::common::{TestApp, detail_at, error_fields, error_parts, github, parts};
use serde_json::{Value, json};
use sigsentry_domain::Plan;

async fn put_ok(app: &TestApp, id: &str, body: &Value) {
    let (status, response) = parts(app.put_json(id, body).await).await;
    assert_eq!(status, 200, "{body}: {response}");
    assert_eq!(response, json!({"success": true, "data": {"updated": true}}));
}

async fn put_refused(app: &TestApp, id: &str, body: &Value, status: u16, code: &str) -> (Vec<String>, Value) {
    let (got, error) = error_parts(app.put_json(id, body).await).await;
    assert_eq!(got, status, "{body}: {error}");
    (error_fields(&error, code), error)
}

fn full_body() -> Value {
    json!({
        "platform": "gitlab",
        "credentials": {"token": "glpat-originaltoken00AAAA", "baseUrl": "https://gitlab.company.com"},
        "repositories": ["acme/platform/checkout-api", "acme/platform/billing"],
        "serviceMappings": [
            {"serviceName": "checkout", "repo": "acme/platform/checkout-api", "pathPrefix": "src/", "defaultBranch": "main"},
            {"serviceName": "billing", "repo": "acme/platform/billing"}
        ],
        "lookbackDays": 45
    })
}

/// The connection without the fields a PUT is expected to touch.
fn without(conn: &Value, fields: &[&str]) -> Value {
    let mut copy = conn.clone();
    for field in fields {
        copy.as_object_mut().unwrap().remove(*field);
    }
    copy
}

#[tokio::test]
async fn only_the_fields_sent_change() {
    let app = TestApp::spawn().await;
    let id = app.create(&full_body()).await;
    let before = app.connection(&id).await;
    tokio::time::sleep(Duration::from_millis(5)).await;

    put_ok(&app, &id, &json!({"isActive": false})).await;
    let after = app.connection(&id).await;
    assert_eq!(after["isActive"], false);
    assert_eq!(without(&after, &["isActive", "updatedAt"]), without(&before, &["isActive", "updatedAt"]));
    assert!(after["updatedAt"].as_str().unwrap() > before["updatedAt"].as_str().unwrap(), "updatedAt must advance");

    put_ok(&app, &id, &json!({"lookbackDays": 90})).await;
    let after = app.connection(&id).await;
    assert_eq!(after["lookbackDays"], 90);
    assert_eq!(after["isActive"], false, "an earlier change must survive");
    assert_eq!(after["serviceMappings"], before["serviceMappings"]);
    assert_eq!(after["repositories"], before["repositories"]);
    assert_eq!(after["credentials"], before["credentials"]);
    assert_eq!(after["baseUrl"], before["baseUrl"]);
    assert_eq!(after["createdAt"], before["createdAt"]);

    // An empty body changes nothing.
    put_ok(&app, &id, &json!({})).await;
    let again = app.connection(&id).await;
    assert_eq!(without(&again, &["updatedAt"]), without(&after, &["updatedAt"]));
}

#[tokio::test]
async fn service_mappings_are_replaced_kept_or_cleared() {
    let app = TestApp::spawn().await;
    let id = app.create(&full_body()).await;

    // Omitted: kept, even while repositories change.
    put_ok(&app, &id, &json!({"repositories": ["acme/platform/checkout-api", "acme/platform/billing", "acme/new"]}))
        .await;
    let conn = app.connection(&id).await;
    assert_eq!(conn["repositories"].as_array().unwrap().len(), 3);
    assert_eq!(conn["serviceMappings"].as_array().unwrap().len(), 2);
    assert_eq!(conn["sync"].as_array().unwrap().len(), 3);
    assert!(conn["sync"].as_array().unwrap().iter().any(|s| s["repository"] == "acme/new" && s["state"] == "pending"));

    // Sent: replaces all of them (and may name a repository added in the same request).
    let body = json!({
        "repositories": ["acme/platform/checkout-api", "acme/other"],
        "serviceMappings": [{"serviceName": "other", "repo": "acme/other", "pathPrefix": "lib"}]
    });
    put_ok(&app, &id, &body).await;
    let conn = app.connection(&id).await;
    assert_eq!(conn["repositories"], json!(["acme/platform/checkout-api", "acme/other"]));
    assert_eq!(
        conn["serviceMappings"],
        json!([{"serviceName": "other", "repo": "acme/other", "pathPrefix": "lib/", "defaultBranch": null}])
    );

    // []: clears them.
    put_ok(&app, &id, &json!({"serviceMappings": []})).await;
    let conn = app.connection(&id).await;
    assert_eq!(conn["serviceMappings"], json!([]));
    assert_eq!(conn["repositories"], json!(["acme/platform/checkout-api", "acme/other"]));
}

#[tokio::test]
async fn removing_a_repository_a_kept_mapping_names_is_refused() {
    let app = TestApp::spawn().await;
    let id = app.create(&full_body()).await;
    let before = app.connection(&id).await;

    let (fields, error) =
        put_refused(&app, &id, &json!({"repositories": ["acme/platform/checkout-api"]}), 400, "VALIDATION_ERROR").await;
    assert_eq!(fields, ["/repositories"]);
    let message = detail_at(&error, "/repositories").unwrap()["message"].as_str().unwrap();
    assert!(message.contains("acme/platform/billing"), "{message}");

    // Sending mappings that still name it points at the mapping.
    let body = json!({
        "repositories": ["acme/platform/checkout-api"],
        "serviceMappings": [{"serviceName": "billing", "repo": "acme/platform/billing"}]
    });
    let (fields, _) = put_refused(&app, &id, &body, 400, "VALIDATION_ERROR").await;
    assert_eq!(fields, ["/serviceMappings/0/repo"]);
    assert_eq!(app.connection(&id).await, before, "a refused PUT changed the connection");

    // Dropping the mapping with it works.
    let body = json!({
        "repositories": ["acme/platform/checkout-api"],
        "serviceMappings": [{"serviceName": "checkout", "repo": "acme/platform/checkout-api"}]
    });
    put_ok(&app, &id, &body).await;
    let conn = app.connection(&id).await;
    assert_eq!(conn["repositories"], json!(["acme/platform/checkout-api"]));
    assert_eq!(conn["sync"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_platform_cannot_change() {
    let app = TestApp::spawn().await;
    let id = app.create(&github(&["acme/a"])).await;
    for platform in [json!("gitlab"), json!("github"), json!(1)] {
        let (fields, error) =
            put_refused(&app, &id, &json!({"platform": platform, "lookbackDays": 10}), 400, "VALIDATION_ERROR").await;
        assert!(fields.contains(&"/platform".to_owned()), "{fields:?}");
        let message = detail_at(&error, "/platform").unwrap()["message"].as_str().unwrap().to_lowercase();
        assert!(message.contains("delete") && message.contains("creat"), "{message}");
    }
    let conn = app.connection(&id).await;
    assert_eq!((conn["platform"].clone(), conn["lookbackDays"].clone()), (json!("github"), json!(30)));
}

#[tokio::test]
async fn a_rotated_token_keeps_its_host_unless_told_otherwise() {
    let app = TestApp::spawn().await;
    let id = app.create(&full_body()).await;
    let before = app.connection(&id).await;
    assert_eq!(before["credentials"]["hint"], "…AAAA");
    tokio::time::sleep(Duration::from_millis(5)).await;

    put_ok(&app, &id, &json!({"credentials": {"token": "glpat-rotatedtoken000BBBB"}})).await;
    let after = app.connection(&id).await;
    assert_eq!(after["baseUrl"], "https://gitlab.company.com", "a rotated token must stay on its host");
    assert_eq!(after["credentials"]["hint"], "…BBBB");
    assert_eq!(after["credentials"]["kind"], "token");
    assert_ne!(after["credentials"]["updatedAt"], before["credentials"]["updatedAt"]);
    assert!(after["credentials"]["updatedAt"].as_str().unwrap() > before["credentials"]["updatedAt"].as_str().unwrap());
    assert_eq!(after["serviceMappings"], before["serviceMappings"]);
    assert!(!after.to_string().contains("rotatedtoken"));

    // A new host with the token.
    put_ok(
        &app,
        &id,
        &json!({"credentials": {"token": "glpat-rotatedtoken000CCCC", "baseUrl": "https://git.acme.io/"}}),
    )
    .await;
    assert_eq!(app.connection(&id).await["baseUrl"], "https://git.acme.io");

    // null: back to the cloud.
    put_ok(&app, &id, &json!({"credentials": {"token": "glpat-rotatedtoken000DDDD", "baseUrl": null}})).await;
    let conn = app.connection(&id).await;
    assert_eq!(conn["baseUrl"], Value::Null);
    assert_eq!(conn["credentials"]["hint"], "…DDDD");

    // Credentials are replaced whole: a baseUrl alone is not a credential.
    let (fields, _) =
        put_refused(&app, &id, &json!({"credentials": {"baseUrl": "https://git.acme.io"}}), 400, "VALIDATION_ERROR")
            .await;
    assert_eq!(fields, ["/credentials/token"]);
    // The base URL rules hold on PUT too.
    let body = json!({"credentials": {"token": "glpat-rotatedtoken000EEEE", "baseUrl": "https://169.254.169.254"}});
    let (fields, _) = put_refused(&app, &id, &body, 400, "VALIDATION_ERROR").await;
    assert_eq!(fields, ["/credentials/baseUrl"]);
    let conn = app.connection(&id).await;
    assert_eq!((conn["baseUrl"].clone(), conn["credentials"]["hint"].clone()), (Value::Null, json!("…DDDD")));
}

#[tokio::test]
async fn bitbucket_credentials_may_switch_to_an_api_token() {
    let app = TestApp::spawn().await;
    let id = app
        .create(&json!({
            "platform": "bitbucket",
            "credentials": {"username": "dev", "appPassword": "app-password-00001111"},
            "repositories": ["ws/repo"]
        }))
        .await;
    put_ok(&app, &id, &json!({"credentials": {"email": "dev@acme.io", "apiToken": "atlassian-token-0002222"}})).await;
    let conn = app.connection(&id).await;
    assert_eq!(conn["credentials"]["kind"], "apiToken");
    assert_eq!(conn["credentials"]["hint"], "…2222");
    let (fields, _) =
        put_refused(&app, &id, &json!({"credentials": {"token": "ghp_0000000000000000"}}), 400, "VALIDATION_ERROR")
            .await;
    assert!(fields.contains(&"/credentials/token".to_owned()), "{fields:?}");
}

#[tokio::test]
async fn pausing_and_resuming() {
    let app = TestApp::spawn().await;
    let id = app.create(&github(&["acme/a"])).await;
    put_ok(&app, &id, &json!({"isActive": false})).await;
    assert_eq!(app.connection(&id).await["isActive"], false);
    let (_, list) = parts(app.get("/v1/config/repos?isActive=false").await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    put_ok(&app, &id, &json!({"isActive": true})).await;
    assert_eq!(app.connection(&id).await["isActive"], true);
    let (_, list) = parts(app.get("/v1/config/repos?isActive=false").await).await;
    assert_eq!(list["data"], json!([]));

    for bad in [json!("false"), json!(0), json!(null)] {
        let (fields, _) = put_refused(&app, &id, &json!({"isActive": bad}), 400, "VALIDATION_ERROR").await;
        assert_eq!(fields, ["/isActive"], "{bad}");
    }
    assert_eq!(app.connection(&id).await["isActive"], true);
}

#[tokio::test]
async fn a_new_window_sends_every_repository_back_to_pending() {
    let app = TestApp::spawn().await;
    let id = app.create(&github(&["acme/a", "acme/b"])).await;
    put_ok(&app, &id, &json!({"lookbackDays": 120})).await;
    let conn = app.connection(&id).await;
    assert_eq!(conn["lookbackDays"], 120);
    let sync = conn["sync"].as_array().unwrap();
    assert_eq!(sync.len(), 2);
    assert!(sync.iter().all(|s| s["state"] == "pending" && s["error"].is_null()), "{sync:?}");
}

#[tokio::test]
async fn put_validates_like_post() {
    let app = TestApp::spawn().await;
    let id = app.create(&github(&["acme/a"])).await;
    let before = app.connection(&id).await;
    let cases = [
        (json!({"lookbackDays": 0}), "/lookbackDays"),
        (json!({"lookbackDays": 366}), "/lookbackDays"),
        (json!({"lookbackDays": "30"}), "/lookbackDays"),
        (json!({"lookback_days": 30}), "/lookback_days"),
        (json!({"repositories": []}), "/repositories"),
        (json!({"repositories": ["a/b/c"]}), "/repositories/0"),
        (json!({"repositories": ["acme/a", "Acme/A"]}), "/repositories/1"),
        (json!({"serviceMappings": [{"serviceName": "x", "repo": "acme/zzz"}]}), "/serviceMappings/0/repo"),
        (
            json!({"serviceMappings": [{"serviceName": "x", "repo": "acme/a", "pathPrefix": "/abs"}]}),
            "/serviceMappings/0/pathPrefix",
        ),
        (json!({"credentials": {"token": "has space"}}), "/credentials/token"),
        (json!({"credentials": {"token": "ghp_000000000000000000", "username": "u"}}), "/credentials/username"),
        (json!({"lookbackDays": null}), "/lookbackDays"),
        (json!({"serviceMappings": null}), "/serviceMappings"),
        (json!({"credentials": null}), "/credentials"),
    ];
    for (body, field) in cases {
        let (fields, error) = put_refused(&app, &id, &body, 400, "VALIDATION_ERROR").await;
        assert!(fields.contains(&field.to_owned()), "{body}: {fields:?}");
        if field == "/lookback_days" {
            assert!(error.to_string().contains("lookbackDays"), "{error}");
        }
    }
    assert_eq!(app.connection(&id).await, before, "a refused PUT changed the connection");
}

#[tokio::test]
async fn an_unknown_connection_is_404() {
    let app = TestApp::spawn().await;
    let (_, error) =
        put_refused(&app, "01930000-0000-7000-8000-000000000000", &json!({"isActive": false}), 404, "NOT_FOUND").await;
    assert!(error["error"]["message"].is_string());
    // A deleted one too.
    let id = app.create(&github(&["acme/a"])).await;
    assert_eq!(app.delete(&format!("/v1/config/repos/{id}")).await.status(), 200);
    put_refused(&app, &id, &json!({"isActive": false}), 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn put_conflicts_name_the_other_connection() {
    let app = TestApp::spawn().await;
    let first = app
        .create(&json!({
            "platform": "github",
            "credentials": {"token": "ghp_testtokenvalue0000000001"},
            "repositories": ["acme/checkout"],
            "serviceMappings": [{"serviceName": "checkout", "repo": "acme/checkout"}]
        }))
        .await;
    let second = app.create(&github(&["acme/billing"])).await;

    let (_, error) =
        put_refused(&app, &second, &json!({"repositories": ["acme/billing", "acme/checkout"]}), 409, "CONFLICT").await;
    assert!(error["error"]["details"].as_array().unwrap().iter().any(|d| d["connectionId"] == first.as_str()));
    let body = json!({"serviceMappings": [{"serviceName": "checkout", "repo": "acme/billing"}]});
    let (_, error) = put_refused(&app, &second, &body, 409, "CONFLICT").await;
    assert!(error["error"]["details"].as_array().unwrap().iter().any(|d| d["connectionId"] == first.as_str()));

    // A connection may of course keep its own repositories and names.
    let body = json!({
        "repositories": ["acme/checkout"],
        "serviceMappings": [{"serviceName": "checkout", "repo": "acme/checkout", "pathPrefix": "src"}]
    });
    put_ok(&app, &first, &body).await;
    assert_eq!(app.connection(&second).await["repositories"], json!(["acme/billing"]));
}

#[tokio::test]
async fn the_quota_holds_on_put() {
    let app = TestApp::spawn_with(Plan::Free, &[]).await;
    let five = ["acme/r1", "acme/r2", "acme/r3", "acme/r4", "acme/r5"];
    let id = app.create(&github(&five)).await;

    let mut six = five.to_vec();
    six.push("acme/r6");
    let (_, error) = put_refused(&app, &id, &json!({"repositories": six}), 403, "QUOTA_EXCEEDED").await;
    let detail = &error["error"]["details"][0];
    assert_eq!(
        (detail["limit"].clone(), detail["used"].clone(), detail["requested"].clone()),
        (json!(5), json!(5), json!(1))
    );
    assert_eq!(app.connection(&id).await["repositories"], json!(five));

    // Swapping one for another at the limit is fine.
    let swapped = ["acme/r1", "acme/r2", "acme/r3", "acme/r4", "acme/r9"];
    put_ok(&app, &id, &json!({"repositories": swapped})).await;
    let conn = app.connection(&id).await;
    assert_eq!(conn["repositories"], json!(swapped));
    assert_eq!(conn["sync"].as_array().unwrap().len(), 5);

    // So is changing other fields while at the limit.
    put_ok(&app, &id, &json!({"lookbackDays": 7, "isActive": false})).await;
    // And shrinking frees room for a new connection.
    put_ok(&app, &id, &json!({"repositories": ["acme/r1", "acme/r2", "acme/r3", "acme/r4"]})).await;
    app.create(&github(&["acme/other"])).await;
}
