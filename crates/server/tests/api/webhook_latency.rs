//! The figure of docs/performance.md "Webhook to cache": the real server
//! binary (`sigsentry serve`, its sync worker inside) against the GitHub
//! stub, on SQLite and on PostgreSQL. Each round merges a PR on the stub,
//! sends GitHub's signed `pull_request` delivery, and times how long until
//! the PR is listed by `GET /v1/config/repos/{id}/pull-requests`. The
//! times are printed (`cargo test -p sigsentry-server --test api
//! webhook_latency -- --nocapture`), never asserted: only that the PR arrives.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use sigsentry_testdb::TestDb;

use crate::stubs::{Stub, StubPr};
use crate::webhooks::{github_merged, sign};

const BIN: &str = env!("CARGO_BIN_EXE_sigsentry");
const MASTER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const TOKEN: &str = "ghp_webhooklatency0000000001";
const ROUNDS: u64 = 8;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn command(database_url: &str, dir: &Path, stub: &Stub) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("SIGSENTRY_MASTER_KEY", MASTER_KEY)
        .env("SIGSENTRY_DATA_DIR", dir)
        .env("RUST_LOG", "warn")
        .env_remove("SIGSENTRY_MASTER_KEYS");
    for (name, value) in stub.env() {
        cmd.env(name, value);
    }
    cmd
}

fn cli(database_url: &str, dir: &Path, stub: &Stub, args: &[&str]) -> Value {
    let output = command(database_url, dir, stub).args(args).arg("--json").output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn measure(database_url: &str, store: &str) {
    let stub = Stub::start();
    stub.state.lock().unwrap().accepted = vec![TOKEN.to_owned()];
    let dir = tempfile::tempdir().unwrap();
    let tenant = cli(database_url, dir.path(), &stub, &["tenant", "create", "--name", "acme", "--plan", "team"]);
    let project = cli(
        database_url,
        dir.path(),
        &stub,
        &["project", "create", "--tenant", tenant["id"].as_str().unwrap(), "--name", "p"],
    );
    let key = cli(
        database_url,
        dir.path(),
        &stub,
        &[
            "key",
            "create",
            "--tenant",
            tenant["id"].as_str().unwrap(),
            "--project",
            project["id"].as_str().unwrap(),
            "--permissions",
            "config:write",
        ],
    );
    let key = key["key"].as_str().unwrap().to_owned();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Server(
        command(database_url, dir.path(), &stub)
            .arg("serve")
            .env("SIGSENTRY_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/readyz")).send().await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let created: Value = client
        .post(format!("{base}/v1/config/repos"))
        .bearer_auth(&key)
        .json(&json!({"platform": "github", "credentials": {"token": TOKEN}, "repositories": ["acme/api"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let secret = created["data"]["webhook"]["secret"].as_str().unwrap().to_owned();
    let numbers = || {
        let (client, base, key, id) = (&client, &base, &key, &id);
        async move {
            let body: Value = client
                .get(format!("{base}/v1/config/repos/{id}/pull-requests"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["data"].as_array().unwrap().iter().map(|p| p["number"].as_u64().unwrap()).collect::<Vec<u64>>()
        }
    };
    let state = || {
        let (client, base, key, id) = (&client, &base, &key, &id);
        async move {
            let body: Value = client
                .get(format!("{base}/v1/config/repos/{id}"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["data"]["sync"][0]["state"].as_str().unwrap().to_owned()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while state().await != "ready" {
        assert!(Instant::now() < deadline, "the first sync never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut times = Vec::new();
    for round in 1..=ROUNDS {
        let number = 100 + round;
        stub.state.lock().unwrap().prs.push(StubPr {
            number,
            title: format!("Merged in round {round}"),
            merged_at: Utc::now(),
            files: vec!["src/main.rs".into()],
        });
        let body = github_merged("acme/api", number);
        let started = Instant::now();
        let response = client
            .post(format!("{base}/v1/hooks/{id}"))
            .header("Content-Type", "application/json")
            .header("X-GitHub-Event", "pull_request")
            .header("X-GitHub-Delivery", format!("latency-{round}"))
            .header("X-Hub-Signature-256", sign(&secret, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let deadline = started + Duration::from_secs(30);
        while !numbers().await.contains(&number) {
            assert!(Instant::now() < deadline, "PR {number} never reached the cache");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        times.push(started.elapsed());
        // The next round starts from an idle worker, as a merge usually finds
        // it, at another point of its one-second poll: the rounds spread over it.
        while state().await != "ready" {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(300 + (round * 370) % 1000)).await;
    }
    let shown: Vec<String> = times.iter().map(|t| format!("{} ms", t.as_millis())).collect();
    let mut sorted = times.clone();
    sorted.sort();
    println!(
        "webhook to /pull-requests on {store}: {} (median {} ms, max {} ms)",
        shown.join(", "),
        sorted[sorted.len() / 2].as_millis(),
        sorted[sorted.len() - 1].as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_latency_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("latency.db").display());
    measure(&url, "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_latency_on_postgres() {
    let db = TestDb::postgres().await;
    measure(db.url(), "PostgreSQL").await;
}
