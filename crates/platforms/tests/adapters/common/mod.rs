//! A stub platform server on 127.0.0.1:0 that records what it was sent, and
//! the helpers the platform tests share.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{DateTime, TimeDelta, Utc};
use sigsentry_domain::{BaseUrl, BaseUrlPolicy, Credentials, Platform, RepoName, Secret};
use sigsentry_platforms::{ListingBounds, PlatformClients, PlatformConfig, RetryConfig, Session};
use sigsentry_ports::{ChangedFile, PlatformClient, TreeSnapshot};

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The path as sent, percent-encoding kept.
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).count()
    }

    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes()).find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
    }
}

/// What the stub answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: None,
        }
    }

    pub fn text(status: u16, body: &str) -> Self {
        Self { status, headers: vec![("content-type".into(), "text/plain".into())], body: body.into(), delay: None }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

type Handler = dyn Fn(&Seen, &str) -> Reply + Send + Sync;

/// A running stub: `url` is `http://127.0.0.1:PORT`.
pub struct Stub {
    pub url: String,
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    handle: ServerHandle,
}

impl Stub {
    /// Starts a stub whose answers come from `handler(request, own_url)`.
    /// Call from inside an actix-web test runtime.
    pub fn start(handler: impl Fn(&Seen, &str) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let (seen2, url2) = (seen.clone(), url.clone());
        let server = HttpServer::new(move || {
            let (seen, url, handler) = (seen2.clone(), url2.clone(), handler.clone());
            App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                let (seen, url, handler) = (seen.clone(), url.clone(), handler.clone());
                async move {
                    let record = Seen {
                        method: request.method().to_string(),
                        path: request.uri().path().to_owned(),
                        query: request.uri().query().unwrap_or_default().to_owned(),
                        headers: request
                            .headers()
                            .iter()
                            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
                            .collect(),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    };
                    seen.lock().unwrap().push(record.clone());
                    let reply = handler(&record, &url);
                    if let Some(delay) = reply.delay {
                        actix_web::rt::time::sleep(delay).await;
                    }
                    let mut response = HttpResponse::build(StatusCode::from_u16(reply.status).unwrap());
                    for (name, value) in &reply.headers {
                        response.append_header((name.as_str(), value.as_str()));
                    }
                    response.body(reply.body)
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self { url, port, seen, handle }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests whose path is `path`.
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|seen| seen.path == path).collect()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        // Stop without waiting; the runtime ends with the test.
        drop(self.handle.stop(false));
    }
}

/// Small timeouts and fast retries; all three roots at `root`.
pub fn config(root: &str, allow_private: bool) -> PlatformConfig {
    PlatformConfig {
        github_api_url: root.to_owned(),
        gitlab_url: root.to_owned(),
        bitbucket_api_url: format!("{root}/2.0"),
        policy: BaseUrlPolicy { allow_private },
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(3),
        retry: RetryConfig { attempts: 2, base_delay: Duration::from_millis(10), max_delay: Duration::from_millis(50) },
        user_agent: "sigsentry-tests/1".to_owned(),
        bounds: ListingBounds::default(),
        ..PlatformConfig::default()
    }
}

pub fn clients(root: &str) -> PlatformClients {
    PlatformClients::new(config(root, false)).unwrap()
}

/// Clients with `bounds` instead of the default ones.
pub fn clients_with(root: &str, bounds: ListingBounds) -> PlatformClients {
    PlatformClients::new(PlatformConfig { bounds, ..config(root, false) }).unwrap()
}

/// The paths of a listed tree, and its revision.
pub fn listed(snapshot: TreeSnapshot) -> (String, Vec<String>) {
    match snapshot {
        TreeSnapshot::Listed { revision, paths } => (revision, paths),
        TreeSnapshot::Unchanged => panic!("the tree was not listed"),
    }
}

/// A session of `clients` with `credentials`.
pub async fn session(clients: &PlatformClients, credentials: Credentials) -> Session {
    clients.open(credentials).await.unwrap()
}

pub const GITHUB_TOKEN: &str = "ghp_testtoken_0123456789abcdef";
pub const GITLAB_TOKEN: &str = "glpat-testtoken-0123456789";
pub const BITBUCKET_USER: &str = "acme-bot";
pub const BITBUCKET_PASSWORD: &str = "ATBBapppassword0123456789";

pub fn github(base_url: Option<&str>) -> Credentials {
    Credentials::GitHubToken {
        token: Secret::new(GITHUB_TOKEN.into()).unwrap(),
        base_url: base_url.map(|raw| BaseUrl::parse(raw, BaseUrlPolicy { allow_private: true }).unwrap()),
    }
}

pub fn gitlab(base_url: Option<&str>) -> Credentials {
    Credentials::GitLabToken {
        token: Secret::new(GITLAB_TOKEN.into()).unwrap(),
        base_url: base_url.map(|raw| BaseUrl::parse(raw, BaseUrlPolicy { allow_private: true }).unwrap()),
    }
}

pub fn bitbucket() -> Credentials {
    Credentials::BitbucketAppPassword {
        username: BITBUCKET_USER.into(),
        app_password: Secret::new(BITBUCKET_PASSWORD.into()).unwrap(),
    }
}

pub fn repo(platform: Platform, name: &str) -> RepoName {
    RepoName::parse(platform, name).unwrap()
}

/// `days` days before now, to the second.
pub fn days_ago(days: i64) -> DateTime<Utc> {
    let at = Utc::now() - TimeDelta::days(days);
    DateTime::from_timestamp(at.timestamp(), 0).unwrap()
}

pub fn hours_ago(hours: i64) -> DateTime<Utc> {
    let at = Utc::now() - TimeDelta::hours(hours);
    DateTime::from_timestamp(at.timestamp(), 0).unwrap()
}

/// The paths of `files`, in order.
pub fn paths(files: &[ChangedFile]) -> Vec<&str> {
    files.iter().map(|file| file.path.as_str()).collect()
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
