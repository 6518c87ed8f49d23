//! What a platform answers is not echoed to users: errors are our own
//! sentences; the platform's `message` is quoted only when it is short and
//! printable; a body that did not parse is never quoted.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use serde_json::json;
use sigsentry_domain::Platform;
use sigsentry_ports::PlatformSession;

async fn repository_error(reply: impl Fn() -> Reply + Send + Sync + 'static) -> String {
    let stub = Stub::start(move |_, _| reply());
    let error = session(&clients(&stub.url), github(None))
        .await
        .repository(&repo(Platform::GitHub, "acme/api"))
        .await
        .unwrap_err();
    error.to_string()
}

#[actix_web::test]
async fn a_body_that_does_not_parse_is_never_quoted() {
    let huge = format!(r#"{{"default_branch": "main", "private": "{}"}}"#, "A".repeat(20_000));
    let error = repository_error(move || Reply::text(200, &huge)).await;
    assert!(!error.contains("AAAA"), "{error}");
    assert!(error.len() < 200, "{error}");
    assert!(error.starts_with("GitHub sent an unexpected response: its answer was"), "{error}");

    let error = repository_error(|| Reply::text(200, "<html>I am a teapot</html>")).await;
    assert!(!error.contains("teapot"), "{error}");
}

#[actix_web::test]
async fn a_status_we_do_not_expect_is_named_not_its_body() {
    let error = repository_error(|| Reply::text(418, "I'm a teapot, short and stout, here is my handle")).await;
    assert_eq!(error, "GitHub sent an unexpected response: HTTP 418");
    let error = repository_error(|| Reply::json(418, json!({"message": "I'm a teapot"}))).await;
    assert_eq!(error, "GitHub sent an unexpected response: HTTP 418: I'm a teapot", "short and printable: quoted");
}

#[actix_web::test]
async fn long_or_unprintable_messages_are_left_out() {
    let error = repository_error(|| Reply::json(418, json!({"message": "x".repeat(201)}))).await;
    assert_eq!(error, "GitHub sent an unexpected response: HTTP 418");
    let forged = "denied\n2026-11-30T00:00:00Z  INFO repository synced connection_id=forged";
    let error = repository_error(move || Reply::json(403, json!({"message": forged}))).await;
    assert!(!error.contains('\n') && !error.contains("forged"), "{error}");
    let error = repository_error(|| Reply::json(403, json!({"message": "fine\u{202e}txt.exe"}))).await;
    assert!(!error.contains("exe"), "{error}");
}
