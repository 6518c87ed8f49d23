//! `/v1/config/repos`: list, read, create, update, delete, invalidate cache.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use garde::Validate;
use ring::digest::{SHA256, digest};
use serde_json::{Value, json};
use sigsentry_app::{CreateOutcome, Fingerprinted, decode_cursor};
use sigsentry_domain::{ConnectionId, ConnectionSpec, IdempotencyKey, Permission, Platform, RepoConnection, SpecDraft};
use sigsentry_ports::{Clock, CredentialCipher, Store, StoredResponse};

use super::query::{DEFAULT_LIMIT, parse_limit, parse_query};
use crate::AppState;
use crate::auth::scope;
use crate::body::{from_value, read_json_object, refuse_nulls};
use crate::dto::{
    CREATE_FIELDS, ConnectionView, CreateConnectionBody, UPDATE_FIELDS, UpdateConnectionBody, garde_details,
};
use crate::error::ApiError;

const IDEMPOTENCY_HEADER: &str = "idempotency-key";

pub(super) fn path_id(req: &HttpRequest) -> Result<ConnectionId, ApiError> {
    let raw = req.match_info().get("id").unwrap_or_default();
    raw.parse().map_err(|_| ApiError::invalid_field("id", "the connection id in the path must be a UUID"))
}

fn ok(data: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({"success": true, "data": data}))
}

fn connection_json(connection: &RepoConnection) -> Value {
    serde_json::to_value(ConnectionView::from(connection)).unwrap_or(Value::Null)
}

struct ListParams {
    platform: Option<Platform>,
    is_active: Option<bool>,
    cursor: Option<ConnectionId>,
    limit: u32,
}

fn list_params(query: &str) -> Result<ListParams, ApiError> {
    let mut params = ListParams { platform: None, is_active: None, cursor: None, limit: DEFAULT_LIMIT };
    parse_query(query, "limit, cursor, platform, isActive", |name, value| {
        match name {
            "limit" => params.limit = parse_limit(value)?,
            "cursor" => params.cursor = Some(decode_cursor(value).map_err(|e| e.0)?),
            "platform" => params.platform = Some(value.parse::<Platform>().map_err(|e| e.0)?),
            "isActive" => {
                params.is_active = Some(match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err("must be true or false".to_owned()),
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(params)
}

/// List the project's repo connections.
#[utoipa::path(get, path = "/v1/config/repos", tag = "repos",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 50"),
        ("cursor" = Option<String>, Query, description = "meta.nextCursor of the previous page"),
        ("platform" = Option<String>, Query, description = "github, gitlab or bitbucket"),
        ("isActive" = Option<bool>, Query, description = "only active (true) or paused (false) connections"),
        ("X-Project-Id" = Option<String>, Header, description = "required with a tenant-scoped key"),
    ),
    responses(
        (status = 200, body = crate::dto::ConnectionListEnvelope),
        (status = 400, body = crate::dto::ErrorEnvelope), (status = 401, body = crate::dto::ErrorEnvelope),
        (status = 403, body = crate::dto::ErrorEnvelope), (status = 404, body = crate::dto::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list_connections<S: Store, C: CredentialCipher, K: Clock>(
    req: HttpRequest,
    state: web::Data<AppState<S, C, K>>,
) -> Result<HttpResponse, ApiError> {
    let scope = scope(&state, &req, Permission::ConfigRead).await?;
    let params = list_params(req.query_string())?;
    let page =
        state.services.list_connections(scope, params.platform, params.is_active, params.cursor, params.limit).await?;
    let data: Vec<Value> = page.items.iter().map(connection_json).collect();
    Ok(HttpResponse::Ok().json(json!({"success": true, "data": data, "meta": {"nextCursor": page.next_cursor}})))
}

/// Read one repo connection.
#[utoipa::path(get, path = "/v1/config/repos/{id}", tag = "repos",
    params(("id" = String, Path, description = "connection id (UUID)")),
    responses((status = 200, body = crate::dto::ConnectionEnvelope),
        (status = 400, body = crate::dto::ErrorEnvelope), (status = 401, body = crate::dto::ErrorEnvelope),
        (status = 403, body = crate::dto::ErrorEnvelope), (status = 404, body = crate::dto::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get_connection<S: Store, C: CredentialCipher, K: Clock>(
    req: HttpRequest,
    state: web::Data<AppState<S, C, K>>,
) -> Result<HttpResponse, ApiError> {
    let scope = scope(&state, &req, Permission::ConfigRead).await?;
    let id = path_id(&req)?;
    let connection = state.services.get_connection(scope, id).await?;
    Ok(ok(connection_json(&connection)))
}

/// A digest of what makes two requests "the same" for an idempotency key:
/// the method, the path and the body with its keys in a canonical order.
fn fingerprint(req: &HttpRequest, body: &Value) -> String {
    let canonical = format!("{} {}\n{}", req.method(), req.path(), canonical_json(body));
    digest(&SHA256, canonical.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
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
    let status = actix_web::http::StatusCode::from_u16(response.status).unwrap_or(actix_web::http::StatusCode::OK);
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
    request_body = crate::dto::CreateConnectionBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 printable ASCII characters; retries with the same key and body replay the first success")),
    responses((status = 201, body = crate::dto::ConnectionEnvelope, headers(("Location" = String))),
        (status = 400, body = crate::dto::ErrorEnvelope), (status = 401, body = crate::dto::ErrorEnvelope),
        (status = 403, description = "FORBIDDEN or QUOTA_EXCEEDED", body = crate::dto::ErrorEnvelope),
        (status = 409, description = "CONFLICT, IDEMPOTENCY_KEY_CONFLICT or IDEMPOTENCY_KEY_IN_USE", body = crate::dto::ErrorEnvelope),
        (status = 413, body = crate::dto::ErrorEnvelope), (status = 415, body = crate::dto::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create_connection<S: Store, C: CredentialCipher, K: Clock>(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState<S, C, K>>,
) -> Result<HttpResponse, ApiError> {
    let scope = scope(&state, &req, Permission::ConfigWrite).await?;
    let key = idempotency_key(&req)?;
    let value = read_json_object(&req, payload).await?;
    let nulls = refuse_nulls(&value, &["/credentials/baseUrl"]);
    if !nulls.is_empty() {
        return Err(ApiError::validation(nulls));
    }
    let body: CreateConnectionBody = from_value(&value, CREATE_FIELDS)?;
    if let Err(report) = body.validate() {
        // Report everything at once: garde's findings, then the domain's
        // rules on the fields garde did not already flag.
        let mut details = garde_details(&report);
        let draft: SpecDraft = body.into();
        if let Err(errors) = ConnectionSpec::from_draft(draft, state.services.config().base_url_policy) {
            for error in errors.into_vec() {
                if !details.iter().any(|d| d.field.as_deref() == Some(error.field.as_str())) {
                    details.push(error.into());
                }
            }
        }
        return Err(ApiError::validation(details));
    }
    let idempotency = key.map(|key| Fingerprinted { key, fingerprint: fingerprint(&req, &value) });
    let outcome = state
        .services
        .create_connection(scope, body.into(), idempotency, |connection| StoredResponse {
            status: 201,
            body: json!({"success": true, "data": connection_json(connection)}).to_string(),
            location: Some(format!("/v1/config/repos/{}", connection.id)),
        })
        .await?;
    Ok(match outcome {
        CreateOutcome::Created(_, response) => stored_response(response, false),
        CreateOutcome::Replayed(response) => stored_response(response, true),
    })
}

/// Update credentials, repositories, mappings, window or activation.
#[utoipa::path(put, path = "/v1/config/repos/{id}", tag = "repos",
    request_body = crate::dto::UpdateConnectionBody,
    params(("id" = String, Path, description = "connection id (UUID)")),
    responses((status = 200, body = crate::dto::AckEnvelope),
        (status = 400, body = crate::dto::ErrorEnvelope), (status = 401, body = crate::dto::ErrorEnvelope),
        (status = 403, body = crate::dto::ErrorEnvelope), (status = 404, body = crate::dto::ErrorEnvelope),
        (status = 409, body = crate::dto::ErrorEnvelope), (status = 413, body = crate::dto::ErrorEnvelope),
        (status = 415, body = crate::dto::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn update_connection<S: Store, C: CredentialCipher, K: Clock>(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState<S, C, K>>,
) -> Result<HttpResponse, ApiError> {
    let scope = scope(&state, &req, Permission::ConfigWrite).await?;
    let id = path_id(&req)?;
    let value = read_json_object(&req, payload).await?;
    let nulls = refuse_nulls(&value, &["/credentials/baseUrl"]);
    if !nulls.is_empty() {
        return Err(ApiError::validation(nulls));
    }
    let body: UpdateConnectionBody = from_value(&value, UPDATE_FIELDS)?;
    if let Err(report) = body.validate() {
        return Err(ApiError::validation(garde_details(&report)));
    }
    state.services.update_connection(scope, id, body.into()).await?;
    Ok(ok(json!({"updated": true})))
}

/// Remove a repo connection and its cached data.
#[utoipa::path(delete, path = "/v1/config/repos/{id}", tag = "repos",
    params(("id" = String, Path, description = "connection id (UUID)")),
    responses((status = 200, body = crate::dto::AckEnvelope),
        (status = 400, body = crate::dto::ErrorEnvelope), (status = 401, body = crate::dto::ErrorEnvelope),
        (status = 403, body = crate::dto::ErrorEnvelope), (status = 404, body = crate::dto::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn delete_connection<S: Store, C: CredentialCipher, K: Clock>(
    req: HttpRequest,
    state: web::Data<AppState<S, C, K>>,
) -> Result<HttpResponse, ApiError> {
    let scope = scope(&state, &req, Permission::ConfigWrite).await?;
    let id = path_id(&req)?;
    state.services.delete_connection(scope, id).await?;
    Ok(ok(json!({"deleted": true})))
}

/// Invalidate the repo cache: every repository goes back to `pending`.
#[utoipa::path(delete, path = "/v1/config/repos/{id}/cache", tag = "repos",
    params(("id" = String, Path, description = "connection id (UUID)")),
    responses((status = 200, body = crate::dto::AckEnvelope),
        (status = 400, body = crate::dto::ErrorEnvelope), (status = 401, body = crate::dto::ErrorEnvelope),
        (status = 403, body = crate::dto::ErrorEnvelope), (status = 404, body = crate::dto::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn invalidate_cache<S: Store, C: CredentialCipher, K: Clock>(
    req: HttpRequest,
    state: web::Data<AppState<S, C, K>>,
) -> Result<HttpResponse, ApiError> {
    let scope = scope(&state, &req, Permission::ConfigWrite).await?;
    let id = path_id(&req)?;
    state.services.invalidate_cache(scope, id).await?;
    Ok(ok(json!({"invalidated": true})))
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

    #[test]
    fn list_params_are_checked() {
        assert!(list_params("").is_ok());
        assert_eq!(list_params("limit=7&isActive=false").unwrap().limit, 7);
        for bad in [
            "limit=0",
            "limit=101",
            "limit=x",
            "isActive=yes",
            "platform=svn",
            "cursor=zzz",
            "is_active=true",
            "limit=1&limit=2",
        ] {
            assert!(list_params(bad).is_err(), "{bad}");
        }
    }
}
