//! Per-request context: the request id, the access log, a panic net, and
//! the error envelope for failures the framework produces itself. Every
//! response is finished inside the request id's scope, so an envelope reads
//! its id from one place ([`crate::request_id::current`]).

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};
use futures_util::FutureExt;
use sigsentry_telemetry::Metrics;

use crate::error::{ApiError, ErrorCode, from_status};
use crate::rate_limit::RateVerdict;
use crate::request_id::{self, REQUEST_ID_HEADER};

/// The outermost middleware.
///
/// # Errors
/// Never a bare error: a failure that reaches here without a response (the
/// request was consumed by then) comes back as an error that renders the
/// envelope built here, inside the request's scope.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let id = request_id::choose(req.headers());
    let method = req.method().clone();
    let path = req.path().to_owned();
    let request_metrics = req.app_data::<web::Data<Metrics>>().cloned();

    let outcome = request_id::scope(id.clone(), async move {
        match AssertUnwindSafe(next.call(req)).catch_unwind().await {
            Ok(Ok(res)) => Ok(envelope_foreign_errors(res)),
            Ok(Err(error)) => {
                let api = error
                    .as_error::<ApiError>()
                    .cloned()
                    .unwrap_or_else(|| from_status(error.as_response_error().status_code()));
                Err((api.error_response(), api))
            }
            Err(_panic) => {
                // The payload may quote user input or secrets: it is not logged.
                tracing::error!("handler panicked");
                let api = ApiError::new(
                    ErrorCode::Internal,
                    "An internal error occurred. Quote the requestId when you contact support.",
                );
                Err((api.error_response(), api))
            }
        }
    })
    .await;
    let metrics = request_metrics.clone();
    let record = |route: &str, status: u16| {
        if let Some(metrics) = &metrics {
            metrics.http_request(method.as_str(), route, status, started.elapsed());
        }
    };
    let log = |status: u16| {
        tracing::info!(
            request_id = %id,
            %method,
            %path,
            status,
            latency_ms = started.elapsed().as_millis() as u64,
            "request"
        );
    };
    match outcome {
        Ok(mut response) => {
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
            }
            let verdict = response.request().extensions().get::<RateVerdict>().copied();
            if let Some(verdict) = verdict {
                let headers = response.headers_mut();
                for (name, value) in [
                    ("ratelimit-limit", verdict.limit),
                    ("ratelimit-remaining", verdict.remaining),
                    ("ratelimit-reset", verdict.reset_secs),
                ] {
                    headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
                }
            }
            let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
            record(&route, response.status().as_u16());
            log(response.status().as_u16());
            Ok(response)
        }
        Err((response, api)) => {
            record("unmatched", response.status().as_u16());
            log(response.status().as_u16());
            Err(InternalError::from_response(api, response).into())
        }
    }
}

/// Our handlers' errors already carry the envelope; the framework's own (an
/// unknown route, an oversized payload) are replaced by one.
fn envelope_foreign_errors<B: MessageBody + 'static>(res: ServiceResponse<B>) -> ServiceResponse<BoxBody> {
    let foreign = res
        .response()
        .error()
        .filter(|e| e.as_error::<ApiError>().is_none())
        .map(|e| e.as_response_error().status_code());
    match foreign {
        None => res.map_into_boxed_body(),
        Some(status) => {
            let (req, _) = res.into_parts();
            ServiceResponse::new(req, from_status(status).error_response())
        }
    }
}
