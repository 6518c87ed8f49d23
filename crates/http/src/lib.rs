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

use crate::rate_limit::RateLimiter;

/// What the HTTP adapter enforces itself, to protect the process.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Requests per minute per API key, in this process (`SIGSENTRY_RATE_LIMIT`).
    pub rate_limit_per_minute: u32,
    /// Longest wait for a whole request body (`SIGSENTRY_BODY_TIMEOUT_SECS`).
    pub body_timeout: std::time::Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self { rate_limit_per_minute: 1200, body_timeout: std::time::Duration::from_secs(10) }
    }
}

/// The whole application: routes, middleware and the service, ready for an
/// `HttpServer` (or `actix_web::test`). Build the limiter once per server
/// (`web::Data::new(RateLimiter::new(..))`) and share it between workers,
/// or each worker thread would count on its own.
pub fn build_app<A: CodeReposApi>(
    service: A,
    settings: HttpSettings,
    limiter: web::Data<RateLimiter>,
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
        .app_data(web::Data::new(service))
        .app_data(web::Data::new(settings))
        .app_data(limiter)
        .configure(routes::configure::<A>)
        .default_service(web::to(routes::no_route))
        .wrap(from_fn(context::request_context))
}
