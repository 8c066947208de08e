//! Who is calling. Every handler that acts for someone takes a [`Principal`], and its extractor
//! is the one place that decides who a request acts as: the account behind a bearer token (a
//! login token or an API key), the account an API Gateway JWT authorizer vouched for, or the
//! public. A credential that is present but bad is a `401`, never a silent fall-back to the
//! public. Resolved principals are cached per container for `REALNET_AUTH_CACHE_TTL`.

pub mod identity;
pub mod login;
pub mod password;
pub mod token;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::config::AuthMode;
use crate::context::Realnet;
use crate::error::ApiError;
use crate::item::Item;
use crate::store::StoreError;

/// How the caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credential.
    Public,
    /// The installation itself: seeding, the CLI.
    Installation,
    /// A login token, by its stored hash.
    LoginToken { hash: String },
    /// An API key (an `ApiKey` item).
    ApiKey { id: Uuid },
    /// The claims of an API Gateway JWT authorizer.
    Authorizer,
    /// A job from the queue, acting as its actor.
    Job,
}

/// The caller of a request, job or command: the org it acts in and its rights there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub org: String,
    /// The account acting; `None` for the public and for the installation.
    pub account: Option<Uuid>,
    pub username: Option<String>,
    /// Org admins may do everything in their org.
    pub admin: bool,
    pub groups: Vec<Uuid>,
    pub credential: Credential,
}

impl Principal {
    /// The installation acting as admin of `org`.
    pub fn org_admin(org: &str) -> Self {
        Principal {
            org: org.to_string(),
            account: None,
            username: None,
            admin: true,
            groups: Vec::new(),
            credential: Credential::Installation,
        }
    }

    /// A caller without credentials, in `org`.
    pub fn public(org: &str) -> Self {
        Principal {
            admin: false,
            credential: Credential::Public,
            ..Principal::org_admin(org)
        }
    }

    pub fn is_public(&self) -> bool {
        self.credential == Credential::Public
    }

    /// The principal a job acts as: its actor's account (which must not be disabled).
    pub fn for_job(account: &Item) -> Principal {
        Principal::of_account(account, Credential::Job)
    }

    /// An account acting through the command line (`realnet create --as`): its rights, and
    /// it owns what it makes.
    pub fn for_command(account: &Item) -> Principal {
        Principal::of_account(account, Credential::Installation)
    }

    /// The principal of an account item (which must not be disabled).
    fn of_account(account: &Item, credential: Credential) -> Principal {
        let a = &account.attributes;
        Principal {
            org: account.org.clone(),
            account: Some(account.id),
            username: a
                .get("username")
                .and_then(Value::as_str)
                .map(str::to_string),
            admin: a.get("admin").and_then(Value::as_bool).unwrap_or(false),
            groups: identity::groups_of(account),
            credential,
        }
    }
}

/// Why a credential was refused; always a `401`.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Unauthorized(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The verified claims of an API Gateway JWT authorizer, put on the request by the Lambda
/// runner from the request context (never from headers a client could send).
#[derive(Debug, Clone, Default)]
pub struct AuthorizerClaims(pub HashMap<String, String>);

/// The client's address as the runner saw it (the socket peer locally, API Gateway's
/// `sourceIp` on Lambda); used to throttle failed logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// A resolved principal as cached, with the moment its credential expires.
#[derive(Debug, Clone)]
pub(crate) struct CachedPrincipal {
    principal: Principal,
    expires: Option<DateTime<Utc>>,
    resolved: Instant,
}

fn unauthorized(message: impl Into<String>) -> AuthError {
    AuthError::Unauthorized(message.into())
}

impl Realnet {
    /// The principal a bearer token stands for.
    pub async fn principal_for_token(&self, token: &str) -> Result<Principal, AuthError> {
        if !token::well_formed(token) {
            return Err(unauthorized("the bearer token is malformed"));
        }
        let hash = token::hash(token);
        if let Some(p) = self.cached_principal(&hash) {
            return Ok(p);
        }
        let stored = self
            .store
            .token(&hash)
            .await?
            .ok_or_else(|| unauthorized("the bearer token is unknown or revoked"))?;
        let now = Utc::now();
        if stored.expires.is_some_and(|e| e <= now) {
            return Err(unauthorized("the bearer token has expired; log in again"));
        }
        let (account_id, expires, credential) = match stored.api_key {
            None => (
                stored.account,
                stored.expires,
                Credential::LoginToken { hash: hash.clone() },
            ),
            Some(key) => {
                let item = self
                    .store
                    .get(&stored.org, key)
                    .await?
                    .ok_or_else(|| unauthorized("the API key is revoked"))?;
                let expires = identity::api_key_expiry(&item);
                if expires.is_some_and(|e| e <= now) {
                    return Err(unauthorized("the API key has expired"));
                }
                let account = identity::api_key_account(&item)
                    .ok_or_else(|| unauthorized("the API key is revoked"))?;
                (account, expires, Credential::ApiKey { id: key })
            }
        };
        let account = self
            .store
            .get(&stored.org, account_id)
            .await?
            .ok_or_else(|| unauthorized("the account of this token no longer exists"))?;
        if identity::is_disabled(&account) {
            return Err(unauthorized("the account is disabled"));
        }
        let principal = Principal::of_account(&account, credential);
        self.cache_principal(hash, &principal, expires);
        Ok(principal)
    }

    /// The principal an API Gateway authorizer vouched for: the account with the username in
    /// the configured claim, in the org of the org claim (or the default org).
    pub async fn principal_for_claims(
        &self,
        claims: &AuthorizerClaims,
    ) -> Result<Principal, AuthError> {
        let auth = &self.config.auth;
        let username = claims.0.get(&auth.username_claim).ok_or_else(|| {
            unauthorized(format!(
                "the authorizer's claims have no {:?} (REALNET_AUTH_USERNAME_CLAIM)",
                auth.username_claim
            ))
        })?;
        let org = match &auth.org_claim {
            Some(c) => claims.0.get(c).ok_or_else(|| {
                unauthorized(format!(
                    "the authorizer's claims have no {c:?} (REALNET_AUTH_ORG_CLAIM)"
                ))
            })?,
            None => &self.config.default_org,
        };
        let key = format!("authorizer\n{org}\n{username}");
        if let Some(p) = self.cached_principal(&key) {
            return Ok(p);
        }
        let account = identity::find_account(self, org, username)
            .await?
            .filter(|a| !identity::is_disabled(a))
            .ok_or_else(|| {
                unauthorized(format!(
                    "no enabled account {username:?} in org {org:?} for the authorizer's identity"
                ))
            })?;
        let principal = Principal::of_account(&account, Credential::Authorizer);
        self.cache_principal(key, &principal, None);
        Ok(principal)
    }

    /// The principal a job acts as: `username`, an enabled account of `org`; cached like
    /// the principals of tokens.
    pub async fn job_principal(
        &self,
        org: &str,
        username: &str,
    ) -> Result<Option<Principal>, StoreError> {
        let key = format!("job\n{org}\n{username}");
        if let Some(p) = self.cached_principal(&key) {
            return Ok(Some(p));
        }
        let Some(account) = identity::find_account(self, org, username)
            .await?
            .filter(|a| !identity::is_disabled(a))
        else {
            return Ok(None);
        };
        let principal = Principal::of_account(&account, Credential::Job);
        self.cache_principal(key, &principal, None);
        Ok(Some(principal))
    }

    fn cached_principal(&self, key: &str) -> Option<Principal> {
        let hit = self.principals.get(&key.to_string())?;
        let fresh = hit.resolved.elapsed() < self.config.auth.cache_ttl
            && hit.expires.is_none_or(|e| e > Utc::now());
        fresh.then(|| hit.principal.clone())
    }

    fn cache_principal(&self, key: String, p: &Principal, expires: Option<DateTime<Utc>>) {
        if !self.config.auth.cache_ttl.is_zero() {
            self.principals.insert(
                key,
                Arc::new(CachedPrincipal {
                    principal: p.clone(),
                    expires,
                    resolved: Instant::now(),
                }),
            );
        }
    }

    /// Forgets every cached principal of this container, after a change to accounts or
    /// credentials made here.
    pub(crate) fn forget_principals(&self) {
        self.principals.invalidate_all();
    }
}

impl FromRequestParts<Arc<Realnet>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, rn: &Arc<Realnet>) -> Result<Self, ApiError> {
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
            return Err(unauthorized(
                "bearer tokens are not accepted (REALNET_AUTH_MODE=authorizer)",
            )
            .into());
        }
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .ok_or_else(|| unauthorized("the Authorization header must be: Bearer <token>"))?;
        Ok(rn.principal_for_token(token).await?)
    }
}

/// A principal that is not the public: routes that take it answer `401` without credentials.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl FromRequestParts<Arc<Realnet>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, rn: &Arc<Realnet>) -> Result<Self, ApiError> {
        let p = Principal::from_request_parts(parts, rn).await?;
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
