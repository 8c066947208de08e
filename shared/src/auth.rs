//! Who is calling. Every handler takes a [`Principal`]; the router's auth layer decides which
//! one a request carries. Until accounts and tokens exist, every request acts as the admin of
//! the configured default org, and `realnet serve` listens on loopback only.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use uuid::Uuid;

use crate::error::ApiError;

/// The caller of a request, job or command: the org it acts in and its rights there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub org: String,
    /// The account acting; `None` for the installation itself (seeding, the CLI).
    pub account: Option<Uuid>,
    pub admin: bool,
}

impl Principal {
    /// The installation acting as admin of `org`.
    pub fn org_admin(org: &str) -> Self {
        Principal {
            org: org.to_string(),
            account: None,
            admin: true,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required",
            )
        })
    }
}
