//! The HTTP adapter (actix-web): routes, extractors, DTOs and the error
//! envelope of the Code Repos API. Nothing below this crate knows actix, and
//! this crate knows no port: handlers depend on one application service,
//! [`CodeReposApi`], so a handler test runs against a fake of it.
//!
//! A request's path: [`context::request_context`] gives it an id and a panic
//! net; extractors ([`extract`]) authenticate and scope it, read the path,
//! the query and the body; the handler calls the service and answers in an
//! [`envelope::Envelope`]; every failure becomes an [`error::ApiError`],
//! mapped in one place.

pub mod body;
pub mod context;
pub mod dto;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod query;
pub mod rate_limit;
pub mod request_id;
mod routes;
pub mod strict_json;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use sigsentry_app::CodeReposApi;

use sigsentry_telemetry::Metrics;

use crate::rate_limit::RateLimiter;

/// What the HTTP adapter enforces itself, to protect the process.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Requests per minute per API key, in this process (`SIGSENTRY_RATE_LIMIT`).
    pub rate_limit_per_minute: u32,
    /// Longest wait for a whole request body (`SIGSENTRY_BODY_TIMEOUT_SECS`).
    pub body_timeout: std::time::Duration,
    /// Serve `GET /metrics` here (`false` when it has a listener of its own).
    pub serve_metrics: bool,
    /// The service's public base URL, without a trailing `/` (`SIGSENTRY_PUBLIC_URL`,
    /// which may carry a path prefix): webhook URLs are shown under it.
    pub public_url: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 1200,
            body_timeout: std::time::Duration::from_secs(10),
            serve_metrics: true,
            public_url: "http://127.0.0.1:8080".to_owned(),
        }
    }
}

/// What every worker thread of one server shares: the settings, the rate
/// limiter (one count per key, not one per thread) and the metrics.
#[derive(Debug, Clone)]
pub struct HttpShared {
    settings: web::Data<HttpSettings>,
    limiter: web::Data<RateLimiter>,
    metrics: Metrics,
}

impl HttpShared {
    /// Shared state for a server with `settings`, recording into `metrics`.
    pub fn new(settings: HttpSettings, metrics: Metrics) -> Self {
        let limiter = web::Data::new(RateLimiter::new(settings.rate_limit_per_minute));
        Self { settings: web::Data::new(settings), limiter, metrics }
    }
}

/// The whole application: routes, middleware and the service, ready for an
/// `HttpServer` (or `actix_web::test`). Build `shared` once per server.
pub fn build_app<A: CodeReposApi>(
    service: A,
    shared: HttpShared,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let serve_metrics = shared.settings.serve_metrics;
    App::new()
        .app_data(web::Data::new(service))
        .app_data(shared.settings)
        .app_data(shared.limiter)
        .app_data(web::Data::new(shared.metrics))
        .configure(routes::configure::<A>)
        .configure(|cfg| {
            if serve_metrics {
                routes::metrics_route(cfg);
            }
        })
        .default_service(web::to(routes::no_route))
        .wrap(from_fn(context::request_context))
}

/// An app serving only `GET /metrics` (for `SIGSENTRY_METRICS_LISTEN`).
pub fn metrics_app(
    metrics: Metrics,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(metrics))
        .configure(routes::metrics_route)
        .default_service(web::to(routes::no_route))
}
