//! Authentication and project scope: every row of the contract's table.
#![allow(clippy::unwrap_used)]

use crate::common::{TestApp, error_parts, github, parts};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use sigsentry_domain::{Permission, PermissionSet, Plan};

const LIST: &str = "/v1/config/repos";

/// Every endpoint, with a body where it takes one.
fn endpoints(id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, LIST.to_owned(), None),
        (Method::POST, LIST.to_owned(), Some(github(&["acme/never-created"]))),
        (Method::GET, format!("{LIST}/{id}"), None),
        (Method::PUT, format!("{LIST}/{id}"), Some(json!({"lookbackDays": 7}))),
        (Method::DELETE, format!("{LIST}/{id}"), None),
        (Method::DELETE, format!("{LIST}/{id}/cache"), None),
    ]
}

fn with_body(builder: RequestBuilder, body: &Option<Value>) -> RequestBuilder {
    match body {
        Some(body) => builder.json(body),
        None => builder,
    }
}

async fn expect_code(builder: RequestBuilder, status: u16, code: &str) -> Value {
    let (got, body) = error_parts(builder.send().await.unwrap()).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    body
}

fn unknown_well_formed_key() -> String {
    format!("ss_secret_{}", "Ab3".repeat(14))
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401_on_every_endpoint() {
    let app = TestApp::spawn().await;
    let id = app.create(&github(&["acme/checkout-api"])).await;
    let bad_headers = [
        None,
        Some(format!("Basic {}", "dXNlcjpwYXNz")),
        Some(format!("Basic {}", app.key)), // the right key in the wrong scheme
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some("Bearer ss_secret_tooShort".to_owned()),
        Some("Bearer not-a-sigsentry-key-at-all-0123456789abcdef".to_owned()),
        Some(format!("Bearer {}!", app.key)),
        Some(format!("Bearer {}", unknown_well_formed_key())),
    ];
    for header in &bad_headers {
        for (method, path, body) in endpoints(&id) {
            let mut builder = app.anonymous(method.clone(), &path);
            if let Some(value) = header {
                builder = builder.header("authorization", value);
            }
            let response = with_body(builder, &body).send().await.unwrap();
            let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
            let (status, body) = error_parts(response).await;
            assert_eq!(status, 401, "{method} {path} with {header:?}: {body}");
            assert_eq!(body["error"]["code"], "UNAUTHORIZED", "{body}");
            assert!(challenge.is_some_and(|c| c.starts_with("Bearer")), "401 without a Bearer challenge");
        }
    }
    // Nothing was created or changed by the refused requests.
    let all = app.all_connections().await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["lookbackDays"], 30);
}

#[tokio::test]
async fn a_revoked_key_is_401_while_it_worked_before() {
    let app = TestApp::spawn().await;
    let created = app
        .services
        .create_api_key(
            app.tenant_id,
            Some(app.project_id),
            PermissionSet::new([Permission::ConfigRead, Permission::ConfigWrite]),
            "to-revoke",
        )
        .await
        .unwrap();
    let response = app.request_as(&created.secret, Method::GET, LIST).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(app.services.revoke_api_key(created.id).await.unwrap());
    for (method, path, body) in endpoints(&uuid_like()) {
        let builder = with_body(app.request_as(&created.secret, method, &path), &body);
        expect_code(builder, 401, "UNAUTHORIZED").await;
    }
    // The default key of the same project is not affected.
    assert_eq!(app.get(LIST).await.status(), 200);
}

/// A well-formed id that names nothing.
fn uuid_like() -> String {
    "01930000-0000-7000-8000-000000000000".to_owned()
}

#[tokio::test]
async fn a_read_only_key_may_read_but_not_write() {
    let app = TestApp::spawn().await;
    let id = app.create(&github(&["acme/checkout-api"])).await;
    let reader = app.key_with(Some(app.project_id), &[Permission::ConfigRead]).await;

    for (method, path, body) in endpoints(&id) {
        let builder = with_body(app.request_as(&reader, method.clone(), &path), &body);
        if method == Method::GET {
            let (status, body) = parts(builder.send().await.unwrap()).await;
            assert_eq!(status, 200, "{path}: {body}");
            assert_eq!(body["success"], true);
        } else {
            let body = expect_code(builder, 403, "FORBIDDEN").await;
            assert!(body["error"]["message"].as_str().unwrap().contains("config:write"), "{body}");
        }
    }
    // The refused writes changed nothing.
    let conn = app.connection(&id).await;
    assert_eq!(conn["lookbackDays"], 30);
    assert_eq!(app.all_connections().await.len(), 1);

    // A key with no config permission at all cannot even read.
    let none = app.key_with(Some(app.project_id), &[Permission::AnalysesRead]).await;
    expect_code(app.request_as(&none, Method::GET, LIST), 403, "FORBIDDEN").await;
    expect_code(app.request_as(&none, Method::GET, &format!("{LIST}/{id}")), 403, "FORBIDDEN").await;
}

#[tokio::test]
async fn tenant_scoped_keys_need_a_valid_project_header() {
    let app = TestApp::spawn().await;
    let tenant_key = app.key_with(None, &[Permission::ConfigRead, Permission::ConfigWrite]).await;
    let other_tenant = app.services.create_tenant("globex", Plan::Team).await.unwrap();
    let foreign_project = app.services.create_project(other_tenant.id, "foreign").await.unwrap();

    for (method, path, body) in endpoints(&uuid_like()) {
        // No header.
        let builder = with_body(app.request_as(&tenant_key, method.clone(), &path), &body);
        let error = expect_code(builder, 400, "VALIDATION_ERROR").await;
        assert_eq!(crate::common::error_fields(&error, "VALIDATION_ERROR"), ["X-Project-Id"], "{method} {path}");

        // Not a UUID.
        for bad in ["not-a-uuid", "12345", ""] {
            let builder =
                with_body(app.request_as(&tenant_key, method.clone(), &path).header("x-project-id", bad), &body);
            let error = expect_code(builder, 400, "VALIDATION_ERROR").await;
            assert_eq!(crate::common::error_fields(&error, "VALIDATION_ERROR"), ["X-Project-Id"], "{bad:?}");
        }

        // A UUID of no project, and a project of another tenant: both plain 404s.
        for project in [uuid_like(), foreign_project.id.to_string()] {
            let builder =
                with_body(app.request_as(&tenant_key, method.clone(), &path).header("x-project-id", project), &body);
            expect_code(builder, 404, "NOT_FOUND").await;
        }
    }
    // Nothing was created in the foreign project or ours.
    assert!(app.all_connections().await.is_empty());
}

#[tokio::test]
async fn a_tenant_scoped_key_acts_on_the_project_it_names() {
    let app = TestApp::spawn().await;
    let tenant_key = app.key_with(None, &[Permission::ConfigRead, Permission::ConfigWrite]).await;
    let second = app.services.create_project(app.tenant_id, "billing").await.unwrap();
    let ours = app.create(&github(&["acme/checkout-api"])).await;

    // Reading the default project through the header.
    let (status, body) = parts(
        app.request_as(&tenant_key, Method::GET, LIST)
            .header("x-project-id", app.project_id.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["id"], ours.as_str());

    // Creating in the second project.
    let (status, body) = parts(
        app.request_as(&tenant_key, Method::POST, LIST)
            .header("x-project-id", second.id.to_string())
            .json(&github(&["acme/billing-worker"]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let theirs = body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["data"]["projectId"], second.id.to_string());

    let (status, body) = parts(
        app.request_as(&tenant_key, Method::GET, &format!("{LIST}/{theirs}"))
            .header("x-project-id", second.id.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["repositories"], json!(["acme/billing-worker"]));

    // The project-scoped key of the default project does not see it.
    let ids: Vec<Value> = app.all_connections().await.iter().map(|c| c["id"].clone()).collect();
    assert_eq!(ids, [json!(ours)]);
}

#[tokio::test]
async fn a_project_scoped_key_may_not_name_another_project() {
    let app = TestApp::spawn().await;
    let second = app.services.create_project(app.tenant_id, "billing").await.unwrap();
    let id = app.create(&github(&["acme/checkout-api"])).await;

    for (method, path, body) in endpoints(&id) {
        let builder =
            with_body(app.request(method.clone(), &path).header("x-project-id", second.id.to_string()), &body);
        expect_code(builder, 403, "FORBIDDEN").await;
    }
    // Naming its own project is fine.
    let response = app.get(LIST).await;
    assert_eq!(response.status(), 200);
    let response = app.request(Method::GET, LIST).header("x-project-id", app.project_id.to_string()).send().await;
    assert_eq!(response.unwrap().status(), 200);
    // The refused DELETE did not delete.
    assert_eq!(app.connection(&id).await["id"], id.as_str());
}

#[tokio::test]
async fn connections_of_other_projects_and_tenants_are_not_found() {
    let app = TestApp::spawn().await;
    let mine = app.create(&github(&["acme/checkout-api"])).await;

    // Another project of the same tenant, with its own key.
    let second = app.services.create_project(app.tenant_id, "billing").await.unwrap();
    let second_key = app.key_with(Some(second.id), &[Permission::ConfigRead, Permission::ConfigWrite]).await;
    // Another tenant altogether.
    let tenant = app.services.create_tenant("globex", Plan::Team).await.unwrap();
    let project = app.services.create_project(tenant.id, "globex-api").await.unwrap();
    let foreign_key = app
        .services
        .create_api_key(
            tenant.id,
            Some(project.id),
            PermissionSet::new([Permission::ConfigRead, Permission::ConfigWrite]),
            "globex",
        )
        .await
        .unwrap()
        .secret;

    // What an id that exists nowhere answers.
    let absent = expect_code(app.request(Method::GET, &format!("{LIST}/{}", uuid_like())), 404, "NOT_FOUND").await;

    for key in [&second_key, &foreign_key] {
        for (method, path, body) in endpoints(&mine) {
            if path == LIST {
                continue;
            }
            let builder = with_body(app.request_as(key, method.clone(), &path), &body);
            let error = expect_code(builder, 404, "NOT_FOUND").await;
            // Never reveal that it exists: the same answer as for no connection at all.
            assert_eq!(error["error"]["message"], absent["error"]["message"], "{method} {path}");
            assert!(!error.to_string().contains("acme/checkout-api"), "{error}");
        }
        // Their listing does not show it either.
        let (status, body) = parts(app.request_as(key, Method::GET, LIST).send().await.unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"], json!([]));
    }

    // The refused PUT and DELETEs left it intact.
    let conn = app.connection(&mine).await;
    assert_eq!(conn["lookbackDays"], 30);
    assert_eq!(conn["repositories"], json!(["acme/checkout-api"]));
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_is_400_after_authentication() {
    let app = TestApp::spawn().await;
    for (method, path, body) in endpoints("not-a-uuid") {
        if path == LIST {
            continue;
        }
        let builder = with_body(app.request(method.clone(), &path), &body);
        let error = expect_code(builder, 400, "VALIDATION_ERROR").await;
        assert_eq!(crate::common::error_fields(&error, "VALIDATION_ERROR"), ["id"], "{method} {path}");

        // Without a key, authentication comes first.
        let builder = with_body(app.anonymous(method.clone(), &path), &body);
        expect_code(builder, 401, "UNAUTHORIZED").await;
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let response = app.get(LIST).await;
        assert_eq!(response.status(), 200);
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(!id.is_empty());
        assert!(!seen.contains(&id), "request ids must differ per request");
        seen.push(id);
    }
    let response = app.anonymous(Method::GET, LIST).send().await.unwrap();
    let (status, _) = error_parts(response).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_key_is_checked_before_the_body() {
    let app = TestApp::spawn().await;
    let huge = format!("{{\"platform\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let cases: [(&str, String); 4] = [
        ("application/json", huge),
        ("text/plain", "hello".to_owned()),
        ("application/json", "{not json".to_owned()),
        ("application/json", json!({"lookback_days": 1}).to_string()),
    ];
    for (content_type, raw) in cases {
        let response = app.anonymous(Method::POST, LIST).header("content-type", content_type).body(raw).send().await;
        let (status, body) = error_parts(response.unwrap()).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("UNAUTHORIZED")), "{content_type}");
    }
}
