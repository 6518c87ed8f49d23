//! A GitHub REST API stub serving each case's repository as it was when its
//! error happened, with its times moved forward so that the error happened
//! an hour ago: the service syncs with its ordinary lookback window and
//! ranks by the same ages the history had.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::dataset::Case;

/// Items per page, as GitHub's `per_page=100`.
const PAGE: usize = 100;

/// A case as served, with its time shift.
struct Served {
    case: Case,
    shift: TimeDelta,
}

/// The running stub.
#[derive(Debug, Clone)]
pub struct Stub {
    /// Its root URL (`http://127.0.0.1:PORT`), the service's GitHub API root.
    pub base: String,
}

/// How far `case`'s times move so that its error happened at `now - 1h`.
pub fn shift_for(case: &Case, now: DateTime<Utc>) -> TimeDelta {
    now - TimeDelta::hours(1) - case.data().occurred_at
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Starts the stub on a free port for `cases`, moved to `now`.
///
/// # Errors
/// The port cannot be bound.
pub fn start(cases: &[Case], now: DateTime<Utc>) -> anyhow::Result<Stub> {
    let served: HashMap<String, Served> = cases
        .iter()
        .map(|case| (case.stub_repository(), Served { case: case.clone(), shift: shift_for(case, now) }))
        .collect();
    let served = web::Data::new(Arc::new(served));
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let root = base.clone();
    let server = HttpServer::new(move || {
        App::new().app_data(served.clone()).app_data(web::Data::new(root.clone())).default_service(web::to(handle))
    })
    .workers(2)
    .listen(listener)?
    .run();
    tokio::spawn(server);
    Ok(Stub { base })
}

fn page_of(req: &HttpRequest) -> usize {
    req.query_string()
        .split('&')
        .find_map(|kv| kv.strip_prefix("page="))
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// A page of `items`, with GitHub's `link` header when more follow.
fn paged(req: &HttpRequest, root: &str, items: Vec<Value>) -> HttpResponse {
    let page = page_of(req);
    let start = (page - 1) * PAGE;
    let slice: Vec<Value> = items.iter().skip(start).take(PAGE).cloned().collect();
    let mut response = HttpResponse::Ok();
    if start + PAGE < items.len() {
        let query: Vec<&str> = req.query_string().split('&').filter(|kv| !kv.starts_with("page=")).collect();
        let next = format!("{root}{}?{}&page={}", req.path(), query.join("&"), page + 1);
        response.insert_header(("link", format!("<{next}>; rel=\"next\"")));
    }
    response.json(Value::Array(slice))
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"message": "Not Found"}))
}

async fn handle(
    req: HttpRequest,
    served: web::Data<Arc<HashMap<String, Served>>>,
    root: web::Data<String>,
) -> HttpResponse {
    let parts: Vec<&str> = req.path().trim_start_matches('/').split('/').collect();
    let ["repos", owner, name, rest @ ..] = parts.as_slice() else { return not_found() };
    let Some(served) = served.get(&format!("{owner}/{name}")) else { return not_found() };
    let case = &served.case;
    let branch = case.doc.default_branch.as_str();
    let tree_sha = format!("tree-{}", case.data().id);
    let real = &case.doc.repository;
    match rest {
        [] => HttpResponse::Ok().json(json!({
            "full_name": format!("{owner}/{name}"), "default_branch": branch, "private": true
        })),
        ["branches", b] if *b == branch => HttpResponse::Ok().json(json!({
            "name": branch, "commit": {"sha": format!("commit-{}", case.data().id), "commit": {"tree": {"sha": tree_sha}}}
        })),
        ["git", "trees", sha] if *sha == tree_sha => {
            let tree: Vec<Value> =
                case.tree().map(|p| json!({"path": p, "mode": "100644", "type": "blob", "sha": "0"})).collect();
            HttpResponse::Ok().json(json!({"sha": tree_sha, "truncated": false, "tree": tree}))
        }
        ["pulls"] => {
            let items = case
                .pull_requests()
                .into_iter()
                .map(|p| {
                    let at = stamp(p.merged_at + served.shift);
                    json!({
                        "number": p.number, "title": p.title, "state": "closed",
                        "user": p.author.as_ref().map(|login| json!({"login": login})),
                        "html_url": format!("https://github.com/{real}/pull/{}", p.number),
                        "merged_at": at, "updated_at": at, "merge_commit_sha": format!("merge-{}", p.number),
                    })
                })
                .collect();
            paged(&req, &root, items)
        }
        ["pulls", number, "files"] => {
            let Some(pr) = number.parse::<u64>().ok().and_then(|n| case.pull_requests().into_iter().find(|p| p.number == n))
            else {
                return not_found();
            };
            let items = pr
                .files
                .iter()
                .map(|f| {
                    json!({
                        "filename": f.path, "status": f.status,
                        "previous_filename": f.previous_path,
                        "patch": f.hunks,
                    })
                })
                .collect();
            paged(&req, &root, items)
        }
        _ => not_found(),
    }
}
