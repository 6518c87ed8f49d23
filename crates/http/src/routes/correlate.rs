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
    request_body = CorrelateBody,
    params(("X-Project-Id" = Option<uuid::Uuid>, Header, description = "required with a tenant-scoped key")),
    responses((status = 200, body = Envelope<CorrelationView>),
        (status = 400, body = crate::envelope::ErrorEnvelope), (status = 401, body = crate::envelope::ErrorEnvelope),
        (status = 403, body = crate::envelope::ErrorEnvelope), (status = 404, body = crate::envelope::ErrorEnvelope),
        (status = 413, body = crate::envelope::ErrorEnvelope), (status = 415, body = crate::envelope::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn correlate<A: CodeReposApi>(
    ctx: Scoped<A, Read>,
    body: JsonBody<CorrelateBody>,
) -> Result<HttpResponse, ApiError> {
    let correlation = ctx.service.correlate(ctx.scope, body.body.into()).await?;
    Ok(crate::routes::ok(CorrelationView::from(&correlation)))
}
