//! Per-request context: the request id, the access log, a panic net, and
//! the error envelope for failures the framework produces itself.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError};
use futures_util::FutureExt;

use crate::error::{ApiError, ErrorCode, from_status};

/// The response header that carries the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, for error envelopes built deep down.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_else(|_| "req_unknown".to_owned())
}

/// The request id, as stored in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// A client-sent id is kept when it is short and plain, so a proxy's id
/// follows the request through our logs; otherwise we mint one.
fn choose_request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map_or_else(|| format!("req_{}", uuid::Uuid::now_v7().simple()), str::to_owned)
}

/// The outermost middleware.
///
/// # Errors
/// Never: every failure becomes an enveloped response.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let request_id = choose_request_id(&req);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().clone();
    let path = req.path().to_owned();

    let outcome = REQUEST_ID
        .scope(request_id.clone(), async move { AssertUnwindSafe(next.call(req)).catch_unwind().await })
        .await;

    // Without the request (consumed by the handler), a failure is handed
    // back as an error carrying its request id; actix renders it.
    let failure = |api: ApiError, status: u16| {
        tracing::info!(request_id = %request_id, %method, %path, status, latency_ms = started.elapsed().as_millis() as u64, "request");
        Err(api.for_request(request_id.clone()).into())
    };
    let mut response = match outcome {
        Ok(Ok(res)) => envelope_foreign_errors(res, &request_id),
        Ok(Err(error)) => {
            let api = error
                .as_error::<ApiError>()
                .cloned()
                .unwrap_or_else(|| from_status(error.as_response_error().status_code()));
            let status = api.code().status().as_u16();
            return failure(api, status);
        }
        Err(_panic) => {
            // The payload may quote user input or secrets: it is not logged.
            tracing::error!(%method, %path, "handler panicked");
            let api = ApiError::new(
                ErrorCode::Internal,
                "An internal error occurred. Quote the requestId when you contact support.",
            );
            return failure(api, 500);
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    tracing::info!(
        request_id = %request_id,
        %method,
        %path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    Ok(response)
}

fn api_response(api: &ApiError, request_id: &str) -> actix_web::HttpResponse<BoxBody> {
    api.clone().for_request(request_id.to_owned()).error_response()
}

/// Our handlers' errors already carry the envelope; the framework's own (an
/// unknown route, an oversized payload) are replaced by one.
fn envelope_foreign_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
    request_id: &str,
) -> ServiceResponse<BoxBody> {
    let foreign = res
        .response()
        .error()
        .filter(|e| e.as_error::<ApiError>().is_none())
        .map(|e| e.as_response_error().status_code());
    match foreign {
        None => res.map_into_boxed_body(),
        Some(status) => {
            let api = from_status(status);
            let (req, _) = res.into_parts();
            ServiceResponse::new(req, api_response(&api, request_id))
        }
    }
}
