//! Who a request acts as: the [`Principal`] extractor is the one place that decides it, from
//! the verified authorizer claims the Lambda runner put on the request, a bearer token, or
//! nothing (the public, where a rule lets the public do anything at all).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::auth::{AuthorizerClaims, ClientAddr, Principal};
use crate::config::AuthMode;
use crate::context::Realnet;
use crate::error::ApiError;

impl<S: Send + Sync> FromRequestParts<S> for Principal
where
    Arc<Realnet>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let rn = Arc::<Realnet>::from_ref(state);
        let mode = rn.config.auth.mode;
        if mode != AuthMode::Token
            && let Some(claims) = parts.extensions.get::<AuthorizerClaims>()
        {
            return Ok(rn.principal_for_claims(claims).await?);
        }
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            // The public may do only what a rule grants it; where none does (the default),
            // every route that acts for someone is a `401` before anything else is looked at.
            let org = &rn.config.default_org;
            if !rn.access_rules(org).await?.grants_public() {
                return Err(ApiError::unauthorized(
                    "this needs a bearer token: log in with POST /api/auth",
                ));
            }
            return Ok(Principal::public(org));
        };
        if mode == AuthMode::Authorizer {
            return Err(ApiError::unauthorized(
                "bearer tokens are not accepted (REALNET_AUTH_MODE=authorizer)",
            ));
        }
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be: Bearer <token>")
            })?;
        Ok(rn.principal_for_token(token).await?)
    }
}

/// A principal that is not the public: routes that take it answer `401` without credentials.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated
where
    Arc<Realnet>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let p = Principal::from_request_parts(parts, state).await?;
        if p.is_public() {
            return Err(ApiError::unauthorized(
                "this needs a bearer token: log in with POST /api/auth",
            ));
        }
        Ok(Authenticated(p))
    }
}

/// The client address a runner recorded: [`ClientAddr`] put by the Lambda runner, or the
/// socket peer under `realnet serve`.
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<ClientAddr>().copied().or_else(|| {
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| ClientAddr(c.0.ip()))
        }))
    }
}
