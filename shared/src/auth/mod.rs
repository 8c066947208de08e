//! Who is calling: the [`Principal`] every action runs as, and how it was proven
//! ([`Credential`]). Resolving a credential to a principal is [`resolve`]; the HTTP extractor
//! that decides who a request acts as is in `api::extract`; the per-container caches are
//! [`cache`].

pub mod cache;
pub mod identity;
pub mod login;
pub mod password;
pub mod resolve;
pub mod rules;
pub mod token;

use std::collections::HashMap;
use std::net::IpAddr;

use uuid::Uuid;

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

pub(crate) fn unauthorized(message: impl Into<String>) -> AuthError {
    AuthError::Unauthorized(message.into())
}
