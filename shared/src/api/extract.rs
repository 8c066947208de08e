//! Extractors that turn a request into checked input, refusing bad input with the JSON error
//! body: JSON bodies (content type, size, syntax, unknown fields), query strings, item ids and
//! the `If-Match` / `If-None-Match` headers, and the request's id.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use tower_http::request_id::RequestId;
use uuid::Uuid;

use crate::error::ApiError;

/// The request's id (`x-request-id`, as the router's outer layer set it), for what a request
/// hands on: a job's envelope, a handler's call.
pub struct RequestIdOf(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestIdOf {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestIdOf(
            parts
                .extensions
                .get::<RequestId>()
                .and_then(|id| id.header_value().to_str().ok())
                .map(str::to_string),
        ))
    }
}

/// A JSON request body of type `T` (whose unknown fields are refused by `T` itself).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is larger than the configured limit",
                )
            } else {
                ApiError::bad_request(format!("cannot read the request body: {e}"))
            }
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    format!("the body is not valid JSON: {e}"),
                ),
                Category::Data => ApiError::bad_request(format!("the body does not fit: {e}")),
            }
        })
    }
}

/// The query string as ordered pairs.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(raw)
            .map(QueryPairs)
            .map_err(|e| ApiError::bad_request(format!("cannot read the query string: {e}")))
    }
}

/// Path parameters, refused with the JSON error body (`400`) when a segment does not decode
/// (not UTF-8) or does not fit `T`: axum's own rejection is plain text.
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| PathParams(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Parses an item id from a path segment.
pub fn item_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::bad_request(format!("{raw:?} is not an item id")))
}

pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// `If-Match: "<version>"` (or `*`, which matches any version).
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default().trim();
    if value == "*" {
        return Ok(None);
    }
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .and_then(|v| v.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(match value.parse::<i64>() {
                // An ETag is a quoted string; the bare version is the usual slip.
                Ok(version) => format!(
                    "If-Match takes an ETag, which is quoted: send If-Match: \"{version}\", not {value}"
                ),
                Err(_) => format!(
                    "If-Match must be an ETag from this API, such as \"3\", not {value:?}"
                ),
            })
        })
}

/// Whether `If-None-Match` names the current version (or is `*`).
pub fn none_match(headers: &HeaderMap, version: i64) -> bool {
    let current = etag(version);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().trim_start_matches("W/"))
        .any(|v| v == "*" || v == current)
}

/// `?recursive=true` on delete; any other parameter is refused.
pub fn recursive_flag(pairs: &[(String, String)]) -> Result<bool, ApiError> {
    let mut recursive = false;
    for (k, v) in pairs {
        match (k.as_str(), v.as_str()) {
            ("recursive", "true") => recursive = true,
            ("recursive", "false") => recursive = false,
            ("recursive", other) => {
                return Err(ApiError::bad_request(format!(
                    "recursive must be true or false, not {other:?}"
                )));
            }
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}: delete takes only recursive"
                ))
                .with_details(serde_json::json!({ "parameter": other })));
            }
        }
    }
    Ok(recursive)
}
