//! Several real server processes on one database, driven concurrently.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_sigsentry");
/// A fixed master key shared by the processes (base64 of 32 bytes of 0x07).
pub const SHARED_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

pub struct Store {
    pub url: String,
    pub master_key: Option<String>,
}

pub struct Cluster {
    pub bases: Vec<String>,
    pub key: String,
    children: Vec<Child>,
    client: reqwest::Client,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn command(store: &Store, dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env("DATABASE_URL", &store.url)
        .env("SIGSENTRY_MASTER_KEY", store.master_key.as_deref().unwrap_or(SHARED_KEY))
        .env("SIGSENTRY_DATA_DIR", dir)
        .env("RUST_LOG", "warn")
        .env_remove("SIGSENTRY_MASTER_KEYS");
    cmd
}

fn cli_json(store: &Store, dir: &Path, args: &[&str]) -> Value {
    let output = command(store, dir).args(args).arg("--json").output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Cluster {
    /// A free-plan tenant (quota 5), a project, a key, and two servers.
    pub async fn start(store: Store, dir: &Path) -> Cluster {
        Self::start_with(store, dir, 2, "free", &[]).await
    }

    /// A tenant on `plan`, a project, a key, and `servers` servers, each with `env` added to its environment.
    pub async fn start_with(store: Store, dir: &Path, servers: usize, plan: &str, env: &[(&str, &str)]) -> Cluster {
        let tenant = cli_json(&store, dir, &["tenant", "create", "--name", "acme", "--plan", plan]);
        let tenant = tenant["id"].as_str().unwrap();
        let project = cli_json(&store, dir, &["project", "create", "--tenant", tenant, "--name", "p"]);
        let project = project["id"].as_str().unwrap();
        let key = cli_json(
            &store,
            dir,
            &["key", "create", "--tenant", tenant, "--project", project, "--permissions", "config:write"],
        );
        let mut children = Vec::new();
        let mut bases = Vec::new();
        for _ in 0..servers {
            let port = free_port();
            let child = command(&store, dir)
                .envs(env.iter().copied())
                .arg("serve")
                .env("SIGSENTRY_LISTEN", format!("127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            children.push(child);
            bases.push(format!("http://127.0.0.1:{port}"));
        }
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        for base in &bases {
            while client.get(format!("{base}/readyz")).send().await.map(|r| r.status() != 200).unwrap_or(true) {
                assert!(Instant::now() < deadline, "{base} did not become ready");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Cluster { bases, key: key["key"].as_str().unwrap().to_owned(), children, client }
    }

    /// Server `i`'s process id.
    pub fn pid(&self, i: usize) -> u32 {
        self.children[i].id()
    }

    /// Server `i`'s peak resident set so far (`VmHWM`), in KiB (Linux).
    pub fn peak_rss_kib(&self, i: usize) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid(i))).unwrap();
        let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// A request to server `i` with the tenant's key.
    pub fn request(&self, i: usize, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.bases[i])).bearer_auth(&self.key)
    }

    /// `method path` on process `i`, with the cluster's key.
    pub async fn send(&self, i: usize, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request =
            self.client.request(method, format!("{}{path}", self.bases[i % self.bases.len()])).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, i: usize, body: Value, idempotency_key: Option<&str>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/v1/config/repos", self.bases[i % self.bases.len()]))
            .bearer_auth(&self.key)
            .json(&body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn repositories(&self) -> Vec<String> {
        let (_, body) = self.send(0, reqwest::Method::GET, "/v1/config/repos?limit=100", None).await;
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["repositories"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()))
            .collect()
    }

    async fn delete_all(&self) {
        let (_, body) = self.send(0, reqwest::Method::GET, "/v1/config/repos?limit=100", None).await;
        for c in body["data"].as_array().unwrap() {
            let id = c["id"].as_str().unwrap();
            let (status, _) = self.send(1, reqwest::Method::DELETE, &format!("/v1/config/repos/{id}"), None).await;
            assert_eq!(status, 200);
        }
    }

    /// The three invariants, each under concurrent requests spread over both processes.
    pub async fn assert_invariants(&self) {
        // 1. Quota: 20 parallel creations against a quota of 5.
        let results = join_all((0..20).map(|i| {
            self.post(i, json!({"platform": "github", "credentials": {"token": "ghp_multiprocess0000000001"}, "repositories": [format!("acme/q{i}")]}), None)
        }))
        .await;
        let created = results.iter().filter(|(s, _)| *s == 201).count();
        let refused = results.iter().filter(|(s, b)| *s == 403 && b["error"]["code"] == "QUOTA_EXCEEDED").count();
        assert_eq!((created, refused), (5, 15), "{results:?}");
        assert_eq!(self.repositories().await.len(), 5);
        self.delete_all().await;

        // 2. One creation per idempotency key, whichever process answers.
        let body = json!({"platform": "github", "credentials": {"token": "ghp_multiprocess0000000001"}, "repositories": ["acme/idem"]});
        let results = join_all((0..10).map(|i| self.post(i, body.clone(), Some("same-key")))).await;
        let ids: Vec<&str> =
            results.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b["data"]["id"].as_str().unwrap()).collect();
        assert!(!ids.is_empty(), "{results:?}");
        assert!(ids.iter().all(|id| *id == ids[0]), "one connection for one key: {ids:?}");
        assert!(
            results.iter().all(|(s, b)| *s == 201 || (*s == 409 && b["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE")),
            "{results:?}"
        );
        assert_eq!(self.repositories().await, ["acme/idem"]);
        self.delete_all().await;

        // 3. A repository is attached once per project.
        let results = join_all((0..10).map(|i| {
            self.post(i, json!({"platform": "github", "credentials": {"token": "ghp_multiprocess0000000001"}, "repositories": ["acme/one", format!("acme/other{i}")]}), None)
        }))
        .await;
        assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1, "{results:?}");
        assert!(
            results.iter().all(|(s, b)| *s == 201 || (*s == 409 && b["error"]["code"] == "CONFLICT")),
            "{results:?}"
        );
        let repos = self.repositories().await;
        assert_eq!(repos.iter().filter(|r| *r == "acme/one").count(), 1);
    }
}
