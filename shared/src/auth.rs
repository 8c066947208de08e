//! Who is calling. Every handler that acts for someone takes a [`Principal`], and its extractor
//! is the one place that decides who a request acts as. Until accounts and tokens exist, every
//! request acts as the admin of the configured default org, and `realnet serve` listens on
//! loopback only.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use uuid::Uuid;

use crate::context::Realnet;
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

impl FromRequestParts<Arc<Realnet>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, rn: &Arc<Realnet>) -> Result<Self, ApiError> {
        Ok(Principal::org_admin(&rn.config.default_org))
    }
}
