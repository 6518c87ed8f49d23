//! What a handler takes from a request, as extractors: the caller's project
//! scope, the connection id of the path, the query of a listing and the JSON
//! body. A handler's signature says what it needs; the rules live here once.

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sigsentry_app::{AccessRequest, CodeReposApi, ConnectionFilter, ProjectScope, PullRequestFilter};
use sigsentry_domain::{ConnectionId, CredentialStatus, Permission, Platform};

use crate::body::{from_value, read_json_object, refuse_nulls};
use crate::error::ApiError;
use crate::query::{DEFAULT_LIMIT, parse_limit, parse_query};
use crate::rate_limit::RateLimiter;

/// The header that picks the project for a tenant-scoped key.
pub const PROJECT_HEADER: &str = "x-project-id";

/// The permission an endpoint needs, as a type.
pub trait Needs {
    /// The permission.
    const PERMISSION: Permission;
}

/// `config:read`.
#[derive(Debug)]
pub struct Read;

impl Needs for Read {
    const PERMISSION: Permission = Permission::ConfigRead;
}

/// `config:write`.
#[derive(Debug)]
pub struct Write;

impl Needs for Write {
    const PERMISSION: Permission = Permission::ConfigWrite;
}

/// The service and the project the caller may act on with permission `P`:
/// the key is authenticated and the scope table applied before the handler runs.
#[derive(Debug)]
pub struct Scoped<A, P> {
    /// The application service.
    pub service: web::Data<A>,
    /// The project the request acts on.
    pub scope: ProjectScope,
    needs: PhantomData<P>,
}

/// The bearer token of the request, if it sent one in the right scheme.
fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl<A: CodeReposApi, P: Needs + 'static> FromRequest for Scoped<A, P> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let service = service::<A>(&req)?;
            let request = AccessRequest {
                bearer: bearer(&req),
                project_header: req.headers().get(PROJECT_HEADER).map(|v| v.as_bytes()),
                needed: P::PERMISSION,
            };
            let scope = service.access(request).await?;
            // Counted per key once it is known good: bad keys are refused before.
            if let Some(limiter) = req.app_data::<web::Data<RateLimiter>>() {
                let verdict = limiter.check(scope.key_id);
                req.extensions_mut().insert(verdict);
                if let Some(secs) = verdict.retry_after_secs {
                    return Err(ApiError::rate_limited(secs));
                }
            }
            Ok(Scoped { service, scope, needs: PhantomData })
        })
    }
}

/// The application service, as the app registered it.
pub(crate) fn service<A: CodeReposApi>(req: &HttpRequest) -> Result<web::Data<A>, ApiError> {
    req.app_data::<web::Data<A>>().cloned().ok_or_else(|| ApiError::internal(&"the service is not registered"))
}

/// The service's public base URL, which webhook URLs are shown under.
#[derive(Debug, Clone)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// `base` with any trailing `/` dropped.
    pub fn new(base: &str) -> Self {
        Self(base.trim_end_matches('/').to_owned())
    }

    /// Where connection `id` receives its webhooks.
    pub fn hook_url(&self, id: ConnectionId) -> String {
        format!("{}/v1/hooks/{id}", self.0)
    }
}

impl FromRequest for PublicUrl {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let settings = req.app_data::<web::Data<crate::HttpSettings>>();
        let base = settings.map_or_else(|| crate::HttpSettings::default().public_url, |s| s.public_url.clone());
        ready(Ok(PublicUrl::new(&base)))
    }
}

/// The `{id}` of a connection path.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionPath(pub ConnectionId);

impl FromRequest for ConnectionPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let raw = req.match_info().get("id").unwrap_or_default();
        ready(
            raw.parse()
                .map(ConnectionPath)
                .map_err(|_| ApiError::invalid_field("id", "the connection id in the path must be a UUID")),
        )
    }
}

/// The query of `GET /v1/config/repos`.
#[derive(Debug, Clone)]
pub struct ConnectionQuery(pub ConnectionFilter);

impl FromRequest for ConnectionQuery {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(connection_query(req.query_string()).map(ConnectionQuery))
    }
}

fn connection_query(query: &str) -> Result<ConnectionFilter, ApiError> {
    let mut filter = ConnectionFilter {
        platform: None,
        is_active: None,
        credential_status: Vec::new(),
        after: None,
        limit: DEFAULT_LIMIT,
    };
    parse_query(query, "limit, cursor, platform, isActive, credentialStatus", |name, value| {
        match name {
            "limit" => filter.limit = parse_limit(value)?,
            "cursor" => filter.after = Some(sigsentry_app::decode_cursor(value).map_err(|e| e.0)?),
            "platform" => filter.platform = Some(value.parse::<Platform>().map_err(|e| e.0)?),
            "credentialStatus" => filter.credential_status = CredentialStatus::parse_list(value).map_err(|e| e.0)?,
            "isActive" => {
                filter.is_active = Some(match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err("must be true or false".to_owned()),
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(filter)
}

/// The query of `GET /v1/config/repos/{id}/pull-requests`.
#[derive(Debug, Clone)]
pub struct PullRequestQuery(pub PullRequestFilter);

impl FromRequest for PullRequestQuery {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(pull_request_query(req.query_string()).map(PullRequestQuery))
    }
}

fn pull_request_query(query: &str) -> Result<PullRequestFilter, ApiError> {
    let mut filter = PullRequestFilter { limit: DEFAULT_LIMIT, ..Default::default() };
    parse_query(query, "repo, path, limit, cursor", |name, value| {
        match name {
            "limit" => filter.limit = parse_limit(value)?,
            "cursor" => filter.after = Some(sigsentry_app::decode_pr_cursor(value).map_err(|e| e.0)?),
            "repo" if !value.is_empty() && value.len() <= 1024 => filter.repository = Some(value.to_owned()),
            "repo" => return Err("must be a repository name of the connection".to_owned()),
            "path" if value.len() <= 1024 && !value.chars().any(char::is_control) => {
                filter.path_prefix = Some(value.to_owned()).filter(|p| !p.is_empty());
            }
            "path" => return Err("must be a path of at most 1024 characters".to_owned()),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(filter)
}

/// A request body type: which `null`s mean something in it.
pub trait RequestBody: DeserializeOwned + 'static {
    /// JSON pointers where `null` is a value (elsewhere it is refused: a
    /// left-out field and a `null` one must not differ silently).
    const NULLABLE: &'static [&'static str] = &[];
}

impl RequestBody for crate::dto::CreateConnectionBody {
    const NULLABLE: &'static [&'static str] = &["/credentials/baseUrl"];
}

impl RequestBody for crate::dto::CorrelateBody {}

impl RequestBody for crate::dto::UpdateConnectionBody {
    const NULLABLE: &'static [&'static str] = &["/credentials/baseUrl"];
}

/// A JSON object body read and typed: 415 for another media type, 413 past
/// 1 MiB, 400 for malformed JSON, a refused `null`, a wrong type or an
/// unknown field (with its pointer). The raw value is kept too (idempotency
/// fingerprints it).
#[derive(Debug)]
pub struct JsonBody<T> {
    /// The body as parsed.
    pub value: Value,
    /// The body as typed.
    pub body: T,
}

impl<T: RequestBody> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let value = read_json_object(&req, payload).await?;
            let nulls = refuse_nulls(&value, T::NULLABLE);
            if !nulls.is_empty() {
                return Err(ApiError::validation(nulls));
            }
            let body = from_value(&value)?;
            Ok(JsonBody { value, body })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_queries_are_checked() {
        assert!(connection_query("").is_ok());
        assert_eq!(connection_query("limit=7&isActive=false").unwrap().limit, 7);
        for bad in [
            "limit=0",
            "limit=101",
            "limit=x",
            "isActive=yes",
            "platform=svn",
            "cursor=zzz",
            "is_active=true",
            "limit=1&limit=2",
        ] {
            assert!(connection_query(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pull_request_queries_are_checked() {
        let filter = pull_request_query("repo=acme/api&path=src/&limit=5").unwrap();
        assert_eq!(filter.repository.as_deref(), Some("acme/api"));
        assert_eq!(filter.path_prefix.as_deref(), Some("src/"));
        assert_eq!(filter.limit, 5);
        for bad in ["limit=0", "limit=500", "cursor=x", "repo=", "paths=src", "repo=a&repo=b"] {
            assert!(pull_request_query(bad).is_err(), "{bad}");
        }
    }
}
