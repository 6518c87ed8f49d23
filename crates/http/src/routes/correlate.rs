//! `POST /v1/code/correlate`: from an error to the suspect file, function and pull request.

use actix_web::HttpResponse;
use sigsentry_app::{CodeReposApi, CorrelateError};

use crate::dto::{CorrelateBody, CorrelationView};
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::extract::{JsonBody, Read, Scoped};

impl From<CorrelateError> for ApiError {
    fn from(error: CorrelateError) -> Self {
        match error {
            CorrelateError::Validation(errors) => errors.into(),
            CorrelateError::Store(e) => e.into(),
        }
    }
}

/// Correlate an error with the project's repositories: its frames mapped to
/// files, the suspect files and functions, the suspect pull requests.
#[utoipa::path(post, path = "/v1/code/correlate", tag = "code",
    request_body(content = crate::dto::CorrelateRequest, content_type = "application/json"),
    params(crate::openapi::ProjectHeader),
    responses((status = 200, description = "The frames, the suspects and notes.", body = Envelope<CorrelationView>),
        (status = 400, response = crate::openapi::BadRequest), (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound),
        (status = 408, response = crate::openapi::RequestTimeout), (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::InternalError), (status = 503, response = crate::openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn correlate<A: CodeReposApi>(
    ctx: Scoped<A, Read>,
    body: JsonBody<CorrelateBody>,
) -> Result<HttpResponse, ApiError> {
    let correlation = ctx.service.correlate(ctx.scope, body.body.into()).await?;
    Ok(crate::routes::ok(CorrelationView::from(&correlation)))
}
