//! The one error the HTTP API returns: a status and the JSON body
//! `{"error": {"code", "message", "details"}}`. Library errors of each area convert into it
//! here, at the edge; a `500` is always a bug or an outage, never bad input.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::login::LoginError;
use crate::auth::{AuthError, password};
use crate::blob::BlobError;
use crate::blob::finalize::FinalizeError;
use crate::extensions::HandlerError;
use crate::extensions::invoke::CallError;
use crate::extensions::remote::secret::RotateError;
use crate::item::ItemError;
use crate::item::attributes::ValidationErrors;
use crate::jobs::submit::SubmitError;
use crate::query::QueryError;
use crate::queue::QueueError;
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

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::TooLarge(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.to_string(),
            ),
            QueueError::Unavailable(m) => {
                tracing::error!(error = %m, "queue unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the job queue is unavailable; try again shortly",
                )
            }
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::NoQueue => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            SubmitError::Queue(e) => e.into(),
            SubmitError::Item(e) => e.into(),
            SubmitError::Store(e) => ItemError::from(e).into(),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::Unavailable(m) => {
                tracing::error!(error = %m, "file storage unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "file storage is unavailable; try again shortly",
                )
            }
            BlobError::Backend(m) => {
                tracing::error!(error = %m, "file storage error");
                ApiError::internal()
            }
            e @ (BlobError::TooLarge { .. } | BlobError::OverRead { .. }) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.to_string(),
            ),
            e @ BlobError::TooSmall { .. } => {
                ValidationErrors::single("size", e.to_string()).into()
            }
            e @ BlobError::Body(_) => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<FinalizeError> for ApiError {
    fn from(e: FinalizeError) -> Self {
        match e {
            FinalizeError::NotUploaded(_) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "nothing has been uploaded for this file yet",
            ),
            e @ FinalizeError::Confirmed(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            FinalizeError::Item(e) => e.into(),
            FinalizeError::Blob(e) => e.into(),
        }
    }
}

impl From<HandlerError> for ApiError {
    fn from(e: HandlerError) -> Self {
        match e {
            HandlerError::Refused {
                status,
                message,
                details,
            } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                let code = match status {
                    StatusCode::UNAUTHORIZED => "unauthorized",
                    StatusCode::FORBIDDEN => "forbidden",
                    StatusCode::NOT_FOUND => "not_found",
                    StatusCode::CONFLICT => "conflict",
                    StatusCode::PRECONDITION_FAILED => "precondition_failed",
                    StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                    StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
                    StatusCode::TOO_MANY_REQUESTS => "rate_limited",
                    _ => "bad_request",
                };
                let err = ApiError::new(status, code, message);
                match details {
                    Some(d) => err.with_details(d),
                    None => err,
                }
            }
            HandlerError::Item(e) => e.into(),
            HandlerError::Query(e) => e.into(),
            HandlerError::Remote(m) => ApiError::new(StatusCode::BAD_GATEWAY, "bad_gateway", m),
            HandlerError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        let message = e.to_string();
        match e {
            CallError::NotFound(m) => ApiError::not_found(m),
            CallError::Input { errors, .. } => {
                let mut err = ApiError::from(errors);
                err.message = message;
                err
            }
            CallError::Item(e) => e.into(),
            CallError::Handler(e) => e.into(),
            e @ CallError::Panicked { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

impl From<RotateError> for ApiError {
    fn from(e: RotateError) -> Self {
        match e {
            e @ RotateError::NotFound(_) => ApiError::not_found(e.to_string()),
            e @ RotateError::NotWebhook(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            RotateError::Item(e) => e.into(),
        }
    }
}
