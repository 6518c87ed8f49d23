//! The `sigsentry` binary as an operator and an acceptance suite drive it.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_sigsentry");

fn sigsentry(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("SIGSENTRY_MASTER_KEY")
        .env_remove("SIGSENTRY_MASTER_KEYS")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn json_of(output: &Output) -> Value {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(stdout.trim().lines().count(), 1, "one JSON object on stdout: {stdout}");
    serde_json::from_str(stdout.trim()).unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &TempDir) -> (Server, Vec<String>) {
        let port = free_port();
        let mut child = Command::new(BIN)
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("SIGSENTRY_MASTER_KEY")
            .env_remove("SIGSENTRY_MASTER_KEYS")
            .env("SIGSENTRY_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        let printed = lines.lock().unwrap().clone();
        (server, printed)
    }

    fn get(&self, path: &str, key: &str) -> u16 {
        http1::get_status(self.port, path, key)
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A tiny blocking HTTP/1.1 GET, to keep this test free of an async runtime.
mod http1 {
    use std::io::{Read, Write};

    pub fn get_status(port: u16, path: &str, key: &str) -> u16 {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

#[test]
fn tenant_project_key_commands_print_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = json_of(&sigsentry(&dir, &["tenant", "create", "--name", "Acme", "--plan", "business", "--json"]));
    let tenant_id = tenant["id"].as_str().unwrap().to_owned();
    let project = json_of(&sigsentry(&dir, &["project", "create", "--tenant", &tenant_id, "--name", "shop", "--json"]));
    let project_id = project["id"].as_str().unwrap().to_owned();
    let key = json_of(&sigsentry(
        &dir,
        &[
            "key",
            "create",
            "--tenant",
            &tenant_id,
            "--project",
            &project_id,
            "--permissions",
            "config:read,config:write",
            "--json",
        ],
    ));
    let secret = key["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ss_secret_") && secret.len() >= 42, "{secret}");
    let tenant_key =
        json_of(&sigsentry(&dir, &["key", "create", "--tenant", &tenant_id, "--permissions", "config:read", "--json"]));

    let (server, printed) = Server::start(&dir);
    assert!(printed.iter().all(|l| !l.contains("ss_secret_")), "no first-run key once a tenant exists");
    assert_eq!(server.get("/v1/config/repos", &secret), 200);
    assert_eq!(
        server.get("/v1/config/repos?platform=github", tenant_key["key"].as_str().unwrap()),
        400,
        "tenant key needs X-Project-Id"
    );
    let revoked = json_of(&sigsentry(&dir, &["key", "revoke", key["id"].as_str().unwrap(), "--json"]));
    assert_eq!(revoked["revoked"], true);
    assert_eq!(server.get("/v1/config/repos", &secret), 401);
    assert!(server.terminate().success(), "SIGTERM is a clean shutdown");
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["tenant", "create", "--name", "x", "--plan", "gold"], "--plan"),
        (vec!["project", "create", "--tenant", "nope", "--name", "x"], "--tenant"),
        (vec!["project", "create", "--tenant", "01a2a000-0000-7000-8000-000000000000", "--name", "x"], "no tenant"),
        (
            vec!["key", "create", "--tenant", "01a2a000-0000-7000-8000-000000000000", "--permissions", "root"],
            "--permissions",
        ),
        (vec!["key", "revoke", "01a2a000-0000-7000-8000-000000000000"], "no API key"),
    ] {
        let output = sigsentry(&dir, &args);
        assert!(!output.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn first_run_prints_a_working_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let (server, printed) = Server::start(&dir);
    let text = printed.join("\n");
    let key = text.split_whitespace().find(|w| w.starts_with("ss_secret_")).unwrap().trim_matches('\'').to_owned();
    assert!(text.contains("curl"), "{text}");
    assert_eq!(server.get("/v1/config/repos", &key), 200);
    assert!(server.terminate().success());
    let key_file = dir.path().join("data/master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let (server, printed) = Server::start(&dir);
    assert!(printed.iter().all(|l| !l.contains("ss_secret_")), "the key is printed only on the first run");
    assert_eq!(server.get("/v1/config/repos", &key), 200, "same master key and store after restart");
    assert!(server.terminate().success());
}

#[test]
fn migrate_applies_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let output = sigsentry(&dir, &["migrate"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    assert!(dir.path().join("data/sigsentry.db").exists());
}

#[test]
fn postgres_without_a_master_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        .env_remove("SIGSENTRY_MASTER_KEY")
        .env_remove("SIGSENTRY_MASTER_KEYS")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SIGSENTRY_MASTER_KEY"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "no key file is generated for a server store");
}
