//! The recommended credentials (GitHub App installations, OAuth), refused
//! while the operator has not configured them; every connection's
//! credential status and expiry, and the listing of those that need a person.
#![allow(clippy::unwrap_used)]

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use sigsentry_domain::{ConnectionId, CredentialUse, Plan};
use sigsentry_ports::{ConnectionStore, CredentialReport, CredentialStore};

use crate::common::{TestApp, detail_at, error_fields, error_parts, github, parts};

/// The test-only App key (see `crates/platforms/tests/fixtures/README.md`).
pub const TEST_APP_KEY_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../platforms/tests/fixtures/test-only-github-app-key.pem");

/// The operator configuration that enables every self-renewing kind.
pub fn renewal_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("SIGSENTRY_GITHUB_APP_ID", "424242"),
        ("SIGSENTRY_GITHUB_APP_PRIVATE_KEY_FILE", TEST_APP_KEY_PATH),
        ("SIGSENTRY_GITLAB_OAUTH_CLIENT_ID", "gitlab-client-id"),
        ("SIGSENTRY_GITLAB_OAUTH_CLIENT_SECRET", "gitlab-client-secret-0000000001"),
        ("SIGSENTRY_BITBUCKET_OAUTH_CLIENT_ID", "bitbucket-consumer-key"),
        ("SIGSENTRY_BITBUCKET_OAUTH_CLIENT_SECRET", "bitbucket-consumer-secret-0000001"),
    ]
}

fn app_body(installation: i64) -> Value {
    json!({"platform": "github", "credentials": {"installationId": installation}, "repositories": ["acme/api"]})
}

fn oauth_body(platform: &str, repository: &str) -> Value {
    json!({
        "platform": platform,
        "credentials": {"oauth": {
            "accessToken": "oauth-access-token-000000000001",
            "refreshToken": "oauth-refresh-token-00000000001",
            "expiresAt": "2026-12-24T10:00:00Z"
        }},
        "repositories": [repository],
    })
}

#[tokio::test]
async fn unconfigured_kinds_are_refused_naming_the_setting() {
    let app = TestApp::spawn().await;
    for (body, setting) in [
        (app_body(12_345_678), "SIGSENTRY_GITHUB_APP_ID"),
        (oauth_body("gitlab", "acme/platform/api"), "SIGSENTRY_GITLAB_OAUTH_CLIENT_ID"),
        (oauth_body("bitbucket", "acme/api"), "SIGSENTRY_BITBUCKET_OAUTH_CLIENT_ID"),
    ] {
        let (status, error) = error_parts(app.post_json(&body).await).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error_fields(&error, "VALIDATION_ERROR"), ["/credentials"]);
        let message = detail_at(&error, "/credentials").unwrap()["message"].as_str().unwrap();
        assert!(message.contains(setting), "{message}");
    }
    // PUT too: a token connection cannot switch to an App installation.
    let id = app.create(&github(&["acme/api"])).await;
    let (status, error) = error_parts(app.put_json(&id, &json!({"credentials": {"installationId": 7}})).await).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error_fields(&error, "VALIDATION_ERROR"), ["/credentials"]);
}

#[tokio::test]
async fn configured_kinds_are_created_and_shown_without_secrets() {
    let app = TestApp::spawn_with(Plan::Team, &renewal_env()).await;
    let id = app.create(&app_body(12_345_678)).await;
    let conn = app.connection(&id).await;
    assert_eq!(
        conn["credentials"],
        json!({
            "kind": "githubApp", "hint": "installation 12345678", "updatedAt": conn["credentials"]["updatedAt"],
            "expiresAt": null, "status": "unknown"
        })
    );
    let id = app.create(&oauth_body("gitlab", "acme/platform/api")).await;
    let conn = app.connection(&id).await;
    assert_eq!(conn["credentials"]["kind"], "oauth");
    assert_eq!(conn["credentials"]["hint"], "…0001");
    assert_eq!(conn["credentials"]["expiresAt"], Value::Null, "the service renews it by itself");
    let shown = conn.to_string();
    assert!(!shown.contains("oauth-refresh-token") && !shown.contains("oauth-access-token"), "{shown}");
    app.create(&oauth_body("bitbucket", "acme/bitbucket-api")).await;

    // Mixing two shapes is refused naming both.
    let mut mixed = app_body(1);
    mixed["credentials"]["token"] = json!("ghp_testtokenvalue0000000001");
    let (status, error) = error_parts(app.post_json(&mixed).await).await;
    assert_eq!(status, 400);
    let message = detail_at(&error, "/credentials").unwrap()["message"].as_str().unwrap();
    assert!(message.contains("token") && message.contains("installationId"), "{message}");
    // A baseUrl is no Bitbucket field, OAuth or not; an unknown OAuth field is refused at its pointer.
    let mut bitbucket = oauth_body("bitbucket", "acme/other");
    bitbucket["credentials"]["baseUrl"] = json!("https://bitbucket.acme.io");
    let (status, error) = error_parts(app.post_json(&bitbucket).await).await;
    assert_eq!((status, error_fields(&error, "VALIDATION_ERROR")), (400, vec!["/credentials/baseUrl".to_owned()]));
    let mut extra = oauth_body("gitlab", "acme/platform/other");
    extra["credentials"]["oauth"]["scope"] = json!("api");
    let (status, error) = error_parts(app.post_json(&extra).await).await;
    assert_eq!(status, 400, "{error}");
    assert!(detail_at(&error, "/credentials/oauth/scope").is_some(), "{error}");
}

async fn record(app: &TestApp, id: &str, outcome: CredentialUse, expires_at: Option<chrono::DateTime<Utc>>) {
    let id: ConnectionId = id.parse().unwrap();
    let conn = app.services.store().get_connection(app.project_id, id).await.unwrap().unwrap();
    let report = CredentialReport { outcome: Some(outcome), expires_at: Some(expires_at) };
    let recorded = app.services.store().record_credential_use(id, conn.credentials.updated_at, report, Utc::now());
    assert!(recorded.await.unwrap());
}

#[tokio::test]
async fn statuses_follow_the_clock_and_the_list_finds_those_that_need_a_person() {
    let app = TestApp::spawn().await;
    let now = Utc::now();
    let fresh = app.create(&github(&["acme/fresh"])).await;
    let valid = app.create(&github(&["acme/valid"])).await;
    let expiring = app.create(&github(&["acme/expiring"])).await;
    let expired = app.create(&github(&["acme/expired"])).await;
    let revoked = app.create(&github(&["acme/revoked"])).await;
    record(&app, &valid, CredentialUse::Accepted, None).await;
    record(&app, &expiring, CredentialUse::Accepted, Some(now + TimeDelta::days(3))).await;
    record(&app, &expired, CredentialUse::Accepted, Some(now - TimeDelta::hours(1))).await;
    record(&app, &revoked, CredentialUse::Refused, Some(now + TimeDelta::days(90))).await;

    let status_of = async |id: &str| app.connection(id).await["credentials"]["status"].clone();
    assert_eq!(status_of(&fresh).await, "unknown");
    assert_eq!(status_of(&valid).await, "valid");
    assert_eq!(status_of(&expiring).await, "expiring");
    assert_eq!(status_of(&expired).await, "expired");
    assert_eq!(status_of(&revoked).await, "rejected");
    let expires_at = app.connection(&expiring).await["credentials"]["expiresAt"].clone();
    let shown = chrono::DateTime::parse_from_rfc3339(expires_at.as_str().unwrap()).unwrap();
    assert!((shown.with_timezone(&Utc) - (now + TimeDelta::days(3))).num_milliseconds().abs() <= 1, "{expires_at}");

    let (status, body) = parts(app.get("/v1/config/repos?credentialStatus=expiring,expired,rejected").await).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [expiring.as_str(), expired.as_str(), revoked.as_str()]);
    let (_, body) = parts(app.get("/v1/config/repos?credentialStatus=unknown&limit=1").await).await;
    assert_eq!(body["data"][0]["id"], fresh.as_str());
    assert_eq!(body["meta"]["nextCursor"], Value::Null);

    for bad in ["stale", "expired,", "", "valid,nope"] {
        let (status, error) = error_parts(app.get(&format!("/v1/config/repos?credentialStatus={bad}")).await).await;
        assert_eq!(status, 400, "{bad}: {error}");
        assert_eq!(error_fields(&error, "VALIDATION_ERROR"), ["credentialStatus"], "{bad}");
    }
}

mod synced {
    //! What the sync learns and renews, against the platforms' stub.
    use std::time::{Duration, Instant};

    use chrono::{TimeDelta, Utc};
    use serde_json::{Value, json};
    use sigsentry_domain::Plan;
    use sigsentry_server::startup::{WorkerHandle, worker};

    use super::renewal_env;
    use crate::common::{TestApp, parts};
    use crate::stubs::Stub;

    const TOKEN: &str = "ghp_credentialsync0000000001";
    const GITLAB_TOKEN: &str = "glpat-credentialsync00000001";

    async fn app_with_worker(stub: &Stub) -> (TestApp, WorkerHandle) {
        let env = stub.env();
        let mut extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        extra.extend(renewal_env());
        let app = TestApp::spawn_with(Plan::Team, &extra).await;
        let handle = WorkerHandle::spawn(worker(&app.config, &app.services).unwrap());
        (app, handle)
    }

    async fn settled(app: &TestApp, id: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let conn = app.connection(id).await;
            if conn["sync"].as_array().unwrap().iter().all(|s| s["state"] == state) {
                return conn;
            }
            assert!(Instant::now() < deadline, "never reached {state}: {conn}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_sync_learns_when_tokens_expire_and_when_they_are_refused() {
        let stub = Stub::start();
        let expiry = Utc::now() + TimeDelta::days(3);
        {
            let mut state = stub.state.lock().unwrap();
            state.accepted = vec![TOKEN.to_owned(), GITLAB_TOKEN.to_owned()];
            state.github_token_expiration = Some(expiry.format("%Y-%m-%d %H:%M:%S UTC").to_string());
            state.gitlab_token_expires_on = Some("2099-01-01".to_owned());
        }
        let (app, worker) = app_with_worker(&stub).await;
        let github = app
            .create(&json!({"platform": "github", "credentials": {"token": TOKEN}, "repositories": ["acme/api"]}))
            .await;
        let conn = settled(&app, &github, "ready").await;
        assert_eq!(conn["credentials"]["status"], "expiring", "{conn}");
        let shown = conn["credentials"]["expiresAt"].as_str().unwrap();
        assert_eq!(shown, expiry.format("%Y-%m-%dT%H:%M:%S.000Z").to_string());

        let gitlab = app
            .create(&json!({"platform": "gitlab", "credentials": {"token": GITLAB_TOKEN}, "repositories": ["acme/platform/api"]}))
            .await;
        let conn = settled(&app, &gitlab, "ready").await;
        assert_eq!(conn["credentials"]["status"], "valid");
        assert_eq!(conn["credentials"]["expiresAt"], "2099-01-01T00:00:00.000Z");

        let revoked = app
            .create(&json!({"platform": "github", "credentials": {"token": "ghp_revokedtoken000000000001"}, "repositories": ["acme/other"]}))
            .await;
        let conn = settled(&app, &revoked, "error").await;
        assert_eq!(conn["credentials"]["status"], "rejected");
        assert_eq!(conn["sync"][0]["error"], "GitHub rejected the credentials (401)");
        let (_, listed) = parts(app.get("/v1/config/repos?credentialStatus=expiring,expired,rejected").await).await;
        let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [github.as_str(), revoked.as_str()]);
        worker.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn app_installations_sync_and_a_removed_one_is_rejected() {
        let stub = Stub::start();
        {
            let mut state = stub.state.lock().unwrap();
            state.installations = vec![77];
            // Installation tokens carry the header too: not the user's expiry.
            state.github_token_expiration = Some("2026-12-02 10:00:00 UTC".to_owned());
        }
        let (app, worker) = app_with_worker(&stub).await;
        let id = app
            .create(&json!({"platform": "github", "credentials": {"installationId": 77}, "repositories": ["acme/api"]}))
            .await;
        let conn = settled(&app, &id, "ready").await;
        assert_eq!(
            (conn["credentials"]["status"].clone(), conn["credentials"]["expiresAt"].clone()),
            (json!("valid"), Value::Null)
        );
        let removed = app
            .create(
                &json!({"platform": "github", "credentials": {"installationId": 78}, "repositories": ["acme/other"]}),
            )
            .await;
        let conn = settled(&app, &removed, "error").await;
        assert_eq!(conn["credentials"]["status"], "rejected", "{conn}");
        worker.stop().await;
        assert_eq!(stub.requests_to("/app/installations/78/access_tokens"), 1, "no retry loop");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn oauth_grants_are_renewed_by_the_sync_and_kept_sealed() {
        let stub = Stub::start();
        stub.state.lock().unwrap().oauth.live = vec!["oauth-user-refresh-000001".to_owned()];
        let (app, worker) = app_with_worker(&stub).await;
        let expires_at = (Utc::now() + TimeDelta::minutes(1)).to_rfc3339();
        let id = app
            .create(&json!({
                "platform": "gitlab",
                "credentials": {"oauth": {"accessToken": "oauth-user-access-000001", "refreshToken": "oauth-user-refresh-000001", "expiresAt": expires_at}},
                "repositories": ["acme/platform/api"],
            }))
            .await;
        let conn = settled(&app, &id, "ready").await;
        assert_eq!(conn["credentials"]["status"], "valid");
        assert_eq!(conn["credentials"]["expiresAt"], Value::Null);
        // Synced again: the renewed grant, read back from the store, still works.
        let (status, _) =
            parts(app.request(reqwest::Method::POST, &format!("/v1/config/repos/{id}/sync")).send().await.unwrap())
                .await;
        assert_eq!(status, 202);
        tokio::time::sleep(Duration::from_millis(300)).await;
        settled(&app, &id, "ready").await;
        worker.stop().await;
        let oauth = &stub.state.lock().unwrap().oauth;
        assert_eq!(oauth.spent, ["oauth-user-refresh-000001"], "refreshed once, before expiry");
        assert!(oauth.reused.is_empty());
        // The rotated refresh token is stored, sealed: not in the database file in clear.
        let dump = std::fs::read(&app.db_path).unwrap();
        let wal = std::fs::read(app.db_path.with_extension("db-wal")).unwrap_or_default();
        for bytes in [dump, wal] {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("oauth-stub-refresh-0001") && !text.contains("oauth-stub-access-0001"));
        }
    }
}
