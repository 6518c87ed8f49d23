//! The error envelope for failures the framework meets before our rules, and
//! the operational endpoints.
#![allow(clippy::unwrap_used)]

use crate::common::{TestApp, error_fields, error_parts, github, parts};
use reqwest::Method;
use serde_json::Value;

const LIST: &str = "/v1/config/repos";

#[tokio::test]
async fn an_unknown_route_is_an_enveloped_404() {
    let app = TestApp::spawn().await;
    for path in ["/v1/nope", "/", "/v1/config/repos/a/b/c", "/v2/config/repos"] {
        let (status, body) = error_parts(app.get(path).await).await;
        assert_eq!(status, 404, "{path}: {body}");
        error_fields(&body, "NOT_FOUND");
    }
    // Even without a key.
    let (status, body) = error_parts(app.anonymous(Method::GET, "/v1/nope").send().await.unwrap()).await;
    assert_eq!(status, 404);
    error_fields(&body, "NOT_FOUND");
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let id = app.create(&github(&["acme/checkout-api"])).await;
    let cases = [
        (Method::DELETE, LIST.to_owned(), ["GET", "HEAD", "POST"].as_slice()),
        (Method::PATCH, LIST.to_owned(), &["GET", "HEAD", "POST"]),
        (Method::POST, format!("{LIST}/{id}"), &["GET", "HEAD", "PUT", "DELETE"]),
        (Method::PATCH, format!("{LIST}/{id}"), &["GET", "HEAD", "PUT", "DELETE"]),
        (Method::GET, format!("{LIST}/{id}/cache"), &["DELETE"]),
        (Method::POST, "/healthz".to_owned(), &["GET", "HEAD"]),
    ];
    for (method, path, allowed) in cases {
        let response = app.request(method.clone(), &path).send().await.unwrap();
        let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
        let (status, body) = error_parts(response).await;
        assert_eq!(status, 405, "{method} {path}: {body}");
        error_fields(&body, "METHOD_NOT_ALLOWED");
        let allow = allow.unwrap_or_else(|| panic!("{method} {path}: no Allow header"));
        let mut listed: Vec<&str> = allow.split(',').map(str::trim).collect();
        listed.sort_unstable();
        let mut expected = allowed.to_vec();
        expected.sort_unstable();
        assert_eq!(listed, expected, "{method} {path}");
    }
    // HEAD answers like GET, without a body.
    let response = app.request(Method::HEAD, LIST).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap().is_empty());
    // The PATCH and POST did nothing to the connection.
    assert_eq!(app.connection(&id).await["lookbackDays"], 30);
}

#[tokio::test]
async fn malformed_and_non_object_bodies_are_400() {
    let app = TestApp::spawn().await;
    let id = app.create(&github(&["acme/checkout-api"])).await;
    let bodies = [
        "{",
        "{\"platform\": \"github\",}",
        "not json",
        "[]",
        "[{\"platform\": \"github\"}]",
        "\"a string\"",
        "42",
        "null",
        "true",
    ];
    for raw in bodies {
        for (method, path) in [(Method::POST, LIST.to_owned()), (Method::PUT, format!("{LIST}/{id}"))] {
            let response = app
                .request(method.clone(), &path)
                .header("content-type", "application/json")
                .body(raw)
                .send()
                .await
                .unwrap();
            let (status, body) = error_parts(response).await;
            assert_eq!(status, 400, "{method} {raw:?}: {body}");
            assert_eq!(error_fields(&body, "VALIDATION_ERROR"), ["/"], "{raw:?}");
        }
    }
    assert_eq!(app.all_connections().await.len(), 1);
}

#[tokio::test]
async fn an_empty_body_is_400() {
    let app = TestApp::spawn().await;
    let id = app.create(&github(&["acme/checkout-api"])).await;
    for (method, path) in [(Method::POST, LIST.to_owned()), (Method::PUT, format!("{LIST}/{id}"))] {
        // No body at all, without and with a JSON content type.
        let (status, body) = error_parts(app.request(method.clone(), &path).send().await.unwrap()).await;
        assert_eq!(status, 400, "{method}: {body}");
        error_fields(&body, "VALIDATION_ERROR");
        let response =
            app.request(method.clone(), &path).header("content-type", "application/json").body("").send().await;
        let (status, body) = error_parts(response.unwrap()).await;
        assert_eq!(status, 400, "{method}: {body}");
        error_fields(&body, "VALIDATION_ERROR");
    }
}

#[tokio::test]
async fn a_non_json_content_type_is_415() {
    let app = TestApp::spawn().await;
    let id = app.create(&github(&["acme/checkout-api"])).await;
    let json = github(&["acme/billing-worker"]).to_string();
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "application/xml", "text/json"] {
        for (method, path) in [(Method::POST, LIST.to_owned()), (Method::PUT, format!("{LIST}/{id}"))] {
            let response =
                app.request(method.clone(), &path).header("content-type", content_type).body(json.clone()).send();
            let (status, body) = error_parts(response.await.unwrap()).await;
            assert_eq!(status, 415, "{method} {content_type}: {body}");
            error_fields(&body, "UNSUPPORTED_MEDIA_TYPE");
        }
    }
    // A body with no content type at all is not JSON either.
    let (status, body) = error_parts(app.request(Method::POST, LIST).body(json.clone()).send().await.unwrap()).await;
    assert_eq!(status, 415, "{body}");
    // Parameters on the JSON type are fine.
    let response = app
        .request(Method::POST, LIST)
        .header("content-type", "application/json; charset=utf-8")
        .body(json)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(app.all_connections().await.len(), 2);
}

#[tokio::test]
async fn a_body_over_one_mib_is_413() {
    let app = TestApp::spawn().await;
    let id = app.create(&github(&["acme/checkout-api"])).await;
    // Valid JSON, one byte over the limit.
    let mut body = github(&["acme/billing-worker"]);
    let filler = "x".repeat(1024 * 1024);
    body["credentials"]["token"] = Value::String(filler);
    let raw = body.to_string();
    assert!(raw.len() > 1024 * 1024);
    for (method, path) in [(Method::POST, LIST.to_owned()), (Method::PUT, format!("{LIST}/{id}"))] {
        let response = app
            .request(method.clone(), &path)
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        let (status, body) = error_parts(response).await;
        assert_eq!(status, 413, "{method}: {body}");
        error_fields(&body, "PAYLOAD_TOO_LARGE");
    }

    // Streamed (chunked, no Content-Length): the limit holds as the body arrives.
    let (status, body) = chunked_post(&app, raw.into_bytes()).await;
    assert_eq!(status, 413, "{body}");
    error_fields(&body, "PAYLOAD_TOO_LARGE");

    // Just under the limit is read (and then judged on its content).
    let mut body = github(&["acme/billing-worker"]);
    body["credentials"]["token"] = Value::String(String::new());
    let overhead = body.to_string().len();
    body["credentials"]["token"] = Value::String("y".repeat(1024 * 1024 - overhead));
    let raw = body.to_string();
    assert_eq!(raw.len(), 1024 * 1024);
    let response =
        app.request(Method::POST, LIST).header("content-type", "application/json").body(raw).send().await.unwrap();
    let (status, body) = error_parts(response).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_fields(&body, "VALIDATION_ERROR"), ["/credentials/token"]);
    assert_eq!(app.all_connections().await.len(), 1);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz"] {
        // No key needed.
        let response = app.anonymous(Method::GET, path).send().await.unwrap();
        assert!(response.headers().contains_key("x-request-id"));
        let (status, body) = parts(response).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["success"], true);
    }
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_describes_the_api() {
    let app = TestApp::spawn().await;
    let response = app.anonymous(Method::GET, "/v1/openapi.json").send().await.unwrap();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let (status, doc) = parts(response).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    for path in ["/v1/config/repos", "/v1/config/repos/{id}", "/v1/config/repos/{id}/cache"] {
        assert!(paths.contains_key(path), "{path} missing from the document");
    }
    assert!(paths["/v1/config/repos"].get("post").is_some());
    assert!(paths["/v1/config/repos/{id}"].get("put").is_some());
}

#[tokio::test]
async fn a_client_request_id_is_echoed_and_a_bad_one_replaced() {
    let app = TestApp::spawn().await;
    let response = app.request(Method::GET, "/v1/nope").header("x-request-id", "proxy-abc.123").send().await.unwrap();
    let (_, body) = error_parts(response).await;
    assert_eq!(body["error"]["requestId"], "proxy-abc.123");
    let response =
        app.request(Method::GET, "/v1/nope").header("x-request-id", "has spaces and <html>").send().await.unwrap();
    let (_, body) = error_parts(response).await;
    assert_ne!(body["error"]["requestId"], "has spaces and <html>");
}

/// POSTs `body` with `Transfer-Encoding: chunked` over a raw socket; returns
/// the status and the parsed JSON body of the response.
async fn chunked_post(app: &TestApp, body: Vec<u8>) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = app.base.trim_start_matches("http://").to_owned();
    let key = app.key.clone();
    let text = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let head = format!(
            "POST /v1/config/repos HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        // The server may answer and stop reading before the end: ignore write errors.
        for chunk in body.chunks(64 * 1024) {
            if stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).is_err()
                || stream.write_all(chunk).is_err()
                || stream.write_all(b"\r\n").is_err()
            {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    })
    .await
    .unwrap();
    let status: u16 =
        text.split_whitespace().nth(1).unwrap_or_else(|| panic!("no status line: {text:?}")).parse().unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let json = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        // One or more chunks: keep the data lines only.
        rest.split("\r\n").filter(|line| line.starts_with('{') || line.starts_with('"')).collect::<String>()
    } else {
        rest.to_owned()
    };
    (status, serde_json::from_str(&json).unwrap_or_else(|_| panic!("not JSON: {text}")))
}
