//! GitHub against a stub that speaks its REST API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use chrono::{TimeDelta, Utc};
use serde_json::json;
use sigsentry_domain::Platform;
use sigsentry_domain::correlation::LineRange;
use sigsentry_platforms::ListingBounds;
use sigsentry_ports::{ChangedFile, PlatformError, PlatformSession, PullRequestWindow, TreeSnapshot};

fn pull(number: u64, updated_at: &str, merged_at: Option<&str>) -> serde_json::Value {
    json!({
        "number": number,
        "title": format!("PR {number}"),
        "state": "closed",
        "user": {"login": "octocat"},
        "html_url": format!("https://github.com/acme/api/pull/{number}"),
        "updated_at": updated_at,
        "closed_at": updated_at,
        "merged_at": merged_at,
        "merge_commit_sha": format!("sha{number}"),
    })
}

#[actix_web::test]
async fn verify_sends_the_github_headers() {
    let stub = Stub::start(|seen, _| match seen.path.as_str() {
        "/user" => Reply::json(200, json!({"login": "octocat"}))
            .header("x-ratelimit-limit", "5000")
            .header("x-ratelimit-remaining", "4999"),
        _ => Reply::json(404, json!({"message": "Not Found"})),
    });
    let clients = clients(&stub.url);
    session(&clients, github(None)).await.verify().await.unwrap();
    let seen = &stub.seen_at("/user")[0];
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {GITHUB_TOKEN}").as_str()));
    assert_eq!(seen.header("accept"), Some("application/vnd.github+json"));
    assert_eq!(seen.header("x-github-api-version"), Some("2022-11-28"));
    assert_eq!(seen.header_count("x-github-api-version"), 1);
    assert_eq!(seen.header("user-agent"), Some("sigsentry-tests/1"));
    // Limits belong to the host: a later session sees them.
    let limits = session(&clients, github(None)).await.rate_limit();
    assert_eq!((limits.limit, limits.remaining), (Some(5000), Some(4999)));
}

#[actix_web::test]
async fn a_bad_token_is_rejected() {
    let stub = Stub::start(|_, _| Reply::json(401, json!({"message": "Bad credentials"})));
    let error = session(&clients(&stub.url), github(None)).await.verify().await.unwrap_err();
    assert_eq!(error, PlatformError::CredentialsRejected { platform: "GitHub", status: 401 });
    assert!(!error.to_string().contains(GITHUB_TOKEN));
    assert_eq!(stub.seen().len(), 1, "a 401 is not retried");
}

#[actix_web::test]
async fn repository_reads_default_branch_and_visibility() {
    let stub = Stub::start(|seen, _| match seen.path.as_str() {
        "/repos/acme/api" => {
            Reply::json(200, json!({"id": 1, "name": "api", "default_branch": "trunk", "private": true}))
        }
        _ => Reply::json(404, json!({"message": "Not Found"})),
    });
    let session = session(&clients(&stub.url), github(None)).await;
    let info = session.repository(&repo(Platform::GitHub, "acme/api")).await.unwrap();
    assert_eq!(info.default_branch.as_deref(), Some("trunk"));
    assert!(info.private);
    let error = session.repository(&repo(Platform::GitHub, "acme/hidden")).await.unwrap_err();
    assert!(matches!(error, PlatformError::RepositoryNotFound { platform: "GitHub", .. }), "{error:?}");
}

#[actix_web::test]
async fn a_403_without_limit_headers_is_a_missing_permission() {
    let stub = Stub::start(|_, _| {
        Reply::json(403, json!({"message": "Resource not accessible by personal access token"}))
            .header("x-accepted-github-permissions", "pull_requests=read")
            .header("x-ratelimit-remaining", "4000")
    });
    let error = session(&clients(&stub.url), github(None))
        .await
        .repository(&repo(Platform::GitHub, "acme/api"))
        .await
        .unwrap_err();
    match error {
        PlatformError::PermissionMissing { platform: "GitHub", detail } => {
            assert!(detail.contains("Resource not accessible"), "{detail}");
            assert!(detail.contains("pull_requests=read"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(stub.seen().len(), 1, "a 403 is not retried");
}

#[actix_web::test]
async fn primary_rate_limit_waits_for_the_reset() {
    let reset = Utc::now().timestamp() + 900;
    let stub = Stub::start(move |_, _| {
        Reply::json(403, json!({"message": "API rate limit exceeded for user ID 1."}))
            .header("x-ratelimit-limit", "5000")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-used", "5000")
            .header("x-ratelimit-reset", reset.to_string())
    });
    let session = session(&clients(&stub.url), github(None)).await;
    let error = session.verify().await.unwrap_err();
    let until = chrono::DateTime::from_timestamp(reset, 0).unwrap();
    assert_eq!(error, PlatformError::RateLimited { platform: "GitHub", until });
    let limits = session.rate_limit();
    assert_eq!((limits.limit, limits.remaining, limits.reset_at), (Some(5000), Some(0), Some(until)));
    assert_eq!(stub.seen().len(), 1, "a rate limit is not retried in a loop");
}

#[actix_web::test]
async fn secondary_rate_limit_honours_retry_after() {
    let stub = Stub::start(|_, _| {
        Reply::json(429, json!({"message": "You have exceeded a secondary rate limit."})).header("retry-after", "120")
    });
    let error = session(&clients(&stub.url), github(None)).await.verify().await.unwrap_err();
    let PlatformError::RateLimited { until, .. } = error else { panic!("{error:?}") };
    let wait = until - Utc::now();
    assert!(wait > TimeDelta::seconds(110) && wait <= TimeDelta::seconds(120), "{wait}");
}

#[actix_web::test]
async fn a_5xx_is_retried_then_succeeds() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let stub = Stub::start(move |_, _| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Reply::text(502, "Bad Gateway")
        } else {
            Reply::json(200, json!({"login": "octocat"}))
        }
    });
    session(&clients(&stub.url), github(None)).await.verify().await.unwrap();
    assert_eq!(stub.seen().len(), 2);
}

#[actix_web::test]
async fn a_lasting_5xx_is_unavailable_after_the_retries() {
    let stub = Stub::start(|_, _| Reply::json(503, json!({"message": "Service Unavailable"})));
    let error = session(&clients(&stub.url), github(None)).await.verify().await.unwrap_err();
    assert!(matches!(error, PlatformError::Unavailable { platform: "GitHub", .. }), "{error:?}");
    assert_eq!(stub.seen().len(), 3, "one try and two retries");
}

#[actix_web::test]
async fn merged_pull_requests_follow_links_and_stop_at_the_window() {
    let (recent, older, merged_out, too_old) =
        (rfc3339(days_ago(1)), rfc3339(days_ago(5)), rfc3339(days_ago(11)), rfc3339(days_ago(12)));
    let stub = Stub::start(move |seen, own| {
        let list = "/repos/acme/api/pulls";
        match (seen.path.as_str(), seen.param("page").as_deref()) {
            (path, None) if path == list => Reply::json(
                200,
                json!([pull(10, &recent, Some(&recent)), pull(9, &recent, None)]),
            )
            .header("link", format!(r#"<{own}{list}?state=closed&sort=updated&direction=desc&per_page=100&page=2>; rel="next", <{own}{list}?page=3>; rel="last""#)),
            (path, Some("2")) if path == list => Reply::json(
                200,
                json!([
                    pull(8, &older, Some(&older)),
                    // Merged before the window, updated inside it: left out.
                    pull(7, &older, Some(&merged_out)),
                    // Updated before the window: paging stops after this page.
                    pull(6, &too_old, Some(&too_old)),
                ]),
            )
            .header("link", format!(r#"<{own}{list}?page=3>; rel="next""#)),
            (path, Some("3")) if path == list => Reply::json(200, json!([pull(5, &too_old, Some(&too_old))])),
            ("/repos/acme/api/pulls/10/files", None) => Reply::json(
                200,
                json!([{"sha": "a", "filename": "src/main.rs", "status": "modified"}]),
            )
            .header("link", format!(r#"<{own}/repos/acme/api/pulls/10/files?per_page=100&page=2>; rel="next""#)),
            ("/repos/acme/api/pulls/10/files", Some("2")) => Reply::json(
                200,
                json!([{"sha": "b", "filename": "docs/new.md", "previous_filename": "docs/old.md", "status": "renamed"}]),
            ),
            ("/repos/acme/api/pulls/8/files", _) => {
                Reply::json(200, json!([{"sha": "c", "filename": "README.md", "status": "added"}]))
            }
            _ => Reply::json(404, json!({"message": "Not Found"})),
        }
    });
    let window = PullRequestWindow { merged_since: days_ago(10), updated_since: None };
    let pulls = session(&clients(&stub.url), github(None))
        .await
        .merged_pull_requests(&repo(Platform::GitHub, "acme/api"), window)
        .await
        .unwrap();
    let numbers: Vec<u64> = pulls.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [10, 8]);
    assert_eq!(paths(&pulls[0].files), ["src/main.rs", "docs/new.md"]);
    assert_eq!(pulls[0].author.as_deref(), Some("octocat"));
    assert_eq!(pulls[0].merge_commit_sha.as_deref(), Some("sha10"));
    assert_eq!(pulls[0].url, "https://github.com/acme/api/pull/10");
    assert_eq!(paths(&pulls[1].files), ["README.md"]);

    let first = &stub.seen_at("/repos/acme/api/pulls")[0];
    for (name, value) in [("state", "closed"), ("sort", "updated"), ("direction", "desc"), ("per_page", "100")] {
        assert_eq!(first.param(name).as_deref(), Some(value), "{name}");
    }
    let pages: Vec<Option<String>> = stub.seen_at("/repos/acme/api/pulls").iter().map(|s| s.param("page")).collect();
    assert_eq!(pages, [None, Some("2".into())], "no request past the window");
    assert_eq!(stub.seen_at("/repos/acme/api/pulls/7/files").len(), 0);
    assert!(stub.seen().iter().all(|s| s.header("authorization") == Some(&format!("Bearer {GITHUB_TOKEN}"))));
}

#[actix_web::test]
async fn incremental_sync_stops_at_updated_since() {
    let (hour, days3) = (rfc3339(hours_ago(3)), rfc3339(days_ago(3)));
    let stub = Stub::start(move |seen, own| match seen.path.as_str() {
        "/repos/acme/api/pulls" => {
            Reply::json(200, json!([pull(2, &hour, Some(&hour)), pull(1, &days3, Some(&days3))]))
                .header("link", format!(r#"<{own}/repos/acme/api/pulls?page=2>; rel="next""#))
        }
        "/repos/acme/api/pulls/2/files" => Reply::json(200, json!([{"filename": "a.rs", "status": "modified"}])),
        _ => Reply::json(404, json!({"message": "Not Found"})),
    });
    let window = PullRequestWindow { merged_since: days_ago(30), updated_since: Some(days_ago(1)) };
    let pulls = session(&clients(&stub.url), github(None))
        .await
        .merged_pull_requests(&repo(Platform::GitHub, "acme/api"), window)
        .await
        .unwrap();
    assert_eq!(pulls.iter().map(|p| p.number).collect::<Vec<_>>(), [2]);
    assert_eq!(stub.seen_at("/repos/acme/api/pulls").len(), 1, "page 2 is older than updated_since");
    assert_eq!(stub.seen_at("/repos/acme/api/pulls/1/files").len(), 0);
}

#[actix_web::test]
async fn enterprise_server_base_url_replaces_the_cloud_root() {
    let stub = Stub::start(|seen, _| match seen.path.as_str() {
        "/api/v3/user" => Reply::json(200, json!({"login": "octocat"})),
        _ => Reply::json(404, json!({"message": "Not Found"})),
    });
    // The cloud root points nowhere useful: the connection's baseUrl must win.
    let config = config("http://127.0.0.1:9", true);
    let clients = sigsentry_platforms::PlatformClients::new(config).unwrap();
    let base = format!("{}/api/v3", stub.url);
    session(&clients, github(Some(&base))).await.verify().await.unwrap();
    assert_eq!(stub.seen_at("/api/v3/user").len(), 1);
}

fn blob(path: &str) -> serde_json::Value {
    json!({"path": path, "mode": "100644", "type": "blob", "sha": format!("b-{path}"), "size": 10})
}

fn subtree(path: &str, sha: &str) -> serde_json::Value {
    json!({"path": path, "mode": "040000", "type": "tree", "sha": sha})
}

fn branch(tree: &str) -> Reply {
    Reply::json(
        200,
        json!({"name": "main", "commit": {"sha": format!("commit-of-{tree}"), "commit": {"tree": {"sha": tree}}}}),
    )
}

#[actix_web::test]
async fn file_tree_lists_the_blobs_at_the_branch_root_tree() {
    let stub = Stub::start(|seen, _| match seen.path.as_str() {
        "/repos/acme/api/branches/release/2.0" => branch("t1"),
        "/repos/acme/api/git/trees/t1" => Reply::json(
            200,
            json!({"sha": "t1", "truncated": false, "tree": [
                blob("src/main.rs"), subtree("src", "s1"), blob("README.md"),
                {"path": "vendor/lib", "mode": "160000", "type": "commit", "sha": "sub"},
            ]}),
        ),
        _ => Reply::json(404, json!({"message": "Not Found"})),
    });
    let session = session(&clients(&stub.url), github(None)).await;
    let snapshot = session.file_tree(&repo(Platform::GitHub, "acme/api"), "release/2.0", None).await.unwrap();
    assert_eq!(listed(snapshot), ("t1".into(), vec!["README.md".into(), "src/main.rs".into()]), "blobs only, sorted");
    let trees = stub.seen_at("/repos/acme/api/git/trees/t1");
    assert_eq!(trees.len(), 1, "one recursive call");
    assert_eq!(trees[0].param("recursive").as_deref(), Some("1"));
    assert!(stub.seen().iter().all(|s| s.header("authorization") == Some(&format!("Bearer {GITHUB_TOKEN}"))));

    // Still at t1: nothing is listed again.
    let again = session.file_tree(&repo(Platform::GitHub, "acme/api"), "release/2.0", Some("t1")).await.unwrap();
    assert_eq!(again, TreeSnapshot::Unchanged);
    assert_eq!(stub.seen_at("/repos/acme/api/git/trees/t1").len(), 1, "no listing request");
    assert_eq!(stub.seen_at("/repos/acme/api/branches/release/2.0").len(), 2);
}

#[actix_web::test]
async fn a_truncated_tree_is_walked_one_subtree_at_a_time() {
    let stub = Stub::start(|seen, _| {
        let recursive = seen.param("recursive").is_some();
        match (seen.path.as_str(), recursive) {
            ("/repos/acme/api/branches/main", _) => branch("root"),
            // Too large in one answer: GitHub cuts it.
            ("/repos/acme/api/git/trees/root", true) => {
                Reply::json(200, json!({"sha": "root", "truncated": true, "tree": [blob("README.md")]}))
            }
            ("/repos/acme/api/git/trees/root", false) => Reply::json(
                200,
                json!({"sha": "root", "truncated": false, "tree": [
                    blob("README.md"), subtree("src", "s1"), subtree("vendor", "v1"),
                    {"path": "third_party", "mode": "160000", "type": "commit", "sha": "sub"},
                ]}),
            ),
            ("/repos/acme/api/git/trees/s1", true) => Reply::json(
                200,
                json!({"sha": "s1", "truncated": false, "tree": [blob("main.rs"), subtree("lib", "l1"), blob("lib/a.rs")]}),
            ),
            ("/repos/acme/api/git/trees/v1", true) => {
                Reply::json(200, json!({"sha": "v1", "truncated": true, "tree": []}))
            }
            ("/repos/acme/api/git/trees/v1", false) => {
                Reply::json(200, json!({"sha": "v1", "truncated": false, "tree": [blob("x.c"), subtree("deep", "d1")]}))
            }
            ("/repos/acme/api/git/trees/d1", true) => {
                Reply::json(200, json!({"sha": "d1", "truncated": false, "tree": [blob("y.c")]}))
            }
            _ => Reply::json(404, json!({"message": "Not Found"})),
        }
    });
    let snapshot = session(&clients(&stub.url), github(None))
        .await
        .file_tree(&repo(Platform::GitHub, "acme/api"), "main", Some("an-older-tree"))
        .await
        .unwrap();
    let (revision, paths) = listed(snapshot);
    assert_eq!(revision, "root");
    assert_eq!(paths, ["README.md", "src/lib/a.rs", "src/main.rs", "vendor/deep/y.c", "vendor/x.c"]);
    assert_eq!(stub.seen_at("/repos/acme/api/git/trees/l1").len(), 0, "a complete subtree is not walked");
}

#[actix_web::test]
async fn a_tree_past_the_bounds_fails_and_says_why() {
    let stub = Stub::start(|seen, _| match seen.path.as_str() {
        "/repos/acme/api/branches/main" => branch("t1"),
        "/repos/acme/api/git/trees/t1" => Reply::json(
            200,
            json!({"sha": "t1", "truncated": false, "tree": [
                blob("a.rs"), blob("b.rs"), blob(&format!("{}.rs", "x".repeat(40))), blob("c.rs"),
            ]}),
        ),
        _ => Reply::json(404, json!({"message": "Not Found"})),
    });
    let bounds = ListingBounds { max_tree_paths: 3, max_path_bytes: 32, ..ListingBounds::default() };
    let repository = repo(Platform::GitHub, "acme/api");
    let snapshot = session(&clients_with(&stub.url, bounds), github(None))
        .await
        .file_tree(&repository, "main", None)
        .await
        .unwrap();
    assert_eq!(listed(snapshot).1, ["a.rs", "b.rs", "c.rs"], "the path too long is left out");

    let bounds = ListingBounds { max_tree_paths: 2, ..ListingBounds::default() };
    let error =
        session(&clients_with(&stub.url, bounds), github(None)).await.file_tree(&repository, "main", None).await;
    let error = error.unwrap_err();
    assert!(matches!(error, PlatformError::Unexpected { platform: "GitHub", .. }), "{error:?}");
    assert!(error.to_string().contains("more than 2 files"), "{error}");

    let missing = session(&clients(&stub.url), github(None)).await.file_tree(&repository, "gone", None).await;
    let missing = missing.unwrap_err();
    assert!(matches!(missing, PlatformError::Unexpected { .. }), "a missing branch is not a missing repository");
}

#[actix_web::test]
async fn pull_request_files_carry_ranges_and_renames() {
    let merged = rfc3339(days_ago(1));
    let huge_patch = format!("@@ -1 +1,2 @@\n{}", "+x\n".repeat(400));
    let stub = Stub::start(move |seen, own| match (seen.path.as_str(), seen.param("page").as_deref()) {
        ("/repos/acme/api/pulls", _) => Reply::json(200, json!([pull(4, &merged, Some(&merged))])),
        ("/repos/acme/api/pulls/4/files", None) => Reply::json(
            200,
            json!([
                {"filename": "checkout/cart.py", "status": "modified", "additions": 4, "deletions": 1,
                 "patch": "@@ -36,7 +38,10 @@ def total(self):\n-    a\n+    b\n@@ -90 +100 @@\n-x\n+y"},
                {"filename": "checkout/money.py", "previous_filename": "billing/money.py", "status": "renamed",
                 "patch": "@@ -10,2 +10,3 @@\n a\n+b"},
                {"filename": "checkout/copy.py", "previous_filename": "checkout/cart.py", "status": "copied"},
                {"filename": "logo.png", "status": "added"},
            ]),
        )
        .header("link", format!(r#"<{own}/repos/acme/api/pulls/4/files?per_page=100&page=2>; rel="next""#)),
        ("/repos/acme/api/pulls/4/files", Some("2")) => Reply::json(
            200,
            json!([
                {"filename": "old.py", "status": "removed", "patch": "@@ -1,3 +0,0 @@\n-a\n-b\n-c"},
                {"filename": "generated.json", "status": "modified", "patch": huge_patch},
            ]),
        ),
        _ => Reply::json(404, json!({"message": "Not Found"})),
    });
    let bounds = ListingBounds { max_patch_bytes: 1024, ..ListingBounds::default() };
    let window = PullRequestWindow { merged_since: days_ago(10), updated_since: None };
    let pulls = session(&clients_with(&stub.url, bounds), github(None))
        .await
        .merged_pull_requests(&repo(Platform::GitHub, "acme/api"), window)
        .await
        .unwrap();
    let files = &pulls[0].files;
    let expected = [
        ChangedFile {
            path: "checkout/cart.py".into(),
            previous_path: None,
            ranges: vec![LineRange::new(38, 47), LineRange::new(100, 100)],
        },
        ChangedFile {
            path: "checkout/money.py".into(),
            previous_path: Some("billing/money.py".into()),
            ranges: vec![LineRange::new(10, 12)],
        },
        // A copy is not a rename: the source is still there.
        ChangedFile::path_only("checkout/copy.py"),
        // No patch (binary): the path without ranges.
        ChangedFile::path_only("logo.png"),
        // Removed: no new side.
        ChangedFile::path_only("old.py"),
        // A patch past the cap: as if GitHub had left it out.
        ChangedFile::path_only("generated.json"),
    ];
    assert_eq!(files.as_slice(), expected);
}
