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
