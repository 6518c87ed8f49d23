//! One local stub server that speaks the slice of the GitHub, GitLab and
//! Bitbucket REST APIs the sync uses, with what a test configures: the
//! tokens it accepts, the files at the default branch, the PRs it serves
//! (their files with renames and patches), a rate limit to trip.
//!
//! Each platform serves one repository: GitHub `acme/api`, GitLab
//! `acme/platform/api`, Bitbucket `acme/web`; the default branch is `main`.
//! All three serve the same [`StubState::tree`] and [`StubState::prs`], the
//! way each platform shapes them: GitHub's branch, recursive tree and PR
//! files with `patch`; GitLab's branch, keyset tree and MR diffs with
//! `diff`; Bitbucket's branch, `src` listing, and the diffstat and raw diff
//! behind their redirects.
#![allow(dead_code, clippy::unwrap_used)]

pub mod hostile;

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// One file a stub PR changed.
#[derive(Clone, Debug)]
pub struct StubFile {
    /// Its path after the PR.
    pub path: String,
    /// The path it was renamed from, if the PR renamed it.
    pub previous_path: Option<String>,
    /// Its hunks (`@@ -a,b +c,d @@` lines and the lines under them), as
    /// GitHub's `patch` and GitLab's `diff` carry them; `None` for a file
    /// without a patch (binary, too large).
    pub patch: Option<String>,
}

impl StubFile {
    /// A modified file with `patch`.
    pub fn patched(path: &str, patch: &str) -> Self {
        Self { path: path.into(), previous_path: None, patch: Some(patch.into()) }
    }

    /// A file renamed from `from` to `to`, with `patch` (if any).
    pub fn renamed(from: &str, to: &str, patch: Option<&str>) -> Self {
        Self { path: to.into(), previous_path: Some(from.into()), patch: patch.map(str::to_owned) }
    }

    /// GitHub's status for it.
    fn status(&self) -> &'static str {
        if self.previous_path.is_some() { "renamed" } else { "modified" }
    }

    /// Its path before the PR.
    fn old_path(&self) -> &str {
        self.previous_path.as_deref().unwrap_or(&self.path)
    }
}

/// A modified file without a patch.
impl From<&str> for StubFile {
    fn from(path: &str) -> Self {
        Self { path: path.into(), previous_path: None, patch: None }
    }
}

#[derive(Clone, Debug)]
pub struct StubPr {
    pub number: u64,
    pub title: String,
    pub merged_at: DateTime<Utc>,
    pub files: Vec<StubFile>,
}

#[derive(Default)]
pub struct StubState {
    /// Tokens (GitHub, GitLab) or `user:secret` pairs (Bitbucket) accepted.
    pub accepted: Vec<String>,
    /// The repository's files at its default branch (`main`), from the root.
    pub tree: Vec<String>,
    pub prs: Vec<StubPr>,
    /// When set, GitHub answers 403 with `x-ratelimit-remaining: 0` and this reset (epoch seconds).
    pub github_rate_limited_until: Option<i64>,
    /// Every path requested (with its query), for assertions.
    pub seen: Vec<String>,
    /// Sent as GitHub's `github-authentication-token-expiration` on every GitHub answer.
    pub github_token_expiration: Option<String>,
    /// GitLab's `personal_access_tokens/self` `expires_at` (a date).
    pub gitlab_token_expires_on: Option<String>,
    /// The OAuth token endpoints (GitLab's and Bitbucket's alike).
    pub oauth: OAuthEndpoint,
    /// GitHub App installations that may mint tokens.
    pub installations: Vec<u64>,
}

/// An OAuth token endpoint that rotates refresh tokens: each is good once.
#[derive(Default, Debug)]
pub struct OAuthEndpoint {
    /// Refresh tokens that may still be spent.
    pub live: Vec<String>,
    /// Refresh tokens spent, in order.
    pub spent: Vec<String>,
    /// Refresh tokens sent again after they were spent: must stay empty.
    pub reused: Vec<String>,
    /// How long the endpoint takes to answer, so that others come while it works.
    pub delay_ms: u64,
}

impl StubState {
    /// The revision of [`StubState::tree`]: it changes when the tree does.
    pub fn tree_revision(&self) -> String {
        let mut hasher = DefaultHasher::new();
        self.tree.hash(&mut hasher);
        format!("{:040x}", u128::from(hasher.finish()))
    }

    /// The directories of the tree, each once.
    fn directories(&self) -> BTreeSet<String> {
        self.tree.iter().flat_map(|path| path.match_indices('/').map(move |(end, _)| path[..end].to_owned())).collect()
    }
}

#[derive(Clone)]
pub struct Stub {
    pub base: String,
    pub state: Arc<Mutex<StubState>>,
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn authorized(req: &HttpRequest, state: &StubState) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let bearer = header("authorization").strip_prefix("Bearer ").map(str::to_owned);
    let basic = header("authorization").strip_prefix("Basic ").map(|b| {
        use base64::Engine;
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default()).unwrap_or_default()
    });
    let private = header("private-token");
    state
        .accepted
        .iter()
        .any(|ok| bearer.as_deref() == Some(ok.as_str()) || basic.as_deref() == Some(ok.as_str()) || private == *ok)
}

/// The PR numbered by the path segment between `prefix` and `suffix`.
fn pr_at<'a>(prs: &'a [StubPr], path: &str, prefix: &str, suffix: &str) -> Option<&'a StubPr> {
    let number: u64 = path.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok()?;
    prs.iter().find(|pr| pr.number == number)
}

/// A PR's whole `git diff`, as Bitbucket's raw diff serves it.
fn unified_diff(pr: &StubPr) -> String {
    let mut diff = String::new();
    for file in &pr.files {
        let (old, new) = (file.old_path(), file.path.as_str());
        diff.push_str(&format!("diff --git a/{old} b/{new}\n"));
        if file.previous_path.is_some() {
            diff.push_str(&format!("similarity index 90%\nrename from {old}\nrename to {new}\n"));
        }
        match &file.patch {
            Some(patch) => {
                diff.push_str(&format!("--- a/{old}\n+++ b/{new}\n{patch}"));
                if !patch.ends_with('\n') {
                    diff.push('\n');
                }
            }
            None => diff.push_str(&format!("Binary files a/{old} and b/{new} differ\n")),
        }
    }
    diff
}

/// `POST /oauth/token` (GitLab) and `/site/oauth2/access_token` (Bitbucket):
/// a refresh token buys a new access token (accepted from then on) and a
/// new refresh token; a spent one is `invalid_grant`, and remembered.
async fn refresh(body: &[u8], stub: &Arc<Mutex<StubState>>) -> HttpResponse {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let delay = stub.lock().unwrap().oauth.delay_ms;
    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    let mut state = stub.lock().unwrap();
    let refresh = field("refresh_token");
    if field("grant_type") != "refresh_token" {
        return HttpResponse::BadRequest().json(json!({"error": "unsupported_grant_type"}));
    }
    let Some(at) = state.oauth.live.iter().position(|live| *live == refresh) else {
        if state.oauth.spent.contains(&refresh) {
            state.oauth.reused.push(refresh);
        }
        return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
    };
    state.oauth.live.remove(at);
    state.oauth.spent.push(refresh);
    let n = state.oauth.spent.len();
    let (access, next) = (format!("oauth-stub-access-{n:04}"), format!("oauth-stub-refresh-{n:04}"));
    state.accepted.push(access.clone());
    state.oauth.live.push(next.clone());
    HttpResponse::Ok()
        .json(json!({"access_token": access, "token_type": "bearer", "expires_in": 7200, "refresh_token": next}))
}

async fn handle(req: HttpRequest, body: web::Bytes, stub: web::Data<Arc<Mutex<StubState>>>) -> HttpResponse {
    let path = req.path().to_owned();
    stub.lock().unwrap().seen.push(req.uri().to_string());
    if req.method() == actix_web::http::Method::POST
        && matches!(path.as_str(), "/oauth/token" | "/site/oauth2/access_token")
    {
        return refresh(&body, &stub).await;
    }
    let mut response = route(&req, &path, &stub);
    if path.starts_with("/repos/") || path == "/user" || path.starts_with("/installation/") {
        let expiration = stub.lock().unwrap().github_token_expiration.clone();
        if let Some(expiration) = expiration {
            response.headers_mut().insert(
                actix_web::http::header::HeaderName::from_static("github-authentication-token-expiration"),
                actix_web::http::header::HeaderValue::from_str(&expiration).unwrap(),
            );
        }
    }
    response
}

fn route(req: &HttpRequest, path: &str, stub: &Arc<Mutex<StubState>>) -> HttpResponse {
    let path = path.to_owned();
    let mut state = stub.lock().unwrap();
    // A GitHub App's installation token, for the installations configured.
    if let Some(id) = path.strip_prefix("/app/installations/").and_then(|p| p.strip_suffix("/access_tokens")) {
        if !state.installations.iter().any(|i| i.to_string() == id) {
            return HttpResponse::NotFound().json(json!({"message": "Not Found"}));
        }
        let token = format!("ghs_stubinstallation{id}{:04}", state.seen.len());
        state.accepted.push(token.clone());
        let expires_at = rfc3339(&(Utc::now() + chrono::TimeDelta::hours(1)));
        return HttpResponse::Created().json(json!({"token": token, "expires_at": expires_at}));
    }
    if !authorized(req, &state) {
        return HttpResponse::Unauthorized().json(json!({"message": "Bad credentials"}));
    }
    // GitHub
    if let Some(reset) = state.github_rate_limited_until
        && path.starts_with("/repos/")
    {
        return HttpResponse::Forbidden()
            .insert_header(("x-ratelimit-limit", "5000"))
            .insert_header(("x-ratelimit-remaining", "0"))
            .insert_header(("x-ratelimit-reset", reset.to_string()))
            .json(json!({"message": "API rate limit exceeded"}));
    }
    let prs = state.prs.clone();
    let tree = state.tree.clone();
    let directories = state.directories();
    let revision = state.tree_revision();
    drop(state);
    let github_tree = format!("/repos/acme/api/git/trees/{revision}");
    let bitbucket_src = format!("/repositories/acme/web/src/{revision}/");
    match path.as_str() {
        "/api/v4/personal_access_tokens/self" => {
            let expires = stub.lock().unwrap().gitlab_token_expires_on.clone();
            HttpResponse::Ok().json(json!({"id": 1, "name": "sync", "expires_at": expires}))
        }
        "/installation/repositories" => HttpResponse::Ok().json(json!({"total_count": 1, "repositories": []})),
        // GitHub's and Bitbucket's token checks alike.
        "/user" | "/api/v4/user" => HttpResponse::Ok().json(json!({"login": "dev", "username": "dev", "id": 1})),
        "/repos/acme/api" => HttpResponse::Ok().json(json!({"full_name": "acme/api", "default_branch": "main", "private": true})),
        "/repos/acme/api/branches/main" => HttpResponse::Ok().json(json!({
            "name": "main", "commit": {"sha": format!("c{revision}"), "commit": {"tree": {"sha": revision}}}
        })),
        p if p == github_tree => {
            let blobs = tree.iter().map(|p| json!({"path": p, "mode": "100644", "type": "blob", "sha": "0", "size": 1}));
            let trees = directories.iter().map(|p| json!({"path": p, "mode": "040000", "type": "tree", "sha": "0"}));
            HttpResponse::Ok().json(json!({"sha": revision, "truncated": false, "tree": trees.chain(blobs).collect::<Vec<_>>()}))
        }
        "/repos/acme/api/pulls" => HttpResponse::Ok().json(Value::Array(
            prs.iter()
                .map(|p| json!({
                    "number": p.number, "title": p.title, "user": {"login": "dev"},
                    "html_url": format!("https://github.com/acme/api/pull/{}", p.number),
                    "merged_at": rfc3339(&p.merged_at), "updated_at": rfc3339(&p.merged_at),
                    "merge_commit_sha": format!("sha{}", p.number), "state": "closed"
                }))
                .collect(),
        )),
        p if p.starts_with("/repos/acme/api/pulls/") && p.ends_with("/files") => {
            let pr = pr_at(&prs, p, "/repos/acme/api/pulls/", "/files").unwrap();
            HttpResponse::Ok().json(Value::Array(
                pr.files
                    .iter()
                    .map(|f| json!({"filename": f.path, "previous_filename": f.previous_path, "status": f.status(), "patch": f.patch}))
                    .collect(),
            ))
        }
        // GitLab: the project path arrives encoded as one segment.
        "/api/v4/projects/acme%2Fplatform%2Fapi" => {
            HttpResponse::Ok().json(json!({"id": 42, "default_branch": "main", "visibility": "private", "path_with_namespace": "acme/platform/api"}))
        }
        "/api/v4/projects/acme%2Fplatform%2Fapi/repository/branches/main" => {
            HttpResponse::Ok().json(json!({"name": "main", "commit": {"id": revision}}))
        }
        // One keyset page: no `Link` to a next one.
        "/api/v4/projects/acme%2Fplatform%2Fapi/repository/tree" => {
            let blobs = tree.iter().map(|p| json!({"id": "0", "name": p, "type": "blob", "path": p, "mode": "100644"}));
            let trees = directories.iter().map(|p| json!({"id": "0", "name": p, "type": "tree", "path": p, "mode": "040000"}));
            HttpResponse::Ok().json(trees.chain(blobs).collect::<Vec<_>>())
        }
        "/api/v4/projects/acme%2Fplatform%2Fapi/merge_requests" => HttpResponse::Ok()
            .insert_header(("x-next-page", ""))
            .json(Value::Array(
                prs.iter()
                    .map(|p| json!({
                        "iid": p.number, "title": p.title, "author": {"username": "dev"},
                        "web_url": format!("https://gitlab.com/acme/platform/api/-/merge_requests/{}", p.number),
                        "merged_at": rfc3339(&p.merged_at), "updated_at": rfc3339(&p.merged_at),
                        "merge_commit_sha": format!("sha{}", p.number), "state": "merged"
                    }))
                    .collect(),
            )),
        p if p.starts_with("/api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/") && p.ends_with("/diffs") => {
            let pr = pr_at(&prs, p, "/api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/", "/diffs").unwrap();
            HttpResponse::Ok().insert_header(("x-next-page", "")).json(Value::Array(
                pr.files
                    .iter()
                    .map(|f| json!({
                        "old_path": f.old_path(), "new_path": f.path, "new_file": false,
                        "renamed_file": f.previous_path.is_some(), "deleted_file": false,
                        "diff": f.patch.clone().unwrap_or_default(), "too_large": false, "collapsed": false
                    }))
                    .collect(),
            ))
        }
        // Bitbucket (its API root is this stub's root: no `/2.0`).
        "/repositories/acme/web" => HttpResponse::Ok()
            .json(json!({"type": "repository", "full_name": "acme/web", "is_private": true, "mainbranch": {"type": "branch", "name": "main"}})),
        "/repositories/acme/web/refs/branches/main" => {
            HttpResponse::Ok().json(json!({"type": "branch", "name": "main", "target": {"type": "commit", "hash": revision}}))
        }
        // Everything in one page, as if `max_depth` reached every directory.
        p if p == bitbucket_src => {
            let files = tree.iter().map(|p| json!({"type": "commit_file", "path": p}));
            let dirs = directories.iter().map(|p| json!({"type": "commit_directory", "path": p}));
            HttpResponse::Ok().json(json!({"pagelen": 100, "values": dirs.chain(files).collect::<Vec<_>>()}))
        }
        "/repositories/acme/web/pullrequests" => HttpResponse::Ok().json(json!({
            "pagelen": 50,
            "values": prs.iter().map(|p| json!({
                "type": "pullrequest", "id": p.number, "title": p.title, "state": "MERGED",
                "author": {"nickname": "dev", "display_name": "Dev"},
                "links": {"html": {"href": format!("https://bitbucket.org/acme/web/pull-requests/{}", p.number)}},
                "merge_commit": {"hash": format!("sha{}", p.number)},
                "updated_on": rfc3339(&p.merged_at),
            })).collect::<Vec<_>>(),
        })),
        // Both redirect within the API host, as Bitbucket does.
        p if p.starts_with("/repositories/acme/web/pullrequests/") && p.ends_with("/diffstat") => {
            let pr = pr_at(&prs, p, "/repositories/acme/web/pullrequests/", "/diffstat").unwrap();
            HttpResponse::Found().insert_header(("location", format!("/repositories/acme/web/diffstat/{}", pr.number))).finish()
        }
        p if p.starts_with("/repositories/acme/web/pullrequests/") && p.ends_with("/diff") => {
            let pr = pr_at(&prs, p, "/repositories/acme/web/pullrequests/", "/diff").unwrap();
            HttpResponse::Found().insert_header(("location", format!("/repositories/acme/web/diff/{}", pr.number))).finish()
        }
        p if p.starts_with("/repositories/acme/web/diffstat/") => {
            let pr = pr_at(&prs, p, "/repositories/acme/web/diffstat/", "").unwrap();
            HttpResponse::Ok().json(json!({
                "pagelen": 500,
                "values": pr.files.iter().map(|f| json!({
                    "type": "diffstat", "status": if f.previous_path.is_some() { "renamed" } else { "modified" },
                    "old": {"path": f.old_path()}, "new": {"path": f.path},
                })).collect::<Vec<_>>(),
            }))
        }
        p if p.starts_with("/repositories/acme/web/diff/") => {
            let pr = pr_at(&prs, p, "/repositories/acme/web/diff/", "").unwrap();
            HttpResponse::Ok().content_type("text/plain").body(unified_diff(pr))
        }
        _ => HttpResponse::NotFound().json(json!({"message": "Not Found"})),
    }
}

impl Stub {
    pub fn start() -> Stub {
        let state = Arc::new(Mutex::new(StubState::default()));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
            .workers(2)
            .listen(listener)
            .unwrap()
            .run();
        tokio::spawn(server);
        Stub { base, state }
    }

    /// The environment that aims the service's cloud roots at this stub.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SIGSENTRY_GITHUB_API_URL", self.base.clone()),
            ("SIGSENTRY_GITLAB_URL", self.base.clone()),
            ("SIGSENTRY_BITBUCKET_API_URL", self.base.clone()),
            ("SIGSENTRY_BITBUCKET_OAUTH_TOKEN_URL", format!("{}/site/oauth2/access_token", self.base)),
        ]
    }

    /// Requests whose path (query left out) is `path`.
    pub fn requests_to(&self, path: &str) -> usize {
        self.state.lock().unwrap().seen.iter().filter(|seen| seen.split('?').next() == Some(path)).count()
    }
}
