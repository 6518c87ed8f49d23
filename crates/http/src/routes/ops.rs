//! Liveness, readiness and the API document.

use actix_web::{HttpResponse, web};
use serde_json::json;
use sigsentry_ports::{Clock, CredentialCipher, Store};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"success": true, "data": {"status": "ok"}}))
}

/// The store answers; 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "The database is unreachable", body = crate::dto::ErrorEnvelope)))]
pub async fn readyz<S: Store, C: CredentialCipher, K: Clock>(
    state: web::Data<AppState<S, C, K>>,
) -> Result<HttpResponse, ApiError> {
    match state.services.store().ping().await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"success": true, "data": {"status": "ready"}}))),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            Err(ApiError::new(ErrorCode::ServiceUnavailable, "The database is unavailable.").retry_after(1))
        }
    }
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI document")))]
pub async fn openapi_document() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(crate::openapi::document_json())
}
