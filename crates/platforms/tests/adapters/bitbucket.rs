//! Bitbucket Cloud against a stub that speaks its REST 2.0 API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use base64::Engine;
use chrono::{TimeDelta, Utc};
use serde_json::json;
use sigsentry_domain::correlation::LineRange;
use sigsentry_domain::{Credentials, Platform, Secret};
use sigsentry_platforms::ListingBounds;
use sigsentry_ports::{ChangedFile, PlatformError, PlatformSession, PullRequestWindow, TreeSnapshot};

const REPO: &str = "/2.0/repositories/acme/checkout-api";

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

fn pull(id: u64, updated_on: &str) -> serde_json::Value {
    json!({
        "type": "pullrequest",
        "id": id,
        "title": format!("PR {id}"),
        "state": "MERGED",
        "author": {"display_name": "Dev One", "nickname": "dev1"},
        "merge_commit": {"hash": format!("abc{id}")},
        "links": {"html": {"href": format!("https://bitbucket.org/acme/checkout-api/pull-requests/{id}")}},
        "created_on": updated_on,
        "updated_on": updated_on,
    })
}

/// Answers like Bitbucket, refusing a `pagelen` above 50 on pull requests.
fn bitbucket_stub(recent: String, older: String, too_old: String) -> Stub {
    Stub::start(move |seen, own| {
        let pulls = format!("{REPO}/pullrequests");
        if seen.path == pulls {
            if seen.param("pagelen").and_then(|p| p.parse::<u32>().ok()).is_some_and(|p| p > 50) {
                return Reply::json(400, json!({"type": "error", "error": {"message": "Invalid pagelen"}}));
            }
            return match seen.param("page").as_deref() {
                None => Reply::json(
                    200,
                    json!({"pagelen": 50, "page": 1, "values": [pull(12, &recent)],
                           "next": format!("{own}{pulls}?state=MERGED&pagelen=50&page=2")}),
                ),
                Some("2") => Reply::json(
                    200,
                    json!({"pagelen": 50, "page": 2, "values": [pull(11, &older), pull(10, &too_old)],
                           "next": format!("{own}{pulls}?state=MERGED&pagelen=50&page=3")}),
                ),
                _ => Reply::json(200, json!({"pagelen": 50, "page": 3, "values": [pull(9, &too_old)]})),
            };
        }
        if let Some(id) =
            seen.path.strip_prefix(&format!("{REPO}/pullrequests/")).and_then(|r| r.strip_suffix("/diffstat"))
        {
            return Reply::text(302, "").header(
                "location",
                format!("{own}{REPO}/diffstat/acme/checkout-api:abc{id}%0Ddef{id}?from_pullrequest_id={id}&topic=true"),
            );
        }
        if seen.path.starts_with(&format!("{REPO}/diffstat/")) {
            return match seen.param("page").as_deref() {
                None => Reply::json(
                    200,
                    json!({"pagelen": 500, "page": 1, "values": [
                        {"type": "diffstat", "status": "modified", "old": {"path": "src/a.rs"}, "new": {"path": "src/a.rs"}},
                        {"type": "diffstat", "status": "renamed", "old": {"path": "src/old.rs"}, "new": {"path": "src/new.rs"}},
                    ], "next": format!("{own}{}?page=2", seen.path)}),
                ),
                _ => Reply::json(
                    200,
                    json!({"pagelen": 500, "page": 2, "values": [
                        {"type": "diffstat", "status": "removed", "old": {"path": "src/gone.rs"}, "new": null},
                    ]}),
                ),
            };
        }
        Reply::json(404, json!({"type": "error", "error": {"message": "Not found"}}))
    })
}

#[actix_web::test]
async fn verify_uses_basic_auth_for_both_kinds_of_credentials() {
    let stub = Stub::start(|seen, _| match seen.path.as_str() {
        "/2.0/user" => Reply::json(200, json!({"type": "user", "nickname": "dev1"})),
        _ => Reply::json(404, json!({"type": "error", "error": {"message": "Not found"}})),
    });
    let clients = clients(&stub.url);
    session(&clients, bitbucket()).await.verify().await.unwrap();
    let token = Credentials::BitbucketApiToken {
        email: "dev@acme.io".into(),
        api_token: Secret::new("ATATT3xFfGF0token0123".into()).unwrap(),
    };
    session(&clients, token).await.verify().await.unwrap();
    let seen = stub.seen_at("/2.0/user");
    assert_eq!(seen[0].header("authorization"), Some(basic(BITBUCKET_USER, BITBUCKET_PASSWORD).as_str()));
    assert_eq!(seen[1].header("authorization"), Some(basic("dev@acme.io", "ATATT3xFfGF0token0123").as_str()));
}

#[actix_web::test]
async fn repository_and_its_refusals() {
    let stub = Stub::start(|seen, _| match seen.path.as_str() {
        REPO => Reply::json(
            200,
            json!({"type": "repository", "is_private": true, "mainbranch": {"type": "branch", "name": "develop"}}),
        ),
        "/2.0/repositories/acme/secret" => Reply::json(
            403,
            json!({"type": "error", "error": {"message": "Access denied. You must have write or admin access."}}),
        ),
        "/2.0/repositories/acme/scoped" => Reply::json(
            403,
            json!({"type": "error", "error": {"message": "Your credentials lack one or more required privilege scopes."}}),
        ),
        _ => Reply::json(404, json!({"type": "error", "error": {"message": "Repository acme/gone not found"}})),
    });
    let session = session(&clients(&stub.url), bitbucket()).await;
    let info = session.repository(&repo(Platform::Bitbucket, "acme/checkout-api")).await.unwrap();
    assert_eq!(info.default_branch.as_deref(), Some("develop"));
    assert!(info.private);
    for (name, want_not_found) in [("acme/secret", true), ("acme/gone", true), ("acme/scoped", false)] {
        let error = session.repository(&repo(Platform::Bitbucket, name)).await.unwrap_err();
        let not_found = matches!(error, PlatformError::RepositoryNotFound { platform: "Bitbucket", .. });
        let missing = matches!(error, PlatformError::PermissionMissing { platform: "Bitbucket", .. });
        assert!(if want_not_found { not_found } else { missing }, "{name}: {error:?}");
    }
}

#[actix_web::test]
async fn a_bad_password_is_rejected() {
    let stub = Stub::start(|_, _| Reply::text(401, ""));
    let error = session(&clients(&stub.url), bitbucket()).await.verify().await.unwrap_err();
    assert_eq!(error, PlatformError::CredentialsRejected { platform: "Bitbucket", status: 401 });
    assert!(!format!("{error:?} {error}").contains(BITBUCKET_PASSWORD));
}

#[actix_web::test]
async fn merged_pull_requests_follow_next_and_the_diffstat_redirect() {
    let stub = bitbucket_stub(rfc3339(days_ago(1)), rfc3339(days_ago(3)), rfc3339(days_ago(15)));
    let window = PullRequestWindow { merged_since: days_ago(10), updated_since: None };
    let pulls = session(&clients(&stub.url), bitbucket())
        .await
        .merged_pull_requests(&repo(Platform::Bitbucket, "acme/checkout-api"), window)
        .await
        .unwrap();
    assert_eq!(pulls.iter().map(|p| p.number).collect::<Vec<_>>(), [12, 11]);
    assert_eq!(paths(&pulls[0].files), ["src/a.rs", "src/new.rs", "src/gone.rs"]);
    assert_eq!(pulls[0].author.as_deref(), Some("dev1"));
    assert_eq!(pulls[0].merge_commit_sha.as_deref(), Some("abc12"));
    assert_eq!(pulls[0].merged_at, pulls[0].updated_at);
    assert_eq!(pulls[0].url, "https://bitbucket.org/acme/checkout-api/pull-requests/12");

    let lists = stub.seen_at(&format!("{REPO}/pullrequests"));
    assert_eq!(lists.len(), 2, "no request for the page past the window");
    let first = &lists[0];
    assert_eq!(first.param("state").as_deref(), Some("MERGED"));
    assert_eq!(first.param("sort").as_deref(), Some("-updated_on"));
    assert_eq!(first.param("pagelen").as_deref(), Some("50"));
    let cutoff = window.merged_since.format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
    assert_eq!(first.param("q"), Some(format!("updated_on >= {cutoff}")));

    let redirected: Vec<_> =
        stub.seen().into_iter().filter(|s| s.path.starts_with(&format!("{REPO}/diffstat/"))).collect();
    assert_eq!(redirected.len(), 4, "two pages for each of two PRs");
    let auth = basic(BITBUCKET_USER, BITBUCKET_PASSWORD);
    assert!(redirected.iter().all(|s| s.header("authorization") == Some(auth.as_str())), "auth kept on the redirect");
    assert_eq!(stub.seen_at(&format!("{REPO}/pullrequests/10/diffstat")).len(), 0);
}

#[actix_web::test]
async fn a_bare_429_backs_off_exponentially() {
    let stub = Stub::start(|_, _| Reply::text(429, "Rate limit for this resource has been exceeded"));
    let clients = clients(&stub.url);
    let first = session(&clients, bitbucket()).await.verify().await.unwrap_err();
    let PlatformError::RateLimited { platform: "Bitbucket", until } = first else { panic!("{first:?}") };
    let wait = until - Utc::now();
    assert!(wait > TimeDelta::seconds(55) && wait <= TimeDelta::seconds(66), "{wait}");
    let second = session(&clients, bitbucket()).await.verify().await.unwrap_err();
    let PlatformError::RateLimited { until, .. } = second else { panic!("{second:?}") };
    let wait = until - Utc::now();
    assert!(wait > TimeDelta::seconds(115) && wait <= TimeDelta::seconds(132), "{wait}");
    assert_eq!(session(&clients, bitbucket()).await.rate_limit().remaining, Some(0));
    assert_eq!(stub.seen().len(), 2, "each 429 is one request: no retry loop");
}

#[actix_web::test]
async fn a_5xx_is_retried() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let stub = Stub::start(move |_, _| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            Reply::text(500, "oops")
        } else {
            Reply::json(200, json!({"type": "user"}))
        }
    });
    session(&clients(&stub.url), bitbucket()).await.verify().await.unwrap();
    assert_eq!(stub.seen().len(), 3);
}

fn source(path: &str, kind: &str) -> serde_json::Value {
    json!({"path": path, "type": kind, "commit": {"hash": "abc123"}})
}

#[actix_web::test]
async fn file_tree_pages_the_listing_and_walks_directories_past_the_depth() {
    let stub = Stub::start(|seen, own| {
        let root = format!("{REPO}/src/abc123/");
        match seen.path.as_str() {
            "/2.0/repositories/acme/checkout-api/refs/branches/release/2.0" => Reply::json(
                200,
                json!({"type": "branch", "name": "release/2.0", "target": {"type": "commit", "hash": "abc123"}}),
            ),
            path if path == root => match seen.param("page").as_deref() {
                None => Reply::json(
                    200,
                    json!({"pagelen": 100, "values": [
                        source("README.md", "commit_file"), source("src", "commit_directory"),
                        source("src/main.rs", "commit_file"),
                    ], "next": format!("{own}{root}?pagelen=100&max_depth=10&page=2")}),
                ),
                _ => Reply::json(
                    200,
                    json!({"pagelen": 100, "values": [
                        // Listed, but none of its entries: past the depth.
                        source("src/deep", "commit_directory"),
                        source("vendor/lib", "commit_link"),
                    ]}),
                ),
            },
            "/2.0/repositories/acme/checkout-api/src/abc123/src/deep/" => {
                Reply::json(200, json!({"pagelen": 100, "values": [source("src/deep/a.rs", "commit_file")]}))
            }
            _ => Reply::json(404, json!({"type": "error", "error": {"message": "Not found"}})),
        }
    });
    let session = session(&clients(&stub.url), bitbucket()).await;
    let repository = repo(Platform::Bitbucket, "acme/checkout-api");
    let (revision, paths) = listed(session.file_tree(&repository, "release/2.0", None).await.unwrap());
    assert_eq!(revision, "abc123");
    assert_eq!(paths, ["README.md", "src/deep/a.rs", "src/main.rs"]);
    let first = &stub.seen_at(&format!("{REPO}/src/abc123/"))[0];
    assert_eq!(first.param("pagelen").as_deref(), Some("100"));
    assert_eq!(first.param("max_depth").as_deref(), Some("10"));
    assert_eq!(
        stub.seen_at(&format!("{REPO}/src/abc123/src/")).len(),
        0,
        "a directory listed with its entries is not walked"
    );
    let auth = basic(BITBUCKET_USER, BITBUCKET_PASSWORD);
    assert!(stub.seen().iter().all(|s| s.header("authorization") == Some(auth.as_str())));

    let again = session.file_tree(&repository, "release/2.0", Some("abc123")).await.unwrap();
    assert_eq!(again, TreeSnapshot::Unchanged);
    assert_eq!(stub.seen_at(&format!("{REPO}/src/abc123/")).len(), 2, "no listing request");
}

/// A PR whose diffstat and raw diff Bitbucket serves through redirects.
fn diff_stub(diff: &'static str) -> Stub {
    let merged = rfc3339(days_ago(1));
    Stub::start(move |seen, own| {
        let pulls = format!("{REPO}/pullrequests");
        match seen.path.as_str() {
            path if path == pulls => Reply::json(200, json!({"pagelen": 50, "values": [pull(7, &merged)]})),
            path if path == format!("{pulls}/7/diffstat") => Reply::text(302, "")
                .header("location", format!("{own}{REPO}/diffstat/acme/checkout-api:f7%0De7?from_pullrequest_id=7")),
            path if path == format!("{pulls}/7/diff") => Reply::text(302, "").header(
                "location",
                format!("{own}{REPO}/diff/acme/checkout-api:f7%0De7?from_pullrequest_id=7&topic=true"),
            ),
            path if path.starts_with(&format!("{REPO}/diffstat/")) => Reply::json(
                200,
                json!({"pagelen": 500, "values": [
                    {"type": "diffstat", "status": "modified", "old": {"path": "checkout/cart.py"}, "new": {"path": "checkout/cart.py"}},
                    {"type": "diffstat", "status": "renamed", "old": {"path": "billing/money.py"}, "new": {"path": "checkout/money.py"}},
                    {"type": "diffstat", "status": "added", "old": null, "new": {"path": "logo.png"}},
                    {"type": "diffstat", "status": "removed", "old": {"path": "old.py"}, "new": null},
                ]}),
            ),
            path if path.starts_with(&format!("{REPO}/diff/")) => Reply::text(200, diff),
            _ => Reply::json(404, json!({"type": "error", "error": {"message": "Not found"}})),
        }
    })
}

const PR_DIFF: &str = "diff --git a/checkout/cart.py b/checkout/cart.py
index 1111111..2222222 100644
--- a/checkout/cart.py
+++ b/checkout/cart.py
@@ -36,7 +38,10 @@ def total(self):
-    a
+    b
@@ -90 +100 @@
-x
+y
diff --git a/billing/money.py b/checkout/money.py
similarity index 90%
rename from billing/money.py
rename to checkout/money.py
--- a/billing/money.py
+++ b/checkout/money.py
@@ -10,2 +10,3 @@
 a
+b
diff --git a/logo.png b/logo.png
new file mode 100644
Binary files /dev/null and b/logo.png differ
diff --git a/old.py b/old.py
deleted file mode 100644
--- a/old.py
+++ /dev/null
@@ -1,3 +0,0 @@
-a
-b
-c
";

#[actix_web::test]
async fn pull_request_ranges_come_from_the_raw_diff_behind_its_redirect() {
    let stub = diff_stub(PR_DIFF);
    let window = PullRequestWindow { merged_since: days_ago(10), updated_since: None };
    let pulls = session(&clients(&stub.url), bitbucket())
        .await
        .merged_pull_requests(&repo(Platform::Bitbucket, "acme/checkout-api"), window)
        .await
        .unwrap();
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
        ChangedFile::path_only("logo.png"),
        ChangedFile::path_only("old.py"),
    ];
    assert_eq!(pulls[0].files.as_slice(), expected);
    let diffs: Vec<_> = stub.seen().into_iter().filter(|s| s.path.starts_with(&format!("{REPO}/diff/"))).collect();
    assert_eq!(diffs.len(), 1);
    assert_eq!(diffs[0].header("accept"), Some("text/plain"));
    assert_eq!(
        diffs[0].header("authorization"),
        Some(basic(BITBUCKET_USER, BITBUCKET_PASSWORD).as_str()),
        "auth kept on the redirect"
    );
}

#[actix_web::test]
async fn a_diff_past_the_cap_is_not_read_further() {
    let stub = diff_stub(PR_DIFF);
    // The cap falls inside the second file's hunk: the first keeps its ranges.
    let cut = PR_DIFF.find("+b\n").unwrap();
    let bounds = ListingBounds { max_diff_bytes: cut, ..ListingBounds::default() };
    let window = PullRequestWindow { merged_since: days_ago(10), updated_since: None };
    let pulls = session(&clients_with(&stub.url, bounds), bitbucket())
        .await
        .merged_pull_requests(&repo(Platform::Bitbucket, "acme/checkout-api"), window)
        .await
        .unwrap();
    let files = &pulls[0].files;
    assert_eq!(files[0].ranges, [LineRange::new(38, 47), LineRange::new(100, 100)]);
    assert_eq!(files[1].previous_path.as_deref(), Some("billing/money.py"), "the diffstat still has the rename");
    assert!(files[1..].iter().all(|file| file.ranges.is_empty()), "{files:?}");
}

#[actix_web::test]
async fn a_diff_bitbucket_cannot_give_leaves_the_paths_without_ranges() {
    let merged = rfc3339(days_ago(1));
    let stub = Stub::start(move |seen, _| match seen.path.as_str() {
        p if p == format!("{REPO}/pullrequests") => Reply::json(200, json!({"values": [pull(8, &merged)]})),
        p if p == format!("{REPO}/pullrequests/8/diffstat") => Reply::json(
            200,
            json!({"values": [{"status": "modified", "old": {"path": "a.py"}, "new": {"path": "a.py"}}]}),
        ),
        p if p == format!("{REPO}/pullrequests/8/diff") => {
            Reply::json(555, json!({"type": "error", "error": {"message": "Diff too large"}}))
        }
        _ => Reply::json(404, json!({"type": "error", "error": {"message": "Not found"}})),
    });
    let window = PullRequestWindow { merged_since: days_ago(10), updated_since: None };
    let pulls = session(&clients(&stub.url), bitbucket())
        .await
        .merged_pull_requests(&repo(Platform::Bitbucket, "acme/checkout-api"), window)
        .await
        .unwrap();
    assert_eq!(pulls[0].files, [ChangedFile::path_only("a.py")]);
}
