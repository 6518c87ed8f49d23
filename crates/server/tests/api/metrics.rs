//! `GET /metrics`: Prometheus text, no API key, and nothing in it that names
//! a tenant, a key or a connection.

use crate::common::{TestApp, github};
use reqwest::Method;
use sigsentry_domain::Plan;

#[tokio::test]
async fn metrics_count_requests_by_route_template_without_identifying_anyone() {
    let app = TestApp::spawn().await;
    let id = app.create(&github(&["acme/a"])).await;
    assert_eq!(app.get(&format!("/v1/config/repos/{id}")).await.status(), 200);
    assert_eq!(app.get("/v1/config/repos/01930000-0000-7000-8000-000000000000").await.status(), 404);

    let response = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), 200, "scrapers send no API key");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let route = r#"method="GET",route="/v1/config/repos/{id}""#;
    assert!(
        text.contains(&format!(r#"sigsentry_http_request_duration_seconds_count{{{route},status="200"}} 1"#)),
        "{text}"
    );
    assert!(text.contains(&format!(r#"sigsentry_http_request_duration_seconds_count{{{route},status="404"}} 1"#)));
    assert!(text.contains(r#"route="/v1/config/repos",status="201""#));
    for secret_or_id in [id.as_str(), &app.key, &app.tenant_id.to_string(), &app.project_id.to_string()] {
        assert!(!text.contains(secret_or_id), "metrics name {secret_or_id}");
    }
}

#[tokio::test]
async fn metrics_may_move_to_their_own_listener() {
    let app = TestApp::spawn_with(Plan::Team, &[("SIGSENTRY_METRICS_LISTEN", "127.0.0.1:0")]).await;
    let response = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), 404, "not on the API listener any more");
    let port = app.metrics_port.unwrap();
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    assert!(text.contains("sigsentry_http_request_duration_seconds"), "{text}");
}

/// A real `serve` process: its worker reports sync jobs by outcome, platform
/// calls by platform and status, and rate-limit waits, with no tenant,
/// connection or repository in any label.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_worker_reports_sync_jobs_platform_calls_and_rate_limit_waits() {
    use std::time::{Duration, Instant};

    use crate::common::parts;
    use crate::processes::{Cluster, Store};
    use crate::stubs::{Stub, StubPr};
    use chrono::{TimeDelta, Utc};
    use serde_json::{Value, json};

    let stub = Stub::start();
    {
        let mut state = stub.state.lock().unwrap();
        state.accepted = vec!["ghp_metricstoken0000000000001".to_owned()];
        state.tree = vec!["src/main.rs".to_owned()];
        state.prs = vec![StubPr {
            number: 1,
            title: "Fix".into(),
            merged_at: Utc::now() - TimeDelta::days(1),
            files: vec!["src/main.rs".into()],
        }];
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store { url: format!("sqlite://{}", dir.path().join("sigsentry.db").display()), master_key: None };
    let env = stub.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cluster = Cluster::start_with(store, dir.path(), 1, "free", &env).await;
    let body = json!({"platform": "github", "credentials": {"token": "ghp_metricstoken0000000000001"}, "repositories": ["acme/api"]});
    let (status, created) =
        parts(cluster.request(0, Method::POST, "/v1/config/repos").json(&body).send().await.unwrap()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let state = async |cluster: &Cluster| -> Value {
        let (_, body) =
            parts(cluster.request(0, Method::GET, &format!("/v1/config/repos/{id}")).send().await.unwrap()).await;
        body["data"]["sync"][0]["state"].clone()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while state(&cluster).await != "ready" {
        assert!(Instant::now() < deadline, "never synced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stub.state.lock().unwrap().github_rate_limited_until = Some((Utc::now() + TimeDelta::minutes(30)).timestamp());
    let (status, _) =
        parts(cluster.request(0, Method::POST, &format!("/v1/config/repos/{id}/sync")).send().await.unwrap()).await;
    assert_eq!(status, 202);
    while state(&cluster).await != "error" {
        assert!(Instant::now() < deadline, "never rate limited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let text = reqwest::get(format!("{}/metrics", cluster.bases[0])).await.unwrap().text().await.unwrap();
    for expected in [
        r#"sigsentry_sync_job_duration_seconds_count{outcome="ready"} 1"#,
        r#"sigsentry_sync_job_duration_seconds_count{outcome="rate_limited"} 1"#,
        r#"sigsentry_platform_request_duration_seconds_count{platform="GitHub",status="200"}"#,
        r#"sigsentry_platform_request_duration_seconds_count{platform="GitHub",status="403"} 1"#,
        r#"sigsentry_platform_rate_limit_wait_seconds_total{platform="GitHub"}"#,
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
    for identifying in [id.as_str(), "acme/api", "ghp_metricstoken"] {
        assert!(!text.contains(identifying), "metrics name {identifying}");
    }
}
