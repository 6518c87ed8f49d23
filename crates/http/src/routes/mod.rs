//! Route table.

mod cache;
mod connections;
mod correlate;
mod hooks;
mod ops;

use actix_web::{HttpResponse, web};
use sigsentry_app::CodeReposApi;

use crate::envelope::Envelope;
use crate::error::{ApiError, ErrorCode};

/// 200 with `data` in the envelope.
pub(crate) fn ok<T: serde::Serialize>(data: T) -> HttpResponse {
    HttpResponse::Ok().json(Envelope::of(data))
}

pub use cache::*;
pub use connections::*;
pub use correlate::*;
pub use hooks::*;
pub use ops::*;

/// Registers every route. A known path with another method answers 405.
pub fn configure<A: CodeReposApi>(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/healthz")
            .route(web::get().to(healthz))
            .route(web::head().to(healthz))
            .default_service(web::to(only_get)),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(readyz::<A>))
            .route(web::head().to(readyz::<A>))
            .default_service(web::to(only_get)),
    )
    .service(
        web::resource("/v1/openapi.json")
            .route(web::get().to(openapi_document))
            .route(web::head().to(openapi_document))
            .default_service(web::to(only_get)),
    )
    .service(
        web::resource("/v1/config/repos")
            .route(web::get().to(list_connections::<A>))
            .route(web::head().to(list_connections::<A>))
            .route(web::post().to(create_connection::<A>))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::method_not_allowed("GET, HEAD, POST"))
            })),
    )
    .service(
        web::resource("/v1/config/repos/{id}")
            .route(web::get().to(get_connection::<A>))
            .route(web::head().to(get_connection::<A>))
            .route(web::put().to(update_connection::<A>))
            .route(web::delete().to(delete_connection::<A>))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::method_not_allowed("GET, HEAD, PUT, DELETE"))
            })),
    )
    .service(
        web::resource("/v1/config/repos/{id}/sync")
            .route(web::post().to(request_sync::<A>))
            .default_service(web::to(|| async { Err::<HttpResponse, _>(ApiError::method_not_allowed("POST")) })),
    )
    .service(
        web::resource("/v1/config/repos/{id}/pull-requests")
            .route(web::get().to(list_pull_requests::<A>))
            .route(web::head().to(list_pull_requests::<A>))
            .default_service(web::to(|| async { Err::<HttpResponse, _>(ApiError::method_not_allowed("GET, HEAD")) })),
    )
    .service(
        web::resource("/v1/code/correlate")
            .route(web::post().to(correlate::<A>))
            .default_service(web::to(|| async { Err::<HttpResponse, _>(ApiError::method_not_allowed("POST")) })),
    )
    // The App's endpoint before the per-connection one: `github` is not a
    // connection id.
    .service(
        web::resource("/v1/hooks/github")
            .route(web::post().to(github_app_hook::<A>))
            .default_service(web::to(|| async { Err::<HttpResponse, _>(ApiError::method_not_allowed("POST")) })),
    )
    .service(
        web::resource("/v1/hooks/{id}")
            .route(web::post().to(connection_hook::<A>))
            .default_service(web::to(|| async { Err::<HttpResponse, _>(ApiError::method_not_allowed("POST")) })),
    )
    .service(
        web::resource("/v1/config/repos/{id}/cache")
            .route(web::delete().to(invalidate_cache::<A>))
            .default_service(web::to(|| async { Err::<HttpResponse, _>(ApiError::method_not_allowed("DELETE")) })),
    );
}

async fn only_get() -> Result<HttpResponse, ApiError> {
    Err(ApiError::method_not_allowed("GET, HEAD"))
}

/// Unknown paths.
pub async fn no_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "No such route. See GET /v1/openapi.json for the API."))
}

/// `GET /metrics`.
pub fn metrics_route(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/metrics")
            .route(web::get().to(metrics))
            .route(web::head().to(metrics))
            .default_service(web::to(only_get)),
    );
}
