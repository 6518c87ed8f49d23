//! Authentication and project scope of a request.

use actix_web::HttpRequest;
use actix_web::http::header;
use sigsentry_app::ProjectScope;
use sigsentry_domain::Permission;
use sigsentry_ports::{Clock, CredentialCipher, Store};

use crate::AppState;
use crate::error::ApiError;

/// The header that picks the project for a tenant-scoped key.
pub const PROJECT_HEADER: &str = "x-project-id";

/// The bearer token of the request, if it sent one in the right scheme.
fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Authenticates the request, checks `needed`, and resolves its project.
///
/// # Errors
/// 401 for a missing or bad key, 403 for a missing permission or another
/// project, 400 / 404 for `X-Project-Id` problems.
pub async fn scope<S: Store, C: CredentialCipher, K: Clock>(
    state: &AppState<S, C, K>,
    req: &HttpRequest,
    needed: Permission,
) -> Result<ProjectScope, ApiError> {
    let presented = bearer(req).ok_or(sigsentry_app::AuthError::Unauthorized)?;
    let caller = state.services.authenticate(presented).await?;
    let project_header = match req.headers().get(PROJECT_HEADER) {
        None => None,
        Some(value) => {
            Some(value.to_str().map_err(|_| ApiError::invalid_field("X-Project-Id", "X-Project-Id must be a UUID"))?)
        }
    };
    Ok(state.services.authorize(&caller, needed, project_header).await?)
}
