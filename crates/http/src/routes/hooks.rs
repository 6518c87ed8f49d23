//! `/v1/hooks`: webhook deliveries from the platforms. No API key: the
//! delivery's signature is the authentication, checked by the service on
//! the raw body before anything parses it.

use actix_web::dev::Payload;
use actix_web::web::Payload as BodyStream;
use actix_web::{HttpRequest, HttpResponse};
use sigsentry_app::{CodeReposApi, HookEndpoint, HookRequest, MAX_HOOK_BODY_BYTES};

use crate::body::read_raw;
use crate::dto::HookAccepted;
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::extract::{ConnectionPath, service};

/// A connection's webhook: merges and default-branch pushes on GitHub,
/// GitLab or Bitbucket make that repository sync now.
#[utoipa::path(post, path = "/v1/hooks/{id}", tag = "webhooks",
    request_body(content = crate::openapi::HookPayload, description = "The platform's event payload, as it sent it \
        (GitHub may also send it form-encoded in a `payload` field)."),
    params(crate::openapi::ConnectionIdPath, crate::openapi::HookHeaders),
    responses(
        (status = 202, description = "Verified: `sync` (the repository syncs now), `ignored` (an event not acted on, \
            or a repository the connection does not hold) or `duplicate` (this delivery id was handled before).",
            body = Envelope<HookAccepted>),
        (status = 400, response = crate::openapi::HookBadRequest),
        (status = 401, response = crate::openapi::HookUnauthorized),
        (status = 404, response = crate::openapi::HookNotFound),
        (status = 408, response = crate::openapi::HookRequestTimeout),
        (status = 413, response = crate::openapi::HookPayloadTooLarge),
        (status = 500, response = crate::openapi::HookInternalError),
        (status = 503, response = crate::openapi::HookUnavailable)))]
pub async fn connection_hook<A: CodeReposApi>(
    req: HttpRequest,
    id: ConnectionPath,
    body: BodyStream,
) -> Result<HttpResponse, ApiError> {
    deliver::<A>(req, HookEndpoint::Connection(id.0), body.into_inner()).await
}

/// The GitHub App's webhook, for every connection made through the App.
#[utoipa::path(post, path = "/v1/hooks/github", tag = "webhooks",
    request_body(content = crate::openapi::HookPayload, description = "GitHub's event payload, as it sent it."),
    params(crate::openapi::GitHubHookHeaders),
    responses(
        (status = 202, description = "Verified: `sync` (every GitHub connection holding the repository syncs it now), \
            `ignored` or `duplicate`.", body = Envelope<HookAccepted>),
        (status = 400, response = crate::openapi::HookBadRequest),
        (status = 401, response = crate::openapi::HookUnauthorized),
        (status = 404, response = crate::openapi::HookNotFound),
        (status = 408, response = crate::openapi::HookRequestTimeout),
        (status = 413, response = crate::openapi::HookPayloadTooLarge),
        (status = 500, response = crate::openapi::HookInternalError),
        (status = 503, response = crate::openapi::HookUnavailable)))]
pub async fn github_app_hook<A: CodeReposApi>(req: HttpRequest, body: BodyStream) -> Result<HttpResponse, ApiError> {
    deliver::<A>(req, HookEndpoint::GitHubApp, body.into_inner()).await
}

/// The endpoint first (an unknown connection is 404 whatever was sent),
/// then the body, then the service's verdict.
async fn deliver<A: CodeReposApi>(
    req: HttpRequest,
    endpoint: HookEndpoint,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let service = service::<A>(&req)?;
    let target = service.webhook_target(endpoint).await?;
    let body = read_raw(&req, payload, MAX_HOOK_BODY_BYTES).await?;
    let headers = req
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())));
    let action = service.receive_webhook(target, HookRequest::new(headers, body)).await?;
    Ok(HttpResponse::Accepted().json(Envelope::of(HookAccepted { action: action.into() })))
}
