//! Who is calling. Every handler that acts for someone takes a [`Principal`], and its extractor
//! is the one place that decides who a request acts as: the account behind a bearer token (a
//! login token or an API key), the account linked to the identity-provider subject an API
//! Gateway authorizer vouched for, or the public. A credential that is present but bad is a `401`, never a silent fall-back to the
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
use crate::context::{Realnet, check_org_name};
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

    /// The principal of an account item (which must not be disabled), with every group its
    /// `groups` attribute names: see [`Realnet::principal_of`], which keeps only those that
    /// exist.
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
        let principal = self.principal_of(&account, credential).await?;
        self.cache_principal(hash, &principal, expires);
        Ok(principal)
    }

    /// The principal an API Gateway authorizer vouched for: the enabled account linked to the
    /// identity provider's issuer and subject (the configured claims), in that account's org.
    /// An org claim, where one is configured, is checked like an org name and must agree.
    /// No claim a user may pick (a username, an email) chooses the account.
    pub async fn principal_for_claims(
        &self,
        claims: &AuthorizerClaims,
    ) -> Result<Principal, AuthError> {
        let auth = &self.config.auth;
        let claim = |name: &str, var: &str| {
            claims.0.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                unauthorized(format!("the authorizer's claims have no {name:?} ({var})"))
            })
        };
        let issuer = claim(&auth.issuer_claim, "REALNET_AUTH_ISSUER_CLAIM")?;
        let subject = claim(&auth.subject_claim, "REALNET_AUTH_SUBJECT_CLAIM")?;
        let org = match &auth.org_claim {
            Some(c) => {
                let org = claim(c, "REALNET_AUTH_ORG_CLAIM")?;
                check_org_name(org)
                    .map_err(|m| unauthorized(format!("the authorizer's org claim {c:?}: {m}")))?;
                Some(org.as_str())
            }
            None => None,
        };
        let key = format!(
            "authorizer\n{issuer}\n{subject}\n{}",
            org.unwrap_or_default()
        );
        if let Some(p) = self.cached_principal(&key) {
            return Ok(p);
        }
        let unlinked = || {
            unauthorized(format!(
                "no enabled account is linked to subject {subject:?} of issuer {issuer:?}: an org admin sets idp_issuer and idp_subject on the Account"
            ))
        };
        let link = self
            .store
            .identity_link(issuer, subject)
            .await?
            .ok_or_else(unlinked)?;
        if org.is_some_and(|o| o != link.org) {
            return Err(unlinked());
        }
        let account = self
            .store
            .get(&link.org, link.account)
            .await?
            // The link is written with the account's attributes; both must still say it.
            .filter(|a| identity::idp_link(a) == Some((issuer.as_str(), subject.as_str())))
            .filter(|a| !identity::is_disabled(a))
            .ok_or_else(unlinked)?;
        let principal = self.principal_of(&account, Credential::Authorizer).await?;
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
        let principal = self.principal_of(&account, Credential::Job).await?;
        self.cache_principal(key, &principal, None);
        Ok(Some(principal))
    }

    /// The principal of an enabled account: its groups are those of its `groups` that exist,
    /// so that a deleted group grants nothing.
    pub async fn principal_of(
        &self,
        account: &Item,
        credential: Credential,
    ) -> Result<Principal, StoreError> {
        let mut principal = Principal::of_account(account, credential);
        let mut groups = Vec::with_capacity(principal.groups.len());
        for g in principal.groups {
            if let Some(group) = self.store.get(&account.org, g).await?
                && self.types.is_a(&group.type_name, "Group")
            {
                groups.push(g);
            }
        }
        principal.groups = groups;
        Ok(principal)
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
