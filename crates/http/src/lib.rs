//! The HTTP adapter (actix-web): routes, authentication, DTOs and the error
//! envelope of the Code Repos API. Nothing below this crate knows actix.
//!
//! A request's path: [`context::request_context`] gives it an id and a panic
//! net; a route handler authenticates and scopes it ([`auth`]), reads and
//! checks the body ([`body`], [`dto`]), calls the application service, and
//! renders the result; every failure becomes an [`error::ApiError`] in one
//! place.

pub mod auth;
pub mod body;
pub mod context;
pub mod dto;
pub mod error;
pub mod openapi;
mod routes;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use sigsentry_app::CodeRepos;
use sigsentry_ports::{Clock, CredentialCipher, Store};

/// What every handler shares.
#[derive(Debug)]
pub struct AppState<S, C, K> {
    /// The application services.
    pub services: CodeRepos<S, C, K>,
}

/// The whole application: routes, middleware and state, ready for an
/// `HttpServer` (or `actix_web::test`).
pub fn build_app<S: Store, C: CredentialCipher, K: Clock>(
    services: CodeRepos<S, C, K>,
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
        .app_data(web::Data::new(AppState { services }))
        .configure(routes::configure::<S, C, K>)
        .default_service(web::to(routes::no_route))
        .wrap(from_fn(context::request_context))
}
