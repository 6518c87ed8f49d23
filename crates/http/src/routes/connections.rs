//! `/v1/config/repos`: list, read, create, update, delete, invalidate cache.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;
use sigsentry_app::{CodeReposApi, CreateOutcome, Fingerprinted, StoredResponse};
use sigsentry_domain::IdempotencyKey;

use crate::dto::{
    ConnectionView, CreateConnectionBody, Deleted, Invalidated, UpdateConnectionBody, Updated, WebhookView,
};
use crate::envelope::{Envelope, Page};
use crate::error::ApiError;
use crate::extract::{ConnectionPath, ConnectionQuery, JsonBody, PublicUrl, Read, Scoped, Write};
use crate::routes::ok;

const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// List the project's repo connections.
#[utoipa::path(get, path = "/v1/config/repos", tag = "repos",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 50", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "`meta.nextCursor` of the previous page",
            pattern = r"^c1[A-Za-z0-9_-]{21}[AQgw]$"),
        ("platform" = Option<crate::dto::PlatformName>, Query, description = "only this platform"),
        ("isActive" = Option<bool>, Query, description = "only active (true) or paused (false) connections"),
        ("credentialStatus" = Option<String>, Query,
            description = "only connections whose credentials have one of these statuses, comma-separated \
                (`expiring,expired,rejected`: those that need a person)",
            pattern = r"^(?:valid|expiring|expired|rejected|unknown)(?:,(?:valid|expiring|expired|rejected|unknown))*$"),
        crate::openapi::ProjectHeader,
    ),
    responses(
        (status = 200, description = "One page of the project's connections, in creation order.", body = Page<ConnectionView>),
        (status = 400, response = crate::openapi::BadRequest), (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::InternalError), (status = 503, response = crate::openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn list_connections<A: CodeReposApi>(
    ctx: Scoped<A, Read>,
    query: ConnectionQuery,
    public: PublicUrl,
) -> Result<HttpResponse, ApiError> {
    let page = ctx.service.list_connections(ctx.scope, query.0).await?;
    let now = ctx.service.now();
    let data = page.items.iter().map(|c| ConnectionView::new(c, &public, now)).collect();
    Ok(HttpResponse::Ok().json(Page::of(data, page.next_cursor)))
}

/// Read one repo connection.
#[utoipa::path(get, path = "/v1/config/repos/{id}", tag = "repos",
    params(crate::openapi::ConnectionIdPath, crate::openapi::ProjectHeader),
    responses((status = 200, description = "The connection.", body = Envelope<ConnectionView>),
        (status = 400, response = crate::openapi::BadRequest), (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::InternalError), (status = 503, response = crate::openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn get_connection<A: CodeReposApi>(
    ctx: Scoped<A, Read>,
    id: ConnectionPath,
    public: PublicUrl,
) -> Result<HttpResponse, ApiError> {
    let connection = ctx.service.get_connection(ctx.scope, id.0).await?;
    Ok(ok(ConnectionView::new(&connection, &public, ctx.service.now())))
}

/// What makes two requests "the same" for an idempotency key: the method,
/// the path and the body with its keys in a canonical order. The service
/// keeps only a keyed digest of it.
fn canonical_request(req: &HttpRequest, body: &Value) -> String {
    format!("{} {}\n{}", req.method(), req.path(), canonical_json(body))
}

fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> =
                keys.into_iter().map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&map[k]))).collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = req.headers().get(IDEMPOTENCY_HEADER) else { return Ok(None) };
    let text = raw.to_str().map_err(|_| ApiError::invalid_field("Idempotency-Key", "must be printable ASCII"))?;
    IdempotencyKey::new(text).map(Some).map_err(|e| ApiError::invalid_field("Idempotency-Key", e.0))
}

fn stored_response(response: StoredResponse, replayed: bool) -> HttpResponse {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let mut builder = HttpResponse::build(status);
    builder.content_type("application/json");
    if let Some(location) = response.location {
        builder.insert_header((header::LOCATION, location));
    }
    if replayed {
        builder.insert_header(("Idempotent-Replayed", "true"));
    }
    builder.body(response.body)
}

/// Connect repositories on one platform to the project.
#[utoipa::path(post, path = "/v1/config/repos", tag = "repos",
    request_body = crate::dto::CreateConnectionRequest,
    params(crate::openapi::IdempotencyKeyHeader, crate::openapi::ProjectHeader),
    responses(
        (status = 201, description = "Created, with the webhook secret in `data.webhook.secret`, shown this once (or, \
            with `Idempotent-Replayed: true`, the first success replayed, without the secret: rotate it if it was lost).",
            body = Envelope<ConnectionView>,
            headers(
                ("Location" = String, description = "`/v1/config/repos/{id}` of the connection"),
                ("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key` and body"),
            )),
        (status = 400, response = crate::openapi::BadRequest), (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound),
        (status = 408, response = crate::openapi::RequestTimeout),
        (status = 409, response = crate::openapi::Conflict), (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 415, response = crate::openapi::UnsupportedMediaType),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::InternalError), (status = 503, response = crate::openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn create_connection<A: CodeReposApi>(
    req: HttpRequest,
    ctx: Scoped<A, Write>,
    body: JsonBody<CreateConnectionBody>,
    public: PublicUrl,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let idempotency = key.map(|key| Fingerprinted { key, canonical_request: canonical_request(&req, &body.value) });
    let now = ctx.service.now();
    let replay_public = public.clone();
    let outcome = ctx
        .service
        .create_connection(ctx.scope, body.body.into(), idempotency, move |connection| StoredResponse {
            status: 201,
            // Kept for replays, so without the webhook secret: the database
            // never holds it in clear.
            body: serde_json::to_string(&Envelope::of(ConnectionView::new(connection, &replay_public, now)))
                .unwrap_or_default(),
            location: Some(format!("/v1/config/repos/{}", connection.id)),
        })
        .await?;
    Ok(match outcome {
        CreateOutcome::Created(connection, stored, secret) => {
            let mut view = ConnectionView::new(&connection, &public, now);
            // Shown this once; a GitHub App connection has no hook of its own.
            if view.webhook.is_some() {
                view.webhook = Some(WebhookView::new(&public, connection.id, Some(&secret)));
            }
            let body = serde_json::to_string(&Envelope::of(view)).map_err(|e| ApiError::internal(&e))?;
            stored_response(StoredResponse { body, ..stored }, false)
        }
        CreateOutcome::Replayed(response) => stored_response(response, true),
    })
}

/// Update credentials, repositories, mappings, window or activation.
#[utoipa::path(put, path = "/v1/config/repos/{id}", tag = "repos",
    request_body = crate::dto::UpdateConnectionRequest,
    params(crate::openapi::ConnectionIdPath, crate::openapi::ProjectHeader),
    responses((status = 200, description = "Updated; with `rotateWebhookSecret`, the new webhook secret in \
        `data.webhook.secret`, shown this once.", body = Envelope<Updated>),
        (status = 400, response = crate::openapi::BadRequest), (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound),
        (status = 408, response = crate::openapi::RequestTimeout),
        (status = 409, response = crate::openapi::Conflict), (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 415, response = crate::openapi::UnsupportedMediaType),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::InternalError), (status = 503, response = crate::openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn update_connection<A: CodeReposApi>(
    ctx: Scoped<A, Write>,
    id: ConnectionPath,
    body: JsonBody<UpdateConnectionBody>,
    public: PublicUrl,
) -> Result<HttpResponse, ApiError> {
    let rotate = body.body.rotates_webhook_secret();
    let secret = ctx.service.update_connection(ctx.scope, id.0, body.body.into(), rotate).await?;
    let webhook = secret.map(|secret| WebhookView::new(&public, id.0, Some(&secret)));
    Ok(ok(Updated { webhook, ..Updated::default() }))
}

/// Remove a repo connection and its cached data.
#[utoipa::path(delete, path = "/v1/config/repos/{id}", tag = "repos",
    params(crate::openapi::ConnectionIdPath, crate::openapi::ProjectHeader),
    responses((status = 200, description = "Deleted, with its cached data.", body = Envelope<Deleted>),
        (status = 400, response = crate::openapi::BadRequest), (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::InternalError), (status = 503, response = crate::openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn delete_connection<A: CodeReposApi>(
    ctx: Scoped<A, Write>,
    id: ConnectionPath,
) -> Result<HttpResponse, ApiError> {
    ctx.service.delete_connection(ctx.scope, id.0).await?;
    Ok(ok(Deleted::default()))
}

/// Invalidate the repo cache: every repository goes back to `pending`.
#[utoipa::path(delete, path = "/v1/config/repos/{id}/cache", tag = "repos",
    params(crate::openapi::ConnectionIdPath, crate::openapi::ProjectHeader),
    responses((status = 200, description = "Every repository is back to `pending`.", body = Envelope<Invalidated>),
        (status = 400, response = crate::openapi::BadRequest), (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::InternalError), (status = 503, response = crate::openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn invalidate_cache<A: CodeReposApi>(
    ctx: Scoped<A, Write>,
    id: ConnectionPath,
) -> Result<HttpResponse, ApiError> {
    ctx.service.invalidate_cache(ctx.scope, id.0).await?;
    Ok(ok(Invalidated::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_ignores_key_order_and_spacing() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        let c: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[2,1]},"b":1}"#).unwrap();
        assert_ne!(canonical_json(&a), canonical_json(&c));
    }
}
