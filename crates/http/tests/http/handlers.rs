//! Handlers against a fake of the one service they depend on: what each
//! service answer becomes on the wire, with no store, cipher or platform.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::http::StatusCode;
use actix_web::test::{TestRequest, init_service, try_call_service};
use serde_json::{Value, json};
use sigsentry_app::{
    AccessError, AccessRequest, CodeReposApi, ConnectionFilter, ConnectionPage, CorrelateError, Correlation,
    CreateError, CreateOutcome, Fingerprinted, HookAction, HookEndpoint, HookError, HookRequest, HookTarget,
    NotFoundOr, ProjectScope, PullRequestFilter, PullRequestPage, ServiceConfig, StoreError, StoredResponse,
    UpdateError, WebhookSecret, WriteRefused,
};
use sigsentry_domain::correlation::{CorrelationDraft, CorrelationRequest, Language};
use sigsentry_domain::{
    ApiKeyId, ConnectionId, PatchDraft, Plan, ProjectId, QuotaExceeded, RepoConnection, SpecDraft, TenantId,
};
use sigsentry_http::{HttpSettings, HttpShared};
use sigsentry_telemetry::Metrics;

const KEY: &str = "good-key";

/// A service whose every operation gives one scripted answer.
#[derive(Clone, Default)]
struct Fake {
    config: ServiceConfig,
    calls: Arc<AtomicUsize>,
}

fn scope() -> ProjectScope {
    ProjectScope {
        key_id: ApiKeyId::from_uuid(uuid::Uuid::nil()),
        tenant_id: TenantId::from_uuid(uuid::Uuid::nil()),
        project_id: ProjectId::from_uuid(uuid::Uuid::nil()),
        plan: Plan::Free,
    }
}

impl Fake {
    fn called(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl CodeReposApi for Fake {
    fn config(&self) -> &ServiceConfig {
        &self.config
    }

    async fn access(&self, request: AccessRequest<'_>) -> Result<ProjectScope, AccessError> {
        if request.bearer == Some(KEY) { Ok(scope()) } else { Err(AccessError::Unauthorized) }
    }

    async fn create_connection(
        &self,
        _: ProjectScope,
        _: SpecDraft,
        _: Option<Fingerprinted>,
        _: impl FnOnce(&RepoConnection) -> StoredResponse + Send,
    ) -> Result<CreateOutcome, CreateError> {
        self.called();
        Err(CreateError::Refused(WriteRefused::Quota(QuotaExceeded { limit: 5, used: 4, requested: 2 })))
    }

    async fn get_connection(&self, _: ProjectScope, _: ConnectionId) -> Result<RepoConnection, NotFoundOr> {
        self.called();
        Err(NotFoundOr::NotFound)
    }

    async fn list_connections(&self, _: ProjectScope, _: ConnectionFilter) -> Result<ConnectionPage, StoreError> {
        self.called();
        Err(StoreError::Unavailable("connection refused".to_owned()))
    }

    async fn update_connection(
        &self,
        _: ProjectScope,
        _: ConnectionId,
        _: PatchDraft,
        _: bool,
    ) -> Result<Option<WebhookSecret>, UpdateError> {
        self.called();
        Err(UpdateError::Contended)
    }

    async fn delete_connection(&self, _: ProjectScope, _: ConnectionId) -> Result<(), NotFoundOr> {
        self.called();
        Ok(())
    }

    async fn invalidate_cache(&self, _: ProjectScope, _: ConnectionId) -> Result<(), NotFoundOr> {
        self.called();
        Err(NotFoundOr::Store(StoreError::Unexpected("SELECT * FROM secret_table".to_owned())))
    }

    async fn request_sync(&self, _: ProjectScope, _: ConnectionId) -> Result<(), NotFoundOr> {
        self.called();
        panic!("a bug in the service");
    }

    async fn list_pull_requests(
        &self,
        _: ProjectScope,
        _: ConnectionId,
        _: PullRequestFilter,
    ) -> Result<PullRequestPage, NotFoundOr> {
        self.called();
        Ok(PullRequestPage { items: Vec::new(), next_cursor: None })
    }

    async fn correlate(&self, _: ProjectScope, draft: CorrelationDraft) -> Result<Correlation, CorrelateError> {
        self.called();
        // The real rulebook, so the wire shape of its refusals is what users see.
        CorrelationRequest::from_draft(draft).map_err(CorrelateError::Validation)?;
        Ok(Correlation {
            language: Language::Unknown,
            exception: None,
            frames: Vec::new(),
            suspect_files: Vec::new(),
            suspect_pull_requests: Vec::new(),
            notes: vec!["No stack frame could be read.".to_owned()],
        })
    }

    async fn webhook_target(&self, endpoint: HookEndpoint) -> Result<HookTarget, HookError> {
        self.called();
        match endpoint {
            HookEndpoint::Connection(_) => Err(HookError::NotFound),
            HookEndpoint::GitHubApp => Err(HookError::AppNotConfigured),
        }
    }

    async fn receive_webhook(&self, _: HookTarget, _: HookRequest) -> Result<HookAction, HookError> {
        unreachable!("no endpoint of the fake exists")
    }

    async fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

const ID: &str = "01930000-0000-7000-8000-000000000000";

async fn send(fake: &Fake, request: TestRequest) -> (StatusCode, actix_web::http::header::HeaderMap, Value) {
    let shared = HttpShared::new(HttpSettings::default(), Metrics::new());
    let app = init_service(sigsentry_http::build_app(fake.clone(), shared)).await;
    // A failure the middleware could not answer in place (a panic) comes
    // back as an error that renders its envelope, as the server would.
    let response = match try_call_service(&app, request.to_request()).await {
        Ok(response) => response.into_parts().1.map_into_boxed_body(),
        Err(error) => error.error_response(),
    };
    let (status, headers) = (response.status(), response.headers().clone());
    let body = actix_web::body::to_bytes(response.into_body()).await.unwrap();
    (status, headers, serde_json::from_slice(&body).unwrap())
}

fn authed(request: TestRequest) -> TestRequest {
    request.insert_header(("Authorization", format!("Bearer {KEY}")))
}

#[actix_web::test]
async fn a_refused_key_is_401_before_the_service_is_asked() {
    let fake = Fake::default();
    let (status, headers, body) = send(&fake, TestRequest::get().uri(&format!("/v1/config/repos/{ID}"))).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    assert_eq!(headers.get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(headers.get("x-request-id").unwrap().to_str().unwrap(), body["error"]["requestId"]);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
}

#[actix_web::test]
async fn a_contended_update_is_a_409_conflict() {
    let fake = Fake::default();
    let request =
        authed(TestRequest::put().uri(&format!("/v1/config/repos/{ID}"))).set_json(json!({"isActive": false}));
    let (status, _, body) = send(&fake, request).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "CONFLICT");
    assert!(body["error"]["message"].as_str().unwrap().contains("retry"));
}

#[actix_web::test]
async fn a_quota_refusal_carries_its_figures() {
    let fake = Fake::default();
    let request = authed(TestRequest::post().uri("/v1/config/repos")).set_json(json!({"platform": "github"}));
    let (status, _, body) = send(&fake, request).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "QUOTA_EXCEEDED");
    let detail = &body["error"]["details"][0];
    assert_eq!(
        (detail["limit"].as_u64(), detail["used"].as_u64(), detail["requested"].as_u64()),
        (Some(5), Some(4), Some(2))
    );
    assert_eq!(detail["field"], "/repositories");
}

#[actix_web::test]
async fn a_bad_path_id_never_reaches_the_service() {
    let fake = Fake::default();
    let (status, _, body) = send(&fake, authed(TestRequest::delete().uri("/v1/config/repos/rc_x1y2z3"))).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"][0]["field"], "id");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
}

#[actix_web::test]
async fn an_unavailable_store_is_503_with_retry_after() {
    let fake = Fake::default();
    let (status, headers, body) = send(&fake, authed(TestRequest::get().uri("/v1/config/repos"))).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(headers.get("retry-after").unwrap(), "1");
}

#[actix_web::test]
async fn an_unexpected_failure_says_nothing_of_its_cause() {
    let fake = Fake::default();
    let (status, _, body) =
        send(&fake, authed(TestRequest::delete().uri(&format!("/v1/config/repos/{ID}/cache")))).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
    assert!(!body.to_string().contains("secret_table"));
}

#[actix_web::test]
async fn a_panicking_service_answers_500_in_the_envelope() {
    let fake = Fake::default();
    let (status, headers, body) =
        send(&fake, authed(TestRequest::post().uri(&format!("/v1/config/repos/{ID}/sync")))).await;
    assert_eq!(status, 500);
    assert_eq!(body["success"], false);
    assert_eq!(headers.get("x-request-id").unwrap().to_str().unwrap(), body["error"]["requestId"]);
}

#[actix_web::test]
async fn a_listing_answers_in_the_page_envelope() {
    let fake = Fake::default();
    let (status, _, body) =
        send(&fake, authed(TestRequest::get().uri(&format!("/v1/config/repos/{ID}/pull-requests")))).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"success": true, "data": [], "meta": {"nextCursor": null}}));
}

#[actix_web::test]
async fn a_correlation_needs_exactly_one_of_stacktrace_and_frames() {
    let fake = Fake::default();
    let both = json!({"stacktrace": "x", "frames": [{"file": "a.py"}]});
    let (status, _, body) = send(&fake, authed(TestRequest::post().uri("/v1/code/correlate")).set_json(both)).await;
    assert_eq!(status, 400);
    let fields: Vec<&str> =
        body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["/stacktrace", "/frames"]);

    let garbage = json!({"stacktrace": "\u{1}".repeat(1000)});
    let (status, _, body) = send(&fake, authed(TestRequest::post().uri("/v1/code/correlate")).set_json(garbage)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["language"], "unknown");
    assert_eq!(body["data"]["frames"], json!([]));
}

#[actix_web::test]
async fn webhooks_need_no_key_and_an_unknown_endpoint_is_404_before_its_body_is_read() {
    let fake = Fake::default();
    // Over 5 MiB and unsigned: the endpoint is looked up first.
    let request = TestRequest::post()
        .uri(&format!("/v1/hooks/{ID}"))
        .insert_header(("Content-Length", (6 * 1024 * 1024).to_string()))
        .set_payload(vec![b'x'; 16]);
    let (status, headers, body) = send(&fake, request).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert!(headers.get("www-authenticate").is_none());
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);

    let (status, _, body) = send(&fake, TestRequest::post().uri("/v1/hooks/github").set_payload("{}")).await;
    assert_eq!(status, 404);
    assert!(body["error"]["message"].as_str().unwrap().contains("SIGSENTRY_GITHUB_APP_WEBHOOK_SECRET"), "{body}");

    let (status, _, body) = send(&fake, TestRequest::post().uri("/v1/hooks/not-a-uuid").set_payload("{}")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"][0]["field"], "id");

    let (status, headers, _) = send(&fake, TestRequest::get().uri(&format!("/v1/hooks/{ID}"))).await;
    assert_eq!(status, 405);
    assert_eq!(headers.get("allow").unwrap(), "POST");
}
