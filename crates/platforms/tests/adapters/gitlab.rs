//! GitLab against a stub that speaks its REST v4 API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use chrono::{TimeDelta, Utc};
use serde_json::json;
use sigsentry_domain::Platform;
use sigsentry_domain::correlation::LineRange;
use sigsentry_platforms::ListingBounds;
use sigsentry_ports::{ChangedFile, PlatformError, PlatformSession, PullRequestWindow, TreeSnapshot};

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
    assert_eq!(paths(&requests[0].files), ["a.rs", "new.rs", "gone.rs"]);
    assert_eq!(requests[0].merge_commit_sha.as_deref(), Some("squash3"));
    assert_eq!(requests[0].author.as_deref(), Some("dev"));
    assert_eq!(paths(&requests[1].files), ["b.rs"]);

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

fn entry(path: &str, kind: &str) -> serde_json::Value {
    json!({"id": format!("id-{path}"), "name": path.rsplit('/').next().unwrap(), "type": kind, "path": path, "mode": "100644"})
}

/// A project whose `feature/x` branch is at `c1`, its tree in two keyset pages.
fn tree_stub() -> Stub {
    Stub::start(|seen, own| {
        let tree = format!("{PROJECT}/repository/tree");
        if seen.path == format!("{PROJECT}/repository/branches/feature%2Fx") {
            return Reply::json(200, json!({"name": "feature/x", "commit": {"id": "c1", "short_id": "c1"}}));
        }
        if seen.path != tree {
            return Reply::json(404, json!({"message": "404 Not Found"}));
        }
        match seen.param("page_token").as_deref() {
            None => Reply::json(200, json!([entry("src", "tree"), entry("src/main.rs", "blob"), entry("README.md", "blob")]))
                .header(
                    "link",
                    format!(r#"<{own}{tree}?pagination=keyset&per_page=100&recursive=true&ref=c1&page_token=id-README.md>; rel="next""#),
                ),
            Some("id-README.md") => Reply::json(
                200,
                json!([entry("src/lib", "tree"), entry("src/lib/a.rs", "blob"), entry("vendor/sub", "commit")]),
            ),
            Some(_) => Reply::json(400, json!({"message": "bad page_token"})),
        }
    })
}

#[actix_web::test]
async fn file_tree_follows_keyset_pages_and_keeps_blobs() {
    let stub = tree_stub();
    let session = session(&clients(&stub.url), gitlab(None)).await;
    let repository = repo(Platform::GitLab, "acme/platform/checkout-api");
    let (revision, paths) = listed(session.file_tree(&repository, "feature/x", None).await.unwrap());
    assert_eq!(revision, "c1");
    assert_eq!(paths, ["README.md", "src/lib/a.rs", "src/main.rs"]);
    let pages = stub.seen_at(&format!("{PROJECT}/repository/tree"));
    assert_eq!(pages.len(), 2);
    for (name, value) in [("ref", "c1"), ("recursive", "true"), ("per_page", "100"), ("pagination", "keyset")] {
        assert_eq!(pages[0].param(name).as_deref(), Some(value), "{name}");
    }
    assert!(stub.seen().iter().all(|s| s.header("private-token") == Some(GITLAB_TOKEN)));

    assert_eq!(session.file_tree(&repository, "feature/x", Some("c1")).await.unwrap(), TreeSnapshot::Unchanged);
    assert_eq!(stub.seen_at(&format!("{PROJECT}/repository/tree")).len(), 2, "no listing request");
}

#[actix_web::test]
async fn a_tree_needing_too_many_pages_fails() {
    let stub = tree_stub();
    let bounds = ListingBounds { max_tree_requests: 1, ..ListingBounds::default() };
    let error = session(&clients_with(&stub.url, bounds), gitlab(None))
        .await
        .file_tree(&repo(Platform::GitLab, "acme/platform/checkout-api"), "feature/x", None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("more than 1 requests"), "{error}");
    assert_eq!(stub.seen_at(&format!("{PROJECT}/repository/tree")).len(), 1);
}

#[actix_web::test]
async fn merge_request_diffs_carry_ranges_and_renames() {
    let merged = rfc3339(days_ago(1));
    let stub = Stub::start(move |seen, _| {
        if seen.path == format!("{PROJECT}/merge_requests") {
            return Reply::json(200, json!([merge_request(5, &merged, Some(&merged))])).header("x-next-page", "");
        }
        if seen.path != format!("{PROJECT}/merge_requests/5/diffs") {
            return Reply::json(404, json!({"message": "404 Not Found"}));
        }
        let diff = |old: &str, new: &str, diff: &str| {
            json!({"old_path": old, "new_path": new, "a_mode": "100644", "b_mode": "100644", "diff": diff,
                   "new_file": false, "renamed_file": old != new, "deleted_file": false,
                   "generated_file": false, "too_large": false, "collapsed": false})
        };
        let mut large = diff("big.sql", "big.sql", "");
        large["too_large"] = json!(true);
        let mut collapsed = diff("lock.json", "lock.json", "@@ -1 +1 @@\n-a\n+b\n");
        collapsed["collapsed"] = json!(true);
        let mut deleted = diff("gone.rb", "gone.rb", "@@ -1,2 +0,0 @@\n-a\n-b\n");
        deleted["deleted_file"] = json!(true);
        Reply::json(
            200,
            json!([
                diff("app/cart.rb", "app/cart.rb", "@@ -36,7 +38,10 @@ def total\n-a\n+b\n@@ -90 +100 @@\n-x\n+y\n"),
                diff("lib/money.rb", "app/money.rb", "@@ -3,2 +3,4 @@\n a\n+b\n+c\n"),
                diff("logo.png", "logo.png", "Binary files a/logo.png and b/logo.png differ\n"),
                large,
                collapsed,
                deleted,
            ]),
        )
        .header("x-next-page", "")
    });
    let window = PullRequestWindow { merged_since: days_ago(10), updated_since: None };
    let requests = session(&clients(&stub.url), gitlab(None))
        .await
        .merged_pull_requests(&repo(Platform::GitLab, "acme/platform/checkout-api"), window)
        .await
        .unwrap();
    let expected = [
        ChangedFile {
            path: "app/cart.rb".into(),
            previous_path: None,
            ranges: vec![LineRange::new(38, 47), LineRange::new(100, 100)],
        },
        ChangedFile {
            path: "app/money.rb".into(),
            previous_path: Some("lib/money.rb".into()),
            ranges: vec![LineRange::new(3, 6)],
        },
        ChangedFile::path_only("logo.png"),
        ChangedFile::path_only("big.sql"),
        ChangedFile::path_only("lock.json"),
        ChangedFile::path_only("gone.rb"),
    ];
    assert_eq!(requests[0].files.as_slice(), expected);
}
