//! The request id: chosen once per request by the middleware, read by
//! whatever renders an envelope while the request is served.

use actix_web::http::header::HeaderMap;

/// The header that carries the request id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served. Outside a request (a unit test
/// rendering an error by hand) it is `req_unknown`.
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_else(|_| "req_unknown".to_owned())
}

/// Runs `work` with `id` as the current request id.
pub async fn scope<F: Future>(id: String, work: F) -> F::Output {
    REQUEST_ID.scope(id, work).await
}

/// A client-sent id is kept when it is short and plain, so a proxy's id
/// follows the request through our logs; otherwise we mint one.
pub fn choose(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map_or_else(|| format!("req_{}", uuid::Uuid::now_v7().simple()), str::to_owned)
}
