//! The one error the HTTP API returns: a status and the JSON body
//! `{"error": {"code", "message", "details"}}`. Library errors of each area convert into it
//! here, at the edge; a `500` is always a bug or an outage, never bad input.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::login::LoginError;
use crate::auth::{AuthError, password};
use crate::item::attributes::ValidationErrors;
use crate::item::ops::ItemError;
use crate::query::QueryError;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            headers: Vec::new(),
        }
    }

    /// A `401`, with the challenge RFC 6750 asks for.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
        e.headers
            .push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        e
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        let err = ApiError::bad_request(e.to_string());
        match e.parameter() {
            Some(p) => err.with_details(json!({ "parameter": p })),
            None => err,
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        let fields: serde_json::Map<String, Value> =
            e.0.iter()
                .map(|(f, m)| (f.clone(), Value::String(m.clone())))
                .collect();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            e.to_string(),
        )
        .with_details(json!({ "fields": fields }))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ApiError::not_found(format!("no item with id {id}")),
            StoreError::VersionConflict { .. } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                format!("{e}: fetch it again and retry with its current ETag"),
            ),
            StoreError::HasChildren(_) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{e}: delete them first or use ?recursive=true"),
            ),
            StoreError::Duplicate(_)
            | StoreError::Taken(_)
            | StoreError::TooLarge(_)
            | StoreError::JobRecorded(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::NeedsIndex(m) => ApiError::bad_request(m),
            StoreError::Unavailable(ref m) => {
                tracing::error!(error = %m, "store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store is unavailable; try again shortly",
                )
            }
            StoreError::Backend(ref m) => {
                tracing::error!(error = %m, "store error");
                ApiError::internal()
            }
        }
    }
}

impl From<ItemError> for ApiError {
    fn from(e: ItemError) -> Self {
        match e {
            ItemError::Invalid(v) => v.into(),
            ItemError::NotFound(id) => ApiError::not_found(format!("no item with id {id}")),
            ItemError::Cycle(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            ItemError::Unauthenticated(_) => ApiError::unauthorized(e.to_string()),
            ItemError::Forbidden(m) => ApiError::forbidden(m),
            ItemError::Store(s) => s.into(),
            ItemError::Busy(b) => b.into(),
        }
    }
}

/// A `503` with `Retry-After`: every password hash of this process is running or waiting.
impl From<password::Busy> for ApiError {
    fn from(e: password::Busy) -> Self {
        let mut err = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        );
        err.headers
            .push((header::RETRY_AFTER, HeaderValue::from_static("1")));
        err
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized(m) => ApiError::unauthorized(m),
            AuthError::Store(s) => s.into(),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Refused => ApiError::unauthorized(e.to_string()),
            LoginError::Throttled { retry_after } => {
                let mut err =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string());
                err.headers
                    .push((header::RETRY_AFTER, HeaderValue::from(retry_after)));
                err
            }
            LoginError::Busy(b) => b.into(),
            LoginError::Store(s) => s.into(),
        }
    }
}
