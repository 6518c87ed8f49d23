//! GitLab against a stub that speaks its REST v4 API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{TimeDelta, Utc};
use common::*;
use serde_json::json;
use sigsentry_domain::Platform;
use sigsentry_ports::{PlatformError, PlatformSession, PullRequestWindow};

const PROJECT: &str = "/api/v4/projects/acme%2Fplatform%2Fcheckout-api";

fn merge_request(iid: u64, updated_at: &str, merged_at: Option<&str>) -> serde_json::Value {
    json!({
        "id": 1000 + iid,
        "iid": iid,
        "title": format!("MR {iid}"),
        "state": "merged",
        "web_url": format!("https://gitlab.example.com/acme/platform/checkout-api/-/merge_requests/{iid}"),
        "author": {"username": "dev"},
        "updated_at": updated_at,
        "merged_at": merged_at,
        "merge_commit_sha": null,
        "squash_commit_sha": format!("squash{iid}"),
    })
}

#[actix_web::test]
async fn verify_sends_the_private_token() {
    let stub = Stub::start(|seen, _| match seen.path.as_str() {
        "/api/v4/user" => Reply::json(200, json!({"id": 1, "username": "dev"})),
        _ => Reply::json(404, json!({"message": "404 Not Found"})),
    });
    session(&clients(&stub.url), gitlab(None)).await.verify().await.unwrap();
    let seen = &stub.seen_at("/api/v4/user")[0];
    assert_eq!(seen.header("private-token"), Some(GITLAB_TOKEN));
    assert_eq!(seen.header("user-agent"), Some("sigsentry-tests/1"));
}

#[actix_web::test]
async fn a_bad_token_is_rejected() {
    let stub = Stub::start(|_, _| Reply::json(401, json!({"message": "401 Unauthorized"})));
    let error = session(&clients(&stub.url), gitlab(None)).await.verify().await.unwrap_err();
    assert_eq!(error, PlatformError::CredentialsRejected { platform: "GitLab", status: 401 });
}

#[actix_web::test]
async fn project_path_is_sent_encoded_as_one_segment() {
    let stub = Stub::start(|seen, _| match seen.path.as_str() {
        PROJECT => Reply::json(200, json!({"id": 7, "default_branch": "main", "visibility": "private"})),
        _ => Reply::json(404, json!({"message": "404 Project Not Found"})),
    });
    let session = session(&clients(&stub.url), gitlab(None)).await;
    let info = session.repository(&repo(Platform::GitLab, "acme/platform/checkout-api")).await.unwrap();
    assert_eq!(info.default_branch.as_deref(), Some("main"));
    assert!(info.private);
    assert_eq!(stub.seen_at(PROJECT).len(), 1, "{:?}", stub.seen());

    let error = session.repository(&repo(Platform::GitLab, "acme/gone")).await.unwrap_err();
    assert!(matches!(error, PlatformError::RepositoryNotFound { platform: "GitLab", .. }), "{error:?}");
}

#[actix_web::test]
async fn a_403_is_a_missing_scope() {
    let stub = Stub::start(|_, _| Reply::json(403, json!({"error": "insufficient_scope"})));
    let error = session(&clients(&stub.url), gitlab(None)).await.verify().await.unwrap_err();
    assert_eq!(error, PlatformError::PermissionMissing { platform: "GitLab", detail: "insufficient_scope".into() });
}

#[actix_web::test]
async fn merged_merge_requests_follow_x_next_page() {
    let (recent, older, outside) = (rfc3339(days_ago(1)), rfc3339(days_ago(4)), rfc3339(days_ago(20)));
    let stub = Stub::start(move |seen, _| {
        let list = format!("{PROJECT}/merge_requests");
        let diffs3 = format!("{PROJECT}/merge_requests/3/diffs");
        let diffs2 = format!("{PROJECT}/merge_requests/2/diffs");
        let page = seen.param("page");
        if seen.path == list {
            match page.as_deref() {
                None => Reply::json(200, json!([merge_request(3, &recent, Some(&recent))]))
                    .header("x-next-page", "2")
                    .header("x-page", "1"),
                Some("2") => Reply::json(
                    200,
                    json!([
                        merge_request(2, &older, Some(&older)),
                        // Updated in the window, merged before it: left out.
                        merge_request(1, &older, Some(&outside)),
                    ]),
                )
                .header("x-next-page", "")
                .header("x-page", "2"),
                _ => Reply::json(400, json!({"message": "bad page"})),
            }
        } else if seen.path == diffs3 {
            match page.as_deref() {
                None => Reply::json(
                    200,
                    json!([
                        {"old_path": "a.rs", "new_path": "a.rs", "new_file": false, "renamed_file": false, "deleted_file": false},
                        {"old_path": "old.rs", "new_path": "new.rs", "new_file": false, "renamed_file": true, "deleted_file": false},
                    ]),
                )
                .header("x-next-page", "2"),
                _ => Reply::json(
                    200,
                    json!([{"old_path": "gone.rs", "new_path": "gone.rs", "new_file": false, "renamed_file": false, "deleted_file": true}]),
                )
                .header("x-next-page", ""),
            }
        } else if seen.path == diffs2 {
            Reply::json(200, json!([{"old_path": "b.rs", "new_path": "b.rs", "deleted_file": false}]))
        } else {
            Reply::json(404, json!({"message": "404 Not Found"}))
        }
    });
    let window = PullRequestWindow { merged_since: days_ago(10), updated_since: None };
    let requests = session(&clients(&stub.url), gitlab(None))
        .await
        .merged_pull_requests(&repo(Platform::GitLab, "acme/platform/checkout-api"), window)
        .await
        .unwrap();
    assert_eq!(requests.iter().map(|r| r.number).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(requests[0].files, ["a.rs", "new.rs", "gone.rs"]);
    assert_eq!(requests[0].merge_commit_sha.as_deref(), Some("squash3"));
    assert_eq!(requests[0].author.as_deref(), Some("dev"));
    assert_eq!(requests[1].files, ["b.rs"]);

    let first = &stub.seen_at(&format!("{PROJECT}/merge_requests"))[0];
    for (name, value) in [("state", "merged"), ("order_by", "updated_at"), ("sort", "desc"), ("per_page", "100")] {
        assert_eq!(first.param(name).as_deref(), Some(value), "{name}");
    }
    let updated_after = chrono::DateTime::parse_from_rfc3339(&first.param("updated_after").unwrap()).unwrap();
    assert_eq!(updated_after, window.merged_since);
    assert_eq!(stub.seen_at(&format!("{PROJECT}/merge_requests")).len(), 2);
    assert_eq!(stub.seen_at(&format!("{PROJECT}/merge_requests/1/diffs")).len(), 0);
}

#[actix_web::test]
async fn incremental_sync_asks_for_updates_since_the_last_sync() {
    let recent = rfc3339(hours_ago(2));
    let stub = Stub::start(move |seen, _| {
        if seen.path.ends_with("/merge_requests") {
            Reply::json(200, json!([merge_request(4, &recent, Some(&recent))])).header("x-next-page", "")
        } else {
            Reply::json(200, json!([])).header("x-next-page", "")
        }
    });
    let since = hours_ago(6);
    let window = PullRequestWindow { merged_since: days_ago(30), updated_since: Some(since) };
    let requests = session(&clients(&stub.url), gitlab(None))
        .await
        .merged_pull_requests(&repo(Platform::GitLab, "acme/platform/checkout-api"), window)
        .await
        .unwrap();
    assert_eq!(requests.len(), 1);
    let first = &stub.seen_at(&format!("{PROJECT}/merge_requests"))[0];
    assert_eq!(chrono::DateTime::parse_from_rfc3339(&first.param("updated_after").unwrap()).unwrap(), since);
}

#[actix_web::test]
async fn rate_limit_honours_retry_after() {
    let reset = Utc::now().timestamp() + 600;
    let stub = Stub::start(move |_, _| {
        Reply::text(429, "Retry later")
            .header("retry-after", "45")
            .header("ratelimit-limit", "2000")
            .header("ratelimit-remaining", "0")
            .header("ratelimit-reset", reset.to_string())
    });
    let session = session(&clients(&stub.url), gitlab(None)).await;
    let error = session.verify().await.unwrap_err();
    let PlatformError::RateLimited { platform: "GitLab", until } = error else { panic!("{error:?}") };
    let wait = until - Utc::now();
    assert!(wait > TimeDelta::seconds(40) && wait <= TimeDelta::seconds(45), "{wait}");
    let limits = session.rate_limit();
    assert_eq!(limits.limit, Some(2000));
    assert_eq!(limits.remaining, Some(0));
    assert_eq!(stub.seen().len(), 1);
}

#[actix_web::test]
async fn rate_limit_reset_is_used_without_retry_after() {
    let reset = Utc::now().timestamp() + 600;
    let stub = Stub::start(move |_, _| Reply::text(429, "Retry later").header("ratelimit-reset", reset.to_string()));
    let error = session(&clients(&stub.url), gitlab(None)).await.verify().await.unwrap_err();
    let until = chrono::DateTime::from_timestamp(reset, 0).unwrap();
    assert_eq!(error, PlatformError::RateLimited { platform: "GitLab", until });
}

#[actix_web::test]
async fn self_managed_root_replaces_gitlab_com() {
    let stub = Stub::start(|seen, _| match seen.path.as_str() {
        "/gitlab/api/v4/user" => Reply::json(200, json!({"id": 1})),
        _ => Reply::json(404, json!({"message": "404 Not Found"})),
    });
    let clients = sigsentry_platforms::PlatformClients::new(config("http://127.0.0.1:9", true)).unwrap();
    session(&clients, gitlab(Some(&format!("{}/gitlab", stub.url)))).await.verify().await.unwrap();
    assert_eq!(stub.seen_at("/gitlab/api/v4/user").len(), 1);
}
