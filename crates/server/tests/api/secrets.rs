//! No plaintext secret in the database file, the logs, or any response.
//! Logs are captured at `trace` level for the whole test binary (the other
//! tests' logs land in the capture too; none of them may hold these secrets).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::common::{TestApp, parts};
use crate::credentials::{TEST_APP_KEY_PATH, renewal_env};
use crate::stubs::Stub;
use reqwest::Method;
use serde_json::json;
use sigsentry_domain::Plan;
use sigsentry_server::startup::{WorkerHandle, worker};
use sigsentry_server::telemetry::EnvFilter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_never_stored_logged_or_returned_in_clear() {
    let capture = Capture::default();
    let sink = capture.clone();
    // The subscriber alone: the server's panic hook would also swallow the
    // messages of other tests' failed assertions in this binary.
    let installed =
        tracing_subscriber::fmt().with_env_filter(EnvFilter::new("trace")).with_writer(move || sink.clone()).try_init();
    assert!(installed.is_ok(), "another test installed a global subscriber first");
    // A platform stub and the operator's App and OAuth clients, so that the
    // sync mints installation tokens and renews an OAuth grant meanwhile.
    let stub = Stub::start();
    stub.state.lock().unwrap().installations = vec![77];
    stub.state.lock().unwrap().oauth.live = vec!["oauth-SECRETrefresh-000000001".to_owned()];
    let env = stub.env();
    let mut extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    extra.extend(renewal_env());
    let app = TestApp::spawn_with(Plan::Team, &extra).await;
    let worker = WorkerHandle::spawn(worker(&app.config, &app.services).unwrap());

    let github_token = "ghp_SECRETgithubTOKEN0123456789abcd";
    let rotated_token = "ghp_SECRETrotatedTOKEN9876543210zz";
    let gitlab_token = "glpat-SECRETgitlabTOKEN0123456789";
    let app_password = "SECRETbitbucketAPPpassword01";
    let api_token = "ATATT3xSECRETapiTOKEN0123456789";
    let mut responses = String::new();

    // Webhook secrets: shown once by the creation (and its rotation), never stored or logged in clear.
    let mut webhook_secrets: Vec<String> = Vec::new();
    let (status, created) = parts(
        app.request(Method::POST, "/v1/config/repos")
            .header("Idempotency-Key", "secrets-1")
            .json(&json!({"platform": "github", "credentials": {"token": github_token}, "repositories": ["acme/a"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let github = created["data"]["id"].as_str().unwrap().to_owned();
    webhook_secrets.push(created["data"]["webhook"]["secret"].as_str().unwrap().to_owned());
    let (status, created) = parts(
        app.post_json(
            &json!({"platform": "gitlab", "credentials": {"token": gitlab_token}, "repositories": ["acme/b"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let gitlab = created["data"]["id"].as_str().unwrap().to_owned();
    webhook_secrets.push(created["data"]["webhook"]["secret"].as_str().unwrap().to_owned());
    let (status, rotated) = parts(app.put_json(&gitlab, &json!({"rotateWebhookSecret": true})).await).await;
    assert_eq!(status, 200, "{rotated}");
    webhook_secrets.push(rotated["data"]["webhook"]["secret"].as_str().unwrap().to_owned());
    // GitLab sends the secret itself in a header: a delivery, right and wrong.
    for token in [webhook_secrets[2].as_str(), webhook_secrets[1].as_str()] {
        let delivery = reqwest::Client::new()
            .post(format!("{}/v1/hooks/{gitlab}", app.base))
            .header("X-Gitlab-Event", "Merge Request Hook")
            .header("X-Gitlab-Token", token)
            .body(r#"{"object_attributes": {"action": "merge"}, "project": {"path_with_namespace": "acme/b"}}"#)
            .send()
            .await
            .unwrap();
        let (_, body) = parts(delivery).await;
        responses.push_str(&body.to_string());
    }
    // A replay of the creation.
    let (_, replay) = parts(
        app.request(Method::POST, "/v1/config/repos")
            .header("Idempotency-Key", "secrets-1")
            .json(&json!({"platform": "github", "credentials": {"token": github_token}, "repositories": ["acme/a"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    responses.push_str(&replay.to_string());
    app.create(&json!({"platform": "bitbucket", "credentials": {"username": "dev", "appPassword": app_password}, "repositories": ["acme/c"]}))
        .await;
    app.create(&json!({"platform": "bitbucket", "credentials": {"email": "dev@acme.io", "apiToken": api_token}, "repositories": ["acme/d"]}))
        .await;
    let (status, body) = parts(app.put_json(&github, &json!({"credentials": {"token": rotated_token}})).await).await;
    assert_eq!(status, 200, "{body}");
    let installation = app
        .create(&json!({"platform": "github", "credentials": {"installationId": 77}, "repositories": ["acme/api"]}))
        .await;
    let expires_at = (chrono::Utc::now() + chrono::TimeDelta::minutes(1)).to_rfc3339();
    let oauth = app
        .create(&json!({"platform": "gitlab", "credentials": {"oauth": {"accessToken": "oauth-SECRETaccess-000000001", "refreshToken": "oauth-SECRETrefresh-000000001", "expiresAt": expires_at}}, "repositories": ["acme/platform/api"]}))
        .await;
    // Both synced: a token was minted, a grant renewed and its rotated refresh token stored.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for id in [&installation, &oauth] {
        while app.connection(id).await["credentials"]["status"] != "valid" {
            assert!(std::time::Instant::now() < deadline, "{}", app.connection(id).await);
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    worker.stop().await;
    let minted: Vec<String> = stub
        .state
        .lock()
        .unwrap()
        .accepted
        .iter()
        .filter(|t| t.starts_with("ghs_") || t.starts_with("oauth-"))
        .cloned()
        .collect();
    assert!(
        minted.iter().any(|t| t.starts_with("ghs_")) && minted.iter().any(|t| t.starts_with("oauth-stub")),
        "{minted:?}"
    );

    // Mistakes that put secrets where they do not belong must not echo them back.
    for bad in [
        json!({"platform": "github", "credentials": {"token": github_token}, "repositories": github_token}),
        json!({"platform": "github", "credentials": {"token": [github_token]}, "repositories": ["acme/x"]}),
        json!({"platform": "github", "credentials": {"token": format!("{github_token} x")}, "repositories": ["acme/x"]}),
        json!({"platform": "github", "credentials": {"token": github_token, "appPassword": app_password}, "repositories": ["acme/x"]}),
        json!({"platform": "svn", "credentials": {"token": github_token}, "repositories": ["acme/x"]}),
    ] {
        let (status, body) = parts(app.post_json(&bad).await).await;
        assert_eq!(status, 400, "{body}");
        responses.push_str(&body.to_string());
    }
    let (_, list) = parts(app.get("/v1/config/repos").await).await;
    responses.push_str(&list.to_string());
    let (_, one) = parts(app.request(Method::GET, &format!("/v1/config/repos/{github}")).send().await.unwrap()).await;
    responses.push_str(&one.to_string());

    let mut database = std::fs::read(&app.db_path).unwrap();
    database.extend(std::fs::read(app.db_path.with_extension("db-wal")).unwrap_or_default());
    let logs = capture.0.lock().unwrap().clone();
    assert!(contains(&logs, "repo connection created"), "the capture works: logs were recorded");

    let webhook_secrets = webhook_secrets.iter().map(String::as_str);
    let app_key = std::fs::read_to_string(TEST_APP_KEY_PATH).unwrap();
    let key_line = app_key.lines().nth(3).unwrap().to_owned();
    let renewed_refresh = "oauth-stub-refresh-0001";
    let operator_secrets = ["gitlab-client-secret-0000000001", "bitbucket-consumer-secret-0000001", &key_line];
    let user_secrets = ["oauth-SECRETaccess-000000001", "oauth-SECRETrefresh-000000001", renewed_refresh];
    let secrets = [github_token, rotated_token, gitlab_token, app_password, api_token, &app.key];
    for secret in secrets
        .iter()
        .chain(&user_secrets)
        .chain(&operator_secrets)
        .map(|s| &**s)
        .chain(minted.iter().map(String::as_str))
        .chain(webhook_secrets)
    {
        assert!(!contains(&database, secret), "database holds {secret} in clear");
        assert!(!contains(&logs, secret), "logs hold {secret}");
        assert!(!responses.contains(secret), "a response holds {secret}");
    }
    // The redacted hint is all that shows.
    assert_eq!(one["data"]["credentials"]["hint"], "…10zz");
}
