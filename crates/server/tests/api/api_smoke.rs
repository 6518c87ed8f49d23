//! The happy path of every endpoint, end to end.
#![allow(clippy::unwrap_used)]

use crate::common::{TestApp, github, parts};
use serde_json::json;

#[tokio::test]
async fn create_read_list_update_invalidate_delete() {
    let app = TestApp::spawn().await;
    let response = app.post_json(&json!({
        "platform": "gitlab",
        "credentials": {"token": "glpat-abcdefghijklmnopx9Qz", "baseUrl": "https://gitlab.company.com/"},
        "repositories": ["acme/platform/checkout-api"],
        "serviceMappings": [{"serviceName": "checkout-api", "repo": "acme/platform/checkout-api", "pathPrefix": "src", "defaultBranch": "main"}],
        "lookbackDays": 60
    })).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(response.headers().contains_key("x-request-id"));
    let (status, body) = parts(response).await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/config/repos/{id}"));
    assert_eq!(body["data"]["platform"], "gitlab");

    let conn = app.connection(&id).await;
    assert_eq!(conn["baseUrl"], "https://gitlab.company.com");
    assert_eq!(conn["credentials"]["kind"], "token");
    assert_eq!(conn["credentials"]["hint"], "…x9Qz");
    assert_eq!(conn["serviceMappings"][0]["pathPrefix"], "src/");
    assert_eq!(conn["lookbackDays"], 60);
    assert_eq!(conn["isActive"], true);
    assert_eq!(conn["sync"][0]["state"], "pending");
    assert!(!conn.to_string().contains("glpat-abcdefghijklmnopx9Qz"));

    let (status, list) = parts(app.get("/v1/config/repos").await).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["meta"]["nextCursor"], serde_json::Value::Null);

    let (status, body) = parts(app.put_json(&id, &json!({"isActive": false, "lookbackDays": 90})).await).await;
    assert_eq!((status, body["data"]["updated"].clone()), (200, json!(true)));
    let conn = app.connection(&id).await;
    assert_eq!((conn["isActive"].clone(), conn["lookbackDays"].clone()), (json!(false), json!(90)));

    let (status, body) = parts(app.delete(&format!("/v1/config/repos/{id}/cache")).await).await;
    assert_eq!((status, body["data"]["invalidated"].clone()), (200, json!(true)));

    let (status, body) = parts(app.delete(&format!("/v1/config/repos/{id}")).await).await;
    assert_eq!((status, body["data"]["deleted"].clone()), (200, json!(true)));
    let (status, _) = parts(app.get(&format!("/v1/config/repos/{id}")).await).await;
    assert_eq!(status, 404);
    let _ = github(&[]);
}
