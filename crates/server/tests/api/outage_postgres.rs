//! PostgreSQL goes away under load, for real (a TCP proxy owned by the test
//! is cut, then frozen): requests fail fast with 503, /readyz turns 503,
//! nothing hangs, service resumes by itself, and no acknowledged write is lost.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{TestApp, parts};
use serde_json::json;
use sigsentry_domain::Plan;
use sigsentry_testdb::{TcpProxy, TestDb, upstream_of};

/// The bound the pool promises is 2 s; the slack covers a loaded 2-core CI machine.
const FAIL_FAST: Duration = Duration::from_secs(4);

async fn ready(app: &TestApp) -> u16 {
    app.client.get(format!("{}/readyz", app.base)).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_is_503_fast_recovers_by_itself_and_loses_no_acknowledged_write() {
    let db = TestDb::postgres().await;
    let mut proxy = TcpProxy::start(upstream_of(db.url())).await;
    let url = proxy.url_via(db.url());
    let app = Arc::new(TestApp::spawn_with(Plan::Enterprise, &[("DATABASE_URL", url.as_str())]).await);

    // A writer that keeps creating connections and notes what was acknowledged.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let slowest_failure = Arc::new(Mutex::new(Duration::ZERO));
    let failures = Arc::new(Mutex::new(Vec::<(u16, String)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (app, acknowledged, slowest_failure, failures, stop) =
            (app.clone(), acknowledged.clone(), slowest_failure.clone(), failures.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let started = Instant::now();
                let body = json!({"platform": "github", "credentials": {"token": "ghp_outagetest00000000000001"}, "repositories": [format!("acme/r{i}")]});
                let (status, body) = parts(app.post_json(&body).await).await;
                if status == 201 {
                    acknowledged.lock().unwrap().push(body["data"]["id"].as_str().unwrap().to_owned());
                } else {
                    {
                        let mut slowest = slowest_failure.lock().unwrap();
                        *slowest = (*slowest).max(started.elapsed());
                    }
                    failures.lock().unwrap().push((status, body["error"]["code"].as_str().unwrap_or("").to_owned()));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = acknowledged.lock().unwrap().len();
    assert!(before > 0, "writes go through before the outage");

    // The server is gone: connections cut, port closed.
    proxy.stop().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = Instant::now();
    assert_eq!(ready(&app).await, 503, "/readyz reports the outage");
    assert!(started.elapsed() < FAIL_FAST);
    let (status, body) = parts(app.get("/v1/config/repos").await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("SERVICE_UNAVAILABLE")), "{body}");

    // Back on the same port: service resumes without a restart.
    proxy.restart().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while ready(&app).await != 200 {
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after_recovery = acknowledged.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(acknowledged.lock().unwrap().len() > after_recovery, "writes go through again");

    // The server hangs (sockets open, no answers): still no hang for clients.
    proxy.freeze(true);
    let started = Instant::now();
    let (status, _) = parts(app.get("/v1/config/repos").await).await;
    assert_eq!(status, 503);
    assert!(started.elapsed() < FAIL_FAST, "a hung database answered in {:?}", started.elapsed());
    proxy.freeze(false);

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ready(&app).await != 200 {
        assert!(Instant::now() < deadline, "did not recover after the freeze");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let failures = failures.lock().unwrap().clone();
    assert!(!failures.is_empty(), "the outage was felt by the writer");
    assert!(failures.iter().all(|(s, code)| *s == 503 && code == "SERVICE_UNAVAILABLE"), "{failures:?}");
    let slowest = *slowest_failure.lock().unwrap();
    assert!(slowest < FAIL_FAST, "a failing request took {slowest:?}");
    // Every acknowledged creation is there.
    let ids = acknowledged.lock().unwrap().clone();
    for id in &ids {
        let (status, _) = parts(app.get(&format!("/v1/config/repos/{id}")).await).await;
        assert_eq!(status, 200, "acknowledged connection {id} was lost");
    }
    eprintln!("outage: {} acknowledged writes kept, {} failed fast (slowest {slowest:?})", ids.len(), failures.len());
}
