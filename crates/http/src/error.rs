//! The one place where failures become HTTP: every error code, its status,
//! and the mapping of each service error to the envelope.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use sigsentry_app::{
    AccessError, CipherError, CreateError, HookError, NotFoundOr, StoreError, UpdateError, WriteRefused,
};
use sigsentry_domain::{FieldError, ValidationErrors};
use utoipa::ToSchema;

use crate::envelope::{ErrorBody, ErrorEnvelope, False};
use crate::request_id::{self, REQUEST_ID_HEADER};

/// Every error code the API produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum ErrorCode {
    /// 400: a field, header or query parameter broke a rule.
    #[serde(rename = "VALIDATION_ERROR")]
    Validation,
    /// 401: missing or invalid API key.
    #[serde(rename = "UNAUTHORIZED")]
    Unauthorized,
    /// 403: the key may not do this.
    #[serde(rename = "FORBIDDEN")]
    Forbidden,
    /// 403: the plan's repository quota.
    #[serde(rename = "QUOTA_EXCEEDED")]
    QuotaExceeded,
    /// 404
    #[serde(rename = "NOT_FOUND")]
    NotFound,
    /// 405
    #[serde(rename = "METHOD_NOT_ALLOWED")]
    MethodNotAllowed,
    /// 409: a name is taken, or the resource is contended.
    #[serde(rename = "CONFLICT")]
    Conflict,
    /// 409: an idempotency key reused with another body.
    #[serde(rename = "IDEMPOTENCY_KEY_CONFLICT")]
    IdempotencyKeyConflict,
    /// 409: an idempotency key whose first request still runs.
    #[serde(rename = "IDEMPOTENCY_KEY_IN_USE")]
    IdempotencyKeyInUse,
    /// 408: the body did not arrive in time.
    #[serde(rename = "REQUEST_TIMEOUT")]
    RequestTimeout,
    /// 413
    #[serde(rename = "PAYLOAD_TOO_LARGE")]
    PayloadTooLarge,
    /// 415
    #[serde(rename = "UNSUPPORTED_MEDIA_TYPE")]
    UnsupportedMediaType,
    /// 429
    #[serde(rename = "RATE_LIMITED")]
    RateLimited,
    /// 500
    #[serde(rename = "INTERNAL_ERROR")]
    Internal,
    /// 503: the database is unreachable.
    #[serde(rename = "SERVICE_UNAVAILABLE")]
    ServiceUnavailable,
}

impl ErrorCode {
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
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// One entry of `error.details`: where (a JSON pointer into the body, or a
/// header or query parameter name), what is wrong, and the facts of a quota
/// refusal or a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    /// `/serviceMappings/0/repo`, `X-Project-Id`, `limit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// Quota refusals: the plan's limit of repositories per project.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub limit: Option<u32>,
    /// Quota refusals: repositories the project holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub used: Option<u32>,
    /// Quota refusals: repositories the request would add.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub requested: Option<u32>,
    /// Conflicts: the connection that holds the name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = Uuid)]
    pub connection_id: Option<String>,
}

impl Detail {
    /// A detail at `field`.
    pub fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            message: message.into(),
            limit: None,
            used: None,
            requested: None,
            connection_id: None,
        }
    }
}

impl From<FieldError> for Detail {
    fn from(error: FieldError) -> Self {
        Detail::at(error.field, error.message)
    }
}

/// An API error: code, message for people, details, and headers to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    details: Vec<Detail>,
    retry_after: Option<u32>,
    allow: Option<&'static str>,
    /// A 401 of an API key says `WWW-Authenticate: Bearer`; a webhook's does not.
    bearer_challenge: bool,
}

impl ApiError {
    /// An error with a message and no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
            allow: None,
            bearer_challenge: true,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Vec<Detail>) -> Self {
        self.details = details;
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

    /// A 429 for a key past its request rate.
    pub fn rate_limited(retry_after_secs: u32) -> Self {
        Self::new(
            ErrorCode::RateLimited,
            format!("This API key sent more requests than its rate limit allows; retry in {retry_after_secs} s."),
        )
        .retry_after(retry_after_secs)
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

    /// The envelope of this error for the request being served.
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            success: False,
            error: ErrorBody {
                code: self.code,
                message: self.message.clone(),
                details: self.details.clone(),
                request_id: request_id::current(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
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
        if self.code == ErrorCode::Unauthorized && self.bearer_challenge {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        let envelope = self.envelope();
        if let Ok(value) = HeaderValue::from_str(&envelope.error.request_id) {
            response.insert_header((REQUEST_ID_HEADER, value));
        }
        response.json(envelope)
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

impl From<AccessError> for ApiError {
    fn from(error: AccessError) -> Self {
        let message = error.to_string();
        match error {
            AccessError::Unauthorized => ApiError::new(
                ErrorCode::Unauthorized,
                "Missing or invalid API key. Send Authorization: Bearer ss_secret_...",
            ),
            AccessError::MissingPermission(_) | AccessError::OtherProject => {
                ApiError::new(ErrorCode::Forbidden, message)
            }
            AccessError::ProjectHeaderMissing | AccessError::ProjectHeaderInvalid => {
                ApiError::invalid_field("X-Project-Id", message)
            }
            AccessError::ProjectNotFound => ApiError::new(ErrorCode::NotFound, message),
            AccessError::Store(e) => e.into(),
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

impl From<WriteRefused> for ApiError {
    fn from(refused: WriteRefused) -> Self {
        match refused {
            WriteRefused::Quota(q) => {
                ApiError::new(ErrorCode::QuotaExceeded, format!("Repository quota of your plan reached: {q}."))
                    .with_details(vec![Detail {
                        limit: Some(q.limit),
                        used: Some(q.used),
                        requested: Some(q.requested),
                        ..Detail::at("/repositories", q.to_string())
                    }])
            }
            WriteRefused::RepositoryTaken { repository, connection_id } => ApiError::new(
                ErrorCode::Conflict,
                format!("Repository {repository} is already attached to another connection of this project."),
            )
            .with_details(vec![Detail {
                connection_id: Some(connection_id.to_string()),
                ..Detail::at("/repositories", format!("{repository} is attached to connection {connection_id}"))
            }]),
            WriteRefused::ServiceNameTaken { service_name, connection_id } => ApiError::new(
                ErrorCode::Conflict,
                format!("Service {service_name} is already mapped by another connection of this project."),
            )
            .with_details(vec![Detail {
                connection_id: Some(connection_id.to_string()),
                ..Detail::at("/serviceMappings", format!("{service_name} is mapped by connection {connection_id}"))
            }]),
        }
    }
}

impl From<CreateError> for ApiError {
    fn from(error: CreateError) -> Self {
        match error {
            CreateError::Validation(errors) => errors.into(),
            CreateError::Refused(refused) => refused.into(),
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
            UpdateError::Refused(refused) => refused.into(),
            UpdateError::Contended => ApiError::new(
                ErrorCode::Conflict,
                "The connection is being changed by other requests right now; retry.",
            ),
            UpdateError::Cipher(e) => e.into(),
            UpdateError::Store(e) => e.into(),
        }
    }
}

impl From<HookError> for ApiError {
    fn from(error: HookError) -> Self {
        let unauthorized =
            |message: &str| ApiError { bearer_challenge: false, ..ApiError::new(ErrorCode::Unauthorized, message) };
        match error {
            HookError::NotFound => ApiError::new(ErrorCode::NotFound, "No webhook endpoint for that connection."),
            HookError::AppNotConfigured => ApiError::new(
                ErrorCode::NotFound,
                "This service has no GitHub App configured (SIGSENTRY_GITHUB_APP_WEBHOOK_SECRET).",
            ),
            HookError::NoSecret => unauthorized(
                "This connection has no webhook secret yet (it was made before webhooks): make one with \
                 PUT /v1/config/repos/{id} {\"rotateWebhookSecret\": true}.",
            ),
            HookError::BadSignature => {
                unauthorized("The delivery's signature is missing or does not match the webhook secret.")
            }
            HookError::Malformed(message) => ApiError::invalid_field("/", message),
            HookError::Cipher(e) => e.into(),
            HookError::Store(e) => e.into(),
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

/// 408: the body was not received in time.
pub fn body_timeout(secs: u64) -> ApiError {
    ApiError::new(ErrorCode::RequestTimeout, format!("The request body did not arrive within {secs} s."))
}

/// 413 with the limit.
pub fn payload_too_large() -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, "The request body is larger than 1 MiB.")
}

/// 413 for a webhook delivery.
pub fn hook_payload_too_large() -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, "The webhook delivery is larger than 5 MiB.")
}

/// 415 with what we take.
pub fn unsupported_media_type() -> ApiError {
    ApiError::new(ErrorCode::UnsupportedMediaType, "Send the body as JSON with Content-Type: application/json.")
}
