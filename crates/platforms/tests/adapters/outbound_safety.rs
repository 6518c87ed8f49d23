//! The outbound rules: user-supplied hosts checked at connect time,
//! redirects and next-page links kept on the host, credentials sent nowhere
//! else, timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::*;
use serde_json::json;
use sigsentry_domain::Platform;
use sigsentry_platforms::PlatformClients;
use sigsentry_ports::{PlatformError, PlatformSession};

fn ok_user() -> Stub {
    Stub::start(|_, _| Reply::json(200, json!({"login": "octocat", "id": 1})))
}

#[actix_web::test]
async fn a_base_url_resolving_to_loopback_needs_allow_private() {
    let stub = ok_user();
    let base = format!("http://localhost:{}/api/v3", stub.port);

    let strict = PlatformClients::new(config("http://127.0.0.1:9", false)).unwrap();
    let error = session(&strict, github(Some(&base))).await.verify().await.unwrap_err();
    assert!(matches!(&error, PlatformError::AddressRefused { host, .. } if host == "localhost"), "{error:?}");
    let error =
        session(&strict, gitlab(Some(&format!("http://localhost:{}", stub.port)))).await.verify().await.unwrap_err();
    assert!(matches!(error, PlatformError::AddressRefused { .. }), "{error:?}");
    assert!(stub.seen().is_empty(), "nothing reached the host");

    let lax = PlatformClients::new(config("http://127.0.0.1:9", true)).unwrap();
    session(&lax, github(Some(&base))).await.verify().await.unwrap();
    assert_eq!(stub.seen_at("/api/v3/user").len(), 1);
}

#[actix_web::test]
async fn a_literal_loopback_base_url_is_checked_before_sending() {
    let stub = ok_user();
    let strict = PlatformClients::new(config("http://127.0.0.1:9", false)).unwrap();
    let error = session(&strict, gitlab(Some(&stub.url))).await.verify().await.unwrap_err();
    assert!(matches!(&error, PlatformError::AddressRefused { host, .. } if host == "127.0.0.1"), "{error:?}");
    let error = session(&strict, github(Some(&stub.url))).await.verify().await.unwrap_err();
    assert!(matches!(error, PlatformError::AddressRefused { .. }), "{error:?}");
    assert!(stub.seen().is_empty());
}

#[actix_web::test]
async fn the_configured_cloud_roots_are_trusted() {
    let stub = ok_user();
    // Strict policy, yet the operator's own root on 127.0.0.1 is used.
    session(&clients(&stub.url), github(None)).await.verify().await.unwrap();
    assert_eq!(stub.seen().len(), 1);
}

#[actix_web::test]
async fn a_redirect_to_another_host_is_not_followed() {
    let other = Stub::start(|_, _| Reply::json(200, json!({"stolen": true})));
    let elsewhere = format!("http://localhost:{}/collect", other.port);
    let target = elsewhere.clone();
    let stub = Stub::start(move |_, _| Reply::text(302, "").header("location", target.clone()));
    let clients = clients(&stub.url);

    let error = session(&clients, bitbucket()).await.verify().await.unwrap_err();
    assert!(matches!(error, PlatformError::Unexpected { platform: "Bitbucket", .. }), "{error:?}");
    let error = session(&clients, github(None)).await.verify().await.unwrap_err();
    assert!(matches!(error, PlatformError::Unexpected { platform: "GitHub", .. }), "{error:?}");
    let error = session(&clients, gitlab(None)).await.verify().await.unwrap_err();
    assert!(matches!(error, PlatformError::Unexpected { platform: "GitLab", .. }), "{error:?}");
    assert_eq!(stub.seen().len(), 3);
    assert!(other.seen().is_empty(), "the other host never saw a request, let alone credentials");
}

#[actix_web::test]
async fn a_next_page_link_to_another_host_is_not_followed() {
    let other = Stub::start(|_, _| Reply::json(200, json!([])));
    let elsewhere = format!("http://localhost:{}/repos/acme/api/pulls?page=2", other.port);
    let now = rfc3339(hours_ago(1));
    let stub = Stub::start(move |seen, _| match seen.path.as_str() {
        "/repos/acme/api/pulls" => {
            Reply::json(200, json!([{"number": 1, "title": "t", "html_url": "h", "updated_at": now, "merged_at": now}]))
                .header("link", format!(r#"<{elsewhere}>; rel="next""#))
        }
        _ => Reply::json(200, json!([])),
    });
    let window = sigsentry_ports::PullRequestWindow { merged_since: days_ago(1), updated_since: None };
    let error = session(&clients(&stub.url), github(None))
        .await
        .merged_pull_requests(&repo(Platform::GitHub, "acme/api"), window)
        .await
        .unwrap_err();
    assert!(matches!(error, PlatformError::Unexpected { platform: "GitHub", .. }), "{error:?}");
    assert!(other.seen().is_empty());
}

#[actix_web::test]
async fn a_slow_host_times_out_and_is_unavailable() {
    let stub = Stub::start(|_, _| Reply::json(200, json!({})).after(Duration::from_millis(1500)));
    let mut config = config(&stub.url, false);
    config.request_timeout = Duration::from_millis(200);
    config.retry.attempts = 1;
    let clients = PlatformClients::new(config).unwrap();
    let error = session(&clients, gitlab(None)).await.verify().await.unwrap_err();
    assert!(matches!(error, PlatformError::Unavailable { platform: "GitLab", .. }), "{error:?}");
    let error = session(&clients, github(None)).await.verify().await.unwrap_err();
    assert!(matches!(error, PlatformError::Unavailable { platform: "GitHub", .. }), "{error:?}");
}

#[actix_web::test]
async fn a_closed_port_is_retried_then_unavailable() {
    // Bind and drop to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let clients = clients(&format!("http://127.0.0.1:{port}"));
    let error = session(&clients, bitbucket()).await.verify().await.unwrap_err();
    match error {
        PlatformError::Unavailable { platform: "Bitbucket", detail } => assert!(detail.contains("3 tries"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[actix_web::test]
async fn secrets_stay_out_of_debug_output() {
    let clients = clients("http://127.0.0.1:9");
    let sessions = [
        session(&clients, github(None)).await,
        session(&clients, gitlab(None)).await,
        session(&clients, bitbucket()).await,
    ];
    let printed = format!("{clients:?} {sessions:?} {:?} {:?} {:?}", github(None), gitlab(None), bitbucket());
    for secret in [GITHUB_TOKEN, GITLAB_TOKEN, BITBUCKET_PASSWORD] {
        assert!(!printed.contains(secret), "{secret} leaked");
    }
}

#[actix_web::test]
async fn opening_a_session_sends_nothing() {
    let stub = ok_user();
    let clients = clients(&stub.url);
    for credentials in [github(None), gitlab(None), bitbucket(), github(Some(&stub.url))] {
        session(&clients, credentials).await;
    }
    assert!(stub.seen().is_empty());
}
