//! The error envelope, and the one place where failures become HTTP.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};
use sigsentry_app::{AuthError, CreateError, NotFoundOr, ScopeError, UpdateError};
use sigsentry_domain::{FieldError, QuotaExceeded, ValidationErrors};
use sigsentry_ports::{CipherError, StoreError};

use crate::context;

/// Every error code the API produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400
    Validation,
    /// 401
    Unauthorized,
    /// 403
    Forbidden,
    /// 403
    QuotaExceeded,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 409
    Conflict,
    /// 409
    IdempotencyKeyConflict,
    /// 409
    IdempotencyKeyInUse,
    /// 413
    PayloadTooLarge,
    /// 415
    UnsupportedMediaType,
    /// 429
    RateLimited,
    /// 500
    Internal,
    /// 503
    ServiceUnavailable,
}

impl ErrorCode {
    /// The wire code.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Validation => "VALIDATION_ERROR",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::IdempotencyKeyConflict => "IDEMPOTENCY_KEY_CONFLICT",
            ErrorCode::IdempotencyKeyInUse => "IDEMPOTENCY_KEY_IN_USE",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Internal => "INTERNAL_ERROR",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }

    /// The HTTP status of the code.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::Validation => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::QuotaExceeded => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict | ErrorCode::IdempotencyKeyConflict | ErrorCode::IdempotencyKeyInUse => {
                StatusCode::CONFLICT
            }
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// One entry of `error.details`: a field (a JSON pointer into the body, or a
/// header or query parameter name) and what is wrong, plus facts such as the
/// quota figures or the id of a conflicting connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detail {
    /// Where: `/serviceMappings/0/repo`, `X-Project-Id`, `limit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// Extra facts.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Detail {
    /// A detail at `field`.
    pub fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), message: message.into(), extra: Map::new() }
    }

    /// Adds a fact.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
}

impl From<FieldError> for Detail {
    fn from(error: FieldError) -> Self {
        Detail::at(error.field, error.message)
    }
}

/// An API error: code, message for people, details, and headers to add.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    details: Vec<Detail>,
    retry_after: Option<u32>,
    allow: Option<&'static str>,
    request_id: Option<String>,
}

impl ApiError {
    /// An error with a message and no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: Vec::new(), retry_after: None, allow: None, request_id: None }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Vec<Detail>) -> Self {
        self.details = details;
        self
    }

    /// Pins the request id (for errors rendered outside the request's scope).
    pub fn for_request(mut self, request_id: String) -> Self {
        self.request_id = Some(request_id);
        self
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// A 405 naming the allowed methods.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut error = Self::new(ErrorCode::MethodNotAllowed, format!("this path allows {allow}"));
        error.allow = Some(allow);
        error
    }

    /// A 400 with field details.
    pub fn validation(errors: impl IntoIterator<Item = Detail>) -> Self {
        Self::new(ErrorCode::Validation, "One or more fields failed validation.")
            .with_details(errors.into_iter().collect())
    }

    /// A 400 about one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation([Detail::at(field, message)])
    }

    /// A 404 for a connection outside the caller's project (or absent).
    pub fn connection_not_found() -> Self {
        Self::new(ErrorCode::NotFound, "No connection with that id in this project.")
    }

    /// A 500 that says nothing of the cause; the cause goes to the log.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(ErrorCode::Internal, "An internal error occurred. Quote the requestId when you contact support.")
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The envelope for `request_id`.
    pub fn envelope(&self, request_id: &str) -> Value {
        let mut error = serde_json::json!({
            "code": self.code.as_str(),
            "message": self.message,
            "requestId": request_id,
        });
        if !self.details.is_empty() {
            error["details"] = serde_json::to_value(&self.details).unwrap_or(Value::Null);
        }
        serde_json::json!({"success": false, "error": error})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        if let Some(allow) = self.allow {
            response.insert_header((header::ALLOW, allow));
        }
        if self.code == ErrorCode::Unauthorized {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        let request_id = self.request_id.clone().unwrap_or_else(context::current_request_id);
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.insert_header((context::REQUEST_ID_HEADER, value));
        }
        response.json(self.envelope(&request_id))
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::validation(errors.into_vec().into_iter().map(Detail::from))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                ApiError::new(ErrorCode::ServiceUnavailable, "The database is unavailable; retry shortly.")
                    .retry_after(1)
            }
            StoreError::Unexpected(cause) => ApiError::internal(&cause),
        }
    }
}

impl From<CipherError> for ApiError {
    fn from(error: CipherError) -> Self {
        ApiError::internal(&error)
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthorized => ApiError::new(
                ErrorCode::Unauthorized,
                "Missing or invalid API key. Send Authorization: Bearer ss_secret_...",
            ),
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<ScopeError> for ApiError {
    fn from(error: ScopeError) -> Self {
        let message = error.to_string();
        match error {
            ScopeError::MissingPermission(_) | ScopeError::OtherProject => ApiError::new(ErrorCode::Forbidden, message),
            ScopeError::ProjectHeaderMissing | ScopeError::ProjectHeaderInvalid => {
                ApiError::invalid_field("X-Project-Id", message)
            }
            ScopeError::ProjectNotFound => ApiError::new(ErrorCode::NotFound, message),
            ScopeError::Store(e) => e.into(),
        }
    }
}

impl From<NotFoundOr> for ApiError {
    fn from(error: NotFoundOr) -> Self {
        match error {
            NotFoundOr::NotFound => ApiError::connection_not_found(),
            NotFoundOr::Store(e) => e.into(),
        }
    }
}

fn quota(q: QuotaExceeded) -> ApiError {
    ApiError::new(ErrorCode::QuotaExceeded, format!("Repository quota of your plan reached: {q}.")).with_details(vec![
        Detail::at("/repositories", q.to_string())
            .with("limit", q.limit)
            .with("used", q.used)
            .with("requested", q.requested),
    ])
}

fn repository_taken(repository: &str, connection_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        format!("Repository {repository} is already attached to another connection of this project."),
    )
    .with_details(vec![
        Detail::at("/repositories", format!("{repository} is attached to connection {connection_id}"))
            .with("connectionId", connection_id.to_owned()),
    ])
}

fn service_name_taken(service_name: &str, connection_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        format!("Service {service_name} is already mapped by another connection of this project."),
    )
    .with_details(vec![
        Detail::at("/serviceMappings", format!("{service_name} is mapped by connection {connection_id}"))
            .with("connectionId", connection_id.to_owned()),
    ])
}

impl From<CreateError> for ApiError {
    fn from(error: CreateError) -> Self {
        match error {
            CreateError::Validation(errors) => errors.into(),
            CreateError::Quota(q) => quota(q),
            CreateError::RepositoryTaken { repository, connection_id } => {
                repository_taken(repository.as_str(), &connection_id.to_string())
            }
            CreateError::ServiceNameTaken { service_name, connection_id } => {
                service_name_taken(service_name.as_str(), &connection_id.to_string())
            }
            CreateError::IdempotencyMismatch => ApiError::new(
                ErrorCode::IdempotencyKeyConflict,
                "This Idempotency-Key was used with a different request body. Use a new key for a new request.",
            ),
            CreateError::IdempotencyInFlight { retry_after_secs } => ApiError::new(
                ErrorCode::IdempotencyKeyInUse,
                "A request with this Idempotency-Key is still in progress; retry after it completes.",
            )
            .retry_after(retry_after_secs),
            CreateError::Cipher(e) => e.into(),
            CreateError::Store(e) => e.into(),
        }
    }
}

impl From<UpdateError> for ApiError {
    fn from(error: UpdateError) -> Self {
        match error {
            UpdateError::NotFound => ApiError::connection_not_found(),
            UpdateError::Validation(errors) => errors.into(),
            UpdateError::Quota(q) => quota(q),
            UpdateError::RepositoryTaken { repository, connection_id } => {
                repository_taken(repository.as_str(), &connection_id.to_string())
            }
            UpdateError::ServiceNameTaken { service_name, connection_id } => {
                service_name_taken(service_name.as_str(), &connection_id.to_string())
            }
            UpdateError::Contended => ApiError::new(
                ErrorCode::Conflict,
                "The connection is being changed by other requests right now; retry.",
            ),
            UpdateError::Cipher(e) => e.into(),
            UpdateError::Store(e) => e.into(),
        }
    }
}

/// The envelope for an error that did not come from our handlers (the
/// framework's own 404, 413 and the like), chosen by status.
pub fn from_status(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::new(ErrorCode::NotFound, "No such route."),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(ErrorCode::MethodNotAllowed, "Method not allowed."),
        StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => unsupported_media_type(),
        s if s.is_client_error() => ApiError::new(ErrorCode::Validation, "The request is malformed."),
        StatusCode::SERVICE_UNAVAILABLE => ApiError::new(ErrorCode::ServiceUnavailable, "Service unavailable."),
        _ => ApiError::internal(&status),
    }
}

/// 413 with the limit.
pub fn payload_too_large() -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, "The request body is larger than 1 MiB.")
}

/// 415 with what we take.
pub fn unsupported_media_type() -> ApiError {
    ApiError::new(ErrorCode::UnsupportedMediaType, "Send the body as JSON with Content-Type: application/json.")
}
