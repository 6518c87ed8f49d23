//! The OpenAPI 3.1 document, generated from the handlers and DTOs.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{dto, envelope, routes};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "SigSentry Code Repos API", version = "1.0.0",
        description = "Connect GitHub, GitLab and Bitbucket repositories to a SigSentry project."),
    paths(
        routes::list_connections, routes::get_connection, routes::create_connection, routes::update_connection,
        routes::delete_connection, routes::invalidate_cache, routes::request_sync, routes::list_pull_requests, routes::correlate, routes::healthz, routes::readyz, routes::openapi_document,
    ),
    components(schemas(dto::CreateConnectionBody, dto::UpdateConnectionBody, envelope::ErrorEnvelope)),
    modifiers(&BearerAuth),
    tags((name = "repos", description = "Repo connections"), (name = "code", description = "Code correlation"), (name = "operations", description = "Health and metadata")),
)]
#[derive(Debug)]
pub struct ApiDoc;

#[derive(Debug)]
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The document as pretty JSON (what `GET /v1/openapi.json` serves and
/// `docs/openapi.json` holds).
pub fn document_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".to_owned())
}
