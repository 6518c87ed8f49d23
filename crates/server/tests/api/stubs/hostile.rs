//! A GitHub (Enterprise) host that misbehaves the way a hostile tenant's
//! `baseUrl` can: every page of PRs answers after `delay` and links a next
//! one (for ever, or for `pages` pages), each PR with a title of
//! `title_bytes`. It records when each request came and with which token.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

/// How the host answers.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Each page of PRs waits this long.
    pub delay: Duration,
    /// Pages of PRs before the last (`None`: a next page is always linked).
    pub pages: Option<usize>,
    /// PRs per page.
    pub per_page: usize,
    /// Bytes of each PR's title.
    pub title_bytes: usize,
}

impl Behaviour {
    /// Slow and endless: a page every `delay`, always with a next one.
    pub fn endless(delay: Duration) -> Self {
        Self { delay, pages: None, per_page: 100, title_bytes: 40 }
    }
}

/// One request as the host saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub path: String,
    /// The `Authorization` header, as sent.
    pub authorization: String,
}

#[derive(Clone)]
pub struct Hostile {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

struct State {
    behaviour: Behaviour,
    seen: Arc<Mutex<Vec<Seen>>>,
    base: String,
}

async fn handle(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let path = req.path().to_owned();
    let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    state.seen.lock().unwrap().push(Seen { at: Instant::now(), path: path.clone(), authorization });
    let behaviour = &state.behaviour;
    let revision = "f".repeat(40);
    if path == "/user" {
        return HttpResponse::Ok().json(json!({"login": "dev", "id": 1}));
    }
    // Every repository of owner `acme` exists: `/repos/acme/{name}/...`.
    let Some((name, rest)) = path.strip_prefix("/repos/acme/").map(|p| p.split_once('/').unwrap_or((p, ""))) else {
        return HttpResponse::NotFound().json(json!({"message": "Not Found"}));
    };
    match rest {
        "" => HttpResponse::Ok().json(json!({"default_branch": "main", "private": true})),
        "branches/main" => HttpResponse::Ok()
            .json(json!({"name": "main", "commit": {"sha": "c", "commit": {"tree": {"sha": revision}}}})),
        p if p == format!("git/trees/{revision}") => HttpResponse::Ok().json(json!({
            "sha": revision, "truncated": false, "tree": [{"path": "src/main.rs", "type": "blob", "sha": "0"}]
        })),
        "pulls" => {
            actix_web::rt::time::sleep(behaviour.delay).await;
            let page: usize = req
                .query_string()
                .split('&')
                .find_map(|pair| pair.strip_prefix("page="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let merged = (Utc::now() - TimeDelta::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
            let title = "T".repeat(behaviour.title_bytes);
            let pulls: Vec<Value> = (0..behaviour.per_page)
                .map(|i| {
                    let number = (page - 1) * behaviour.per_page + i + 1;
                    json!({
                        "number": number, "title": title, "user": {"login": "dev"},
                        "html_url": format!("https://ghe.example/acme/{name}/pull/{number}"),
                        "merged_at": merged, "updated_at": merged, "merge_commit_sha": "abc", "state": "closed"
                    })
                })
                .collect();
            let mut response = HttpResponse::Ok();
            if behaviour.pages.is_none_or(|pages| page < pages) {
                let next = format!("{}/repos/acme/{name}/pulls?state=closed&page={}", state.base, page + 1);
                response.insert_header(("link", format!("<{next}>; rel=\"next\"")));
            }
            response.json(pulls)
        }
        p if p.starts_with("pulls/") && p.ends_with("/files") => HttpResponse::Ok()
            .json(json!([{"filename": "src/main.rs", "status": "modified", "patch": "@@ -1,1 +1,2 @@\n a\n+b\n"}])),
        _ => HttpResponse::NotFound().json(json!({"message": "Not Found"})),
    }
}

impl Hostile {
    pub fn start(behaviour: Behaviour) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = web::Data::new(State { behaviour, seen: seen.clone(), base: base.clone() });
        let server = HttpServer::new(move || App::new().app_data(state.clone()).default_service(web::to(handle)))
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
        tokio::spawn(server);
        Hostile { base, seen }
    }

    /// Requests that carried `token`.
    pub fn with_token(&self, token: &str) -> Vec<Seen> {
        let bearer = format!("Bearer {token}");
        self.seen.lock().unwrap().iter().filter(|seen| seen.authorization == bearer).cloned().collect()
    }

    /// Requests for a page of PRs (of any repository).
    pub fn pages_served(&self) -> usize {
        self.seen.lock().unwrap().iter().filter(|seen| seen.path.ends_with("/pulls")).count()
    }
}
