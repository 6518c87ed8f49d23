//! The OpenAPI 3.1 document, generated from the handlers and DTOs, and the
//! error responses the operations share.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToResponse, ToSchema};
use uuid::Uuid;

use crate::{dto, envelope, routes};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "SigSentry Code Repos API", version = "1.0.0",
        description = "Connect GitHub, GitLab and Bitbucket repositories to a SigSentry project."),
    paths(
        routes::list_connections, routes::get_connection, routes::create_connection, routes::update_connection,
        routes::delete_connection, routes::invalidate_cache, routes::request_sync, routes::list_pull_requests, routes::correlate, routes::connection_hook, routes::github_app_hook, routes::healthz, routes::readyz, routes::openapi_document,
    ),
    components(
        schemas(dto::CreateConnectionRequest, dto::UpdateConnectionRequest, envelope::ErrorEnvelope),
        responses(BadRequest, Unauthorized, Forbidden, NotFound, RequestTimeout, Conflict, PayloadTooLarge,
            UnsupportedMediaType, TooManyRequests, InternalError, Unavailable, HookBadRequest, HookUnauthorized,
            HookNotFound, HookRequestTimeout, HookPayloadTooLarge, HookInternalError, HookUnavailable),
    ),
    modifiers(&BearerAuth, &CommonHeaders, &CreatedLinks),
    tags((name = "repos", description = "Repo connections"), (name = "code", description = "Code correlation"), (name = "webhooks", description = "Deliveries from the platforms, authenticated by their signatures"), (name = "operations", description = "Health and metadata")),
)]
#[derive(Debug)]
pub struct ApiDoc;

#[derive(Debug)]
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The header every response carries.
pub const REQUEST_ID: &str = "X-Request-Id";

fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new().schema(String::schema()).description(Some(description)).build()
}

fn request_id_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"^[A-Za-z0-9._-]{1,128}$")))
        .description(Some(
            "The request's id: the client's own `X-Request-Id` when it is 1 to 128 characters of \
             `[A-Za-z0-9._-]`, else `req_` and a UUID. Also in `error.requestId`.",
        ))
        .build()
}

fn seconds_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
        .description(Some(description))
        .build()
}

/// `RateLimit-Limit`, `-Remaining` and `-Reset`: on every answer to a
/// request whose key was accepted.
fn rate_limit_headers() -> [(&'static str, utoipa::openapi::header::Header); 3] {
    [
        ("RateLimit-Limit", seconds_header("Requests per minute the key may send (to this process).")),
        ("RateLimit-Remaining", seconds_header("Requests the key may send right now.")),
        ("RateLimit-Reset", seconds_header("Seconds until the key's allowance is whole again.")),
    ]
}

/// Adds `X-Request-Id` to every response of every operation, and the rate
/// limit headers to those of operations that take a key (the shared error
/// responses state their headers themselves).
#[derive(Debug)]
struct CommonHeaders;

impl Modify for CommonHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                let keyed = operation.security.is_some();
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        response.headers.insert(REQUEST_ID.to_owned(), request_id_header());
                        if keyed {
                            response.headers.extend(rate_limit_headers().map(|(n, h)| (n.to_owned(), h)));
                        }
                    }
                }
            }
        }
    }
}

/// The operations a created connection's id leads to (OpenAPI links, which
/// the stateful phase of schemathesis follows). Written as JSON because
/// utoipa 5.5 spells a Link Object's fields in snake case (`operation_id`).
#[derive(Debug)]
struct CreatedLinks;

impl Modify for CreatedLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(created) = openapi
            .paths
            .paths
            .get_mut("/v1/config/repos")
            .and_then(|item| item.post.as_mut())
            .and_then(|post| post.responses.responses.get_mut("201"))
        else {
            return;
        };
        let RefOr::T(created) = created else { return };
        let links: serde_json::Map<String, serde_json::Value> = [
            ("GetConnection", "get_connection"),
            ("UpdateConnection", "update_connection"),
            ("DeleteConnection", "delete_connection"),
            ("InvalidateCache", "invalidate_cache"),
            ("RequestSync", "request_sync"),
            ("ListPullRequests", "list_pull_requests"),
        ]
        .into_iter()
        .map(|(name, operation)| {
            let link = serde_json::json!({"operationId": operation, "parameters": {"id": "$response.body#/data/id"}});
            (name.to_owned(), link)
        })
        .collect();
        // A Response's extensions are flattened into it, so this is its `links` field.
        created.extensions.get_or_insert_with(Default::default).insert("links".to_owned(), links.into());
    }
}

/// An error response: the envelope, `X-Request-Id`, and `extra` headers.
fn error_response(description: &str, extra: &[(&str, utoipa::openapi::header::Header)]) -> Response {
    let envelope = RefOr::Ref(Ref::from_schema_name(envelope::ErrorEnvelope::name()));
    let content = ContentBuilder::new().schema(Some(envelope)).build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", content)
        .header(REQUEST_ID, request_id_header());
    for (name, header) in extra {
        response = response.header(*name, header.clone());
    }
    response.build()
}

macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident => |$description:literal| $extra:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), RefOr::T(error_response($description, &$extra)))
            }
        }
    )*};
}

error_responses! {
    /// 400.
    BadRequest => |"`VALIDATION_ERROR`: a field, header, query parameter or the path id broke a rule; \
        `error.details` lists every one, each at its JSON pointer or name."| rate_limit_headers();
    /// 401.
    Unauthorized => |"`UNAUTHORIZED`: no key, another scheme, or an unknown or revoked key."|
        [("WWW-Authenticate", string_header("`Bearer`"))];
    /// 403.
    Forbidden => |"`FORBIDDEN`: the key lacks the permission, or names another project; on POST and PUT also \
        `QUOTA_EXCEEDED`, with `limit`, `used` and `requested` in `details`."| rate_limit_headers();
    /// 404.
    NotFound => |"`NOT_FOUND`: no such connection in the project (or no such project)."| rate_limit_headers();
    /// 408.
    RequestTimeout => |"`REQUEST_TIMEOUT`: the body did not arrive in time."| rate_limit_headers();
    /// 409.
    Conflict => |"`CONFLICT`: a repository or service name is held by another connection of the project \
        (`details[].connectionId`), or the connection is being changed by another request; on POST also \
        `IDEMPOTENCY_KEY_CONFLICT` (the key was used with another body) and `IDEMPOTENCY_KEY_IN_USE` \
        (its first request still runs; with `Retry-After`)."| {
            let [limit, remaining, reset] = rate_limit_headers();
            [("Retry-After", seconds_header("Seconds to wait; with `IDEMPOTENCY_KEY_IN_USE`.")), limit, remaining, reset]
        };
    /// 413.
    PayloadTooLarge => |"`PAYLOAD_TOO_LARGE`: the body is over 1 MiB."| rate_limit_headers();
    /// 415.
    UnsupportedMediaType => |"`UNSUPPORTED_MEDIA_TYPE`: a body not sent as `application/json`."| rate_limit_headers();
    /// 429.
    TooManyRequests => |"`RATE_LIMITED`: the key sent more requests than its rate allows."| {
        let [limit, remaining, reset] = rate_limit_headers();
        [("Retry-After", seconds_header("Seconds until the key may send again.")), limit, remaining, reset]
    };
    /// 500.
    InternalError => |"`INTERNAL_ERROR`: never with a cause; quote `error.requestId`."| rate_limit_headers();
    /// 503.
    Unavailable => |"`SERVICE_UNAVAILABLE`: the database is unreachable."| {
        let [limit, remaining, reset] = rate_limit_headers();
        [("Retry-After", seconds_header("Seconds to wait before retrying.")), limit, remaining, reset]
    };
}

error_responses! {
    /// 400 of a webhook.
    HookBadRequest => |"`VALIDATION_ERROR`: the connection id is not a UUID, or a verified body is not the \
        event's JSON."| [];
    /// 401 of a webhook.
    HookUnauthorized => |"`UNAUTHORIZED`: the signature (GitLab: the token) is missing or wrong, or the \
        connection has no webhook secret yet (rotate it)."| [];
    /// 404 of a webhook.
    HookNotFound => |"`NOT_FOUND`: no such connection (checked before anything else); on `/v1/hooks/github`, \
        no GitHub App is configured."| [];
    /// 408 of a webhook.
    HookRequestTimeout => |"`REQUEST_TIMEOUT`: the body did not arrive in time."| [];
    /// 413 of a webhook.
    HookPayloadTooLarge => |"`PAYLOAD_TOO_LARGE`: the delivery is over 5 MiB."| [];
    /// 500 of a webhook.
    HookInternalError => |"`INTERNAL_ERROR`: never with a cause; quote `error.requestId`."| [];
    /// 503 of a webhook.
    HookUnavailable => |"`SERVICE_UNAVAILABLE`: the database is unreachable; the platform retries."|
        [("Retry-After", seconds_header("Seconds to wait before retrying."))];
}

/// The headers a platform sends with a delivery; which ones count depends
/// on the connection's platform.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct HookHeaders {
    /// GitHub: `sha256=` and the hex HMAC-SHA256 of the body under the webhook secret.
    #[param(rename = "X-Hub-Signature-256", nullable = false, pattern = r"^sha256=[0-9a-fA-F]{64}$")]
    pub x_hub_signature_256: Option<String>,
    /// GitHub: the event (`pull_request`, `push`; others are ignored).
    #[param(rename = "X-GitHub-Event", nullable = false)]
    pub x_github_event: Option<String>,
    /// GitHub: the delivery's id, the same on a redelivery.
    #[param(rename = "X-GitHub-Delivery", nullable = false)]
    pub x_github_delivery: Option<String>,
    /// GitLab: the webhook secret itself, as GitLab's "secret token".
    #[param(rename = "X-Gitlab-Token", nullable = false)]
    pub x_gitlab_token: Option<String>,
    /// GitLab: the event (`Merge Request Hook`, `Push Hook`; others are ignored).
    #[param(rename = "X-Gitlab-Event", nullable = false)]
    pub x_gitlab_event: Option<String>,
    /// GitLab: the delivery's id across retries (else `X-Gitlab-Event-UUID` is used).
    #[param(rename = "Idempotency-Key", nullable = false)]
    pub idempotency_key: Option<String>,
    /// GitLab: the event's id.
    #[param(rename = "X-Gitlab-Event-UUID", nullable = false)]
    pub x_gitlab_event_uuid: Option<String>,
    /// Bitbucket: `sha256=` and the hex HMAC-SHA256 of the body under the webhook secret.
    #[param(rename = "X-Hub-Signature", nullable = false, pattern = r"^sha256=[0-9a-fA-F]{64}$")]
    pub x_hub_signature: Option<String>,
    /// Bitbucket: the event (`pullrequest:fulfilled`, `repo:push`; others are ignored).
    #[param(rename = "X-Event-Key", nullable = false)]
    pub x_event_key: Option<String>,
    /// Bitbucket: the delivery's id.
    #[param(rename = "X-Request-UUID", nullable = false)]
    pub x_request_uuid: Option<String>,
}

/// The headers GitHub sends with a delivery to the App's endpoint.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct GitHubHookHeaders {
    /// `sha256=` and the hex HMAC-SHA256 of the body under the App's webhook secret.
    #[param(rename = "X-Hub-Signature-256", nullable = false, pattern = r"^sha256=[0-9a-fA-F]{64}$")]
    pub x_hub_signature_256: Option<String>,
    /// The event (`pull_request`, `push`, `installation` deleted or suspended; others are ignored).
    #[param(rename = "X-GitHub-Event", nullable = false)]
    pub x_github_event: Option<String>,
    /// The delivery's id, the same on a redelivery.
    #[param(rename = "X-GitHub-Delivery", nullable = false)]
    pub x_github_delivery: Option<String>,
}

/// A platform's webhook payload: any JSON object (only a few fields are read).
#[derive(Debug)]
pub struct HookPayload;

impl PartialSchema for HookPayload {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("The event as the platform sends it; unknown fields are ignored."))
            .into()
    }
}

impl ToSchema for HookPayload {}

/// `X-Project-Id`, on every operation of a project (the extractor
/// [`crate::extract::Scoped`] reads it).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ProjectHeader {
    /// The project to act on: required with a tenant-scoped key; a project-scoped
    /// key may leave it out or name its own project (another one is 403).
    #[param(rename = "X-Project-Id", nullable = false)]
    pub x_project_id: Option<Uuid>,
}

/// `Idempotency-Key` of `POST /v1/config/repos`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyHeader {
    /// 1 to 255 printable ASCII characters (HTTP drops spaces at either end of a
    /// header value, so the key cannot start or end with one). A retry with the same
    /// key and body replays the first success; with another body it is 409.
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = r"^[!-~](?:[ -~]*[!-~])?$"
    )]
    pub idempotency_key: Option<String>,
}

/// The `{id}` of a connection's path (the extractor
/// [`crate::extract::ConnectionPath`] reads it; anything but a UUID is 400).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ConnectionIdPath {
    /// The connection id.
    pub id: Uuid,
}

/// What `GET /v1/openapi.json` answers: this document (an OpenAPI 3.1 object).
#[derive(Debug)]
pub struct OpenApiDocument;

impl PartialSchema for OpenApiDocument {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("An OpenAPI 3.1 document."))
            .property("openapi", ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"^3\.1\.[0-9]+$")))
            .required("openapi")
            .property("info", ObjectBuilder::new().schema_type(Type::Object))
            .required("info")
            .property("paths", ObjectBuilder::new().schema_type(Type::Object))
            .required("paths")
            .into()
    }
}

impl ToSchema for OpenApiDocument {}

/// The document as pretty JSON (what `GET /v1/openapi.json` serves and
/// `docs/openapi.json` holds).
pub fn document_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".to_owned())
}
