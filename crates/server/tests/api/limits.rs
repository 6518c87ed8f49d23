//! What protects the process from one client: a request rate per API key,
//! and a deadline for a request body.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::{TestApp, parts};
use reqwest::Method;
use serde_json::Value;
use sigsentry_domain::{Permission, Plan};

#[tokio::test]
async fn a_key_past_its_rate_gets_429_with_when_to_retry() {
    let app = TestApp::spawn_with(Plan::Team, &[("SIGSENTRY_RATE_LIMIT", "5")]).await;
    for i in 0..5 {
        let response = app.get("/v1/config/repos").await;
        assert_eq!(response.status(), 200, "request {i}");
        assert_eq!(response.headers()["ratelimit-limit"], "5");
        assert_eq!(response.headers()["ratelimit-remaining"].to_str().unwrap(), (4 - i).to_string());
    }
    let response = app.get("/v1/config/repos").await;
    let headers = response.headers().clone();
    let (status, body) = parts(response).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry), "retry after {retry} s");
    assert_eq!(headers["ratelimit-remaining"], "0");

    // Another key of the same tenant has its own budget.
    let other = app.key_with(Some(app.project_id), &[Permission::ConfigRead]).await;
    let response = app.request_as(&other, Method::GET, "/v1/config/repos").send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_trickled_body_is_cut_off_at_the_deadline() {
    let app = TestApp::spawn_with(Plan::Team, &[("SIGSENTRY_BODY_TIMEOUT_SECS", "1")]).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let key = app.key.clone();
    let (answer, bytes_sent) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "POST /v1/config/repos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        // One byte every 200 ms: the 200-byte body would take 40 s.
        let mut sent = 0;
        stream.set_nonblocking(true).unwrap();
        let mut answer = Vec::new();
        for _ in 0..200 {
            let mut buf = [0u8; 4096];
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    break;
                }
                Err(_) => {}
            }
            if stream.write_all(b" ").is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
        stream.set_nonblocking(false).unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        answer.extend(rest);
        (String::from_utf8_lossy(&answer).into_owned(), sent)
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(bytes_sent < 200, "the server waited for the whole trickled body");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or("{}")).unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], "REQUEST_TIMEOUT", "{answer}");
}
