//! Test harness: the whole app on port 0 over a fresh SQLite file.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{Value, json};
use sigsentry_domain::{Permission, PermissionSet, Plan, ProjectId, TenantId};
use sigsentry_server::config::Config;
use sigsentry_server::startup::{Application, Services, services};
use tempfile::TempDir;

/// A fixed master key for tests (base64 of 32 bytes of 0x2a).
pub const TEST_MASTER_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub services: Services,
    pub tenant_id: TenantId,
    pub project_id: ProjectId,
    /// A project-scoped key with config:read and config:write.
    pub key: String,
    pub db_path: PathBuf,
    pub dir: TempDir,
    pub config: Config,
    /// The metrics listener's port, when `SIGSENTRY_METRICS_LISTEN` moved it.
    pub metrics_port: Option<u16>,
}

pub fn config_for(dir: &TempDir, extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("DATABASE_URL".into(), format!("sqlite://{}", dir.path().join("sigsentry.db").display()));
    vars.insert("SIGSENTRY_LISTEN".into(), "127.0.0.1:0".into());
    vars.insert("SIGSENTRY_MASTER_KEY".into(), TEST_MASTER_KEY.into());
    vars.insert("SIGSENTRY_DATA_DIR".into(), dir.path().display().to_string());
    for (k, v) in extra {
        vars.insert((*k).into(), (*v).into());
    }
    Config::from_lookup(|name| vars.get(name).cloned()).unwrap()
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Plan::Team, &[]).await
    }

    pub async fn spawn_with(plan: Plan, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = config_for(&dir, extra);
        let services = services(&config).await.unwrap();
        let tenant = services.create_tenant("acme", plan).await.unwrap();
        let project = services.create_project(tenant.id, "checkout").await.unwrap();
        let key = services
            .create_api_key(
                tenant.id,
                Some(project.id),
                PermissionSet::new([Permission::ConfigRead, Permission::ConfigWrite]),
                "test",
            )
            .await
            .unwrap()
            .secret;
        let app = Application::build(&config, services.clone(), sigsentry_telemetry::Metrics::new()).unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let metrics_port = app.metrics_port();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            client: Client::new(),
            services,
            tenant_id: tenant.id,
            project_id: project.id,
            key,
            db_path: dir.path().join("sigsentry.db"),
            dir,
            config,
            metrics_port,
        }
    }

    /// A new key of this tenant with these permissions, optionally limited to a project.
    pub async fn key_with(&self, project: Option<ProjectId>, permissions: &[Permission]) -> String {
        self.services
            .create_api_key(self.tenant_id, project, PermissionSet::new(permissions.iter().copied()), "extra")
            .await
            .unwrap()
            .secret
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key)
    }

    pub async fn post_json(&self, body: &Value) -> Response {
        self.request(Method::POST, "/v1/config/repos").json(body).send().await.unwrap()
    }

    pub async fn put_json(&self, id: &str, body: &Value) -> Response {
        self.request(Method::PUT, &format!("/v1/config/repos/{id}")).json(body).send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path).send().await.unwrap()
    }

    /// Creates a connection and returns its id.
    pub async fn create(&self, body: &Value) -> String {
        let response = self.post_json(body).await;
        let status = response.status();
        let json: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{json}");
        json["data"]["id"].as_str().unwrap().to_owned()
    }

    pub async fn connection(&self, id: &str) -> Value {
        let response = self.get(&format!("/v1/config/repos/{id}")).await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["data"].clone()
    }
}

/// A valid GitHub body with the given repositories.
pub fn github(repos: &[&str]) -> Value {
    json!({
        "platform": "github",
        "credentials": {"token": "ghp_testtokenvalue0000000001"},
        "repositories": repos,
    })
}

/// Status, then the parsed body.
pub async fn parts(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, body)
}

/// Asserts an error envelope with `code` and returns its details' fields.
pub fn error_fields(body: &Value, code: &str) -> Vec<String> {
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["requestId"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
    body["error"]["details"]
        .as_array()
        .map(|d| d.iter().filter_map(|x| x["field"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

impl TestApp {
    /// A request to `path` authenticated with `key` instead of the default one.
    pub fn request_as(&self, key: &str, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(key)
    }

    /// A request to `path` with no `Authorization` header.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// The ids of every connection of the default project (follows cursors).
    pub async fn all_connections(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                None => "/v1/config/repos?limit=100".to_owned(),
                Some(c) => format!("/v1/config/repos?limit=100&cursor={c}"),
            };
            let (status, body) = parts(self.get(&path).await).await;
            assert_eq!(status, 200, "{body}");
            out.extend(body["data"].as_array().unwrap().iter().cloned());
            match body["meta"]["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return out,
            }
        }
    }
}

/// Status and parsed body of an error response, after checking the envelope:
/// `success: false`, a code, a message, a request id equal to `X-Request-Id`.
pub async fn error_parts(response: Response) -> (u16, Value) {
    let header = response.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = parts(response).await;
    assert!(status >= 400, "expected an error, got {status}: {body}");
    assert_eq!(body["success"], false, "{body}");
    assert!(body["error"]["code"].as_str().is_some_and(|c| !c.is_empty()), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    let request_id = body["error"]["requestId"].as_str().unwrap_or_else(|| panic!("no requestId: {body}"));
    assert_eq!(header.as_deref(), Some(request_id), "X-Request-Id must equal error.requestId: {body}");
    (status, body)
}

/// The `details` entry at `field`, if any.
pub fn detail_at<'a>(body: &'a Value, field: &str) -> Option<&'a Value> {
    body["error"]["details"].as_array()?.iter().find(|d| d["field"] == field)
}
