//! The database row does not decide where a token goes: the sealed
//! credentials bind the platform, the credential kind and the baseUrl, so a
//! row changed in the table fails its own sync, in our words, before any
//! request, while the other connections sync on. And a server refuses to
//! start with a keyring that cannot open the stored credentials. On both stores.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestApp, parts};
use crate::processes::{Cluster, SHARED_KEY, Store};
use crate::stubs::hostile::{Behaviour, Hostile};
use crate::stubs::{Stub, StubPr};
use chrono::{TimeDelta, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use sigsentry_domain::Plan;
use sigsentry_server::startup::{WorkerHandle, worker};
use sigsentry_testdb::TestDb;

const TOKEN: &str = "ghp_boundtoken00000000000001";
const GITLAB_TOKEN: &str = "glpat-boundtoken000000001";

async fn wait_for(app: &TestApp, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let conn = app.connection(id).await;
        if conn["sync"].as_array().unwrap().iter().all(|s| s["state"] == state) {
            return conn;
        }
        assert!(Instant::now() < deadline, "never reached {state}: {conn}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_changed_base_url_sends_nothing(db: &TestDb) {
    let stub = Stub::start();
    {
        let mut state = stub.state.lock().unwrap();
        state.accepted = vec![TOKEN.to_owned(), GITLAB_TOKEN.to_owned()];
        state.tree = vec!["src/main.rs".to_owned()];
        state.prs = vec![StubPr {
            number: 1,
            title: "Fix".into(),
            merged_at: Utc::now() - TimeDelta::days(1),
            files: vec!["src/main.rs".into()],
        }];
    }
    let elsewhere = Hostile::start(Behaviour::endless(Duration::ZERO));
    let env = stub.env();
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("DATABASE_URL", db.url()));
    vars.push(("SIGSENTRY_ALLOW_PRIVATE_BASE_URLS", "true"));
    let app = TestApp::spawn_with(Plan::Team, &vars).await;
    let worker = WorkerHandle::spawn(worker(&app.config, &app.services).unwrap());
    let id =
        app.create(&json!({"platform": "github", "credentials": {"token": TOKEN}, "repositories": ["acme/api"]})).await;
    wait_for(&app, &id, "ready").await;

    // Someone with the database, not the API, points the row elsewhere.
    sigsentry_testdb::execute(
        db.url(),
        &format!("UPDATE repo_connections SET base_url = '{}' WHERE id = '{id}'", elsewhere.base),
    )
    .await;
    let asked_before = stub.state.lock().unwrap().seen.len();
    let (status, _) =
        parts(app.request(Method::POST, &format!("/v1/config/repos/{id}/sync")).send().await.unwrap()).await;
    assert_eq!(status, 202);
    let conn = wait_for(&app, &id, "error").await;
    let error = conn["sync"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("the stored credentials do not match this connection"), "{error}");
    assert!(elsewhere.seen.lock().unwrap().is_empty(), "the new host saw nothing");
    assert_eq!(stub.state.lock().unwrap().seen.len(), asked_before, "nor did the old one");

    // That row fails its own sync only: another connection syncs.
    let other = app
        .create(&json!({"platform": "gitlab", "credentials": {"token": GITLAB_TOKEN}, "repositories": ["acme/platform/api"]}))
        .await;
    wait_for(&app, &other, "ready").await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_changed_base_url_sends_nothing_on_sqlite() {
    a_changed_base_url_sends_nothing(&TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_changed_base_url_sends_nothing_on_postgres() {
    a_changed_base_url_sends_nothing(&TestDb::postgres().await).await;
}

/// A server started with another master key than the stored credentials'
/// exits at once, saying why.
async fn a_wrong_master_key_refuses_to_start(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store { url: db.url().to_owned(), master_key: None };
    let cluster = Cluster::start_with(store, dir.path(), 1, "free", &[]).await;
    let body = json!({"platform": "github", "credentials": {"token": TOKEN}, "repositories": ["acme/api"]});
    let (status, body) =
        parts(cluster.request(0, Method::POST, "/v1/config/repos").json(&body).send().await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
    drop(cluster);

    let wrong = "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nMDA=";
    assert_ne!(wrong, SHARED_KEY);
    let mut child = Command::new(env!("CARGO_BIN_EXE_sigsentry"))
        .arg("serve")
        .current_dir(dir.path())
        .env("DATABASE_URL", db.url())
        .env("SIGSENTRY_MASTER_KEY", wrong)
        .env_remove("SIGSENTRY_MASTER_KEYS")
        .env("SIGSENTRY_DATA_DIR", dir.path())
        .env("SIGSENTRY_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started with a wrong master key");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(stderr.contains("SIGSENTRY_MASTER_KEYS"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_master_key_refuses_to_start_on_sqlite() {
    a_wrong_master_key_refuses_to_start(&TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_master_key_refuses_to_start_on_postgres() {
    a_wrong_master_key_refuses_to_start(&TestDb::postgres().await).await;
}
