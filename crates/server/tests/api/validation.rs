//! Every validation rule of the contract, with the JSON pointer it names.
#![allow(clippy::unwrap_used)]

use crate::common::{TestApp, detail_at, error_fields, error_parts, github, parts};
use futures_util::future::join_all;
use serde_json::{Value, json};
use sigsentry_domain::{Permission, Plan};

/// POSTs `body`, expects a 400 VALIDATION_ERROR and returns the detail fields and the body.
async fn refused(app: &TestApp, body: &Value) -> (Vec<String>, Value) {
    let (status, error) = error_parts(app.post_json(body).await).await;
    assert_eq!(status, 400, "expected 400 for {body}: {error}");
    (error_fields(&error, "VALIDATION_ERROR"), error)
}

/// Asserts that POSTing `body` is refused with a detail at `field`.
async fn refused_at(app: &TestApp, body: &Value, field: &str) -> Value {
    let (fields, error) = refused(app, body).await;
    assert!(fields.iter().any(|f| f == field), "expected {field} for {body}, got {fields:?}: {error}");
    error
}

/// POSTs `body` and expects 201; returns the stored connection.
async fn accepted(app: &TestApp, body: &Value) -> Value {
    let id = app.create(body).await;
    app.connection(&id).await
}

fn gitlab(repos: &[&str]) -> Value {
    json!({"platform": "gitlab", "credentials": {"token": "glpat-testtokenvalue000001"}, "repositories": repos})
}

fn bitbucket(credentials: Value, repos: &[&str]) -> Value {
    json!({"platform": "bitbucket", "credentials": credentials, "repositories": repos})
}

/// `body` with the value at `pointer` set (the last segment may be new).
fn with(mut body: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match body.pointer_mut(parent).unwrap() {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
        }
        other => *other.pointer_mut(&format!("/{key}")).unwrap() = value,
    }
    body
}

fn with_base_url(repo: &str, url: &str) -> Value {
    let mut body = github(&[repo]);
    body["credentials"]["baseUrl"] = json!(url);
    body
}

#[tokio::test]
async fn platform_is_required_and_must_be_known() {
    let app = TestApp::spawn().await;
    let mut body = github(&["acme/a"]);
    body.as_object_mut().unwrap().remove("platform");
    refused_at(&app, &body, "/platform").await;
    for platform in [json!("svn"), json!("GitHub"), json!(""), json!(1), json!(["github"])] {
        let error = refused_at(&app, &with(github(&["acme/a"]), "/platform", platform.clone()), "/platform").await;
        let message = detail_at(&error, "/platform").unwrap()["message"].as_str().unwrap().to_owned();
        assert!(!message.is_empty(), "{platform}");
    }
    assert!(app.all_connections().await.is_empty());
}

#[tokio::test]
async fn required_fields_are_named() {
    let app = TestApp::spawn().await;
    let (fields, _) = refused(&app, &json!({})).await;
    for field in ["/platform", "/credentials", "/repositories"] {
        assert!(fields.contains(&field.to_owned()), "{field} in {fields:?}");
    }
    let mut body = github(&["acme/a"]);
    body.as_object_mut().unwrap().remove("credentials");
    refused_at(&app, &body, "/credentials").await;
    let mut body = github(&["acme/a"]);
    body.as_object_mut().unwrap().remove("repositories");
    refused_at(&app, &body, "/repositories").await;
}

#[tokio::test]
async fn token_platforms_need_a_token_and_nothing_else() {
    let app = TestApp::spawn().await;
    for make in [github, gitlab] {
        let base = make(&["acme/a"]);
        refused_at(&app, &with(base.clone(), "/credentials", json!({})), "/credentials/token").await;
        refused_at(
            &app,
            &with(base.clone(), "/credentials", json!({"baseUrl": "https://git.example.com"})),
            "/credentials/token",
        )
        .await;
        refused_at(&app, &with(base.clone(), "/credentials/token", json!("")), "/credentials/token").await;
        refused_at(&app, &with(base.clone(), "/credentials/token", json!(42)), "/credentials/token").await;
        // Bitbucket's fields on a token platform are named, not ignored.
        for (field, value) in
            [("username", "octocat"), ("appPassword", "app-password-1234567"), ("email", "a@b.io"), ("apiToken", "t")]
        {
            let mut body = base.clone();
            body["credentials"][field] = json!(value);
            refused_at(&app, &body, &format!("/credentials/{field}")).await;
        }
        refused_at(&app, &with(base.clone(), "/credentials", json!("ghp_x")), "/credentials").await;
    }
    assert!(app.all_connections().await.is_empty());
}

#[tokio::test]
async fn bitbucket_takes_an_app_password_or_an_api_token() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({}), "/credentials"),
        (json!({"username": "dev"}), "/credentials/appPassword"),
        (json!({"appPassword": "app-password-1234567"}), "/credentials/username"),
        (json!({"email": "dev@acme.io"}), "/credentials/apiToken"),
        (json!({"apiToken": "atl-token-12345678901"}), "/credentials/email"),
        (json!({"username": "dev", "appPassword": "app-pw-1234567890", "email": "dev@acme.io"}), "/credentials"),
        (json!({"username": "dev", "apiToken": "atl-token-12345678901"}), "/credentials"),
        (json!({"username": "dev", "appPassword": "app-pw-1234567890", "token": "tok"}), "/credentials/token"),
        (json!({"email": "not-an-email", "apiToken": "atl-token-12345678901"}), "/credentials/email"),
        (json!({"username": "has space", "appPassword": "app-pw-1234567890"}), "/credentials/username"),
    ];
    for (credentials, field) in cases {
        refused_at(&app, &bitbucket(credentials, &["acme/a"]), field).await;
    }
    let conn =
        accepted(&app, &bitbucket(json!({"username": "dev", "appPassword": "app-pw-1234567890"}), &["ws/one"])).await;
    assert_eq!(conn["credentials"]["kind"], "appPassword");
    assert_eq!(conn["baseUrl"], Value::Null);
    let conn =
        accepted(&app, &bitbucket(json!({"email": "dev@acme.io", "apiToken": "atl-token-12345678901"}), &["ws/two"]))
            .await;
    assert_eq!(conn["credentials"]["kind"], "apiToken");
    assert_eq!(conn["credentials"]["hint"], "…8901");
}

#[tokio::test]
async fn secrets_have_no_whitespace_and_at_most_1024_characters() {
    let app = TestApp::spawn().await;
    for token in ["ghp_has space", "ghp_tab\there", "ghp_newline\nx", " ghp_leading", "ghp_trailing "] {
        refused_at(&app, &with(github(&["acme/a"]), "/credentials/token", json!(token)), "/credentials/token").await;
    }
    let long = "a".repeat(1025);
    refused_at(&app, &with(github(&["acme/a"]), "/credentials/token", json!(long)), "/credentials/token").await;
    let long = "b".repeat(1025);
    let body = bitbucket(json!({"username": "dev", "appPassword": long}), &["ws/a"]);
    refused_at(&app, &body, "/credentials/appPassword").await;
    let body = bitbucket(json!({"email": "dev@acme.io", "apiToken": "x y"}), &["ws/a"]);
    refused_at(&app, &body, "/credentials/apiToken").await;

    // A short secret gets no hint at all: four characters would give too much away.
    let conn = accepted(&app, &with(github(&["acme/short"]), "/credentials/token", json!("ghp_short1"))).await;
    assert_eq!(conn["credentials"]["hint"], Value::Null);
    assert!(!conn.to_string().contains("ghp_short1"));

    // Exactly 1024 is fine, and only the tail shows.
    let conn = accepted(&app, &with(github(&["acme/a"]), "/credentials/token", json!("c".repeat(1020) + "WXYZ"))).await;
    assert_eq!(conn["credentials"]["hint"], "…WXYZ");
    assert!(!conn.to_string().contains(&"c".repeat(20)));
}

#[tokio::test]
async fn base_urls_must_be_public_https_without_extras() {
    let app = TestApp::spawn().await;
    let refused_urls = [
        "http://github.example.com/api/v3",
        "ftp://github.example.com",
        "github.example.com",
        "https://user:pass@github.example.com",
        "https://user@github.example.com",
        "https://github.example.com/api/v3?token=x",
        "https://github.example.com/api/v3#frag",
        "https://127.0.0.1",
        "https://127.0.0.1:8443/api/v3",
        "https://localhost",
        "https://localhost:8443",
        "https://api.localhost",
        "https://10.0.0.5",
        "https://192.168.1.10",
        "https://172.16.0.1",
        "https://[::1]",
        "https://169.254.169.254",
        "https://169.254.169.254/latest/meta-data",
        "https://metadata.google.internal",
        "https://0.0.0.0",
        // The same addresses in the spellings URL parsers accept.
        "https://2130706433",
        "https://0x7f000001",
        "https://0177.0.0.1",
        "https://127.1",
        "https://10.0.0.5.",
        "https://LOCALHOST",
        "https://localhost.",
        "https://[0:0:0:0:0:0:0:1]",
        "https://[::ffff:127.0.0.1]",
        "https://[::ffff:a9fe:a9fe]",
        "",
    ];
    for url in refused_urls {
        refused_at(&app, &with_base_url("acme/a", url), "/credentials/baseUrl").await;
    }
    assert!(app.all_connections().await.is_empty());

    // A public https URL is kept, without its trailing slash.
    let conn = accepted(&app, &with_base_url("acme/a", "https://github.example.com/api/v3/")).await;
    assert_eq!(conn["baseUrl"], "https://github.example.com/api/v3");
    // null is the cloud host.
    let conn = accepted(&app, &with(github(&["acme/b"]), "/credentials/baseUrl", Value::Null)).await;
    assert_eq!(conn["baseUrl"], Value::Null);
}

#[tokio::test]
async fn private_base_urls_when_the_operator_allows_them_but_never_metadata() {
    let app = TestApp::spawn_with(Plan::Team, &[("SIGSENTRY_ALLOW_PRIVATE_BASE_URLS", "true")]).await;
    let allowed = [
        "http://gitlab.internal",
        "https://127.0.0.1:8443",
        "http://localhost:8080",
        "https://10.0.0.5",
        "http://192.168.1.10/api/v3",
    ];
    for (i, url) in allowed.iter().enumerate() {
        let repo = format!("acme/private-{i}");
        let conn = accepted(&app, &with_base_url(&repo, url)).await;
        assert_eq!(conn["baseUrl"], url.trim_end_matches('/'), "{url}");
    }
    for url in [
        "https://169.254.169.254",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]",
        "http://metadata.google.internal",
        "http://METADATA.google.internal.",
        "https://0.0.0.0",
        "http://2852039166",
        "http://[::ffff:169.254.169.254]",
        "http://[fd00:ec2::254]",
        "http://100.100.100.200",
    ] {
        refused_at(&app, &with_base_url("acme/meta", url), "/credentials/baseUrl").await;
    }
    // The other form rules still hold.
    refused_at(&app, &with_base_url("acme/meta", "http://user:pw@10.0.0.5"), "/credentials/baseUrl").await;
    assert_eq!(app.all_connections().await.len(), allowed.len());
}

#[tokio::test]
async fn bitbucket_takes_no_base_url() {
    let app = TestApp::spawn().await;
    let body = bitbucket(
        json!({"username": "dev", "appPassword": "app-pw-1234567890", "baseUrl": "https://bb.example.com"}),
        &["ws/a"],
    );
    refused_at(&app, &body, "/credentials/baseUrl").await;
}

#[tokio::test]
async fn repositories_are_1_to_100_distinct_names() {
    // Enterprise: room for 100 repositories in the project.
    let app = TestApp::spawn_with(Plan::Enterprise, &[]).await;
    refused_at(&app, &github(&[]), "/repositories").await;
    let many: Vec<String> = (0..101).map(|i| format!("acme/repo-{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    refused_at(&app, &github(&many), "/repositories").await;
    refused_at(&app, &with(github(&["acme/a"]), "/repositories", json!("acme/a")), "/repositories").await;
    refused_at(&app, &with(github(&["acme/a"]), "/repositories", json!(["acme/a", 7])), "/repositories/1").await;

    // Duplicates, also differing only in case: the second is named.
    let (fields, _) = refused(&app, &github(&["acme/api", "acme/web", "ACME/Api"])).await;
    assert_eq!(fields, ["/repositories/2"]);
    assert!(app.all_connections().await.is_empty());

    // 100 is fine.
    let hundred: Vec<String> = (0..100).map(|i| format!("acme/repo-{i}")).collect();
    let hundred: Vec<&str> = hundred.iter().map(String::as_str).collect();
    let conn = accepted(&app, &github(&hundred)).await;
    assert_eq!(conn["repositories"].as_array().unwrap().len(), 100);
    assert_eq!(conn["sync"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn repository_names_follow_each_platform() {
    let app = TestApp::spawn().await;
    for bad in ["a/b/c", "acme", "acme/", "/repo", "-acme/repo", "ac me/repo", "acme/re po"] {
        refused_at(&app, &github(&["acme/ok", bad]), "/repositories/1").await;
    }
    for bad in ["a", "a//b", "a/b/"] {
        refused_at(&app, &gitlab(&[bad]), "/repositories/0").await;
    }
    let bb = json!({"username": "dev", "appPassword": "app-pw-1234567890"});
    for bad in ["ws/a/b", "ws", "ws/re po"] {
        refused_at(&app, &bitbucket(bb.clone(), &[bad]), "/repositories/0").await;
    }
    // What each platform accepts.
    let conn = accepted(&app, &gitlab(&["a/b/c", "group/sub/deeper/project"])).await;
    assert_eq!(conn["repositories"], json!(["a/b/c", "group/sub/deeper/project"]));
    let conn = accepted(&app, &github(&["octo-org/hello.world_repo"])).await;
    assert_eq!(conn["platform"], "github");
    let conn = accepted(&app, &bitbucket(bb, &["my-workspace/repo-slug"])).await;
    assert_eq!(conn["platform"], "bitbucket");
}

fn with_mappings(repos: &[&str], mappings: Value) -> Value {
    let mut body = github(repos);
    body["serviceMappings"] = mappings;
    body
}

#[tokio::test]
async fn service_mappings_are_checked_field_by_field() {
    let app = TestApp::spawn().await;
    let repos = ["acme/checkout-api", "acme/billing"];
    let one = |mapping: Value| with_mappings(&repos, json!([mapping]));
    let cases = [
        (json!({"serviceName": "", "repo": "acme/checkout-api"}), "/serviceMappings/0/serviceName"),
        (json!({"serviceName": "x".repeat(129), "repo": "acme/checkout-api"}), "/serviceMappings/0/serviceName"),
        (json!({"serviceName": "bad\u{7}name", "repo": "acme/checkout-api"}), "/serviceMappings/0/serviceName"),
        (json!({"repo": "acme/checkout-api"}), "/serviceMappings/0/serviceName"),
        (json!({"serviceName": "checkout"}), "/serviceMappings/0/repo"),
        (json!({"serviceName": "checkout", "repo": "acme/elsewhere"}), "/serviceMappings/0/repo"),
        (
            json!({"serviceName": "checkout", "repo": "acme/checkout-api", "pathPrefix": "/src"}),
            "/serviceMappings/0/pathPrefix",
        ),
        (
            json!({"serviceName": "checkout", "repo": "acme/checkout-api", "pathPrefix": "src/../etc"}),
            "/serviceMappings/0/pathPrefix",
        ),
        (
            json!({"serviceName": "checkout", "repo": "acme/checkout-api", "pathPrefix": ".."}),
            "/serviceMappings/0/pathPrefix",
        ),
        (
            json!({"serviceName": "checkout", "repo": "acme/checkout-api", "pathPrefix": "src\\main"}),
            "/serviceMappings/0/pathPrefix",
        ),
        (
            json!({"serviceName": "checkout", "repo": "acme/checkout-api", "defaultBranch": "a..b"}),
            "/serviceMappings/0/defaultBranch",
        ),
        (
            json!({"serviceName": "checkout", "repo": "acme/checkout-api", "defaultBranch": ""}),
            "/serviceMappings/0/defaultBranch",
        ),
        (
            json!({"serviceName": "checkout", "repo": "acme/checkout-api", "defaultBranch": "has space"}),
            "/serviceMappings/0/defaultBranch",
        ),
        (
            json!({"serviceName": "checkout", "repo": "acme/checkout-api", "branch": "main"}),
            "/serviceMappings/0/branch",
        ),
    ];
    for (mapping, field) in cases {
        refused_at(&app, &one(mapping), field).await;
    }
    // The second of two mappings is pointed at by its index.
    let body = with_mappings(
        &repos,
        json!([
            {"serviceName": "checkout", "repo": "acme/checkout-api"},
            {"serviceName": "billing", "repo": "acme/nowhere"}
        ]),
    );
    let (fields, _) = refused(&app, &body).await;
    assert_eq!(fields, ["/serviceMappings/1/repo"]);
    // A service name twice in one request.
    let body = with_mappings(
        &repos,
        json!([
            {"serviceName": "checkout", "repo": "acme/checkout-api"},
            {"serviceName": "checkout", "repo": "acme/billing"}
        ]),
    );
    let (fields, _) = refused(&app, &body).await;
    assert_eq!(fields, ["/serviceMappings/1/serviceName"]);
    assert!(app.all_connections().await.is_empty());
}

#[tokio::test]
async fn accepted_mappings_are_normalized() {
    let app = TestApp::spawn().await;
    let body = with_mappings(
        &["acme/checkout-api", "acme/billing"],
        json!([
            {"serviceName": "checkout", "repo": "acme/checkout-api", "pathPrefix": "src", "defaultBranch": "release/2026.11"},
            {"serviceName": "billing", "repo": "ACME/Billing"},
            {"serviceName": "x".repeat(128), "repo": "acme/billing", "pathPrefix": "services/x/"}
        ]),
    );
    let conn = accepted(&app, &body).await;
    let mappings = conn["serviceMappings"].as_array().unwrap();
    assert_eq!(mappings.len(), 3);
    assert_eq!(mappings[0]["pathPrefix"], "src/");
    assert_eq!(mappings[0]["defaultBranch"], "release/2026.11");
    assert_eq!(mappings[1]["pathPrefix"], "");
    assert_eq!(mappings[1]["defaultBranch"], Value::Null);
    assert_eq!(mappings[2]["pathPrefix"], "services/x/");
}

/// Found by schemathesis: a 1024-character prefix sent without its final `/`
/// was stored with one, then refused when read back, so every read of the
/// connection answered 500. Limits count characters, not bytes, as the
/// document does.
#[tokio::test]
async fn the_longest_values_are_read_back() {
    let app = TestApp::spawn().await;
    let prefix = "é".repeat(1024);
    let branch = "é".repeat(255);
    let email = format!("{}@acme.io", "é".repeat(246));
    let body = with_mappings(
        &["acme/checkout-api"],
        json!([{"serviceName": "checkout", "repo": "acme/checkout-api", "pathPrefix": prefix, "defaultBranch": branch}]),
    );
    let conn = accepted(&app, &body).await;
    assert_eq!(conn["serviceMappings"][0]["pathPrefix"], format!("{prefix}/"));
    assert_eq!(conn["serviceMappings"][0]["defaultBranch"], branch.as_str());
    let listed = app.all_connections().await;
    assert_eq!(listed.len(), 1);
    let body = bitbucket(json!({"email": email, "apiToken": "ATATT3xFfGF0abcdef"}), &["acme/bb"]);
    accepted(&app, &body).await;
    refused_at(
        &app,
        &with_mappings(
            &["acme/x"],
            json!([{"serviceName": "x", "repo": "acme/x", "pathPrefix": format!("{prefix}x")}]),
        ),
        "/serviceMappings/0/pathPrefix",
    )
    .await;
}

#[tokio::test]
async fn lookback_days_is_an_integer_from_1_to_365() {
    let app = TestApp::spawn().await;
    for days in [json!(0), json!(366), json!(-1), json!("30"), json!(30.5), json!(true), json!(1e10)] {
        let mut body = github(&["acme/a"]);
        body["lookbackDays"] = days.clone();
        let (fields, _) = refused(&app, &body).await;
        assert_eq!(fields, ["/lookbackDays"], "{days}");
    }
    for (i, days) in [1, 365].into_iter().enumerate() {
        let mut body = github(&[&format!("acme/days-{i}")]);
        body["lookbackDays"] = json!(days);
        assert_eq!(accepted(&app, &body).await["lookbackDays"], days);
    }
    assert_eq!(accepted(&app, &github(&["acme/default"])).await["lookbackDays"], 30);
    // JSON Schema's integers (the document's type) include numbers written with a zero
    // fraction; schemathesis sent 186.0 and was refused.
    for (i, days) in [json!(186.0), json!(1.5e2)].into_iter().enumerate() {
        let mut body = github(&[&format!("acme/fraction-{i}")]);
        body["lookbackDays"] = days.clone();
        assert_eq!(accepted(&app, &body).await["lookbackDays"], days.as_f64().unwrap() as i64, "{days}");
    }
}

#[tokio::test]
async fn unknown_fields_are_named_with_a_suggestion() {
    let app = TestApp::spawn().await;
    let mut body = github(&["acme/a"]);
    body["lookback_days"] = json!(30);
    let error = refused_at(&app, &body, "/lookback_days").await;
    let message = detail_at(&error, "/lookback_days").unwrap()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("lookbackDays"), "{message}");

    let mut body = github(&["acme/a"]);
    body["credentials"]["base_url"] = json!("https://github.example.com");
    let error = refused_at(&app, &body, "/credentials/base_url").await;
    assert!(detail_at(&error, "/credentials/base_url").unwrap()["message"].as_str().unwrap().contains("baseUrl"));

    let body = with_mappings(&["acme/a"], json!([{"service_name": "a", "repo": "acme/a"}]));
    let error = refused_at(&app, &body, "/serviceMappings/0/service_name").await;
    assert!(error.to_string().contains("serviceName"), "{error}");

    // isActive is not a create field.
    let mut body = github(&["acme/a"]);
    body["isActive"] = json!(false);
    refused_at(&app, &body, "/isActive").await;
    let mut body = github(&["acme/a"]);
    body["whatever"] = json!(1);
    refused_at(&app, &body, "/whatever").await;
    assert!(app.all_connections().await.is_empty());
}

#[tokio::test]
async fn nulls_are_refused_where_they_mean_nothing() {
    let app = TestApp::spawn().await;
    let cases = [
        ("/platform", with(github(&["acme/a"]), "/platform", Value::Null)),
        ("/credentials", with(github(&["acme/a"]), "/credentials", Value::Null)),
        ("/credentials/token", with(github(&["acme/a"]), "/credentials/token", Value::Null)),
        ("/repositories", with(github(&["acme/a"]), "/repositories", Value::Null)),
        ("/repositories/1", with(github(&["acme/a", "acme/b"]), "/repositories/1", Value::Null)),
        ("/lookbackDays", {
            let mut b = github(&["acme/a"]);
            b["lookbackDays"] = Value::Null;
            b
        }),
        ("/serviceMappings", with_mappings(&["acme/a"], Value::Null)),
        (
            "/serviceMappings/0/pathPrefix",
            with_mappings(&["acme/a"], json!([{"serviceName": "a", "repo": "acme/a", "pathPrefix": null}])),
        ),
        (
            "/serviceMappings/0/defaultBranch",
            with_mappings(&["acme/a"], json!([{"serviceName": "a", "repo": "acme/a", "defaultBranch": null}])),
        ),
    ];
    for (field, body) in cases {
        refused_at(&app, &body, field).await;
    }
    assert!(app.all_connections().await.is_empty());
}

#[tokio::test]
async fn a_secret_never_comes_back_in_an_error() {
    let app = TestApp::spawn().await;
    let secret = "ghp_TopSecretValue9f8e7d6c5b4a";
    let bodies = [
        with(github(&["acme/a"]), "/repositories", json!(secret)),
        with(github(&["acme/a"]), "/repositories", json!([secret])),
        with(github(&["acme/a"]), "/repositories", json!(["acme/a", {"token": secret}])),
        with(github(&["acme/a"]), "/platform", json!(secret)),
        with(github(&["acme/a"]), "/credentials/token", json!(format!("{secret} "))),
        with(github(&["acme/a"]), "/credentials/token", json!(format!("{secret}{}", "x".repeat(1100)))),
        with(github(&["acme/a"]), "/credentials/baseUrl", json!(format!("https://{secret}@github.example.com"))),
        with(github(&["acme/a"]), "/credentials/baseUrl", json!(format!("https://github.example.com/?t={secret}"))),
        with(github(&["acme/a"]), "/credentials/baseUrl", json!(secret)),
        with(github(&["acme/a"]), "/credentials/baseUrl", json!(7)),
        {
            let mut b = github(&["acme/a"]);
            b["lookbackDays"] = json!(secret);
            b
        },
        with_mappings(
            &["acme/a"],
            json!([{"serviceName": "a", "repo": "acme/a", "defaultBranch": secret.to_owned() + ".."}]),
        ),
        with_mappings(&["acme/a"], json!([{"serviceName": "a", "repo": secret}])),
        bitbucket(json!({"username": "dev", "appPassword": secret, "token": secret}), &["ws/a"]),
        bitbucket(json!({"email": secret, "apiToken": secret}), &["ws/a"]),
    ];
    for body in bodies {
        let response = app.post_json(&body).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, 400, "{text}");
        assert!(!text.contains("TopSecretValue"), "the secret leaked: {text}");
    }
    // Malformed JSON around a secret.
    let raw =
        format!("{{\"platform\": \"github\", \"credentials\": {{\"token\": \"{secret}\"}} \"repositories\": []}}");
    let response = app.request(reqwest::Method::POST, "/v1/config/repos").header("content-type", "application/json");
    let text = response.body(raw).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("VALIDATION_ERROR"), "{text}");
    assert!(!text.contains("TopSecretValue"), "the secret leaked: {text}");
}

#[tokio::test]
async fn a_repository_already_attached_in_the_project_is_a_conflict() {
    let app = TestApp::spawn().await;
    let first = app.create(&github(&["acme/checkout-api", "acme/shared"])).await;
    for taken in ["acme/shared", "ACME/Shared"] {
        let (status, error) = error_parts(app.post_json(&github(&["acme/new-one", taken])).await).await;
        assert_eq!(status, 409, "{taken}: {error}");
        error_fields(&error, "CONFLICT");
        let details = error["error"]["details"].as_array().unwrap();
        assert!(details.iter().any(|d| d["connectionId"] == first.as_str()), "{error}");
    }
    // Nothing was created; acme/new-one is still free.
    assert_eq!(app.all_connections().await.len(), 1);
    app.create(&github(&["acme/new-one"])).await;

    // The same repository in another project of the tenant is fine.
    let other = app.services.create_project(app.tenant_id, "other").await.unwrap();
    let key = app.key_with(Some(other.id), &[Permission::ConfigRead, Permission::ConfigWrite]).await;
    let response = app
        .request_as(&key, reqwest::Method::POST, "/v1/config/repos")
        .json(&github(&["acme/checkout-api", "acme/shared"]))
        .send()
        .await
        .unwrap();
    let (status, body) = parts(response).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_service_name_mapped_in_the_project_is_a_conflict() {
    let app = TestApp::spawn().await;
    let first = app
        .create(&with_mappings(
            &["acme/checkout-api"],
            json!([{"serviceName": "checkout", "repo": "acme/checkout-api"}]),
        ))
        .await;
    let body = with_mappings(&["acme/checkout-v2"], json!([{"serviceName": "checkout", "repo": "acme/checkout-v2"}]));
    let (status, error) = error_parts(app.post_json(&body).await).await;
    assert_eq!(status, 409, "{error}");
    error_fields(&error, "CONFLICT");
    let details = error["error"]["details"].as_array().unwrap();
    assert!(details.iter().any(|d| d["connectionId"] == first.as_str()), "{error}");
    assert_eq!(app.all_connections().await.len(), 1);

    // Another name is fine; so is the same name in another project.
    let body2 =
        with_mappings(&["acme/checkout-v2"], json!([{"serviceName": "checkout-v2", "repo": "acme/checkout-v2"}]));
    app.create(&body2).await;
    let other = app.services.create_project(app.tenant_id, "other").await.unwrap();
    let key = app.key_with(Some(other.id), &[Permission::ConfigRead, Permission::ConfigWrite]).await;
    let response = app.request_as(&key, reqwest::Method::POST, "/v1/config/repos").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn every_problem_is_reported_at_once() {
    let app = TestApp::spawn().await;
    let body = json!({
        "platform": "github",
        "credentials": {"token": "has space"},
        "repositories": ["a/b/c"],
        "lookbackDays": 0
    });
    let (fields, _) = refused(&app, &body).await;
    for field in ["/credentials/token", "/repositories/0", "/lookbackDays"] {
        assert!(fields.contains(&field.to_owned()), "{field} missing from {fields:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_posts_of_one_repository_attach_it_once() {
    let app = TestApp::spawn().await;
    let requests = (0..10).map(|i| {
        let app = &app;
        async move {
            // The same repository, spelled in different cases, in otherwise different bodies.
            let name = if i % 2 == 0 { "acme/contested" } else { "Acme/Contested" };
            let body = github(&[name, &format!("acme/own-{i}")]);
            parts(app.post_json(&body).await).await
        }
    });
    let results = join_all(requests).await;
    let created: Vec<&Value> = results.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    let winner = created[0]["data"]["id"].clone();
    for (status, body) in results.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 409, "{body}");
        error_fields(body, "CONFLICT");
        assert!(body["error"]["details"].as_array().unwrap().iter().any(|d| d["connectionId"] == winner), "{body}");
    }
    assert_eq!(app.all_connections().await.len(), 1);
}

#[tokio::test]
async fn a_deleted_connection_releases_its_repositories_and_names() {
    let app = TestApp::spawn().await;
    let body = with_mappings(&["acme/a"], json!([{"serviceName": "a", "repo": "acme/a"}]));
    let first = app.create(&body).await;
    let (status, _) = error_parts(app.post_json(&body).await).await;
    assert_eq!(status, 409);
    assert_eq!(app.delete(&format!("/v1/config/repos/{first}")).await.status(), 200);
    let second = app.create(&body).await;
    assert_ne!(first, second);
}
