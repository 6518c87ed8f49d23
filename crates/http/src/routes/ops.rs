//! Liveness, readiness and the API document.

use actix_web::{HttpRequest, HttpResponse, web};
use sigsentry_app::CodeReposApi;
use sigsentry_telemetry::Metrics;

use crate::dto::{Health, HealthStatus};
use crate::envelope::Envelope;
use crate::error::{ApiError, ErrorCode};
use crate::extract::service;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Envelope<Health>)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Envelope::of(Health { status: HealthStatus::Ok }))
}

/// The store answers; 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "`{\"status\": \"ready\"}`", body = Envelope<Health>),
    (status = 500, response = crate::openapi::InternalError),
    (status = 503, response = crate::openapi::Unavailable)))]
pub async fn readyz<A: CodeReposApi>(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    match service::<A>(&req)?.ready().await {
        Ok(()) => Ok(HttpResponse::Ok().json(Envelope::of(Health { status: HealthStatus::Ready }))),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            Err(ApiError::new(ErrorCode::ServiceUnavailable, "The database is unavailable.").retry_after(1))
        }
    }
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations", responses((status = 200, description = "This document.", body = crate::openapi::OpenApiDocument)))]
pub async fn openapi_document() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(crate::openapi::document_json())
}

/// Prometheus metrics (text exposition format). No API key: scrapers send none,
/// and no label names a tenant, a key or a repository.
pub async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(metrics.render())
}
