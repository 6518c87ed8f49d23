//! One local stub server that speaks the slice of the GitHub, GitLab and
//! Bitbucket REST APIs the sync uses, with what a test configures: the
//! tokens it accepts, the PRs it serves, a rate limit to trip.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct StubPr {
    pub number: u64,
    pub title: String,
    pub merged_at: DateTime<Utc>,
    pub files: Vec<String>,
}

#[derive(Default)]
pub struct StubState {
    /// Tokens (GitHub, GitLab) or `user:secret` pairs (Bitbucket) accepted.
    pub accepted: Vec<String>,
    pub prs: Vec<StubPr>,
    /// When set, GitHub answers 403 with `x-ratelimit-remaining: 0` and this reset (epoch seconds).
    pub github_rate_limited_until: Option<i64>,
    /// Every path requested, for assertions.
    pub seen: Vec<String>,
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

async fn handle(req: HttpRequest, stub: web::Data<Arc<Mutex<StubState>>>) -> HttpResponse {
    let path = req.path().to_owned();
    let mut state = stub.lock().unwrap();
    state.seen.push(req.uri().to_string());
    if !authorized(&req, &state) {
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
    drop(state);
    match path.as_str() {
        "/user" | "/api/v4/user" => HttpResponse::Ok().json(json!({"login": "dev", "username": "dev", "id": 1})),
        "/repos/acme/api" => HttpResponse::Ok().json(json!({"full_name": "acme/api", "default_branch": "main", "private": true})),
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
            let number: u64 = p.trim_start_matches("/repos/acme/api/pulls/").trim_end_matches("/files").parse().unwrap();
            let pr = prs.iter().find(|pr| pr.number == number).unwrap();
            HttpResponse::Ok().json(Value::Array(
                pr.files.iter().map(|f| json!({"filename": f, "status": "modified"})).collect(),
            ))
        }
        // GitLab: the project path arrives encoded as one segment.
        "/api/v4/projects/acme%2Fplatform%2Fapi" => {
            HttpResponse::Ok().json(json!({"id": 42, "default_branch": "main", "visibility": "private", "path_with_namespace": "acme/platform/api"}))
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
            let number: u64 = p
                .trim_start_matches("/api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/")
                .trim_end_matches("/diffs")
                .parse()
                .unwrap();
            let pr = prs.iter().find(|pr| pr.number == number).unwrap();
            HttpResponse::Ok().insert_header(("x-next-page", "")).json(Value::Array(
                pr.files
                    .iter()
                    .map(|f| json!({"old_path": f, "new_path": f, "new_file": false, "renamed_file": false, "deleted_file": false}))
                    .collect(),
            ))
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
            .workers(1)
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
        ]
    }
}
