//! GET /v1/config/repos: cursor pagination, filters, parameter checks.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use crate::common::{TestApp, error_fields, error_parts, github, parts};
use serde_json::{Value, json};

fn gitlab(repos: &[&str]) -> Value {
    json!({"platform": "gitlab", "credentials": {"token": "glpat-testtokenvalue000001"}, "repositories": repos})
}

/// Creates 7 connections: 4 on GitHub, 3 on GitLab; returns their ids in creation order.
async fn seven(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..7 {
        let repo = format!("acme/repo-{i}");
        let body = if i % 2 == 0 { github(&[&repo]) } else { gitlab(&[&repo]) };
        ids.push(app.create(&body).await);
    }
    ids
}

async fn page(app: &TestApp, query: &str) -> (Vec<String>, Option<String>) {
    let (status, body) = parts(app.get(&format!("/v1/config/repos{query}")).await).await;
    assert_eq!(status, 200, "{query}: {body}");
    assert_eq!(body["success"], true);
    assert!(body["meta"].as_object().unwrap().contains_key("nextCursor"), "{body}");
    let ids = body["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect();
    (ids, body["meta"]["nextCursor"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn pages_follow_next_cursor_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let ids = seven(&app).await;

    let (first, cursor) = page(&app, "?limit=3").await;
    assert_eq!(first.len(), 3);
    let cursor = cursor.expect("a next page");
    let (second, cursor) = page(&app, &format!("?limit=3&cursor={cursor}")).await;
    assert_eq!(second.len(), 3);
    let cursor = cursor.expect("a last page");
    let (third, cursor) = page(&app, &format!("?cursor={cursor}&limit=3")).await;
    assert_eq!(third.len(), 1);
    assert_eq!(cursor, None, "the last page has no next cursor");

    let seen: Vec<String> = [first, second, third].concat();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 7, "duplicates across pages: {seen:?}");
    assert_eq!(unique, ids.iter().collect::<HashSet<_>>());
    // docs/api.md: the listing runs in creation order.
    assert_eq!(seen, ids);

    // The same walk twice gives the same order.
    let (again, _) = page(&app, "?limit=3").await;
    assert_eq!(again, seen[..3]);
}

#[tokio::test]
async fn an_exact_fit_has_no_empty_last_page_and_the_default_is_50() {
    let app = TestApp::spawn().await;
    let ids = seven(&app).await;
    let (all, cursor) = page(&app, "?limit=7").await;
    assert_eq!((all.len(), cursor), (7, None));
    let (all, cursor) = page(&app, "").await;
    assert_eq!((all.len(), cursor), (7, None));
    let (all, cursor) = page(&app, "?limit=100").await;
    assert_eq!(all.iter().collect::<HashSet<_>>(), ids.iter().collect::<HashSet<_>>());
    assert_eq!(cursor, None);

    // An empty project lists nothing, with a null cursor.
    let empty = TestApp::spawn().await;
    let (status, body) = parts(empty.get("/v1/config/repos").await).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["meta"]["nextCursor"], Value::Null);
}

#[tokio::test]
async fn the_default_page_size_is_50() {
    let app = TestApp::spawn_with(sigsentry_domain::Plan::Business, &[]).await;
    for i in 0..51 {
        app.create(&github(&[&format!("acme/many-{i}")])).await;
    }
    let (first, cursor) = page(&app, "").await;
    assert_eq!(first.len(), 50);
    let (rest, cursor) = page(&app, &format!("?cursor={}", cursor.unwrap())).await;
    assert_eq!((rest.len(), cursor), (1, None));
    assert!(!first.contains(&rest[0]));
}

#[tokio::test]
async fn filters_by_platform_and_activity() {
    let app = TestApp::spawn().await;
    let ids = seven(&app).await;
    let gitlab_ids: HashSet<&String> = ids.iter().skip(1).step_by(2).collect();

    let (found, cursor) = page(&app, "?platform=gitlab").await;
    assert_eq!(found.iter().collect::<HashSet<_>>(), gitlab_ids);
    assert_eq!(cursor, None);
    let (found, _) = page(&app, "?platform=github").await;
    assert_eq!(found.len(), 4);
    let (found, _) = page(&app, "?platform=bitbucket").await;
    assert!(found.is_empty());

    // Pause two: one GitHub, one GitLab.
    for id in [&ids[0], &ids[1]] {
        let (status, _) = parts(app.put_json(id, &json!({"isActive": false})).await).await;
        assert_eq!(status, 200);
    }
    let (paused, _) = page(&app, "?isActive=false").await;
    assert_eq!(paused.iter().collect::<HashSet<_>>(), [&ids[0], &ids[1]].into_iter().collect::<HashSet<_>>());
    let (active, _) = page(&app, "?isActive=true").await;
    assert_eq!(active.len(), 5);
    assert!(!active.contains(&ids[0]) && !active.contains(&ids[1]));
    let (both, _) = page(&app, "?platform=gitlab&isActive=false").await;
    assert_eq!(both, [ids[1].clone()]);

    // Filters and pages together.
    let (first, cursor) = page(&app, "?platform=gitlab&limit=2").await;
    assert_eq!(first.len(), 2);
    let (second, cursor) = page(&app, &format!("?platform=gitlab&limit=2&cursor={}", cursor.unwrap())).await;
    assert_eq!((second.len(), cursor), (1, None));
    let all: HashSet<&String> = first.iter().chain(&second).collect();
    assert_eq!(all, gitlab_ids);
}

#[tokio::test]
async fn listed_connections_have_the_documented_shape() {
    let app = TestApp::spawn().await;
    app.create(&github(&["acme/a"])).await;
    let (_, body) = parts(app.get("/v1/config/repos").await).await;
    let conn = &body["data"][0];
    for field in [
        "id",
        "projectId",
        "platform",
        "baseUrl",
        "credentials",
        "repositories",
        "serviceMappings",
        "lookbackDays",
        "isActive",
        "sync",
        "createdAt",
        "updatedAt",
    ] {
        assert!(conn.as_object().unwrap().contains_key(field), "{field} missing: {conn}");
    }
    assert_eq!(conn["projectId"], app.project_id.to_string());
    // Times: RFC 3339, UTC.
    for time in [&conn["createdAt"], &conn["updatedAt"], &conn["credentials"]["updatedAt"]] {
        let text = time.as_str().unwrap();
        assert!(text.ends_with('Z'), "{text}");
        chrono::DateTime::parse_from_rfc3339(text).unwrap();
    }
    assert_eq!(conn["sync"][0]["lastSyncedAt"], Value::Null);
    assert!(!body.to_string().contains("ghp_testtokenvalue"));
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter() {
    let app = TestApp::spawn().await;
    seven(&app).await;
    let cases = [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=x", "limit"),
        ("?limit=-1", "limit"),
        ("?limit=", "limit"),
        ("?limit=3.5", "limit"),
        ("?cursor=garbage", "cursor"),
        ("?cursor=", "cursor"),
        ("?platform=svn", "platform"),
        ("?platform=GitHub", "platform"),
        ("?isActive=yes", "isActive"),
        ("?isActive=1", "isActive"),
        ("?is_active=true", "is_active"),
        ("?page=2", "page"),
        ("?limit=2&limit=3", "limit"),
    ];
    for (query, field) in cases {
        let (status, error) = error_parts(app.get(&format!("/v1/config/repos{query}")).await).await;
        assert_eq!(status, 400, "{query}: {error}");
        let fields = error_fields(&error, "VALIDATION_ERROR");
        assert!(fields.contains(&field.to_owned()), "{query}: {fields:?}");
    }
    // Every bad parameter at once.
    let (_, error) = error_parts(app.get("/v1/config/repos?limit=0&platform=svn&foo=1").await).await;
    let mut fields = error_fields(&error, "VALIDATION_ERROR");
    fields.sort();
    assert_eq!(fields, ["foo", "limit", "platform"]);
}

#[tokio::test]
async fn a_cursor_survives_changes_between_pages() {
    let app = TestApp::spawn().await;
    let ids = seven(&app).await;
    let (first, cursor) = page(&app, "?limit=3").await;
    let cursor = cursor.unwrap();
    // The connection the cursor points after is deleted, and a new one is created.
    let (status, _) = parts(app.delete(&format!("/v1/config/repos/{}", first[2])).await).await;
    assert_eq!(status, 200);
    let newest = app.create(&github(&["acme/late-comer"])).await;

    let mut rest = Vec::new();
    let mut next = Some(cursor);
    while let Some(cursor) = next {
        let (ids, cursor) = page(&app, &format!("?limit=3&cursor={cursor}")).await;
        rest.extend(ids);
        next = cursor;
    }
    // Nothing seen twice; every connection that existed throughout is seen.
    assert!(rest.iter().all(|id| !first.contains(id)), "{first:?} / {rest:?}");
    let seen: HashSet<&String> = first.iter().chain(&rest).collect();
    for id in ids.iter().filter(|id| **id != first[2]) {
        assert!(seen.contains(id), "{id} skipped");
    }
    assert_eq!(seen.len(), rest.len() + first.len());
    // Creation order (docs/api.md): the late comer comes last.
    assert_eq!(rest.last(), Some(&newest));
}
